"""What the training dashboard costs, measured in one run (not a test): the same VAE fit with and without a
`TrainingDashboard` at its default throttle, the runs alternating, the first epoch of each fit left out, the
median over fits (`mmgen_nbdev.widgets.dashboard_overhead`). The model is the ELBO chapter's VAE (convolutional
networks, 2-D latent space) on the 1,437 training digits at 16×16, batch 64; the dashboard encodes and reconstructs
the 360 test digits. Writes dashboard.json and dashboard.md into --out; issue #5 asks for at most 5 % overhead.

    python benchmarks/dashboard.py --out benchmark-out               # about 8 minutes on a 2-core CPU
    python benchmarks/dashboard.py --out benchmark-out --quick       # a smoke run
    python benchmarks/dashboard.py --out control-out --control       # A/A: a silent dashboard, the noise floor
"""
import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from mmgen_nbdev.backend import set_seed  # noqa: E402
from mmgen_nbdev.data import load_digits  # noqa: E402
from mmgen_nbdev.modalities import image_decoder, image_encoder  # noqa: E402
from mmgen_nbdev.vae import VAE  # noqa: E402
from mmgen_nbdev.widgets import TrainingDashboard, dashboard_overhead  # noqa: E402


def build():
    set_seed(0)
    model = VAE(image_encoder((16, 16, 1), 2, gaussian=True), image_decoder(2, (16, 16, 1)), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmark-out")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per fit (the first is left out)")
    parser.add_argument("--repeats", type=int, default=5, help="fits per arm")
    parser.add_argument("--quick", action="store_true", help="3 epochs, 1 fit per arm: a smoke run")
    parser.add_argument("--control", action="store_true",
                        help="an A/A control: the same alternation with a silent dashboard, which draws nothing")
    args = parser.parse_args()
    epochs, repeats = (3, 1) if args.quick else (args.epochs, args.repeats)
    train, test = load_digits("train", image_size=16), load_digits("test", image_size=16)
    output = "silent" if args.control else "widget"
    start = time.perf_counter()
    result = dashboard_overhead(build, train["image"], epochs=epochs, repeats=repeats, batch_size=64,
                                dashboard=lambda: TrainingDashboard(test["image"], test["label"], output=output))
    meta = {"epochs": epochs, "repeats": repeats, "backend": keras.backend.backend(), "keras": keras.__version__,
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - start),
            "dashboard": f"TrainingDashboard(test images, labels, output={output!r}): default throttle "
                         "(every_epochs=1, every_seconds=None: adaptive, max_overhead=0.04)"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dashboard.json").write_text(json.dumps({"meta": meta, "result": result}, indent=2))
    rows = [("mean epoch time, without the dashboard (s)", result["epoch_seconds"]["without"]),
            ("mean epoch time, with the dashboard (s)", result["epoch_seconds"]["with"]),
            ("with / without − 1, fits side by side", result["paired_overheads"]),
            ("seconds spent drawing at the ends of epochs 2 and later", result["drawing_seconds"]),
            ("frames drawn (first and final included)", result["frames"])]
    lines = [f"VAE on the 16×16 digits, {epochs} epochs per fit, {repeats} fits per arm, alternating, "
             f"{meta['backend']} backend, {meta['cpus']} CPUs shared with other jobs, {meta['date']}.", "",
             "| | " + " | ".join(f"fit {i + 1}" for i in range(repeats)) + " |", "|---" * (repeats + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{v:+.1%}" if "−" in name else f"{v:.3f}" if isinstance(v, float) else str(v)
                                         for v in values) + " |" for name, values in rows]
    lines += ["", f"Overhead per epoch at the default throttle, first epoch of each fit left out: median of the "
                  f"side-by-side differences **{result['overhead']:+.1%}**; difference of the medians "
                  f"{result['overhead_of_medians']:+.1%}; time spent drawing, as a share of those epochs' time "
                  f"**{result['drawing_share']:.1%}** (the one estimate free of the machine's load noise)."]
    (out / "dashboard.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
