"""Project invariants: the nbdev 2 layout and pins, setup.py's requirements and entry points, the README in sync
with its notebook, and the rule that only the backend module imports TensorFlow, JAX or PyTorch, lazily."""
import ast
import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = {"tensorflow", "jax", "jaxlib", "torch"}


def settings():
    parser = configparser.ConfigParser(delimiters=["="])
    parser.read(ROOT / "settings.ini")
    return parser["DEFAULT"]


def test_top_level_layout():
    for name in ("settings.ini", "setup.py", "nbs", "mmgen_nbdev", "tests", "README.md", "LICENSE", "MANIFEST.in",
                 ".gitignore", ".ci/run"):
        assert (ROOT / name).exists(), name
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()


def test_nbdev2_settings():
    cfg = settings()
    assert cfg["update_pyproject"] == "False"
    assert cfg["tst_flags"].split() == ["notest", "slow"]
    assert cfg["readme_nb"] == "index.ipynb"
    dev = cfg["dev_requirements"].split()
    assert "nbdev==2.4.14" in dev
    assert any(r.startswith("fastcore") and "<2" in r for r in dev)
    assert any(r.startswith("execnb") and "<0.2" in r for r in dev)
    assert any(r.startswith("ghapi") and "<2" in r for r in dev)
    assert not (ROOT / "pyproject.toml").exists(), "nbdev 2.4 writes a stub pyproject.toml unless told not to"


def captured_setup_kwargs():
    "The keyword arguments setup.py passes to setuptools.setup, without building anything."
    code = ("import setuptools, json, sys; captured = {}\n"
            "setuptools.setup = lambda **kw: captured.update(kw)\n"
            "exec(open('setup.py').read())\n"
            "json.dump({k: v for k, v in captured.items() if k != 'packages'}, sys.stdout)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    import json
    return json.loads(out)


def test_setup_requirements_extras_and_entry_points():
    kw = captured_setup_kwargs()
    reqs = kw["install_requires"]
    assert "keras>=3.15,<4" in reqs
    cpu_tf = [r for r in reqs if r.startswith("tensorflow-cpu")]
    assert cpu_tf and 'sys_platform == "linux"' in cpu_tf[0], "Linux x86-64 gets tensorflow-cpu, no CUDA build"
    assert not any(r.startswith("tensorflow[and-cuda]") for r in reqs)
    assert set(kw["extras_require"]) >= {"dev", "docs", "jax", "torch", "gpu", "jax-gpu"}
    assert set(kw["extras_require"]["docs"]) <= set(kw["extras_require"]["dev"]), "the dev extra builds the docs"
    assert any(r.startswith("myst-nb") for r in kw["extras_require"]["docs"])
    assert any("and-cuda" in r for r in kw["extras_require"]["gpu"])
    assert kw["entry_points"]["console_scripts"] == ["mmgen=mmgen_nbdev.cli:main"]
    assert kw["entry_points"]["nbdev"] == ["mmgen_nbdev=mmgen_nbdev._modidx:d"]
    assert "pkg_resources" not in (ROOT / "setup.py").read_text()


def imports_of(tree):
    "Yield (module name, whether the import sits inside a function) for every import in `tree`."
    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name.split(".")[0], in_function
            elif isinstance(child, ast.ImportFrom) and child.module:
                yield child.module.split(".")[0], in_function
            yield from visit(child, inside)
    yield from visit(tree, False)


def test_only_the_backend_module_imports_frameworks_and_only_lazily():
    for path in sorted((ROOT / "mmgen_nbdev").glob("*.py")):
        for module, in_function in imports_of(ast.parse(path.read_text())):
            if module in FRAMEWORKS:
                assert path.name == "backend.py", f"{path.name} imports {module}"
                assert in_function, f"backend.py imports {module} at module level"


def test_importing_the_package_loads_no_framework_beyond_what_keras_loads():
    # Keras itself may import JAX when it is installed, whatever the backend; the package must add nothing.
    code = ("import sys, keras\n"
            "def frameworks(): return sorted(m for m in ('tensorflow', 'jax', 'torch') if m in sys.modules)\n"
            "before = frameworks()\n"
            "import mmgen_nbdev.backend, mmgen_nbdev.data, mmgen_nbdev.cli\n"
            "print(before == frameworks(), 'torch' in sys.modules)")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["True", "False"]


def test_readme_is_rendered_from_the_index_notebook():
    result = subprocess.run([sys.executable, "tools/readme.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("pip install")]
    assert commands[:2] == ['pip install -e . && mmgen demo --out mmgen-out',
                            'pip install -e ".[dev]" && bash tools/test.sh']


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]" && bash tools/test.sh' in ci
