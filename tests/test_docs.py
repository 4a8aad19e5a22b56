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
import html
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


TEACHING = ["03_ae", "04_vae", "05_gan", "07_metrics", "08_fusion", "08b_contrastive"]  # Part I, in reading order
ENGINEERING = ["00_checks", "00_backend", "00c_workers", "06_callbacks", "08c_devices", "09a_render", "09b_views",
               "89_report", "90_cli", "91_bench"]


def sidebar_sections():
    contents = yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    return contents, {e["section"]: e["contents"] for e in contents if isinstance(e, dict)}


def test_sidebar_orders_the_book_in_parts():
    # custom_sidebar = True: nbdev_docs (Quarto) and docs/build.py both read the committed sidebar.yml.
    assert settings()["custom_sidebar"] == "True"
    contents, sections = sidebar_sections()
    assert contents[0] == "index.ipynb"
    listed = ["index.ipynb"] + [name for names in sections.values() for name in names]
    notebooks = sorted(p.name for p in NBS.glob("*.ipynb"))
    assert sorted(listed) == notebooks, "every notebook of nbs/ listed exactly once"
    parts = list(sections)
    models, appendices = sections[parts[0]], sections[parts[-1]]
    assert [n.removesuffix(".ipynb") for n in models if n.removesuffix(".ipynb") in TEACHING] == TEACHING
    assert "appendi" in parts[-1].lower()
    assert {f"{n}.ipynb" for n in ENGINEERING} <= set(appendices), "the engineering lives in the appendices"
    assert not {f"{n}.ipynb" for n in ENGINEERING} & set(models)


def test_teaching_chapters_end_with_exercises_and_checked_solutions():
    import json
    for stem in TEACHING:
        cells = json.loads((NBS / f"{stem}.ipynb").read_text())["cells"]
        text = ["".join(c["source"]) for c in cells]
        heads = [i for i, t in enumerate(text) if cells[i]["cell_type"] == "markdown" and t.startswith("## Exercises")]
        assert len(heads) == 1, f"{stem}: one '## Exercises' section"
        numbers = [int(m) for t in text[heads[0]:] for m in re.findall(r"^\*\*Exercise (\d+)\.\*\*", t, re.M)]
        assert len(numbers) >= 2 and numbers == list(range(1, len(numbers) + 1)), (stem, numbers)
        for n in numbers:
            at = next(i for i, t in enumerate(text) if i >= heads[0] and f"**Exercise {n}.**" in t)
            solution = next(i for i in range(at + 1, len(cells)) if cells[i]["cell_type"] == "code")
            lines = text[solution].splitlines()
            assert lines[:2] == ["#| code-fold: true", f"# Solution to exercise {n}"], (stem, n, lines[:2])
            assert re.search(r"\b(assert|test_eq|test_close|test_fail)\b", text[solution]), (stem, n, "is checked")


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
    result = subprocess.run([sys.executable, "docs/build.py", "--size", "test", "--only", *SUBSET, "--extra", str(FIXTURE),
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
    captions = re.findall(r'<p class="caption[^"]*"[^>]*><span class="caption-text">([^<]+)</span>', nav)
    _, sections = sidebar_sections()
    assert captions[0] == html.escape(next(iter(sections)), quote=False), captions  # vae sits in Part I
    assert "learning path" in index.lower() and "what you need first" in index.lower()
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


def test_implementations_are_on_the_page(site):
    page = (site / "vae.html").read_text()
    code = " ".join(re.sub(r"<[^>]+>", "", b) for b in re.findall(r'<div class="highlight[^"]*"><pre>(.*?)</pre>', page, re.S))
    code = html.unescape(code)
    for definition in ("def gaussian_kl(", "def reparameterize(", "def importance_weighted_bound(", "class VAE("):
        assert definition in code, f"{definition} is not shown on the page"


def test_source_links_open_pages_of_the_site(site):
    page = site / "vae.html"
    links = re.findall(r'<a class="nbdev-source" href="([^"]+)"', page.read_text())
    assert links, "show_doc's source links"
    for href in links:
        assert href.startswith("source/mmgen_nbdev/vae.py.html#L-"), href
        path, _, line = href.partition("#")
        target = site / path
        assert target.exists() and line in parse(target).ids, href
    shown = (site / "source/mmgen_nbdev/vae.py.html").read_text()
    assert 'href="../../vae.html"' in shown and "def gaussian_kl" in html.unescape(re.sub(r"<[^>]+>", "", shown))


def test_widgets_move_on_the_static_page_or_say_they_are_snapshots(site, server, browser):
    seen = visit(browser, urljoin(server, "docs_widgets.html"), ARTIFACTS / "docs_widgets_notes.png")
    assert seen["snapshot_notes"] == 2 and seen["widget_outputs"] == [True, True, True], seen
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(urljoin(server, "docs_widgets.html"))
    page.wait_for_selector(".mmgen-offline-player .noUi-handle", timeout=30_000)
    shown = """() => [...document.querySelectorAll('.mmgen-offline-player .widget-label')]
                      .filter(e => e.offsetParent !== null && e.innerText.startsWith('page'))
                      .map(e => e.innerText)"""
    before = page.evaluate(shown)
    page.locator(".mmgen-offline-player").scroll_into_view_if_needed()  # the mouse acts inside the viewport
    handle = page.locator(".mmgen-offline-player .noUi-handle").bounding_box()
    track = page.locator(".mmgen-offline-player .noUi-target").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] - 20, handle["y"] + handle["height"] / 2, steps=8)  # past the left end: page 0
    page.mouse.up()
    page.wait_for_timeout(300)
    after = page.evaluate(shown)
    context.close()
    assert (before, after) == (["page 2"], ["page 0"]), (before, after)


def test_search_ranks_the_chapter_first(site, server, browser):
    hits = search(browser, server, "ELBO")
    assert hits and hits[0].startswith("vae.html"), hits
    assert not any(h.startswith("api.html") for h in hits), "the API list is not searched"


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
        wide: (() => {  // anything wider than the text column: it would scroll sideways or spill over
            const article = document.querySelector('article');
            if (!article) return [];
            const column = article.getBoundingClientRect().width;
            return [...article.querySelectorAll('pre, mjx-container[display="true"], .cell_output img, table')]
                .filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().width > column + 1)
                .map(e => `${e.tagName.toLowerCase()} ${e.scrollWidth}px in ${Math.round(column)}px: ` +
                          (e.innerText || e.getAttribute('aria-label') || e.src || '').slice(0, 70).replace(/\\s+/g, ' '));
        })(),
        tracking: ((document.querySelector('article') || document.body).innerText.match(
            /[^.\\n]{0,60}\\b(issue #\\d+|issues? #?\\d+'s|the issue'?s\\b|[Ii]ssue #)[^.\\n]{0,40}/g) || []),
        snapshot_notes: document.querySelectorAll('.widget-snapshot-note').length,
        widget_outputs: [...document.querySelectorAll('.cell_output')].filter(
            o => o.querySelector('script[type="application/vnd.jupyter.widget-view+json"]')).map(
            o => !!(o.querySelector('.widget-snapshot-note') || o.querySelector('.mmgen-offline-player'))),
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
        problems += [f"{name}: wider than the column: {w}" for w in seen["wide"]]
        problems += [f"{name}: speaks of project tracking, which a reader cannot see: {t!r}" for t in seen["tracking"]]
        problems += [f"{name}: a widget neither moves on the page nor says it is a snapshot"
                     for said in seen["widget_outputs"] if not said]
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
    assert seen["views"] == 3, seen
    assert seen["sliders"] == ["7", "2"], f"the sliders' final states: {seen['sliders']}"
    assert seen["widget_images"] and all(seen["widget_images"]), seen
    assert seen["icon_fonts"] and set(seen["icon_fonts"]) == {"loaded"}, f"the button's icon font: {seen['icon_fonts']}"
    assert not seen["external"] and not seen["errors"], seen


def search(browser, server, term: str) -> list:
    "The links Sphinx's offline search lists for `term`, best first."
    url = urljoin(server, f"search.html?q={term}")
    context = browser.new_context()
    context.route("**/*", lambda r: r.continue_() if urlsplit(r.request.url).netloc == urlsplit(url).netloc
                  else r.abort())
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#search-results li", timeout=30_000)
    page.wait_for_timeout(500)
    hits = page.locator("#search-results li a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    context.close()
    return hits


def test_search_works_offline(site, server, browser):
    hits = search(browser, server, "ELBO")
    assert any(h.startswith("vae.html") for h in hits), hits
