"""Shared pytest configuration: a non-interactive matplotlib, the `backends` marker for the tests that are run
again under each Keras backend (tools/test.sh runs `pytest -m backends` with KERAS_BACKEND=jax and =torch), and the
fixtures that several test files share."""
import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    config.addinivalue_line("markers", "backends: backend-sensitive; run on tensorflow, jax and torch")
    config.addinivalue_line("markers", "docs: the docs site (Quarto files, offline build, headless Chromium)")
    config.addinivalue_line("markers", "lab: the live dashboard run in JupyterLab in headless Chromium")
    # Keras 3.15's tensor-to-NumPy conversion trips NumPy 2's copy-keyword deprecation on every backend: not ours.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def digits():
    "512 training and 128 test digits at 8×8, `(train, test)`: enough to train a small model for a few steps."
    from mmgen_nbdev.data import load_digits
    return load_digits("train", n=512), load_digits("test", n=128)
