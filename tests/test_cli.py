"""The `mmgen` console script, run as a user runs it: in a subprocess, through the installed entry point."""
import json
import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from mmgen_nbdev.data import decode_dtmf

MMGEN = shutil.which("mmgen")
pytestmark = pytest.mark.skipif(MMGEN is None, reason="the package is not installed (pip install -e .)")


def run(*args):
    return subprocess.run([MMGEN, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def previews(tmp_path_factory):
    out = tmp_path_factory.mktemp("previews") / "nested" / "out"
    result = run("datasets", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, result


def test_datasets_writes_a_page_that_shows_everything(previews):
    out, result = previews
    page = (out / "index.html").read_text(encoding="utf-8")
    files = {p.name for p in out.iterdir()}
    assert {"digits.png", "multidigits.png", "shapes_level1.png", "shapes_level2.png", "shapes_level3.png",
            "datasets.json", "index.html"} <= files
    referenced = set(re.findall(r'(?:src|href)="([^"]+)"', page))
    assert referenced == files - {"index.html", "datasets.json"}, "every preview is on the page, and nothing else"
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page), "the page loads nothing from the network"
    assert "open" in result.stdout and "index.html" in result.stdout


def test_datasets_pngs_are_images(previews):
    out, _ = previews
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5_000


def test_datasets_wav_files_hold_their_digit(previews):
    out, _ = previews
    for digit in range(10):
        with wave.open(str(out / f"tone_{digit}.wav")) as f:
            assert f.getframerate() == 8000
            samples = np.frombuffer(f.readframes(f.getnframes()), "<i2") / 32767
        assert decode_dtmf(samples)[0] == digit


def test_datasets_summary_states_shapes_and_ranges(previews):
    out, _ = previews
    summary = json.loads((out / "datasets.json").read_text())
    assert summary["multidigits"]["image"] == {"shape": [1437, 16, 16, 1], "dtype": "float32", "min": 0.0,
                                               "max": 1.0}
    assert summary["shapes_level3"]["factors.position"]["max"] == 3.0


def test_missing_out_is_a_usage_error():
    result = run("datasets")
    assert result.returncode == 2 and "--out" in result.stderr


def test_bad_seed_and_unknown_command_are_usage_errors():
    result = run("datasets", "--out", "x", "--seed", "minus")
    assert result.returncode == 2 and "--seed" in result.stderr and "non-negative integer" in result.stderr
    result = run("train-everything")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_info_reports_the_backend():
    result = run("info")
    assert result.returncode == 0 and "Keras" in result.stdout and "cpu:0" in result.stdout


def test_demo_quick_writes_the_report_and_models(tmp_path):
    import keras
    import mmgen_nbdev.fusion  # noqa: F401  (registers the classes that load_model needs)
    import mmgen_nbdev.gan  # noqa: F401
    import mmgen_nbdev.vae  # noqa: F401
    result = run("demo", "--out", str(tmp_path), "--quick")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "vae epoch 3/3" in result.stdout and "gan epoch 2/2" in result.stdout
    assert "multimodal vae epoch 2/2" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["vae"]["epochs"] == 3 and np.isfinite(metrics["vae"]["test_nll_iwae64_nats"])
    assert 0 <= metrics["gan"]["precision"] <= 1 and 0 <= metrics["gan"]["classifier_reads_asked_digit"] <= 1
    multimodal = metrics["multimodal_vae"]
    assert multimodal["epochs"] == 2 and all(0 <= v <= 1 for k, v in multimodal.items() if k != "epochs")
    page = (tmp_path / "index.html").read_text()
    for name in ("vae_reconstructions.png", "vae_samples.png", "vae_latent.png", "gan_samples.png", "multimodal.png", "losses.png"):
        assert f'"{name}"' in page and (tmp_path / name).stat().st_size > 3000
    vae = keras.saving.load_model(tmp_path / "vae.keras")
    gan = keras.saving.load_model(tmp_path / "gan.keras")
    assert vae.sample(2).shape == (2, 16, 16, 1) and gan.generate(2, labels=[3, 4]).shape == (2, 16, 16, 1)
    multimodal_vae = keras.saving.load_model(tmp_path / "multimodal.keras")
    assert multimodal_vae.generate(n=2, target="text").shape == (2, 6)
