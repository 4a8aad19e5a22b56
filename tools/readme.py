"""Write README.md from nbs/index.ipynb without Quarto (which `nbdev_readme` needs and which cannot be installed
offline). The notebook is executed first, so the outputs shown are those of the current library.

`python tools/readme.py` executes nbs/index.ipynb in place (outputs saved, notebook cleaned) and writes README.md;
`python tools/readme.py --check` executes it in memory and fails if README.md differs from what it renders."""
import argparse
import difflib
import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK, README = ROOT / "nbs" / "index.ipynb", ROOT / "README.md"
HIDDEN = re.compile(r"^#\|\s*(hide|export|exporti|exports|eval:\s*false|include:\s*false)\b", re.M)


def front_matter(cell) -> dict:
    "The YAML front matter of a raw cell, or {}."
    match = re.match(r"^---\n(.*?)\n---", cell.source.strip(), re.S)
    return yaml.safe_load(match.group(1)) if match else {}


def link_notebooks(markdown: str) -> str:
    "Point relative links to chapters (`00_x.ipynb`) at `nbs/`, where they live relative to README.md."
    return re.sub(r"\]\((?!https?:|/|#)([^)\s]+\.ipynb)\)", r"](nbs/\1)", markdown)


def outputs_markdown(cell) -> str:
    "The text outputs of a code cell as a fenced block (images and HTML are left to the docs site)."
    texts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.name == "stdout":  # stderr holds library log noise
            texts.append(out.text)
        elif "data" in out and "text/plain" in out.data and "image/png" not in out.data:
            texts.append(out.data["text/plain"] + "\n")
    text = "".join(texts).rstrip("\n")
    return f"```\n{text}\n```" if text else ""


def execute(notebook: Path = NOTEBOOK):
    "The notebook, executed top to bottom in a fresh kernel from the repository root."
    from nbclient import NotebookClient
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def render(nb) -> str:
    "README.md's text, rendered from the executed notebook `nb`."
    parts = ["<!-- Generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file. -->"]
    for cell in nb.cells:
        if cell.cell_type == "raw":
            meta = front_matter(cell)
            if meta.get("title"):
                parts.append(f"# {meta['title']}")
            if meta.get("description"):
                parts.append(f"> {meta['description']}")
        elif cell.cell_type == "markdown":
            parts.append(link_notebooks(cell.source.strip()))
        elif cell.cell_type == "code" and cell.source.strip() and not HIDDEN.search(cell.source):
            parts.append(f"```python\n{cell.source.strip()}\n```")
            parts.append(outputs_markdown(cell))
    return "\n\n".join(p for p in parts if p) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if README.md differs from the notebook")
    args = parser.parse_args(argv)
    nb = execute()
    text = render(nb)
    if not args.check:
        from nbdev.clean import clean_nb
        for cell in nb.cells:  # TensorFlow's start-up log lines are noise, not output worth saving
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
        clean_nb(nb)
        nbformat.write(nb, NOTEBOOK)
        README.write_text(text, encoding="utf-8")
        return 0
    current = README.read_text(encoding="utf-8") if README.exists() else ""
    if current == text:
        print("README.md is in sync with nbs/index.ipynb")
        return 0
    sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                               "README.md", "rendered from nbs/index.ipynb", n=1))
    print("\nREADME.md is out of date: run `python tools/readme.py` and commit the result.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
