"""The 8-Gaussian ring at the classic mode std 0.02, run by hand (not a test): why the recipe that met the bar at
std 0.05 (constant Adam lr 1e-3, 4,000 steps) misses it at 0.02, and the recipe that meets it on every backend.

The bar (issue #3): all 8 modes covered and >= 90 % of generated samples within 3 std of a mode. Besides those two
numbers each run reports what tells the causes apart:
- `spread`: the RMS per-axis distance of the samples near a mode (within 10 std) to its centre, in units of the
  data's std; 1.0 means the generated blobs are as tight as the data's.
- `between`: the fraction of samples farther than 10 std from every mode (bridges between modes, missing modes).
- `drift`: the RMS distance that the samples of fixed noise moved over the last 100 generator steps, in units of
  std: how much the generator still jitters at the end of training.
- `swing`: max - min of the fraction within 3 std over the checkpoints of the second half of training.

    python benchmarks/ring.py --out benchmark-out            # about 40 minutes on a busy 2-core CPU
    python benchmarks/ring.py --out benchmark-out --quick    # a smoke run
    python benchmarks/ring.py --out benchmark-out --only recipe --backends jax
Each run is a subprocess with its own KERAS_BACKEND; results go to ring.json and ring.md in --out.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

from mmgen_nbdev.bench.turns import run_script

# The recipe the GAN chapter uses at std 0.02, and the one that met the bar at std 0.05.
RECIPE = {"std": 0.02, "steps": 12000, "lr": 1e-3, "decay": True, "g_hidden": [256, 256], "d_hidden": [128, 128],
          "latent_dim": 2, "d_steps": 1, "beta_1": 0.5, "beta_2": 0.999, "loss": "non_saturating", "batch": 256,
          "seed": 0}
OLD = {**RECIPE, "steps": 4000, "decay": False, "g_hidden": [128, 128]}

# One change at a time from the old recipe (plus the two that together make the new one), on one backend.
DIAGNOSIS = {
    "old recipe, std 0.05 (met the bar)": {"std": 0.05},
    "old recipe": {},
    "lr 2e-4": {"lr": 2e-4},
    "lr 2e-4, 12,000 steps": {"lr": 2e-4, "steps": 12000},
    "8,000 steps": {"steps": 8000},
    "generator 256 wide": {"g_hidden": [256, 256]},
    "generator 3 layers": {"g_hidden": [128, 128, 128]},
    "discriminator 256 wide": {"d_hidden": [256, 256]},
    "noise dim 8": {"latent_dim": 8},
    "k = 2 discriminator steps": {"d_steps": 2},
    "Adam beta_1 0.9": {"beta_1": 0.9},
    "minimax loss": {"loss": "minimax"},
    "WGAN-GP (k = 5, lr 1e-4, betas 0.5/0.9)": {"loss": "wasserstein_gp", "d_steps": 5, "lr": 1e-4, "beta_2": 0.9},
    "batch 1024": {"batch": 1024},
    "cosine lr decay": {"decay": True},
    "cosine lr decay, 8,000 steps": {"decay": True, "steps": 8000},
    "decay, 8,000 steps, generator 256 wide": {"decay": True, "steps": 8000, "g_hidden": [256, 256]},
    "new recipe (decay, 12,000 steps, generator 256 wide)": {"decay": True, "steps": 12000, "g_hidden": [256, 256]},
}

RUN = r"""
import json, os, sys, time
import keras, numpy as np
from mmgen_nbdev.data import load_ring
from mmgen_nbdev.gan import mode_coverage, mode_spread
from mmgen_nbdev.recipes import ring_gan, ring_gan_optimizers

c = json.loads(sys.argv[1])
std, steps = c["std"], c["steps"]
ring = load_ring(c["batch"] * 100, std=std)  # 100 steps an epoch
gan = ring_gan(c["seed"], c["latent_dim"], c["g_hidden"], c["d_hidden"], loss=c["loss"], d_steps=c["d_steps"])
gan.compile(**ring_gan_optimizers(steps if c["decay"] else None, c["lr"], d_steps=c["d_steps"], beta_1=c["beta_1"],
                                  beta_2=c["beta_2"]))
checkpoints = {}

class Checkpoint(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        done = (epoch + 1) * 100
        if done % 1000 == 0 or done >= steps - 100:
            checkpoints[done] = gan.generate(4000, seed=1)

start = time.perf_counter()
gan.fit(ring["points"], epochs=steps // 100, batch_size=c["batch"], verbose=0, callbacks=[Checkpoint()])
seconds = time.perf_counter() - start
samples = checkpoints[steps]
covered, good = mode_coverage(samples, ring["centres"], std)
spread, between = mode_spread(samples, ring["centres"], std)
drift = np.sqrt(np.mean(np.sum((samples - checkpoints[steps - 100]) ** 2, -1) / 2)) / std
late = [mode_coverage(s, ring["centres"], std)[1] for k, s in checkpoints.items()
        if k >= steps // 2 and (k % 1000 == 0 or k == steps)]
print(json.dumps({"modes_covered": covered, "within_3_std": good, "spread": spread, "between": between,
                  "drift": float(drift), "swing": float(max(late) - min(late)), "seconds": seconds}))
"""


def row(name, backend, config, result):
    if "error" in result:
        return f"| {name} | {backend} | {config['seed']} | error: {result['error'].strip().splitlines()[-1]} | | | | | | |"
    bar = "yes" if result["modes_covered"] == 8 and result["within_3_std"] >= 0.9 else "no"
    return (f"| {name} | {backend} | {config['seed']} | {result['modes_covered']}/8 | {result['within_3_std']:.1%} | "
            f"{result['spread']:.2f} | {result['between']:.1%} | {result['drift']:.2f} | {result['swing']:.2f} | "
            f"{bar} | {config['steps']} | {result['seconds']:.0f} |")


HEADER = ["| run | backend | seed | modes | within 3σ | spread (σ) | between | drift (σ) | swing | bar met | "
          "steps | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a few hundred steps per run: checks the script only")
    parser.add_argument("--only", choices=("diagnosis", "recipe"), help="run one of the two parts")
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--diagnosis-backend", default="jax", help="the fastest backend on a CPU")
    parser.add_argument("--append", action="store_true", help="add to the runs already in --out/ring.json")
    parser.add_argument("--skip-old", action="store_true", help="run the new recipe only on --backends")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shrink = (lambda c: {**c, "steps": 300 if c["steps"] > 300 else c["steps"]}) if args.quick else (lambda c: c)
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
              "recipe": RECIPE, "old_recipe": OLD, "runs": []}
    if args.append and (args.out / "ring.json").exists():
        report["runs"] = json.loads((args.out / "ring.json").read_text())["runs"]
    jobs = []
    if args.only in (None, "recipe"):
        for backend in args.backends:
            jobs += [] if args.skip_old else [("backends", "old recipe", backend, OLD)]
            jobs += [("backends", "new recipe", backend, {**RECIPE, "seed": seed}) for seed in args.seeds]
    if args.only in (None, "diagnosis"):
        jobs += [("diagnosis", name, args.diagnosis_backend, {**OLD, **change}) for name, change in DIAGNOSIS.items()]
    for part, name, backend, config in jobs:
        config = shrink(config)
        result = run_script(RUN, config, backend, env={"OMP_NUM_THREADS": "1"})  # one thread: no spinning on a shared CPU
        report["runs"].append({"part": part, "name": name, "backend": backend, "config": config, "result": result})
        print(row(name, backend, config, result), flush=True)
        (args.out / "ring.json").write_text(json.dumps(report, indent=1))
    lines = [f"# The 8-Gaussian ring at std 0.02 ({report['date']}, {report['machine']})", ""]
    for part, title in (("diagnosis", "One change at a time from the old recipe"),
                        ("backends", "The old and the new recipe on every backend")):
        runs = [r for r in report["runs"] if r["part"] == part]
        if runs:
            lines += [f"## {title}", "", *HEADER]
            lines += [row(r["name"], r["backend"], r["config"], r["result"]) for r in runs] + [""]
    (args.out / "ring.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
