"""Modality fusion, every method in one run (not a test): concatenation, product of experts (MVAE), mixture of
experts (MMVAE) and mixture of products (MoPoE), each trained for the same epochs on the same data and seed.

MultiDigits (image, caption, tone): the issue's four bars (text→image, audio→image and image→text coherence, and the
latent linear probe on the code of all three), then each modality missing at test time in turn: generated from the
other two, and the probe on the code of the other two. Concatenation, which needs every modality, gets zeros in the
empty slots, the only thing it can do. Shapes level 2 (image, caption): factor-level accuracy of text→image and
image→text (shape, colour, and both at once). Training time is wall-clock and process CPU seconds; the load average
is recorded before and after, since other jobs on the machine inflate the wall time. Writes fusion.json and
fusion.md into --out.

`--diagnose` instead trains the mixture of experts (and the product, for the weights) under the variations that could explain a low image→text
coherence (equal or balanced likelihood weights, epochs, β, latent size, encoder, learning rate, batch size,
seeds) and compares greedy caption decoding with the exact likeliest caption; writes diagnosis.json/.md.

    python benchmarks/fusion.py --out benchmark-out              # about 15 minutes on a quiet 2-core CPU
    python benchmarks/fusion.py --out benchmark-out --diagnose   # about 25 minutes
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

from mmgen_nbdev.data import load_multidigits, load_shapes  # noqa: E402
from mmgen_nbdev.fusion import FUSIONS, MultimodalVAE  # noqa: E402
from mmgen_nbdev.metrics import (factor_accuracy, joint_coherence, linear_probe_accuracy, read_digits,  # noqa: E402
                                 read_shape_factors)
from mmgen_nbdev.modalities import image_encoder  # noqa: E402
from mmgen_nbdev.recipes import (likeliest_caption_digit, multidigits_vae, multimodal_optimizer, shapes_vae,  # noqa: E402
                                 training_steps)

MODALITIES = ("image", "text", "audio")
BARS = {"text→image": 0.90, "audio→image": 0.90, "image→text": 0.95, "probe": 0.90}


def given_for(model, data, sources):
    "The `sources` of `data`; concatenation gets the other modalities as zeros, since it needs every one."
    given = {m: data[m] for m in sources}
    if model.fusion == "concat":
        given.update({m: np.zeros_like(data[m]) for m in model.modalities if m not in sources})
    return given


def coherence(model, data, sources, target):
    generated = model.generate(given=given_for(model, data, sources), target=target)
    return float(np.mean(read_digits(target, generated) == data["label"]))


def probe(model, train, test, sources):
    return linear_probe_accuracy(model.embed(given_for(model, train, sources)), train["label"],
                                 model.embed(given_for(model, test, sources)), test["label"])


def evaluate_multidigits(model, train, test):
    "The four bars, image→audio and joint coherence; then each modality missing in turn."
    row = {"text→image": coherence(model, test, ("text",), "image"),
           "audio→image": coherence(model, test, ("audio",), "image"),
           "image→text": coherence(model, test, ("image",), "text"),
           "probe": probe(model, train, test, MODALITIES),
           "image→audio": coherence(model, test, ("image",), "audio"),
           "joint": joint_coherence(model, 500)}
    for missing in MODALITIES:
        others = tuple(m for m in MODALITIES if m != missing)
        row[f"no {missing}: {'+'.join(others)}→{missing}"] = coherence(model, test, others, missing)
        row[f"no {missing}: probe"] = probe(model, train, test, others)
    return row


def evaluate_shapes(model, test):
    "Factor-level accuracy of text→image and image→text."
    row = {}
    for source, target in (("text", "image"), ("image", "text")):
        generated = model.generate(given=given_for(model, test, (source,)), target=target)
        accuracy = factor_accuracy(read_shape_factors(target, generated, 2), test["factors"])
        row.update({f"{source}→{target}: {f}": v for f, v in accuracy.items()})
    return row


def train(model, x, epochs, batch_size=64, learning_rate=1e-3):
    "The recipes' multimodal optimiser (Adam, cosine decay to zero over the run); returns the history, wall seconds and process CPU seconds."
    steps = training_steps(epochs, len(next(iter(x.values()))), batch_size)
    model.compile(optimizer=multimodal_optimizer(steps, learning_rate))
    wall, cpu = time.perf_counter(), time.process_time()
    history = model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0).history
    return history, round(time.perf_counter() - wall, 1), round(time.process_time() - cpu, 1)


def table(rows, columns, bars=None, first="fusion"):
    "A Markdown table; values below their bar get ✗."
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        cells = []
        for c in columns:
            value = row[c]
            mark = " ✗" if bars and c in bars and value < bars[c] else ""
            cells.append((f"{value:.3f}" if isinstance(value, float) and not c.endswith(" s") else str(value)) + mark)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def header(meta):
    return (f"{meta['backend']} backend, {meta['cpus']} CPUs, {meta['date']}; load average (1, 5, 15 min) "
            f"{tuple(meta['load_average_before'])} before, {tuple(meta['load_average_after'])} after.")


def benchmark(args, out):
    epochs, shapes_epochs = (2, 2) if args.quick else (args.epochs, args.shapes_epochs)
    digits_train, digits_test = load_multidigits("train"), load_multidigits("test")
    shapes_train, shapes_test = load_shapes(2, "train"), load_shapes(2, "test")
    read_digits("image", digits_test["image"][:1]), read_shape_factors("image", shapes_test["image"][:1])  # readers
    load_before, digits, shapes = os.getloadavg(), {}, {}
    for fusion in FUSIONS:
        model = multidigits_vae(fusion, seed=args.seed)
        history, wall, cpu = train(model, {m: digits_train[m] for m in MODALITIES}, epochs)
        digits[fusion] = {"train wall s": wall, "train cpu s": cpu, "neg_elbo": round(history["neg_elbo"][-1], 2),
                          "likelihood_weights": {m: round(w, 3) for m, w in model.likelihood_weights.items()},
                          **evaluate_multidigits(model, digits_train, digits_test)}
        print("multidigits", fusion, digits[fusion], flush=True)
    for fusion in FUSIONS:
        model = shapes_vae(fusion, seed=args.seed)
        history, wall, cpu = train(model, {m: shapes_train[m] for m in ("image", "text")}, shapes_epochs)
        shapes[fusion] = {"train wall s": wall, "train cpu s": cpu, **evaluate_shapes(model, shapes_test)}
        print("shapes", fusion, shapes[fusion], flush=True)
    meta = {"epochs": epochs, "shapes_epochs": shapes_epochs, "seed": args.seed, "backend": keras.backend.backend(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()]}
    (out / "fusion.json").write_text(json.dumps({"meta": meta, "multidigits": digits, "shapes": shapes}, indent=2))
    missing = [c for c in next(iter(digits.values())) if c.startswith("no ")]
    lines = [header(meta), "",
             f"MultiDigits test set, {epochs} epochs per model, seed {args.seed}, every other modality present "
             "(✗: below the issue's bar):", ""]
    lines += table(digits, ["train wall s", "train cpu s", *BARS, "image→audio", "joint"], BARS)
    lines += ["", "One modality missing at test time: generated from the other two, and the probe on the other two's "
                  "code:", ""]
    lines += table(digits, missing)
    lines += ["", f"Shapes level 2 test set, {shapes_epochs} epochs per model; factor-level accuracy:", ""]
    lines += table(shapes, list(next(iter(shapes.values()))))
    return lines


# ---- diagnosis: why image→text coherence stalls ---------------------------------------------------------------
def with_conv_image_encoder(model):
    "The same model with a convolutional image encoder instead of the dense one."
    encoders = {**model.encoders, "image": image_encoder((16, 16, 1), model.latent_dim, "conv", gaussian=True)}
    return MultimodalVAE(encoders, model.decoders, model.likelihoods, fusion=model.fusion,
                         likelihood_weights=model.likelihood_weights, seed=model.seed)


VARIANTS = {  # name: (builder keyword arguments, training keyword arguments, transform)
    "equal weights": ({"likelihood_weights": None}, {}, None),
    "equal, 120 epochs": ({"likelihood_weights": None}, {"epochs": 120}, None),
    "equal, β = 0.5": ({"likelihood_weights": None, "beta": 0.5}, {}, None),
    "equal, latent 32": ({"likelihood_weights": None, "latent_dim": 32}, {}, None),
    "equal, conv image encoder": ({"likelihood_weights": None}, {}, with_conv_image_encoder),
    "equal, learning rate 2e-3": ({"likelihood_weights": None}, {"learning_rate": 2e-3}, None),
    "equal, batch 32": ({"likelihood_weights": None}, {"batch_size": 32}, None),
    "equal, seed 1": ({"likelihood_weights": None, "seed": 1}, {}, None),
    "caption ×42.7 only": ({"likelihood_weights": {"image": 1.0, "text": 256 / 6, "audio": 1.0}}, {}, None),
    "tone ×0.25 only": ({"likelihood_weights": {"image": 1.0, "text": 1.0, "audio": 0.25}}, {}, None),
    "balanced weights": ({"likelihood_weights": "balanced"}, {}, None),
    "balanced, seed 1": ({"likelihood_weights": "balanced", "seed": 1}, {}, None),
    "PoE, equal weights": ({"fusion": "poe", "likelihood_weights": None}, {}, None),
    "PoE, balanced weights": ({"fusion": "poe", "likelihood_weights": "balanced"}, {}, None),
}


def diagnose(args, out):
    epochs = 2 if args.quick else args.epochs
    train_data, test_data = load_multidigits("train"), load_multidigits("test")
    load_before, rows = os.getloadavg(), {}
    for name, (build, fit, transform) in VARIANTS.items():
        model = multidigits_vae(**{"fusion": "moe", **build})
        model = transform(model) if transform else model
        fit = {"epochs": epochs, **fit} if not args.quick else {**fit, "epochs": 2}
        _, wall, _ = train(model, {m: train_data[m] for m in MODALITIES}, **fit)
        codes = {s: model.embed({"image": d["image"]}) for s, d in (("train", train_data), ("test", test_data))}
        greedy = read_digits("text", model.decode(codes["test"], target="text"))
        rows[name] = {"train wall s": wall,
                      "image→text (test)": float(np.mean(greedy == test_data["label"])),
                      "image→text (train)": coherence(model, train_data, ("image",), "text"),
                      "likeliest caption (test)": float(np.mean(likeliest_caption_digit(model, codes["test"])
                                                                == test_data["label"])),
                      "probe on image code": linear_probe_accuracy(codes["train"], train_data["label"],
                                                                   codes["test"], test_data["label"]),
                      "text→image": coherence(model, test_data, ("text",), "image"),
                      "audio→image": coherence(model, test_data, ("audio",), "image")}
        print(name, rows[name], flush=True)
    meta = {"epochs": epochs, "backend": keras.backend.backend(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"), "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()]}
    (out / "diagnosis.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    lines = [header(meta), "", f"Mixture of experts (PoE where the row says so) on MultiDigits, {epochs} epochs and "
             "seed 0 unless the row says otherwise:", ""]
    return lines + table(rows, list(next(iter(rows.values()))), {"image→text (test)": 0.95}, first="variant")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmark-out")
    parser.add_argument("--epochs", type=int, default=60, help="MultiDigits epochs per model")
    parser.add_argument("--shapes-epochs", type=int, default=20, help="Shapes epochs per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--diagnose", action="store_true", help="the image→text diagnosis instead of the benchmark")
    parser.add_argument("--quick", action="store_true", help="2 epochs each, a smoke run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = diagnose(args, out) if args.diagnose else benchmark(args, out)
    (out / ("diagnosis.md" if args.diagnose else "fusion.md")).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
