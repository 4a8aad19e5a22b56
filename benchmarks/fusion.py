"""Modality fusion on MultiDigits, every method in one run (not a test): concatenation, product of experts (MVAE),
mixture of experts (MMVAE) and mixture of products (MoPoE), each trained for the same epochs on the same data and
seeds; cross-modal coherence, joint coherence and a latent linear probe with every modality present, and with one
modality missing at test time (for concatenation the missing modality is filled with zeros, the only thing it can
do). Writes fusion.json and fusion.md into --out.

    python benchmarks/fusion.py --out benchmark-out              # about 12 minutes on a 2-core CPU
    python benchmarks/fusion.py --out benchmark-out --quick      # a smoke run
"""
import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mmgen_nbdev.data import load_multidigits  # noqa: E402
from mmgen_nbdev.fusion import FUSIONS, multidigits_vae  # noqa: E402
from mmgen_nbdev.metrics import joint_coherence, linear_probe_accuracy, read_digits  # noqa: E402

MODALITIES = ("image", "text", "audio")


def given_for(model, data, sources):
    "The `sources` of `data`; concatenation gets the other modalities as zeros, since it needs every one."
    given = {m: data[m] for m in sources}
    if model.fusion == "concat":
        given.update({m: np.zeros_like(data[m]) for m in MODALITIES if m not in sources})
    return given


def coherence(model, data, sources, target):
    generated = model.generate(given=given_for(model, data, sources), target=target)
    return float(np.mean(read_digits(target, generated) == data["label"]))


def probe(model, train, test, sources):
    return linear_probe_accuracy(model.encode(given_for(model, train, sources))[0], train["label"],
                                 model.encode(given_for(model, test, sources))[0], test["label"])


def evaluate(model, train, test):
    row = {f"{s}→{t}": coherence(model, test, (s,), t)
           for s, t in [("text", "image"), ("audio", "image"), ("image", "text"), ("image", "audio")]}
    row["joint"] = joint_coherence(model, 500)
    row["probe"] = probe(model, train, test, MODALITIES)
    # one modality missing at test time: generate it from the other two, and probe the code of the other two
    for missing in MODALITIES:
        others = tuple(m for m in MODALITIES if m != missing)
        row[f"missing {missing}: →{missing}"] = coherence(model, test, others, missing)
    row["missing text: probe"] = probe(model, train, test, ("image", "audio"))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmark-out")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="2 epochs, a smoke run")
    args = parser.parse_args()
    epochs = 2 if args.quick else args.epochs
    train, test = load_multidigits("train"), load_multidigits("test")
    x = {m: train[m] for m in MODALITIES}
    rows = {}
    for fusion in FUSIONS:
        model = multidigits_vae(fusion)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        start = time.perf_counter()
        history = model.fit(x, epochs=epochs, batch_size=64, verbose=0).history
        seconds = time.perf_counter() - start
        rows[fusion] = {"train_seconds": round(seconds, 1), "neg_elbo": round(history["neg_elbo"][-1], 2),
                        **{k: round(v, 3) for k, v in evaluate(model, train, test).items()}}
        print(fusion, rows[fusion], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"epochs": epochs, "backend": keras.backend.backend(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    (out / "fusion.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    columns = list(next(iter(rows.values())))
    lines = [f"MultiDigits test set, {epochs} epochs per model, {meta['backend']} backend, {meta['cpus']} CPUs, "
             f"{meta['date']}.", "", "| fusion | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {f} | " + " | ".join(str(r[c]) for c in columns) + " |" for f, r in rows.items()]
    (out / "fusion.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
