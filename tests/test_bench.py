"""`mmgen bench`: the references match ours, the measurements and the report hold together, the CLI runs end to end."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from mmgen_nbdev import bench
from mmgen_nbdev.bench import (BENCH_MODELS, bench_data, bench_markdown, build, fit_inputs, notebook_times, run_bench,
                               run_task, throughput_table)

ROOT = Path(__file__).resolve().parent.parent
needs_tensorflow = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                      reason="the keras.io-style references are TensorFlow code")


@needs_tensorflow
@pytest.mark.parametrize("model", BENCH_MODELS)
def test_both_implementations_train_the_same_networks(model):
    data = bench_data(model, n=64)
    for implementation in ("ours", "reference"):
        net, evaluator = build(model, implementation)
        watched = (evaluator.encoders["image"] if model == "multimodal_vae" else evaluator).trainable_weights[0]
        before = ops.convert_to_numpy(watched).copy()
        inputs = fit_inputs(model, data["train"])
        x, y = inputs if isinstance(inputs, tuple) else (inputs, None)
        history = net.fit(x, y, epochs=1, batch_size=32, verbose=0).history
        assert all(np.isfinite(v[-1]) for v in history.values())
        # the evaluator holds the very networks the implementation trained
        assert not np.allclose(before, ops.convert_to_numpy(watched))


@needs_tensorflow
@pytest.mark.parametrize("model", ["vae", "multimodal_vae"])
def test_reference_losses_are_our_negative_elbo_at_the_same_weights(model):
    # the reference and ours hold the same networks; their losses must agree up to Monte Carlo noise
    reference, ours = build(model, "reference")
    data = {k: v for k, v in bench_data(model, n=256)["train"].items() if k != "label"}
    batch = data if model == "multimodal_vae" else data["image"]
    theirs = np.mean([float(reference.total_loss(batch)) for _ in range(20)])
    mine = np.mean([float(ours.compute_loss(batch, y_pred=ours(batch))) for _ in range(20)])
    assert theirs == pytest.approx(mine, rel=0.01)


@needs_tensorflow
def test_run_task_reports_throughput_and_memory():
    result = run_task({"kind": "throughput", "model": "autoencoder", "implementation": "reference", "epochs": 2,
                       "n": 128})
    assert result["backend"] == "tensorflow" and result["samples"] == 128
    assert len(result["samples_per_second"]) == 2 and min(result["samples_per_second"]) > 0
    assert result["peak_resident_mb"] >= result["resident_mb_before"] > 0
    with pytest.raises(ValueError, match="`task\\['kind'\\]` must be one of"):
        run_task({"kind": "speed", "model": "vae", "implementation": "ours"})
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        run_task({"kind": "throughput", "model": "vae", "implementation": "ours", "epochs": 0})


def test_throughput_table_ratios_and_spread():
    rows = [{"model": "vae", "implementation": i, "backend": b, "samples_per_second": v,
             "peak_resident_mb": 900.0, "resident_mb_before": 700.0}
            for i, b, v in [("reference", "tensorflow", [100, 110, 90]), ("ours", "tensorflow", [120, 130, 125]),
                            ("ours", "jax", [50, 55, 45])]]
    rows.append({"model": "vae", "implementation": "ours", "backend": "torch", "error": "boom"})
    table = throughput_table(rows, ["tensorflow", "jax", "torch"])["vae"]
    assert table["reference/tensorflow"]["median"] == 100 and table["reference/tensorflow"]["min"] == 90
    assert table["ours/tensorflow"]["ratio_to_reference"] == pytest.approx(1.25)
    assert table["ours/jax"]["ratio_to_reference"] == pytest.approx(0.5)
    assert "ours/torch" not in table and table["ours/jax"]["training_mb"] == 200


def test_markdown_report_shows_every_table_and_the_errors():
    rows = [{"model": "gan", "implementation": i, "backend": "tensorflow", "samples_per_second": [v],
             "peak_resident_mb": 900.0, "resident_mb_before": 700.0} for i, v in (("reference", 100), ("ours", 150))]
    error = {"kind": "throughput", "model": "gan", "implementation": "ours", "backend": "jax",
             "error": "Traceback …\nRuntimeError: no device"}
    report = {"date": "2026-11-22", "quick": False, "rounds": 2, "batch_size": 64,
              "machine": {"cpu": "Test CPU", "cores": 2, "memory_gib": 8.0, "python": "3.11", "keras": "3",
                          "backends": {"tensorflow": "2.21"}, "load_average": [0.5, 0.5, 0.5]},
              "throughput_table": throughput_table(rows, ["tensorflow"]),
              "time_to_quality": [
                  {"model": "gan", "implementation": "ours", "seconds": 30.0, "epochs": 10, "history": [1] * 10},
                  {"model": "gan", "implementation": "reference", "seconds": None, "epochs": None,
                   "history": [1] * 60}],
              "notebooks": {"passed": True, "seconds": 412.0, "chapters": {"04_vae.ipynb": 80}},
              "errors": [error]}
    text = bench_markdown(report)
    assert "| gan | 100 [100–100] | 150 [150–150] | 1.50 |" in text
    assert "| gan | frechet_distance | ≤ 40.0 | 30.0 (10) | not reached in 60 epochs | – |" in text
    assert "| 04_vae.ipynb | 80 |" in text and "412 s in total" in text
    assert "RuntimeError: no device" in text and "Test CPU, 2 cores" in text


@needs_tensorflow
def test_run_bench_in_process_writes_json_and_markdown(tmp_path):
    report = run_bench(tmp_path, models=["autoencoder"], quick=True, notebooks=False, isolate=False, log=lambda m: None)
    assert report["errors"] == []
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["throughput_table"]["autoencoder"]["ours/tensorflow"]["ratio_to_reference"] > 0
    assert "| autoencoder |" in (tmp_path / "bench.md").read_text()


@pytest.mark.parametrize("kwargs, message", [
    ({"models": ["diffusion"]}, "`models` must be a non-empty selection"),
    ({"models": []}, "`models` must be a non-empty selection"),
    ({"backends": ["mxnet"]}, "`backends` must be a non-empty selection"),
    ({"rounds": 0}, "`rounds` must be a positive integer"),
])
def test_bad_selections_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_bench(tmp_path / "never", **kwargs)
    assert not (tmp_path / "never").exists()


def test_notebook_times_reads_each_chapter(tmp_path):
    times = notebook_times(path=ROOT / "nbs" / "00_backend.ipynb", n_workers=1)
    assert times["passed"] and list(times["chapters"]) == ["00_backend.ipynb"]
    assert times["seconds"] >= times["chapters"]["00_backend.ipynb"]


@needs_tensorflow
def test_cli_bench_runs_end_to_end_in_fresh_processes(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([shutil.which("mmgen"), "bench", "--out", str(tmp_path), "--quick",
                           "--models", "autoencoder", "--backends", "tensorflow", "--no-notebooks"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {(r["implementation"], r["backend"]) for r in report["throughput"]} == {("reference", "tensorflow"),
                                                                                    ("ours", "tensorflow")}
    assert "| autoencoder |" in done.stdout
    assert all(r["peak_resident_mb"] > r["resident_mb_before"] > 0 for r in report["throughput"])  # training took some
