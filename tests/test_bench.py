"""`mmgen bench`: the references match ours, the measurements and the report hold together, the CLI runs end to end."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import ast

from mmgen_nbdev import bench
from mmgen_nbdev.bench.measure import (bootstrap_interval, measure_dashboard_overhead, measure_throughput,
                                       notebook_times, overhead, run_in_process, run_task, speed_ratio)
from mmgen_nbdev.bench.references import BENCH_MODELS, bench_data, build, fit_inputs
from mmgen_nbdev.bench.report import bench_markdown, run_bench
from mmgen_nbdev.bench.turns import EpochGate, ProcessTurns, run_script, take_turns

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
        x, y = fit_inputs(model, data["train"])
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


def test_epoch_gate_holds_each_epoch_until_its_turn():
    permits, reports = [], []
    gate = EpochGate(lambda: permits.append(time.sleep(0.05)), reports.append)
    x = np.zeros((8, 2), "float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :1], epochs=3, batch_size=4, verbose=0, callbacks=[gate])
    assert len(permits) == len(reports) == 3
    assert all(r["seconds"] > 0 and r["cpu_seconds"] >= 0 and r["resident_mb"] > 0 for r in reports)
    # the waits for a turn are counted apart, and the training clock leaves them out
    assert gate.waited >= 0.15 and time.perf_counter() - gate.training_clock() == pytest.approx(gate.waited, abs=0.01)


@pytest.mark.backends
def test_take_turns_interleaves_rounds_and_reports_memory():
    results = take_turns({name: ({"model": "vae", "implementation": "ours", "n": 64}, keras.backend.backend())
                          for name in ("A", "B")}, rounds=2, isolate=False, log=lambda m: None)
    for r in results.values():
        assert len(r["seconds"]) == len(r["cpu_seconds"]) == 2 and min(r["seconds"]) > 0
        assert r["samples"] == 64 and r["peak_resident_mb"] >= r["resident_mb_before"] > 0
    with pytest.raises(ValueError, match="`rounds` must be a positive integer"):
        take_turns({}, rounds=0)


def test_a_failing_configuration_is_reported_and_the_others_go_on():
    results = take_turns({"good": ({"model": "vae", "implementation": "ours", "n": 64}, keras.backend.backend()),
                          "bad": ({"model": "diffusion", "implementation": "ours", "n": 64}, keras.backend.backend())},
                         rounds=2, isolate=False, log=lambda m: None)
    assert "`model` must be one of" in results["bad"]["error"]
    assert "error" not in results["good"] and len(results["good"]["seconds"]) == 2


def test_a_dead_worker_process_is_reported_with_its_error():
    results = take_turns({"bad": ({"model": "diffusion", "implementation": "ours", "n": 64}, keras.backend.backend())},
                         rounds=1, log=lambda m: None)
    assert "the worker stopped" in results["bad"]["error"] and "`model` must be one of" in results["bad"]["error"]


def test_one_fresh_process_runner_answers_reports_errors_and_timeouts():
    backend = keras.backend.backend()
    assert run_script("import json, sys; print('noise'); print(json.dumps(json.loads(sys.argv[1])))", {"a": 1},
                      backend) == {"a": 1}
    threads = "import json, os; print(json.dumps({'threads': os.environ['OMP_NUM_THREADS']}))"
    assert run_script(threads, None, backend, env={"OMP_NUM_THREADS": "1"}) == {"threads": "1"}
    failed = run_script("import sys; sys.exit('broken on purpose')", None, backend)
    assert "the worker stopped (exit code 1)" in failed["error"] and "broken on purpose" in failed["error"]
    assert "timed out after 0.5 s" in run_script("import time; time.sleep(30)", None, backend, timeout=0.5)["error"]
    assert ProcessTurns.__mro__[1].__name__ == "FreshProcess"  # the turn-taking worker is that same runner
    result = run_in_process({"kind": "speed", "model": "vae"}, backend)
    assert result["backend"] == backend and "`task['kind']` must be one of" in result["error"]


def _imported_modules(path: Path) -> set:
    "The absolute names of the modules `path` (a module of mmgen_nbdev) imports, at any depth of its code."
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to the package mmgen_nbdev
                base = "mmgen_nbdev" + ("." + base if base else "")
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def test_the_core_library_never_imports_the_benchmark_package():
    core = [p for p in (ROOT / "mmgen_nbdev").glob("*.py") if p.stem not in ("cli", "_modidx")]
    assert len(core) >= 10 and not (ROOT / "mmgen_nbdev" / "bench.py").exists()
    importers = {p.name: sorted(n for n in _imported_modules(p) if n == "mmgen_nbdev.bench"
                                or n.startswith("mmgen_nbdev.bench.")) for p in core}
    assert {name: found for name, found in importers.items() if found} == {}
    # the check sees the imports it is looking for
    assert "mmgen_nbdev.bench" in _imported_modules(ROOT / "mmgen_nbdev" / "cli.py")


def test_the_package_keeps_the_old_names():
    for name in ("run_bench", "BENCH_MODELS", "installed_backends", "QUALITY_TARGETS", "EpochGate", "ReferenceVAE",
                 "ReferenceGAN", "take_turns", "run_in_process", "summarize", "machine_description", "ProcessTurns",
                 "ThreadTurns", "bench_markdown", "measure_dashboard_overhead"):
        assert name in bench.__all__ and getattr(bench, name) is not None


def test_ratios_overheads_and_their_intervals():
    assert speed_ratio([1.0, 2.0, 1.0], [2.0, 4.0, 2.0]) == {"median": 2.0, "low": 2.0, "high": 2.0}
    assert speed_ratio([1.0] * 9, [1.0] * 8 + [10.0])["median"] == 1.0  # one slow round of the reference moves little
    cost = overhead([1.2, 1.0, 1.1], [1.0, 1.0, 1.0])
    assert cost["value"] == pytest.approx(0.1) and cost["low"] <= cost["value"] <= cost["high"]
    low, high = bootstrap_interval(np.median, np.arange(101.0), level=0.9)
    assert low < 50 < high and bootstrap_interval(np.median, np.arange(101.0), level=0.5) != (low, high)


@needs_tensorflow
def test_throughput_runs_the_reference_beside_ours():
    table = measure_throughput("autoencoder", ["tensorflow"], rounds=2, n=128, isolate=False, log=lambda m: None)
    assert set(table) == {"reference/tensorflow", "ours/tensorflow"}
    assert table["reference/tensorflow"]["n"] == 2 and table["ours/tensorflow"]["median"] > 0
    ratio = table["ours/tensorflow"]["ratio_to_reference"]
    assert ratio["low"] <= ratio["median"] <= ratio["high"] and "ratio_to_reference" not in table["reference/tensorflow"]


@pytest.mark.backends
def test_dashboard_overhead_side_by_side_draws_in_one_arm_only():
    result = measure_dashboard_overhead(keras.backend.backend(), rounds=2, n=64, isolate=False, log=lambda m: None)
    assert result["frames"] >= 2  # the untrained model and the end, at least
    assert result["overhead"]["low"] <= result["overhead"]["value"] <= result["overhead"]["high"]
    assert result["overhead"]["value"] == pytest.approx(result["drawing_share"] + result["indirect_overhead"]["value"])
    assert len(result["seconds"]["with"]) == len(result["seconds"]["without"]) == len(result["drawing_seconds"]) == 2
    control = measure_dashboard_overhead(keras.backend.backend(), rounds=2, n=64, control=True, isolate=False,
                                         log=lambda m: None)
    assert control["frames"] == 0 and control["drawing_share"] == 0


def test_run_task_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="`task\\['kind'\\]` must be one of"):
        run_task({"kind": "speed", "model": "vae", "implementation": "ours"})
    with pytest.raises(ValueError, match="`max_epochs` must be a positive integer"):
        run_task({"kind": "time_to_quality", "model": "vae", "implementation": "ours", "max_epochs": 0, "n": 64})


def test_markdown_report_shows_every_table_and_the_errors():
    def entry(median, ratio=None):
        return {"median": median, "min": median - 10, "max": median + 10, "n": 3, "peak_resident_mb": 900.0,
                "training_mb": 200.0, **({"ratio_to_reference": ratio} if ratio else {})}
    throughput = {"gan": {"reference/tensorflow": entry(100),
                          "ours/tensorflow": entry(150, {"median": 1.5, "low": 1.25, "high": 1.75}),
                          "ours/jax": {"error": "Traceback …\nRuntimeError: no device"}}}
    dashboard = {"model": "vae", "backend": "tensorflow", "control": False, "rounds": 30,
                 "median_epoch_seconds": {"without": 1.0, "with": 1.03},
                 "overhead": {"value": 0.031, "low": 0.01, "high": 0.052}, "drawing_share": 0.028, "frames": 6,
                 "indirect_overhead": {"value": 0.003, "low": -0.018, "high": 0.024},
                 "total_time_overhead": {"value": 0.1, "low": -0.2, "high": 0.4}}
    report = {"date": "2026-11-22", "quick": False, "rounds": 10, "batch_size": 64,
              "machine": {"cpu": "Test CPU", "cores": 2, "memory_gib": 8.0, "python": "3.11", "keras": "3",
                          "backends": {"tensorflow": "2.21", "jax": "0.10"}, "load_average": [0.5, 0.5, 0.5]},
              "throughput": throughput, "dashboard": [dashboard],
              "time_to_quality": [
                  {"model": "gan", "implementation": "ours", "seconds": 30.0, "epochs": 10, "history": [1] * 10},
                  {"model": "gan", "implementation": "reference", "seconds": None, "epochs": None,
                   "history": [1] * 60}],
              "notebooks": {"passed": True, "seconds": 412.0, "chapters": {"04_vae.ipynb": 80}},
              "errors": [{"kind": "throughput", "model": "gan", "configuration": "ours/jax",
                          "error": "Traceback …\nRuntimeError: no device"}]}
    text = bench_markdown(report)
    assert "| gan | 100 [90–110] | 150 [140–160] | 1.50 [1.25–1.75] | error | – |" in text
    assert "| gan | 900 (200) | 900 (200) | – |" in text
    assert "| gan | frechet_distance | ≤ 40.0 | 30.0 (10) | not reached in 60 epochs | – |" in text
    assert ("| vae | tensorflow | 30 | 1.000 | 1.030 | +3.1 % [+1.0 – +5.2] | 2.8 % | +0.3 % [-1.8 – +2.4] | "
            "+10.0 % [-20.0 – +40.0] | 6 |") in text
    assert "| 04_vae.ipynb | 80 |" in text and "412 s in total" in text
    assert "- throughput gan ours/jax: RuntimeError: no device" in text and "Test CPU, 2 cores" in text


@needs_tensorflow
def test_run_bench_in_process_writes_json_and_markdown(tmp_path):
    report = run_bench(tmp_path, models=["autoencoder"], quick=True, notebooks=False, isolate=False, log=lambda m: None)
    assert report["errors"] == []
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["throughput"]["autoencoder"]["ours/tensorflow"]["ratio_to_reference"]["median"] > 0
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
    table = report["throughput"]["autoencoder"]
    assert set(table) == {"reference/tensorflow", "ours/tensorflow"}
    assert "| autoencoder |" in done.stdout
    assert all(entry["training_mb"] > 0 for entry in table.values())  # each process's training took memory
