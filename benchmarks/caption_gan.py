"""The caption-conditioned GAN of the GAN chapter on MultiDigits, run by hand (not a test): how often the package's
digit classifier reads, in the image generated for a test caption, the digit the caption names; how much the
samples of one caption vary (the pixel standard deviation over 20 samples of a caption, divided by that over the
real images of the digit); and the norms of the caption codes. Compared with the same GAN whose caption codes are
not put on the unit sphere, and with the class-conditioned GAN trained the same way.

    python benchmarks/caption_gan.py --out benchmark-out                       # every backend and both comparisons
    python benchmarks/caption_gan.py --out benchmark-out --backends tensorflow --quick
Each run is a subprocess with its own KERAS_BACKEND; results go to caption_gan.json and caption_gan.md in --out.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

from mmgen_nbdev.bench.turns import run_script

RECIPE = {"condition": "caption", "unit_codes": True, "epochs": 20, "lr": 1e-3, "latent_dim": 32, "batch": 64,
          "seed": 0}
COMPARISONS = {
    "caption codes not normalised": {"unit_codes": False},
    "class label instead of caption": {"condition": "label"},
}

RUN = r"""
import json, sys, time
import keras, numpy as np
from keras import layers, ops
import mmgen_nbdev.gan as gan_module
from mmgen_nbdev.data import load_multidigits, multidigits_vocabulary
from mmgen_nbdev.metrics import read_digits
from mmgen_nbdev.modalities import text_encoder
from mmgen_nbdev.recipes import digits_cgan, digits_cgan_optimizers, training_steps

c = json.loads(sys.argv[1])
if not c["unit_codes"]:  # the builders with the caption's code taken straight from the text encoder
    gan_module.condition_network = lambda num_classes=None, caption=None, width=16, name="condition": (
        text_encoder(caption[0], caption[1], width, name=name))
train, test = load_multidigits("train"), load_multidigits("test")
vocabulary = multidigits_vocabulary()
y, y_test = (train["text"], test["text"]) if c["condition"] == "caption" else (train["label"], test["label"])
key = "captions" if c["condition"] == "caption" else "labels"
gan = digits_cgan(c["seed"], c["latent_dim"], condition=c["condition"])  # the recipe (the GAN chapter's caption GAN)
gan.compile(**digits_cgan_optimizers(c["lr"], steps=training_steps(c["epochs"], len(y), c["batch"])))
start = time.perf_counter()
history = gan.fit(train["image"] * 2 - 1, y, epochs=c["epochs"], batch_size=c["batch"], verbose=0)
seconds = time.perf_counter() - start
drawn = read_digits("image", (gan.generate(len(y_test), seed=2, **{key: y_test}) + 1) / 2)
right = drawn == test["label"]
numeral = np.array([t.split()[-1].isdigit() for t in vocabulary.decode_batch(test["text"])])
samples = (gan.generate(200, seed=4, **{key: np.repeat(y_test[:10], 20, axis=0)}) + 1) / 2
variation = samples.reshape(10, 20, -1).std(axis=1).mean()
real = np.mean([train["image"][train["label"] == test["label"][i]].reshape(-1, 256).std(0).mean() for i in range(10)])
norm = lambda network: float(np.linalg.norm(ops.convert_to_numpy(network.get_layer("condition")(y_test[:200])),
                                            axis=-1).mean())
by_caption = c["condition"] == "caption"
print(json.dumps({"accuracy": float(right.mean()), "spelled": float(right[~numeral].mean()) if by_caption else None,
                  "numeral": float(right[numeral].mean()) if by_caption else None, "variation": float(variation / real),
                  "g_code_norm": norm(gan.generator), "d_code_norm": norm(gan.discriminator),
                  "d_real": float(history.history["d_real"][-1]), "d_fake": float(history.history["d_fake"][-1]),
                  "seconds": seconds}))
"""


HEADER = ["| run | backend | epochs | digit read right | spelled | numeral | variation | code norm G / D | "
          "D(real) / D(fake) | seconds |", "|---|---|---|---|---|---|---|---|---|---|"]


def row(name, backend, config, r):
    if "error" in r:
        return f"| {name} | {backend} | {config['epochs']} | error: {r['error'].strip().splitlines()[-1]} | | | | | | |"
    share = lambda value: "—" if value is None else f"{value:.1%}"
    return (f"| {name} | {backend} | {config['epochs']} | {r['accuracy']:.1%} | {share(r['spelled'])} | "
            f"{share(r['numeral'])} | {r['variation']:.2f} | {r['g_code_norm']:.2f} / {r['d_code_norm']:.2f} | "
            f"{r['d_real']:.2f} / {r['d_fake']:.2f} | {r['seconds']:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="one epoch per run: checks the script only")
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--comparisons-backend", default="tensorflow")
    parser.add_argument("--no-comparisons", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    recipe = {**RECIPE, "epochs": 1} if args.quick else RECIPE
    jobs = [("the chapter's caption GAN", backend, recipe) for backend in args.backends]
    if not args.no_comparisons:
        jobs += [(name, args.comparisons_backend, {**recipe, **change}) for name, change in COMPARISONS.items()]
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
              "recipe": RECIPE, "runs": []}
    for name, backend, config in jobs:
        result = run_script(RUN, config, backend, env={"OMP_NUM_THREADS": "1"})  # one thread: no spinning on a shared CPU
        report["runs"].append({"name": name, "backend": backend, "config": config, "result": result})
        print(row(name, backend, config, result), flush=True)
        (args.out / "caption_gan.json").write_text(json.dumps(report, indent=1))
    lines = [f"# The caption-conditioned GAN on MultiDigits ({report['date']}, {report['machine']})", "", *HEADER]
    lines += [row(r["name"], r["backend"], r["config"], r["result"]) for r in report["runs"]]
    (args.out / "caption_gan.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
