"""The docs site: nbdev 2's Quarto files are valid, and the offline build (docs/build.py) renders in a real browser.

The browser test builds a representative subset (the home page, the ELBO chapter and a widget fixture from
tests/fixtures/), serves it on 127.0.0.1, and opens every page in headless Chromium (Debian's, driven by
Playwright). Every request that does not go to 127.0.0.1 is aborted and counted: there must be none. Each page
must render without page errors or console errors, with its maths typeset by the bundled MathJax, its images
loaded, its saved widgets drawn by the bundled widget manager, and every internal link pointing at a page and an
anchor that exist. Screenshots go to test-artifacts/docs/. Select these tests with `pytest -m docs`.
"""
import configparser
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts" / "docs"
FIXTURE = ROOT / "tests" / "fixtures" / "docs_widgets.ipynb"
SUBSET = ["index", "04_vae"]

pytestmark = pytest.mark.docs


# ------------------------------------------------------------------------------- nbdev 2's Quarto files
def settings():
    parser = configparser.ConfigParser(delimiters=["="])
    parser.read(ROOT / "settings.ini")
    return parser["DEFAULT"]


def test_quarto_files_match_what_nbdev_generates():
    from nbdev.quarto import _nbdev_yml, _quarto_yml
    cfg = settings()
    vals = {k: cfg[k] for k in ("title", "description", "branch", "git_url", "doc_host", "doc_baseurl")}
    assert (NBS / "nbdev.yml").read_text() == _nbdev_yml.format(doc_path=cfg["doc_path"], **vals)
    assert yaml.safe_load((NBS / "_quarto.yml").read_text()) == yaml.safe_load(_quarto_yml)
    assert (NBS / "styles.css").read_text().strip()


def test_sidebar_lists_the_notebooks_in_learning_order():
    # nbdev_docs regenerates sidebar.yml (custom_sidebar = False); the committed one must be valid for it:
    # index first, then existing notebooks in file-name order.
    contents = yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    assert contents[0] == "index.ipynb"
    assert contents[1:] == sorted(contents[1:])
    for name in contents:
        assert (NBS / name).exists(), name


def test_docs_fixtures_live_outside_nbs():
    assert FIXTURE.exists() and not list(NBS.glob("**/docs_*.ipynb")), "nbdev_test runs every notebook of nbs/"


# ----------------------------------------------------------------------------------------- the site
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The subset built into a temporary folder by the documented command."
    if os.environ.get("MMGEN_DOCS_SITE"):  # a site built already, for working on the checks themselves
        return Path(os.environ["MMGEN_DOCS_SITE"])
    build = tmp_path_factory.mktemp("docs")
    start = time.time()
    result = subprocess.run([sys.executable, "docs/build.py", "--only", *SUBSET, "--extra", str(FIXTURE),
                             "--build-dir", str(build)], cwd=ROOT, capture_output=True, text=True)
    print(f"docs build: {time.time() - start:.0f} s\n{result.stdout[-3000:]}")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return build / "html"


class _Anchors(HTMLParser):
    "The ids and the link targets of one HTML page."

    def __init__(self):
        super().__init__()
        self.ids, self.hrefs = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href") is not None:
            self.hrefs.append(attrs["href"])


@functools.lru_cache(maxsize=None)
def parse(path: Path) -> _Anchors:
    parser = _Anchors()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def pages_of(site: Path):
    return sorted(p.name for p in site.glob("*.html"))


def test_the_site_has_the_pages_in_learning_order(site):
    assert {"index.html", "vae.html", "docs_widgets.html", "api.html", "search.html"} <= set(pages_of(site))
    index = (site / "index.html").read_text()
    nav = re.search(r'class="sidebar-tree".*?</div>', index, re.S).group(0)
    order = re.findall(r'href="([\w_]+)\.html"', nav)
    assert order.index("vae") < order.index("api") < order.index("docs_widgets"), order
    assert "cdn." not in index and "cdnjs" not in index  # nothing left pointing at a CDN


def test_api_reference_is_cross_linked(site):
    vae = (site / "vae.html").read_text()
    assert 'id="vae"' in vae and 'id="gaussian_kl"' in vae, "show_doc anchors nbdev's links point at"
    assert re.search(r'<a class="nbdev-link[^"]*" href="vae.html#[\w.]+"', vae), "chapter prose links to the API"
    api = (site / "api.html").read_text()
    assert 'href="vae.html#vae"' in api and 'href="vae.html#gaussian_kl"' in api


def test_no_broken_internal_links(site):
    broken = []
    for name in pages_of(site):
        for href in parse(site / name).hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target = (site / name).parent / unquote(parts.path) if parts.path else site / name
            if target.is_dir():
                target = target / "index.html"
            if not target.resolve().is_relative_to(site.resolve()) or not target.exists():
                broken.append(f"{name}: {href} (no such file)")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parse(target).ids:
                broken.append(f"{name}: {href} (no such anchor)")
    assert not broken, "\n".join(broken)


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`; .ci/run "
                    "does it when run as root). The docs browser test does not skip.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('playwright is missing: pip install -e ".[dev]" installs it')
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def visit(browser, url: str, screenshot: Path) -> dict:
    "Open `url`, abort and count every request not to 127.0.0.1, wait for maths and widgets; what was seen."
    host = urlsplit(url).netloc
    seen = {"external": [], "errors": [], "local_failures": []}
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(r):
        parts = urlsplit(r.request.url)
        if parts.scheme in ("data", "blob", "about") or parts.netloc == host:
            r.continue_()
        else:
            seen["external"].append(r.request.url)
            r.abort()
    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda e: seen["errors"].append(f"pageerror: {e}"))
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(f"console: {m.text}"))
    page.on("response", lambda r: r.status >= 400 and seen["local_failures"].append(f"{r.status} {r.url}"))
    page.goto(url, wait_until="load")
    counts = page.evaluate("""() => ({
        math: document.querySelectorAll('.math').length,
        views: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    })""")
    if counts["math"]:
        page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=30_000)
    if counts["views"]:
        page.wait_for_function(f"document.querySelectorAll('.jupyter-widgets.widget-container, "
                               f".jupyter-widgets-view, .widget-inline-hbox, .widget-image').length > 0",
                               timeout=30_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    seen.update(counts)
    seen.update(page.evaluate("""() => ({
        mjx: document.querySelectorAll('mjx-container').length,
        mjx_errors: document.querySelectorAll('mjx-merror').length,
        raw_tex: (document.querySelector('article') || document.body).innerText.includes('$$'),
        images: [...document.querySelectorAll('article img')].map(i => ({src: i.src.slice(0, 60), ok: i.complete && i.naturalWidth > 0})),
        sliders: [...document.querySelectorAll('.widget-slider .widget-readout')].map(e => e.innerText || e.value || e.textContent),
        widget_images: [...document.querySelectorAll('img.widget-image, .widget-image img, img.jupyter-widgets')].map(i => i.complete && i.naturalWidth > 0),
        icon_fonts: [...document.fonts].filter(f => f.family.includes('Font Awesome') && f.status !== 'unloaded').map(f => f.status),
        title: document.title,
    })"""))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    context.close()
    return seen


def test_every_page_renders_offline_in_chromium(site, server, browser):
    problems, report, external = [], [], 0
    for name in pages_of(site):
        seen = visit(browser, urljoin(server, name), ARTIFACTS / name.replace(".html", ".png"))
        external += len(seen["external"])
        report.append(f"{name}: {seen['mjx']} maths, {len(seen['images'])} images, {seen['views']} widget views, "
                      f"{len(seen['external'])} external requests blocked")
        problems += [f"{name}: external request {u}" for u in seen["external"]]
        problems += [f"{name}: {e}" for e in seen["errors"] + seen["local_failures"]]
        if seen["math"] and (not seen["mjx"] or seen["mjx_errors"]):
            problems.append(f"{name}: {seen['math']} maths, {seen['mjx']} typeset, {seen['mjx_errors']} errors")
        problems += [f"{name}: image not loaded {i['src']}" for i in seen["images"] if not i["ok"]]
    print("\n".join(report))
    assert not problems, "\n".join(problems)
    assert external == 0


def test_the_elbo_chapter_shows_maths_figures_and_its_reference(site, server, browser):
    seen = visit(browser, urljoin(server, "vae.html"), ARTIFACTS / "vae.png")
    assert seen["mjx"] >= 10 and not seen["mjx_errors"] and not seen["raw_tex"], seen
    assert len(seen["images"]) >= 3 and all(i["ok"] for i in seen["images"]), seen["images"]
    assert "ELBO" in seen["title"]


def test_saved_widget_state_renders_with_the_bundled_manager(site, server, browser):
    seen = visit(browser, urljoin(server, "docs_widgets.html"), ARTIFACTS / "docs_widgets.png")
    assert seen["views"] == 2, seen
    assert seen["sliders"] == ["7"], f"the slider's final state: {seen['sliders']}"
    assert seen["widget_images"] == [True], seen
    assert seen["icon_fonts"] and set(seen["icon_fonts"]) == {"loaded"}, f"the button's icon font: {seen['icon_fonts']}"
    assert not seen["external"] and not seen["errors"], seen


def test_search_works_offline(site, server, browser):
    url = urljoin(server, "search.html?q=ELBO")
    context = browser.new_context()
    context.route("**/*", lambda r: r.continue_() if urlsplit(r.request.url).netloc == urlsplit(url).netloc
                  else r.abort())
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#search-results li", timeout=30_000)
    hits = page.locator("#search-results li a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    context.close()
    assert any(h.startswith("vae.html") for h in hits), hits
