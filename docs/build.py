"""Build the documentation site offline: `python docs/build.py` (or `make docs`) writes docs/_build/html/.

The pipeline, which needs no Quarto and no network once its two JavaScript packages are cached:

1. **Execute** each notebook of nbs/ (and any `--extra` notebook) in a fresh Jupyter kernel with nbclient, at
   the chapters' full size (`--size test` sets `IN_TEST=1`, the small sizes that `nbdev_test` uses, as the
   test suite's build does) and with nbdev's `add_show_docs` applied first, so that the
   API reference (`show_doc`) is rendered by the same kernel. Cells marked `#| eval: false` or with a flag from
   settings.ini's `tst_flags` (`#| slow`, `#| notest`) are shown but not run. Widget state is saved
   (`store_widget_state=True`), so every widget shows its final state. Results are cached in
   docs/_build/cache/, keyed on the notebook, the library and this file.
2. **Process** each executed notebook with nbdev's own processors (those `nbdev_docs` uses, less the two that
   re-execute code): hidden and exported cells dropped, front matter read, doc links added.
3. **Translate** Quarto's conventions into myst-nb's: the front matter becomes the page title and description,
   `#| echo: false` / `output: false` / `include: false` / `code-fold: true` become the cell tags `remove-input`,
   `remove-output`, `remove-cell`, `hide-input`; nbdev's links to the published site become links between the
   pages built here, and every `show_doc` heading gets the anchor nbdev's links point at.
4. **Render** with Sphinx + myst-nb (no execution there) and the Furo theme: MathJax 3 from the PyPI package
   sphinx-mathjax-offline, the ipywidgets HTML manager and require.js from pinned npm packages (downloaded once
   from the npm registry, checked against their sha512 integrity and cached in docs/_build/vendor/), Sphinx's
   own offline search. Pages are named as nbdev names them (`04_vae.ipynb` -> `vae.html`), the chapters
   ordered and grouped as nbs/sidebar.yml lists them (the sidebar nbdev_docs uses too): a new notebook must be
   listed there, or the build stops and says so.

`--only index 04_vae` builds a subset (the home page is always included); the test suite builds
`--size test --only index 04_vae --extra tests/fixtures/docs_widgets.ipynb` and checks it in headless Chromium. The same
browser checks run on a full build with
`MMGEN_DOCS_SITE=docs/_build/html python -m pytest tests/test_docs.py -k "every_page or broken_internal"`.
"""
from __future__ import annotations

import argparse
import base64
import configparser
import fnmatch
import hashlib
import html
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DEFAULT_BUILD = DOCS / "_build"
CACHE_VERSION = "1"  # bump to invalidate every cached execution
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SOURCE = "source"  # the site's folder of repository files shown as pages (the targets of nbdev's "source" links)

# Pinned npm packages: (version, sha512 integrity from the registry, {file in the tarball: name in _static/vendor}).
# Both are fetched as plain tarballs (no npm needed); the widget manager bundle alone is 3.6 MB, too big to commit.
NPM = {
    "requirejs": ("2.3.8", "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
                  {"package/require.js": "require.js"}),
    "@jupyter-widgets/html-manager": (
        "1.0.15", "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        {"package/dist/embed-amd.js": "embed-amd.js", "package/dist/embed.js.LICENSE.txt": "embed-amd.js.LICENSE.txt",
         # Font Awesome (icons of buttons and the like), loaded from beside embed-amd.js when a widget needs it.
         "package/dist/*.woff2": "", "package/dist/*.woff": "", "package/dist/*.ttf": ""}),
}
LICENCES = {"requirejs": "MIT", "@jupyter-widgets/html-manager": "BSD-3-Clause"}

DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
QUARTO_TAGS = {("echo", "false"): "remove-input", ("output", "false"): "remove-output",
               ("include", "false"): "remove-cell", ("code-fold", "true"): "hide-input"}
# Log lines of TensorFlow/XLA/absl start-up written to stderr: noise on a docs page.
STDERR_NOISE = re.compile(r"(tensorflow|oneDNN|cuda|absl|XLA|TF_ENABLE|WARNING: All log messages|^\s*$|"
                          r"^[IWE]\d{4} |computation placer|Unable to register)", re.I)


# ---------------------------------------------------------------------------------------------- configuration
def settings() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(delimiters=["="])
    parser.read(ROOT / "settings.ini", encoding="utf-8")
    return parser["DEFAULT"]


def page_name(nb_path: Path) -> str:
    "The page nbdev gives a notebook: `04_vae.ipynb` -> `vae` (as in `vae.html`)."
    return re.sub(r"^\d+[a-zA-Z0-9]*_", "", nb_path.stem)


def sidebar(nbs: Path) -> list[tuple[str, list[str]]]:
    """nbs/sidebar.yml (Quarto's sidebar, which nbdev_docs uses too) as [(section caption, [notebook file])]:
    the one place that orders the book. Top-level entries before the first section get the caption ''."""
    import yaml
    parts, loose = [], []
    for entry in yaml.safe_load((nbs / "sidebar.yml").read_text(encoding="utf-8"))["website"]["sidebar"]["contents"]:
        if isinstance(entry, dict):
            parts.append((entry["section"], list(entry.get("contents", []))))
        else:
            loose.append(entry)
    return [("", loose)] + parts


def chapters(nbs: Path) -> list[Path]:
    "The notebooks of the site in the order nbs/sidebar.yml gives (home page first); every notebook must be there."
    listed = [name for _, names in sidebar(nbs) for name in names]
    files = {p.name for p in nbs.glob("*.ipynb") if not p.name.startswith(("_", "."))}
    missing, unknown = sorted(files - set(listed)), sorted(set(listed) - files)
    twice = sorted({n for n in listed if listed.count(n) > 1})
    if missing or unknown or twice or listed[:1] != ["index.ipynb"]:
        raise SystemExit(f"nbs/sidebar.yml must list index.ipynb first and every notebook of nbs/ once: "
                         f"missing {missing}, listed but absent {unknown}, listed twice {twice}")
    return [nbs / name for name in listed]


def select(files: list[Path], only: list[str] | None) -> list[Path]:
    "The notebooks named in `only` (by stem, page name or file name), with the home page always included."
    if not only:
        return files
    wanted = {o.removesuffix(".ipynb") for o in only} | {"index"}
    chosen = [p for p in files if p.stem in wanted or page_name(p) in wanted]
    unknown = wanted - {p.stem for p in chosen} - {page_name(p) for p in chosen}
    if unknown:
        raise SystemExit(f"--only: no notebook named {sorted(unknown)} in nbs/ (have: {[p.stem for p in files]})")
    return chosen


# ------------------------------------------------------------------------------------------------ execution
def cache_key(nb_path: Path, size: str) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION} {size}".encode())
    h.update((inspect.getsource(execute) + inspect.getsource(directives)).encode())  # how it is executed
    h.update(nb_path.read_bytes())
    for lib_file in sorted((ROOT / settings()["lib_path"]).glob("**/*.py")):
        h.update(lib_file.name.encode() + lib_file.read_bytes())
    return h.hexdigest()[:20]


def directives(source: str) -> dict[str, str]:
    "The `#| key: value` lines at the top of a cell, as {key: value}."
    found = {}
    for line in source.splitlines():
        if not line.strip():
            continue
        match = DIRECTIVE.match(line)
        if not match:
            break
        found[match.group(1).lower()] = match.group(2).strip().strip("'\"").lower()
    return found


def execute(nb_path: str, cwd: str, timeout: int, size: str = "full") -> tuple[str, float]:
    """Execute the notebook at `nb_path` in a fresh kernel (in a worker process): (its JSON text, seconds taken).

    nbdev's `add_show_docs` runs first, so exported names get their `show_doc` cells, which execute in the same
    kernel as the chapter. Cells nbdev_test would skip are tagged `skip-execution`, which nbclient honours."""
    if size == "test":
        os.environ["IN_TEST"] = "1"  # the notebooks' small configurations, as under nbdev_test
    else:
        os.environ.pop("IN_TEST", None)  # the chapters as a reader runs them: full-size models and figures
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    import nbformat
    from execnb.nbio import nb2dict, read_nb
    from nbclient import NotebookClient
    from nbdev.process import NBProcessor
    from nbdev.processors import add_show_docs

    nbn = nbformat.read(nb_path, as_version=4)
    nb = read_nb(nb_path)  # nbdev's processing strips the directives it reads: it only says where show_docs go
    NBProcessor(nb=nb, procs=[add_show_docs]).process()
    originals, cells = iter(nbn.cells), []
    for cell in nb2dict(nb)["cells"]:
        cells.append(nbformat.v4.new_code_cell("".join(cell["source"])) if cell.get("has_sd") else next(originals))
    assert next(originals, None) is None, "add_show_docs dropped a cell"
    nbn.cells = cells
    skip_flags = set(settings().get("tst_flags", "").split())
    for cell in nbn.cells:
        if cell.cell_type == "code":
            opts = directives(cell.source)
            if opts.get("eval") == "false" or skip_flags & set(opts):
                cell.metadata.setdefault("tags", []).append("skip-execution")
    prelude = nbformat.v4.new_code_cell("from nbdev.showdoc import show_doc\n%matplotlib inline")
    nbn.cells.insert(0, prelude)
    client = NotebookClient(nbn, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": cwd}})
    start = time.time()
    client.execute(stderr=subprocess.DEVNULL)  # the kernel's own log (TF start-up, transport notices); outputs are kept
    elapsed = time.time() - start
    nbn.cells.pop(0)
    for cell in nbn.cells:
        tags = cell.metadata.get("tags", [])
        if "skip-execution" in tags:
            tags.remove("skip-execution")
            if not tags:
                del cell.metadata["tags"]
    return nbformat.writes(nbn), elapsed


def execute_all(files: list[Path], cache: Path, jobs: int, timeout: int, use_cache: bool,
                size: str = "full") -> dict[Path, str]:
    "Every notebook of `files` executed (from the cache where it is current), as {path: JSON text}."
    cache.mkdir(parents=True, exist_ok=True)
    done, todo = {}, []
    for path in files:
        cached = cache / f"{path.stem}.{size}.{cache_key(path, size)}.ipynb"
        if use_cache and cached.exists():
            done[path] = cached.read_text(encoding="utf-8")
            print(f"  {path.name}: cached")
        else:
            todo.append((path, cached))
    if not todo:
        return done
    failures = []
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=get_context("spawn")) as pool:
        started = {pool.submit(execute, str(path), str(path.parent), timeout, size): (path, cached)
                   for path, cached in todo}
        for future in as_completed(started):
            path, cached = started[future]
            try:
                text, elapsed = future.result()
            except Exception as error:  # noqa: BLE001 - reported with the notebook's name, then the build fails
                failures.append(f"{path.name}: {type(error).__name__}: {str(error)[-3000:]}")
                print(f"  {path.name}: FAILED")
                continue
            for old in cache.glob(f"{path.stem}.{size}.*.ipynb"):
                old.unlink()
            cached.write_text(text, encoding="utf-8")
            done[path] = text
            print(f"  {path.name}: executed in {elapsed:.0f} s")
    if failures:
        raise SystemExit("executing the notebooks failed:\n" + "\n\n".join(failures))
    return done


# ----------------------------------------------------------------------------------------------- processing
def nbdev_process(text: str, nb_path: Path) -> dict:
    "nbdev's docs processors over an executed notebook, less the two that would execute code again."
    from execnb.nbio import dict2nb, nb2dict
    from nbdev.processors import FilterDefaults, add_show_docs, exec_show_docs

    class Processors(FilterDefaults):
        def base_procs(self):
            return [p for p in super().base_procs() if p not in (add_show_docs, exec_show_docs)]

    raw = json.loads(text)
    widgets = raw.get("metadata", {}).pop("widgets", None)  # kept apart: execnb reads any "source" key as a cell's
    nb = dict2nb(raw)                                        # (a jslink's state has one: [model, "value"])
    nb.path_ = str(nb_path)
    Processors()(nb)
    front = dict(getattr(nb, "frontmatter_", {}) or {})
    data = nb2dict(nb)
    if widgets is not None:
        data.setdefault("metadata", {})["widgets"] = widgets
    data["cells"] = [c for c in data["cells"] if c.get("source") is not None]
    return {"nb": data, "front": front}


class Site:
    "The pages of one build and the translation of their notebooks into myst-nb's conventions."

    def __init__(self, pages: dict[str, Path]):
        cfg = settings()
        self.pages = pages  # page name -> source notebook, in order
        self.stems = {p.stem: name for name, p in pages.items()}
        self.doc_url = (cfg["doc_host"].rstrip("/") + "/" + cfg["doc_baseurl"].strip("/") + "/").replace("//", "/")
        self.doc_url = self.doc_url.replace(":/", "://", 1)
        self.anchors: dict[str, dict[str, tuple]] = {}  # page -> {anchor: (name, one-line summary)}
        self.html_ids: dict[str, set] = {}  # page -> ids set by HTML in its markdown (and the show_doc anchors)
        self.nbs, self.git_url, self.branch = ROOT / cfg["nbs_path"], cfg["git_url"].rstrip("/"), cfg["branch"]
        self.sources: set[str] = set()  # repository files linked from the pages, shown under SOURCE/
        self.titles: dict[str, str] = {}  # page -> title, once the pages are translated

    # -- show_doc output --------------------------------------------------------------------------------------
    def showdoc_markdown(self, page: str, text: str) -> str:
        "A `show_doc` output with nbdev's anchor before its heading and Quarto's link attributes made HTML."
        text = re.sub(r"^---\s*$", '<hr class="nbdev-rule">', text, flags=re.M)  # a transition here upsets docutils
        text = re.sub(r"\[source\]\((\S+?)\)\{[^}]*\}",
                      lambda m: f'<a class="nbdev-source" href="{html.escape(self.source_href(m.group(1)))}">source</a>',
                      text)

        def anchor(match):
            name = match.group(2).strip().strip("`")
            slug = name.lower().replace(" ", "-")
            summary = re.search(r"^\*(.+)\*\s*$", text[match.end():], re.M)
            self.anchors.setdefault(page, {})[slug] = (name, summary.group(1) if summary else "")
            self.html_ids.setdefault(page, set()).add(slug)
            return f'<span id="{html.escape(slug)}" class="nbdev-anchor"></span>\n\n{match.group(1)} {name}'
        return re.sub(r"^(#{2,4}) (.+)$", anchor, text, count=1, flags=re.M)

    # -- the repository's files, as pages of the site --------------------------------------------------------------
    def source_href(self, url: str) -> str:
        """The page of this site that shows a repository file nbdev or a chapter links to on the code host
        (`.../blob/main/mmgen_nbdev/vae.py#L41` -> `source/mmgen_nbdev/vae.py.html#L-41`); other URLs as they are."""
        prefix = f"{self.git_url}/blob/{self.branch}/"
        if not url.startswith(prefix):
            return url
        path, _, fragment = url[len(prefix):].partition("#")
        if not (ROOT / path).is_file():
            return url
        self.sources.add(path)
        line = re.fullmatch(r"L(\d+)", fragment)
        return f"{SOURCE}/{path}.html" + (f"#L-{line.group(1)}" if line else "")

    # -- links -------------------------------------------------------------------------------------------------
    def local_href(self, url: str) -> str | None:
        "The relative link to a page of this build for a URL of the published site, or None."
        if not url.startswith(self.doc_url):
            return None
        rest = url[len(self.doc_url):]
        page, _, fragment = rest.partition("#")
        page = page.removesuffix(".html") or "index"
        if page not in self.pages:
            return None
        anchors = self.anchors.get(page, {})
        if fragment and fragment not in anchors:  # a method without its own show_doc: its class, else the page
            owner = fragment.split(".")[0]
            fragment = owner if owner in anchors else ""
        return f"{page}.html" + (f"#{fragment}" if fragment else "")

    def links(self, text: str, page: str = "index", output: bool = False) -> str:
        """nbdev's links to the published site made local; links to chapters (`04_vae.ipynb`) renamed or unlinked
        (in a cell's `output`, which myst-nb does not resolve, as HTML links to the page)."""
        def doclink(match):
            label, url = match.group(1), match.group(2)
            href = self.local_href(url)
            if href is None:
                return match.group(0)
            inner = f"<code>{html.escape(label[1:-1])}</code>" if label.startswith("`") else html.escape(label)
            return f'<a class="nbdev-link reference internal" href="{href}">{inner}</a>'
        text = re.sub(r"\[(`[^`\]]+`|[^\]]+)\]\((https?://[^)\s]+)\)", doclink, text)

        def chapter(match):
            label, stem, fragment = match.group(1), match.group(2), match.group(3) or ""
            if stem in self.stems and output:
                inner = inline_html(label)
                return f'<a class="reference internal" href="{self.stems[stem]}.html{html.escape(fragment)}">{inner}</a>'
            if stem in self.stems:
                return f"[{label}]({self.stems[stem]}.ipynb{fragment})"
            return label  # not part of this (partial) build
        text = re.sub(r"\[([^\]]+)\]\((?!https?:|/|#)([\w.-]+)\.ipynb(#[^)]*)?\)", chapter, text)

        def other(match):  # other relative links: a page of this site; a file of the repository, on its host; text
            label, target = match.group(1), match.group(2)
            base = target.split("#")[0]
            if base.endswith(".ipynb") and base.removesuffix(".ipynb") in self.pages:
                return match.group(0)
            path = (self.nbs / base).resolve()
            if path.is_relative_to(ROOT) and path.is_file():
                href = self.source_href(f"{self.git_url}/blob/{self.branch}/{path.relative_to(ROOT).as_posix()}")
                inner = inline_html(label)
                return f'<a class="reference external" href="{html.escape(href)}">{inner}</a>'
            print(f"  warning: a link to {target!r} points outside the repository or at nothing; shown as text")
            return label
        text = re.sub(r"(?<!!)\[([^\]]+)\]\((?!https?:|mailto:|/|#)([^)\s]+)\)", other, text)

        def html_target(match):  # myst resolves fragments to headings only: an id set in HTML gets an HTML link
            label, target, fragment = match.group(1), match.group(2), match.group(3)
            to = target.removesuffix(".ipynb") if target else page
            if to not in self.pages or fragment not in self.html_ids.get(to, set()):
                return match.group(0)
            href = (f"{to}.html" if to != page else "") + f"#{fragment}"
            inner = inline_html(label)
            return f'<a class="reference internal" href="{href}">{inner}</a>'
        return re.sub(r"(?<!!)\[([^\]]+)\]\(([\w.-]+\.ipynb)?#([^)\s]+)\)", html_target, text)

    # -- cells -------------------------------------------------------------------------------------------------
    def snapshot_note(self, page: str, outputs: list) -> list:
        """`outputs` with a note before the first widget: on a static page a widget shows the state its run ended in
        and cannot reach Python. A cell whose widgets work in the browser alone says `#| snapshot: false`."""
        first = next((i for i, o in enumerate(outputs) if WIDGET_VIEW in o.get("data", {})), None)
        if first is None:
            return outputs
        notebook = self.pages[page].name
        note = (f'<p class="widget-snapshot-note">A snapshot: this widget is shown as its run on this page left it. '
                f"Its controls need Python behind them, so here they do not respond; open <code>{notebook}</code> "
                "in Jupyter to use it.</p>")
        return outputs[:first] + [{"output_type": "display_data", "metadata": {}, "data": {"text/html": note}}] \
            + outputs[first:]

    def translate(self, page: str, processed: dict) -> tuple:
        "A processed notebook in myst-nb's conventions (title, tags, local links, anchors), and its title."
        import nbformat
        data, front = processed["nb"], processed["front"]
        cells = []
        for cell in data["cells"]:
            source = "".join(cell.get("source", "")) if isinstance(cell.get("source"), list) else cell.get("source", "")
            cell["source"] = source
            if cell["cell_type"] == "raw" and source.strip().startswith("---"):
                continue  # the front matter, made a title below
            if cell["cell_type"] == "code":
                opts = directives(source)
                tags = cell.setdefault("metadata", {}).setdefault("tags", [])
                for (key, value), tag in QUARTO_TAGS.items():
                    if opts.get(key) == value and tag not in tags:
                        tags.append(tag)
                if not tags:
                    del cell["metadata"]["tags"]
                cell["source"] = "\n".join(line for line in source.splitlines()
                                           if not DIRECTIVE.match(line)).strip("\n")
                outputs = []
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "stream" and out.get("name") == "stderr":
                        text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
                        text = "".join(l for l in text.splitlines(True) if not STDERR_NOISE.search(l))
                        if not text.strip():
                            continue
                        out["text"] = text
                    md = out.get("data", {}).get("text/markdown")
                    if md is not None:
                        md = "".join(md) if isinstance(md, list) else md
                        if "show_doc(" in source:
                            md = self.showdoc_markdown(page, md)
                        out["data"]["text/markdown"] = self.links(md, page, output=True)
                    outputs.append(out)
                if opts.get("snapshot") != "false":
                    outputs = self.snapshot_note(page, outputs)
                cell["outputs"] = outputs
            elif cell["cell_type"] == "markdown":
                cell["source"] = self.links(source, page)
            cells.append(cell)
        title = front.get("title") or page
        head = f"# {title}\n"
        if front.get("description"):
            head += f"\n```{{container}} description\n{front['description']}\n```\n"
        cells.insert(0, {"cell_type": "markdown", "metadata": {}, "source": self.links(head, page)})
        data["cells"] = cells
        if not _has_widget_state(data):
            data.setdefault("metadata", {}).pop("widgets", None)
        for cell in cells:  # nbformat 4.4: cells need no ids (nbdev's inserted cells have none)
            cell.pop("id", None)
        data["nbformat"], data["nbformat_minor"] = 4, 4
        nb = nbformat.from_dict(data)
        nbformat.validate(nb)
        return nb, title

    def toctree(self, titles: dict[str, str], extras: list[str]) -> str:
        "One hidden toctree per section of nbs/sidebar.yml (its caption the section's), then the reference."
        def tree(caption, names):
            return f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n:caption: {caption}\n\n" + "\n".join(names) + "\n```\n"
        blocks = []
        for caption, files in sidebar(self.nbs):
            names = [page_name(Path(f)) for f in files]
            names = [n for n in names if n in self.pages and n != "index" and n not in extras]
            if names:
                blocks.append(tree(caption or "Chapters", names))
        blocks.append(tree("Reference", ["api"]))
        if extras:
            blocks.append(tree("Build fixtures", extras))
        return "\n".join(blocks)

    def api_page(self, titles: dict[str, str]) -> str:
        "The API reference: every symbol with a `show_doc` on a page of this build, linked to it."
        lines = ["---", "nosearch: true", "---", "",  # a search for a term finds the chapter explaining it, not this list
                 "# API reference", "",
                 "Every exported name that a chapter documents with `show_doc`, in the chapters' order. "
                 "Each entry links to its documentation in the chapter that explains it.", ""]
        for page, anchors in ((p, self.anchors.get(p)) for p in self.pages):
            if not anchors:
                continue
            lines += [f"## [{titles[page]}]({page}.ipynb)", ""]
            lines += [f'- <a class="reference internal" href="{page}.html#{html.escape(a)}"><code>{html.escape(n)}</code></a>'
                      + (f" — {self.links(s, 'api')}" if s else "") for a, (n, s) in anchors.items()]  # s: markdown
            lines.append("")
        return "\n".join(lines)


def inline_html(label: str) -> str:
    "A link's Markdown label as HTML: escaped, with its `code` spans kept."
    return re.sub(r"`([^`]+)`", lambda m: f"<code>{m.group(1)}</code>", html.escape(label, quote=False))


def _has_widget_state(data: dict) -> bool:
    state = data.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return bool(state.get("state"))


# ------------------------------------------------------------------------------------------- source pages
SOURCE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{path} — {project}</title><style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 62rem; padding: 1rem 1.5rem; }}
header p {{ margin: 0.25rem 0 1rem; opacity: 0.8; }}
.source {{ overflow-x: auto; font-size: 0.85rem; }} .source pre {{ margin: 0; line-height: 1.35; }}
.source .linenos {{ opacity: 0.55; user-select: none; }} :target {{ background: #fff3b0; }}
{css}
</style></head><body><header><h1><code>{path}</code></h1><p>{note}</p></header>
<div class="source">{code}</div></body></html>
"""


def source_pages(out: Path, site: "Site", chapter_of: dict[str, str]) -> list[Path]:
    """Every repository file the pages link to, written as a highlighted page with numbered, linkable lines
    (`#L-41`) under out/SOURCE/, so that the "source" links work offline."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import TextLexer, get_lexer_for_filename
    from pygments.util import ClassNotFound

    formatter = HtmlFormatter(linenos="inline", lineanchors="L", anchorlinenos=True, wrapcode=True)
    css = formatter.get_style_defs(".source")
    written = []
    for path in sorted(site.sources):
        text = (ROOT / path).read_text(encoding="utf-8", errors="replace")
        try:
            lexer = get_lexer_for_filename(path, stripnl=False)
        except ClassNotFound:
            lexer = TextLexer(stripnl=False)
        target = out / SOURCE / f"{path}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        up = "../" * path.count("/") + "../"
        origin = re.search(r"File to edit: \.\./(nbs/[\w.-]+\.ipynb)", text[:300])
        page = chapter_of.get(origin.group(1).removeprefix("nbs/")) if origin else None
        if page:
            note = (f'Exported from the chapter <a href="{up}{page}.html">{html.escape(site.titles.get(page, page))}</a>'
                    " by nbdev: the chapter is its source, this file a copy of its code.")
        else:
            note = f'A file of the repository, shown as it is. <a href="{up}index.html">Back to the book</a>.'
        written.append(target)
        target.write_text(SOURCE_PAGE.format(path=html.escape(path), project=html.escape(settings()["title"]),
                                             css=css, note=note, code=highlight(text, lexer, formatter)),
                          encoding="utf-8")
    return written


# ------------------------------------------------------------------------------------------------ npm assets
def vendor(build: Path) -> Path:
    """The pinned npm files, downloaded once from the npm registry and integrity-checked, in `build`/vendor:
    static/vendor/ (served as _static/vendor/) and extra/ (copied to the site's root)."""
    out = build / "vendor" / "static" / "vendor"
    out.mkdir(parents=True, exist_ok=True)
    registry = os.environ.get("npm_config_registry", "https://registry.npmjs.org/").rstrip("/")
    notes = ["Third-party JavaScript served with this site (fetched from the npm registry at build time):", ""]
    for name, (version, integrity, files) in NPM.items():
        notes.append(f"- {name}@{version} ({LICENCES[name]}): {', '.join(f for f in files.values() if f)}")
        stamp = out / f".{name.replace('/', '_')}@{version}"
        wanted = integrity + json.dumps(files, sort_keys=True)
        if stamp.exists() and stamp.read_text() == wanted and all((out / f).exists() for f in files.values() if f):
            continue
        url = f"{registry}/{name}/-/{name.split('/')[-1]}-{version}.tgz"
        print(f"  fetching {name}@{version} from the npm registry")
        blob = urllib.request.urlopen(url, timeout=120).read()
        algo, _, expected = integrity.partition("-")
        actual = base64.b64encode(hashlib.new(algo, blob).digest()).decode()
        if actual != expected:
            raise SystemExit(f"{url}: integrity mismatch ({algo} {actual} != {expected})")
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            for pattern, target in files.items():  # a pattern with an empty target keeps the file's own name
                members = [m for m in tar.getmembers() if m.isfile() and fnmatch.fnmatch(m.name, pattern)]
                if not members:
                    raise SystemExit(f"{name}@{version}: no file {pattern}")
                for member in members:
                    (out / (target or Path(member.name).name)).write_bytes(tar.extractfile(member).read())
        stamp.write_text(wanted)
    (out / "THIRD-PARTY.txt").write_text("\n".join(notes) + "\n")
    # The widget manager's bundles load their Font Awesome files from beside the AMD modules' ids, which
    # require.js resolves against the page: <page folder>/@jupyter-widgets/ and .../html-manager/dist/.
    extra = build / "vendor" / "extra"
    for folder in (extra / "@jupyter-widgets", extra / "@jupyter-widgets" / "html-manager" / "dist"):
        folder.mkdir(parents=True, exist_ok=True)
        for font in out.glob("*"):
            if font.suffix in (".woff2", ".woff", ".ttf"):
                shutil.copy2(font, folder / font.name)
    return out.parent.parent


# ------------------------------------------------------------------------------------------------------ main
def build(only=None, extra=(), build_dir: Path = DEFAULT_BUILD, out: Path | None = None, jobs: int = 2,
          timeout: int = 900, use_cache: bool = True, strict: bool = False, cache_dir: Path | None = None,
          size: str = "full") -> Path:
    t0 = time.time()
    cfg = settings()
    build_dir = Path(build_dir).resolve()
    out = Path(out).resolve() if out else build_dir / "html"
    nbs = ROOT / cfg["nbs_path"]
    files = select(chapters(nbs), only)
    extras = [Path(e).resolve() for e in extra]
    for e in extras:
        if not e.exists():
            raise SystemExit(f"--extra: {e} does not exist")

    print(f"[{time.time() - t0:5.0f} s] building the index of exported names (nbdev's _modidx)")
    os.chdir(ROOT)
    from nbdev.doclinks import _build_modidx
    _build_modidx()

    print(f"[{time.time() - t0:5.0f} s] executing {len(files) + len(extras)} notebooks ({jobs} at a time)")
    cache = Path(cache_dir).resolve() if cache_dir else DEFAULT_BUILD / "cache"
    executed = execute_all(files + extras, cache, jobs, timeout, use_cache, size)

    print(f"[{time.time() - t0:5.0f} s] processing with nbdev's processors and translating for myst-nb")
    pages = {page_name(p): p for p in files + extras}
    if len(pages) != len(files) + len(extras):
        raise SystemExit("two notebooks map to the same page name")
    site = Site(pages)
    processed = {name: nbdev_process(executed[path], path) for name, path in pages.items()}
    src = build_dir / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    notebooks, titles = {}, {}
    for name in pages:  # anchors first: links anywhere may point at any page's show_doc or HTML ids
        for cell in processed[name]["nb"]["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                site.html_ids.setdefault(name, set()).update(re.findall(r'<\w+[^>]*\sid="([^"]+)"', text))
            for o in cell.get("outputs", []):
                md = o.get("data", {}).get("text/markdown")
                src_text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                if md is not None and "show_doc(" in src_text:
                    site.showdoc_markdown(name, "".join(md) if isinstance(md, list) else md)
    import nbformat
    for name in pages:
        notebooks[name], titles[name] = site.translate(name, processed[name])
    extra_names = [page_name(e) for e in extras]
    index = notebooks["index"]
    toc = nbformat.v4.new_markdown_cell(site.toctree(titles, extra_names))
    toc.pop("id", None)
    index.cells.append(toc)
    for name, nb in notebooks.items():
        nbformat.write(nb, src / f"{name}.ipynb")
    (src / "api.md").write_text(site.api_page(titles), encoding="utf-8")

    print(f"[{time.time() - t0:5.0f} s] rendering with Sphinx + myst-nb into {out}")
    static = vendor(DEFAULT_BUILD)
    env = {**os.environ, "MMGEN_DOCS_VENDOR": str(static)}
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(DOCS), "-q", str(src), str(out),
           "-d", str(build_dir / "doctrees")]
    if strict:
        cmd += ["-W", "--keep-going"]
    result = subprocess.run(cmd, env=env)
    if result.returncode:
        raise SystemExit(f"sphinx-build failed ({result.returncode})")
    site.titles = titles
    shown = source_pages(out, site, {p.name: name for name, p in pages.items()})
    print(f"[{time.time() - t0:5.0f} s] {len(shown)} repository files linked from the pages written under {SOURCE}/")
    print(f"[{time.time() - t0:5.0f} s] done: {len(pages)} pages, open {out / 'index.html'}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK",
                        help="build only these notebooks of nbs/ (stems like 04_vae or page names like vae); "
                             "the home page is always built")
    parser.add_argument("--extra", nargs="+", default=[], metavar="PATH",
                        help="notebooks from outside nbs/ to build as well (the test's widget fixture)")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD,
                        help="working folder for the Sphinx sources and the site (default docs/_build)")
    parser.add_argument("--out", type=Path, help="where the site goes (default BUILD_DIR/html)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_BUILD / "cache",
                        help="executed notebooks, keyed on their content and the library's (default docs/_build/cache)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="notebooks executed at once (default 2)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds one cell may run (default 900)")
    parser.add_argument("--no-cache", action="store_true", help="execute every notebook again")
    parser.add_argument("--size", choices=("full", "test"), default="full",
                        help="run the chapters at their full size, as a reader does (default; the first build takes "
                             "long, later ones reuse the cache), or at the small sizes the tests use (IN_TEST=1)")
    parser.add_argument("--strict", action="store_true", help="fail on any Sphinx warning")
    args = parser.parse_args(argv)
    build(args.only, args.extra, args.build_dir, args.out, args.jobs, args.timeout, not args.no_cache, args.strict,
          args.cache_dir, args.size)


if __name__ == "__main__":
    main()
