"""The `mmgen` console script, run as a user runs it: in a subprocess, through the installed entry point."""
import json
import os
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from mmgen_nbdev.data import decode_dtmf

MMGEN = shutil.which("mmgen")
pytestmark = pytest.mark.skipif(MMGEN is None, reason="the package is not installed (pip install -e .)")


def run(*args, env=None):
    return subprocess.run([MMGEN, *args], capture_output=True, text=True, timeout=600, env=env)


def usage_error(result, argument):
    "A usage error: exit status 2, nothing on stdout, and one line on stderr naming the argument."
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and argument in lines[0] and result.stdout == "", result.stderr[-2000:]
    return lines[0]


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


@pytest.mark.parametrize("args, argument", [
    (("datasets", "--seed", "minus"), "--seed"),
    (("demo", "--seed", "99999999999"), "--seed"),
    (("demo", "--seed", "-1"), "--seed"),
    (("bench", "--rounds", "0"), "--rounds"),
    (("bench", "--rounds", "1.5"), "--rounds"),
    (("bench", "--backends", "nosuch"), "--backends"),
    (("bench", "--backends", ","), "--backends"),
    (("bench", "--models", "diffusion"), "--models"),
    (("bench", "--models", "vae,vae"), "--models"),
    (("demo", "--quick", "--bogus"), "--bogus"),
    (("demo", "--out", "x", "--dataset", "cifar10"), "--dataset"),
])
def test_every_bad_value_is_a_one_line_usage_error(tmp_path, args, argument):
    command, *rest = args
    line = usage_error(run(command, "--out", str(tmp_path / "out"), *rest), argument)
    assert line.startswith("mmgen")


def test_unknown_command_and_missing_command_are_usage_errors():
    assert "train-everything" in usage_error(run("train-everything"), "COMMAND")
    usage_error(run(), "COMMAND")


@pytest.mark.parametrize("command", ["demo", "datasets", "bench"])
def test_an_out_that_cannot_be_written_is_refused_before_anything_runs(tmp_path, command):
    (tmp_path / "file").write_text("")
    for out in ("/proc/x", str(tmp_path / "file"), str(tmp_path / "file" / "below")):
        usage_error(run(command, "--out", out), "--out")


def test_an_unknown_keras_backend_is_a_usage_error_naming_it():
    line = usage_error(run("info", env={**os.environ, "KERAS_BACKEND": "nosuch"}), "KERAS_BACKEND")
    assert "'nosuch'" in line and all(f"'{b}'" in line for b in ("tensorflow", "jax", "torch"))
    modules, result = imported_by("info", env={**os.environ, "KERAS_BACKEND": "nosuch"})
    assert result.returncode == 2 and not modules & {"keras", "tensorflow", "jax", "torch"}, "found before Keras"


def imported_by(*args, env=None):
    "The modules the console script imports for `args` (from Python's -X importtime report), and its result."
    result = run(*args, env={**(env or os.environ), "PYTHONPROFILEIMPORTTIME": "1"})
    modules = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return {m.split(".")[0] for m in modules}, result


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("demo", "--help"), ("demo", "--seed", "x"),
                                  ("bench", "--out", "/proc/x")])
def test_help_version_and_usage_errors_answer_before_keras(args):
    modules, result = imported_by(*args)
    assert result.returncode in (0, 2) and "Traceback" not in result.stderr
    assert "mmgen_nbdev" in modules and not modules & {"keras", "tensorflow", "jax", "torch"}, sorted(modules)


def test_version():
    from mmgen_nbdev import __version__
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"mmgen {__version__}"


TENSORFLOW_BANNERS = ("oneDNN", "cpu_feature_guard", "absl::InitializeLog", "This TensorFlow binary", "E0000", "I0000",
                      "retracing")


def test_tensorflow_native_logs_are_quiet_unless_verbose():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"KERAS_BACKEND": "tensorflow"}
    result = run("--help", env=env)
    assert result.returncode == 0 and result.stderr == "" and "usage: mmgen" in result.stdout
    result = run("info", env=env)
    assert result.returncode == 0 and "tensorflow" in result.stdout
    assert not [b for b in TENSORFLOW_BANNERS if b in result.stderr + result.stdout], result.stderr


def test_info_reports_the_backend():
    result = run("info")
    assert result.returncode == 0 and "Keras" in result.stdout and "cpu:0" in result.stdout


def test_demo_quick_writes_the_report_and_models(tmp_path):
    import keras
    import mmgen_nbdev  # noqa: F401  (registers the classes that load_model needs)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = run("demo", "--out", str(tmp_path), "--quick", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [b for b in TENSORFLOW_BANNERS if b in result.stderr], result.stderr[-3000:]
    seconds = json.loads((tmp_path / "metrics.json").read_text())["seconds"]
    assert f"index.html in {seconds} s" in result.stdout, "the console's total time is the page's"
    assert f"Total time: {seconds} s" in (tmp_path / "index.html").read_text()
    assert "vae epoch 3/3" in result.stdout and "gan epoch 2/2" in result.stdout
    assert "multimodal vae epoch 2/2" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["vae"]["epochs"] == 3 and np.isfinite(metrics["vae"]["test_nll_iwae64_nats"])
    assert 0 <= metrics["gan"]["precision"] <= 1 and 0 <= metrics["gan"]["classifier_reads_asked_digit"] <= 1
    multimodal = metrics["multimodal_vae"]
    assert multimodal["epochs"] == 2 and all(0 <= v <= 1 for k, v in multimodal.items() if k != "epochs")
    assert 0 < metrics["references"]["gan"]["frechet_distance_samples"] < metrics["gan"]["frechet_distance_samples"]
    page = (tmp_path / "index.html").read_text()
    for name in ("vae_reconstructions.png", "vae_samples.png", "vae_latent.png", "gan_samples.png", "multimodal.png", "losses.png"):
        assert f'"{name}"' in page and (tmp_path / name).stat().st_size > 3000
    for model in ("vae", "gan", "multimodal_vae"):  # every measure has a reference and a line that explains it
        assert set(metrics["references"][model]) == set(metrics[model]) - {"epochs"}
    assert page.count("is better") == sum(len(metrics[m]) - 1 for m in ("vae", "gan", "multimodal_vae"))
    players = re.findall(r'<audio controls[^>]*src="([^"]+\.wav)"', page)
    assert len(players) == 20 and all((tmp_path / name).exists() for name in players)
    for digit in (0, 9):
        with wave.open(str(tmp_path / f"tone_test_{digit}.wav")) as f:
            samples = np.frombuffer(f.readframes(f.getnframes()), "<i2") / 32767
        assert decode_dtmf(samples)[0] == digit
    vae = keras.saving.load_model(tmp_path / "vae.keras")
    gan = keras.saving.load_model(tmp_path / "gan.keras")
    assert vae.generate(2).shape == (2, 16, 16, 1) and gan.generate(2, labels=[3, 4]).shape == (2, 16, 16, 1)
    multimodal_vae = keras.saving.load_model(tmp_path / "multimodal.keras")
    assert multimodal_vae.generate(n=2, target="text").shape == (2, 6)


def test_demo_on_mnist_reads_keras_cache_and_judges_with_a_classifier_of_mnist(tmp_path):
    import keras
    import mmgen_nbdev  # noqa: F401  (registers the classes that load_model needs)
    from mmgen_nbdev.data import load_digits
    cache = tmp_path / "keras" / "datasets"  # an mnist.npz in Keras's format, written here from the embedded digits
    cache.mkdir(parents=True)
    arrays = {}
    for split in ("train", "test"):
        d = load_digits(split, image_size=28)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = np.round(d["image"][..., 0] * 255).astype(np.uint8), d["label"]
    np.savez(cache / "mnist.npz", **arrays)
    out = tmp_path / "out"
    result = run("demo", "--out", str(out), "--quick", "--dataset", "mnist",
                 env={**os.environ, "KERAS_HOME": str(tmp_path / "keras")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1437 mnist images (28×28)" in result.stdout and "multimodal" not in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "mnist" and "multimodal_vae" not in metrics
    assert metrics["gan"]["judge_accuracy"] > 2 * metrics["references"]["gan"]["judge_accuracy"]  # well above chance
    for model in ("vae", "gan"):
        assert set(metrics["references"][model]) == set(metrics[model]) - {"epochs"}
    page = (out / "index.html").read_text()
    assert "MNIST (28×28) from Keras&#x27;s cache" in page or "MNIST (28×28) from Keras's cache" in page
    assert not (out / "multimodal.png").exists() and "multimodal.keras" not in page
    vae, gan = keras.saving.load_model(out / "vae.keras"), keras.saving.load_model(out / "gan.keras")
    assert vae.generate(2).shape == (2, 28, 28, 1) and gan.generate(2, labels=[3, 4]).shape == (2, 28, 28, 1)


def tiny_models():
    import keras
    from mmgen_nbdev.ae import Autoencoder
    from mmgen_nbdev.modalities import image_decoder, image_encoder
    from mmgen_nbdev.vae import VAE
    x = np.random.default_rng(0).uniform(size=(32, 8, 8, 1)).astype("float32")
    ae = Autoencoder(image_encoder((8, 8, 1), 2, kind="dense", hidden=16),
                     image_decoder(2, (8, 8, 1), kind="dense", hidden=16), seed=0)
    vae = VAE(image_encoder((8, 8, 1), 2, kind="dense", hidden=16, gaussian=True),
              image_decoder(2, (8, 8, 1), kind="dense", hidden=16), seed=0)
    for model in (ae, vae):
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.fit(x, epochs=1, batch_size=16, verbose=0)
    return {"Autoencoder": ae, "VAE": vae}, x


@pytest.mark.backends
def test_importing_the_package_registers_every_saveable_class(tmp_path):
    models, x = tiny_models()
    for name, model in models.items():
        model.save(tmp_path / f"{name}.keras")
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, keras, numpy as np, mmgen_nbdev\n"
            "for name in sys.argv[1:]:\n"
            "    model = keras.saving.load_model(f'{name}.keras')\n"
            "    print(type(model).__name__, model.predict(np.load('x.npy'), verbose=0).shape)\n")
    result = subprocess.run([sys.executable, "-c", code, *models], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:2] == ["Autoencoder (32, 8, 8, 1)", "VAE (32, 8, 8, 1)"]


def test_every_module_with_saveable_classes_is_imported_by_the_package():
    import mmgen_nbdev
    root = Path(mmgen_nbdev.__file__).parent
    registering = {p.stem for p in root.glob("*.py")
                   if p.stem != "__init__" and "register_keras_serializable" in p.read_text()}
    assert registering <= set(mmgen_nbdev.SAVEABLE_MODULES), registering - set(mmgen_nbdev.SAVEABLE_MODULES)
