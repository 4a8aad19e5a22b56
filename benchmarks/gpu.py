"""The chapters' models at full size on a GPU, with JAX (the GPU machine has JAX and PyTorch but no TensorFlow):
samples/s, time to quality and GPU utilisation, in float32 and in mixed precision, written to gpu.json and a dated
gpu-DATE.md. Run it whenever a GPU machine is lent, and commit the Markdown with the date and the device.

    KERAS_BACKEND=jax python benchmarks/gpu.py --out gpu-out                 # on the GPU machine
    KERAS_BACKEND=jax python benchmarks/gpu.py --out gpu-out --quick         # a smoke run (works on a CPU too)
    KERAS_BACKEND=jax python benchmarks/gpu.py --out gpu-out --devices 1,8 --dtype-policy mixed_bfloat16
    XLA_FLAGS=--xla_force_host_platform_device_count=4 KERAS_BACKEND=jax \
        python benchmarks/gpu.py --out gpu-out --quick --devices 1,4           # data parallelism on a CPU

`--devices` lists device counts to train data-parallel on (keras.distribution.DataParallel over the first N
devices); with more than one count, each row's scaling efficiency is its samples/s over N times the one-device
row's (1.0 is perfect scaling).

On the GPU machine, Keras and its pure-Python dependencies come as wheels carried with the working tree (see
/work/shared/notes/platform.md); put the repository on PYTHONPATH. The references of `mmgen bench` are TensorFlow
code, so this script measures ours only; the ratios to the references come from `mmgen bench` on a CPU.
"""
import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))  # for the workers

from mmgen_nbdev.bench.measure import QUALITY_TARGETS, machine_description, run_in_process, summarize  # noqa: E402
from mmgen_nbdev.bench.turns import take_turns  # noqa: E402

MODELS = ("vae", "gan", "multimodal_vae")
POLICIES = ("float32", "mixed_float16")


class GPUMonitor:
    "Samples `nvidia-smi`'s GPU utilisation (%) and memory (MiB) every `interval_ms` while it is open."

    def __init__(self, interval_ms: int = 200):
        self.interval_ms, self.samples, self.process = interval_ms, [], None

    def __enter__(self):
        if shutil.which("nvidia-smi"):
            self.process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                 f"-lms={self.interval_ms}"], stdout=subprocess.PIPE, text=True)
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        return self

    def _read(self):
        for line in self.process.stdout:
            try:
                utilisation, memory = (float(v) for v in line.split(",")[:2])
            except ValueError:
                continue
            self.samples.append((utilisation, memory))

    def __exit__(self, *exc):
        if self.process:
            self.process.terminate()
            self.process.wait()

    def summary(self) -> dict | None:
        "Mean and peak utilisation and peak memory over the samples, or None without nvidia-smi."
        if not self.samples:
            return None
        utilisation = [u for u, _ in self.samples]
        return {"utilisation_mean": statistics.fmean(utilisation), "utilisation_max": max(utilisation),
                "memory_max_mib": max(m for _, m in self.samples), "samples": len(self.samples)}


def run(task: dict, backend: str) -> dict:
    "One task in a fresh process, with the GPU watched while it runs."
    with GPUMonitor() as monitor:
        result = run_in_process(task, backend)
    return {**result, "gpu": monitor.summary()}


def speed(configuration: dict, backend: str, epochs: int) -> dict:
    "Samples/s of `configuration` in `epochs` timed epochs after a warm-up one, in a fresh process, the GPU watched."
    with GPUMonitor() as monitor:
        result = take_turns({"run": (configuration, backend)}, epochs)["run"]
    if "error" in result:
        return {"error": result["error"], "gpu": monitor.summary()}
    return {"samples_per_second": [result["samples"] / s for s in result["seconds"]], "gpu": monitor.summary(),
            "peak_resident_mb": result["peak_resident_mb"]}


def markdown(report: dict) -> str:
    "The report's tables."
    m = report["machine"]
    lines = [f"# GPU benchmark, {report['date']}", "", f"{report['device']}; {m['cpu']}, {m['cores']} cores; Python "
             f"{m['python']}, Keras {m['keras']}, " + ", ".join(f"{b} {v}" for b, v in m["backends"].items())
             + f"; backend {report['backend']}; batch {report['batch_size']}.", "",
             "| model | dtype policy | devices | samples/s (median [min–max]) | scaling efficiency | GPU util. mean / "
             "max % | GPU memory MiB | time to quality (s, epochs) | final quality |", "|---|---|---|---|---|---|---|---|---|"]
    single = {(row["model"], row["dtype_policy"]): row for row in report["rows"] if row["devices"] == 1}
    for row in report["rows"]:
        t, q = row["throughput"], row["time_to_quality"]
        speed = "error" if "error" in t else (lambda s: f"{s['median']:,.0f} [{s['min']:,.0f}–{s['max']:,.0f}]")(
            summarize(t["samples_per_second"]))
        gpu = t.get("gpu") or {}
        util = f"{gpu['utilisation_mean']:.0f} / {gpu['utilisation_max']:.0f}" if gpu else "–"
        memory = f"{gpu['memory_max_mib']:,.0f}" if gpu else "–"
        name, comparison, target = QUALITY_TARGETS[row["model"]]
        if "error" in q:
            took, final = "error", "–"
        else:
            took = f"{q['seconds']:.1f} ({q['epochs']})" if q["seconds"] is not None else "not reached"
            final = f"{name} {q['history'][-1]:.3g} (target {comparison} {target})"
        base = single.get((row["model"], row["dtype_policy"]), {}).get("throughput", {})
        efficiency = "–"
        if "samples_per_second" in base and "samples_per_second" in t and row["devices"] > 1:
            ours, one = (summarize(r["samples_per_second"])["median"] for r in (t, base))
            efficiency = f"{ours / (row['devices'] * one):.2f}"
        lines.append(f"| {row['model']} | {row['dtype_policy']} | {row['devices']} | {speed} | {efficiency} | {util} | "
                     f"{memory} | {took} | {final} |")
    errors = [(row["model"], f"{row['dtype_policy']} on {row['devices']}", r["error"]) for row in report["rows"]
              for r in (row["throughput"], row["time_to_quality"]) if "error" in r]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {m} {p}: {e.strip().splitlines()[-1]}" for m, p, e in errors]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10, help="timed epochs of the throughput measurement")
    parser.add_argument("--max-epochs", type=int, default=200, help="epoch limit of time to quality")
    parser.add_argument("--policies", "--dtype-policy", dest="policies", default=",".join(POLICIES),
                        help="comma-separated dtype policies (float32, mixed_float16, mixed_bfloat16)")
    parser.add_argument("--devices", default="1", help="comma-separated device counts to train data-parallel on")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    backend = os.environ["KERAS_BACKEND"]
    epochs, max_epochs, n = (2, 2, 256) if args.quick else (args.epochs, args.max_epochs, None)
    device = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                            text=True).stdout.strip() if shutil.which("nvidia-smi") else "no GPU (nvidia-smi absent)"
    report = {"date": time.strftime("%Y-%m-%d"), "device": device, "backend": backend, "batch_size": args.batch_size,
              "machine": machine_description(), "rows": []}
    device_counts = [int(d) for d in args.devices.split(",")]
    if any(d < 1 or args.batch_size % d for d in device_counts):
        parser.error(f"--devices must be positive counts that divide --batch-size {args.batch_size}; got {args.devices}")
    for model, policy, devices in itertools.product(MODELS, args.policies.split(","), device_counts):
        common = {"model": model, "implementation": "ours", "n": n, "batch_size": args.batch_size,
                  "dtype_policy": policy, **({"devices": devices} if devices > 1 else {})}
        print(f"{model} {policy} on {devices} device(s)", flush=True)
        report["rows"].append({"model": model, "dtype_policy": policy, "devices": devices,
                               "throughput": speed(common, backend, epochs),
                               "time_to_quality": run({"kind": "time_to_quality", "max_epochs": max_epochs,
                                                       **common}, backend)})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (args.out / f"gpu-{report['date']}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
