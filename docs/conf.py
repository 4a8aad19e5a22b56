"""Sphinx configuration of the offline docs site. Not run directly: `python docs/build.py` (or `make docs`)
prepares the pages from the notebooks in docs/_build/src and runs Sphinx with this folder as its config dir."""
import configparser
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_ini = configparser.ConfigParser(delimiters=["="])
_ini.read(ROOT / "settings.ini", encoding="utf-8")
cfg = _ini["DEFAULT"]

project = cfg["title"]
author = cfg["author"]
copyright = cfg["copyright"]
release = version = cfg["version"]

extensions = ["myst_nb", "sphinx-mathjax-offline"]  # MathJax 3 served from _static/mathjax, no CDN
exclude_patterns = ["**.ipynb_checkpoints"]

# The notebooks arrive executed (with widget state) from docs/build.py: myst-nb only renders them.
nb_execution_mode = "off"
nb_output_stderr = "show"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
# The ipywidgets HTML manager and require.js, served locally (docs/build.py fetches the pinned npm packages).
# Widget modules that the bundle lacks would be looked up under _static/vendor/npm/ (a local 404), never a CDN.
nb_ipywidgets_js = {
    "vendor/require.js": {},
    "vendor/embed-amd.js": {"data-jupyter-widgets-cdn": "_static/vendor/npm/"},
}
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

html_theme = "furo"
html_title = cfg["title"]
_vendor = os.environ.get("MMGEN_DOCS_VENDOR")  # set by docs/build.py: the npm files it fetched
html_static_path = ["_static"] + ([f"{_vendor}/static"] if _vendor else [])
html_extra_path = [f"{_vendor}/extra"] if _vendor else []  # the widget manager's icon fonts, where it looks
html_css_files = ["mmgen.css"]
html_search_scorer = str(Path(__file__).resolve().parent / "search_scorer.js")  # chapters named by the query first
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {"navigation_with_keys": True, "top_of_page_buttons": []}


def setup(app):
    # Before MathJax and the widget manager: html-manager 1.x calls MathJax 2's MathJax.Hub.Queue.
    app.add_js_file("mathjax-widgets-shim.js", priority=100)
