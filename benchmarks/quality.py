"""Quality bars for the corrected models, run by hand (not a test): ours against a plain-Keras reference of the same
architecture, written the way the keras.io examples write their VAE and DCGAN (a custom TensorFlow train_step with
tf.GradientTape), in the same run, on the same data, at equal epochs; and the 8-Gaussian ring on every installed
backend (the recipe of benchmarks/ring.py, which also holds the diagnosis). Writes quality.json and quality.md into
--out.

    python benchmarks/quality.py --out benchmark-out            # about 6 minutes on a 2-core CPU, plus the ring
    python benchmarks/quality.py --out benchmark-out --quick    # a smoke run
    python benchmarks/quality.py --out benchmark-out --parts gan --gan-seeds 0 1 2   # the GANs, three seeds
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from mmgen_nbdev.backend import set_seed  # noqa: E402
from mmgen_nbdev.bench.references import ReferenceGAN, ReferenceVAE  # noqa: E402  (the keras.io-style references)
from mmgen_nbdev.bench.turns import EpochGate, run_script  # noqa: E402
from mmgen_nbdev.data import load_digits  # noqa: E402
from mmgen_nbdev.gan import GAN, dcgan_discriminator, dcgan_generator  # noqa: E402
from mmgen_nbdev.metrics import digit_classifier, digit_frechet_distance, iwae_nll, precision_recall  # noqa: E402
from mmgen_nbdev.modalities import image_decoder, image_encoder  # noqa: E402
from mmgen_nbdev.vae import VAE  # noqa: E402


# ---- the comparisons -------------------------------------------------------------------------------------------------
def vae_networks():
    return image_encoder((16, 16, 1), 2, gaussian=True), image_decoder(2, (16, 16, 1))


def compare_vae(train, test, epochs):
    "Ours and the reference, same networks and data; evaluated by the same code (our ELBO and IWAE)."
    results = {}
    for name in ("ours", "reference"):
        set_seed(0)
        encoder, decoder = vae_networks()
        epochs_timed = []
        timer = EpochGate(lambda: None, epochs_timed.append)  # never waits: it only times each epoch
        if name == "ours":
            model = VAE(encoder, decoder, seed=0)
            model.compile(optimizer=keras.optimizers.Adam(2e-3))
            model.fit(train, epochs=epochs, batch_size=64, verbose=0, callbacks=[timer])
            evaluator = model
        else:
            model = ReferenceVAE(encoder, decoder)
            model.compile(optimizer=keras.optimizers.Adam(2e-3))
            model.fit(train, epochs=epochs, batch_size=64, verbose=0, callbacks=[timer])
            evaluator = VAE(encoder, decoder, seed=0)  # shares the trained networks; evaluates them identically
            evaluator.compile()
        results[name] = {
            "test_neg_elbo": float(evaluator.evaluate(test, verbose=0, return_dict=True)["neg_elbo"]),
            "test_nll_iwae64": iwae_nll(evaluator, test, k=64),
            "seconds_per_epoch": float(np.median([e["seconds"] for e in epochs_timed[1:]])),
        }
    return results


def gan_networks():
    return dcgan_generator(32, (16, 16, 1)), dcgan_discriminator((16, 16, 1))


def compare_gan(train, test, epochs, seed=0):
    "Ours (non-saturating, logits) and the reference, same networks, optimizers, data and `seed`."
    classifier, extractor = digit_classifier(16)
    real_features = extractor.predict(test, verbose=0)
    results = {}
    for name in ("ours", "reference"):
        set_seed(seed)
        generator, discriminator = gan_networks()
        epochs_timed = []
        timer = EpochGate(lambda: None, epochs_timed.append)  # never waits: it only times each epoch
        optimizers = dict(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                          g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        if name == "ours":
            model = GAN(generator, discriminator, value_range=(-1, 1), seed=seed)
            model.compile(**optimizers)
        else:
            model = ReferenceGAN(discriminator, generator, 32)
            model.compile(loss_fn=keras.losses.BinaryCrossentropy(), **optimizers)
        model.fit(train * 2 - 1, epochs=epochs, batch_size=64, verbose=0, callbacks=[timer])
        z = np.random.default_rng(1).standard_normal((1000, 32)).astype("float32")
        samples = (ops.convert_to_numpy(generator(z, training=False)) + 1) / 2
        probabilities = ops.convert_to_numpy(ops.softmax(classifier.predict(samples, verbose=0)))
        precision, recall = precision_recall(real_features, extractor.predict(samples, verbose=0))
        results[name] = {
            "frechet_distance": digit_frechet_distance(test, samples),
            "precision": precision, "recall": recall,
            "classifier_confidence": float(probabilities.max(-1).mean()),
            "digits_covered": int(len(np.unique(probabilities.argmax(-1)))),
            "seconds_per_epoch": float(np.median([e["seconds"] for e in epochs_timed[1:]])),
        }
    return results


def ring_on_backends(quick):
    "The 8-Gaussian ring at std 0.02 with the chapter's recipe (benchmarks/ring.py) on every backend, seed 0."
    sys.path.insert(0, str(Path(__file__).parent))
    from ring import RECIPE, RUN
    config = {**RECIPE, "steps": 300} if quick else RECIPE
    one_thread = {"OMP_NUM_THREADS": "1"}  # the numbers do not depend on it; on a shared CPU more threads only spin
    return {backend: {**run_script(RUN, config, backend, env=one_thread), "steps": config["steps"]}
            for backend in ("tensorflow", "jax", "torch")}


def markdown(report):
    lines = [f"# Quality bars ({report['date']}, {report['machine']})", "",
             f"VAE and GAN on the 16×16 digits, {report['epochs_vae']} and {report['epochs_gan']} epochs, TensorFlow backend.", "",
             "| model | metric | ours | keras.io-style reference |", "|---|---|---|---|"]
    for model in [m for m in ("vae", "gan") if m in report]:
        seeds = f" (mean of seeds {', '.join(map(str, report['gan_seeds']))})" if model == "gan" else ""
        ours, ref = report[model]["ours"], report[model]["reference"]
        for metric in ours:
            lines.append(f"| {model}{seeds} | {metric} | {ours[metric]:.4g} | {ref[metric]:.4g} |")
    if len(report.get("gan_seeds", {})) > 1:
        metrics = list(next(iter(report["gan_seeds"].values()))["ours"])
        lines += ["", "GAN, seed by seed (ours / reference):", "", "| seed | " + " | ".join(metrics) + " |",
                  "|---" * (len(metrics) + 1) + "|"]
        for seed, run in report["gan_seeds"].items():
            lines.append(f"| {seed} | " + " | ".join(f"{run['ours'][m]:.4g} / {run['reference'][m]:.4g}"
                                                     for m in metrics) + " |")
    if "ring" in report:
        lines += ["", "8-Gaussian ring, std 0.02, the GAN chapter's recipe (benchmarks/ring.py has the diagnosis and "
                  "more seeds):", "", "| backend | modes | within 3σ | spread (σ) | steps | seconds |",
                  "|---|---|---|---|---|---|"]
        for backend, r in report["ring"].items():
            if "error" in r:
                lines.append(f"| {backend} | error: {r['error'].strip().splitlines()[-1]} | | | | |")
            else:
                lines.append(f"| {backend} | {r['modes_covered']}/8 | {r['within_3_std']:.1%} | {r['spread']:.2f} | "
                             f"{r['steps']} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def mean_over_seeds(per_seed):
    "Each implementation's metrics averaged over the seeds of `per_seed` ({seed: {implementation: {metric: value}}})."
    runs = list(per_seed.values())
    return {name: {metric: float(np.mean([run[name][metric] for run in runs])) for metric in runs[0][name]}
            for name in runs[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gan-seeds", nargs="+", type=int, default=[0],
                        help="train both GANs once per seed; the table gives each seed and the mean")
    parser.add_argument("--parts", nargs="+", choices=("vae", "gan", "ring"), default=["vae", "gan", "ring"])
    args = parser.parse_args()
    if keras.backend.backend() != "tensorflow":
        sys.exit("the references use tf.GradientTape, as the keras.io examples do: run with KERAS_BACKEND=tensorflow")
    args.out.mkdir(parents=True, exist_ok=True)
    train, test = load_digits("train", image_size=16)["image"], load_digits("test", image_size=16)["image"]
    epochs_vae, epochs_gan = (3, 2) if args.quick else (40, 25)
    import platform
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
              "epochs_vae": epochs_vae, "epochs_gan": epochs_gan}
    if "vae" in args.parts:
        print("VAE: ours vs reference", flush=True)
        report["vae"] = compare_vae(train, test, epochs_vae)
    if "gan" in args.parts:
        report["gan_seeds"] = {}
        for seed in args.gan_seeds:
            print(f"GAN: ours vs reference, seed {seed}", flush=True)
            report["gan_seeds"][seed] = compare_gan(train, test, epochs_gan, seed)
        report["gan"] = mean_over_seeds(report["gan_seeds"])
    if "ring" in args.parts:
        print("ring on every backend", flush=True)
        report["ring"] = ring_on_backends(args.quick)
    (args.out / "quality.json").write_text(json.dumps(report, indent=1))
    (args.out / "quality.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
