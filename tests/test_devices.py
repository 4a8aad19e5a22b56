"""Training on more than one device and in mixed precision (nbs/08c_devices.ipynb).

Data parallelism runs in fresh JAX processes that see several virtual CPU devices (XLA_FLAGS), whatever backend
runs pytest: every model trains on four devices with the losses of one device, saves and reloads, keeps the live
dashboard working and refuses a batch that does not divide; two processes joined by keras.distribution.initialize
match one process. They fail, not skip, when the devices are missing. TensorFlow's MirroredStrategy and
PyTorch's missing distribution support are checked in fresh processes of their own. Mixed precision is checked
in-process on the running backend (run again on JAX and PyTorch by `pytest -m backends`)."""
import keras
import numpy as np
import pytest

from mmgen_nbdev.backend import backend_name, set_seed
from mmgen_nbdev.workers import run_script
from mmgen_nbdev.data import load_digits, load_multidigits, multidigits_vocabulary
from mmgen_nbdev.devices import POLICIES, losses_under_policies, on_virtual_devices, run_processes
from mmgen_nbdev.ae import Autoencoder
from mmgen_nbdev.contrastive import ContrastiveEncoder
from mmgen_nbdev.fusion import MultimodalVAE
from mmgen_nbdev.gan import GAN, dcgan_discriminator, dcgan_generator, mlp_discriminator, mlp_generator
from mmgen_nbdev.modalities import (audio_decoder, audio_encoder, image_decoder, image_encoder, text_decoder,
                                    text_encoder)
from mmgen_nbdev.vae import VAE

# The models, small, with the data each trains on: shared by the worker processes (as source) and the tests.
ZOO = '''
import numpy as np, keras
from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.data import load_digits, load_multidigits, multidigits_vocabulary
from mmgen_nbdev.ae import Autoencoder
from mmgen_nbdev.contrastive import ContrastiveEncoder
from mmgen_nbdev.fusion import MultimodalVAE
from mmgen_nbdev.gan import GAN, dcgan_discriminator, dcgan_generator
from mmgen_nbdev.modalities import audio_decoder, audio_encoder, image_decoder, image_encoder, text_decoder, text_encoder
from mmgen_nbdev.vae import VAE

DIGITS = load_digits("train", n=256)
TRIPLES = load_multidigits("train", n=128)
WORDS = len(multidigits_vocabulary())
IMAGES = DIGITS["image"]
CAPTIONS = {"image": TRIPLES["image"] * 2 - 1, "text": TRIPLES["text"]}

def dense_pair(code, gaussian=False):
    return image_encoder((8, 8, 1), code, "dense", hidden=16, gaussian=gaussian), image_decoder(code, (8, 8, 1), "dense", hidden=16)

def ae():
    set_seed(0); model = Autoencoder(*dense_pair(3), seed=0); model.compile(optimizer="adam")
    return model, (IMAGES,), lambda m: m.reconstruct(IMAGES[:10])

def vae():
    set_seed(0); model = VAE(*dense_pair(3, gaussian=True), seed=0); model.compile(optimizer="adam")
    return model, (IMAGES,), lambda m: m.generate(10, seed=1)

def gan(loss="non_saturating", condition=None):
    given = {"labels": {"num_classes": 10}, "captions": {"caption": (6, WORDS)}, None: {}}[condition]
    set_seed(0)
    model = GAN(dcgan_generator(4, (8 if condition != "captions" else 16,) * 2 + (1,), filters=(8, 4), **given),
                dcgan_discriminator((8 if condition != "captions" else 16,) * 2 + (1,), filters=(4, 8), **given),
                value_range=(-1, 1), seed=0, loss=loss)
    model.compile()
    if condition == "labels":
        return model, (IMAGES * 2 - 1, DIGITS["label"]), lambda m: m.generate(10, labels=np.arange(10), seed=1)
    if condition == "captions":
        return model, (CAPTIONS["image"], CAPTIONS["text"]), lambda m: m.generate(10, captions=CAPTIONS["text"][:10], seed=1)
    return model, (IMAGES * 2 - 1,), lambda m: m.generate(10, seed=1)

def multimodal(fusion, missing=False):
    set_seed(0)
    encoders = {"image": image_encoder((16, 16, 1), 4, "dense", hidden=16, gaussian=True),
                "text": text_encoder(6, WORDS, 4, width=8, hidden=16, gaussian=True),
                "audio": audio_encoder((32, 32), 4, "dense", hidden=16, gaussian=True)}
    decoders = {"image": image_decoder(4, (16, 16, 1), "dense", hidden=16),
                "text": text_decoder(4, 6, WORDS, "parallel", width=8, hidden=16),
                "audio": audio_decoder(4, (32, 32), "dense", hidden=16)}
    model = MultimodalVAE(encoders, decoders, {"image": "bernoulli", "text": "categorical", "audio": "gaussian"},
                          fusion=fusion, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = {m: TRIPLES[m] for m in ("image", "text", "audio")}
    if missing:
        n = len(x["image"])
        x["present"] = {"text": (np.arange(n) % 2).astype("float32"), "audio": (np.arange(n) % 4 > 0).astype("float32")}
    return model, (x,), lambda m: m.posterior({k: TRIPLES[k][:10] for k in ("image", "text", "audio")})[0]

def contrastive():
    set_seed(0)
    model = ContrastiveEncoder({"image": image_encoder((16, 16, 1), 8, "dense", hidden=16),
                                "text": text_encoder(6, WORDS, 8, width=8, hidden=16)})
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    return model, ({"image": TRIPLES["image"], "text": TRIPLES["text"]},), lambda m: m.embed({"text": TRIPLES["text"][:10]})

MODELS = {"autoencoder": ae, "vae": vae, "gan": gan, "gan_minimax": lambda: gan("minimax"),
          "wgan_gp": lambda: gan("wasserstein_gp"), "gan_labels": lambda: gan(condition="labels"),
          "gan_captions": lambda: gan(condition="captions"),
          **{f"mvae_{f}": (lambda f=f: lambda: multimodal(f))() for f in ("concat", "poe", "moe", "mopoe")},
          **{f"mvae_{f}_missing": (lambda f=f: lambda: multimodal(f, True))() for f in ("poe", "moe", "mopoe")},
          "contrastive": contrastive}
'''

FOUR_DEVICES = ZOO + '''
import json, sys, tempfile
from pathlib import Path
from mmgen_nbdev.dashboard import TrainingDashboard
from mmgen_nbdev.devices import data_parallel

folder, report = Path(tempfile.mkdtemp()), {"devices": len(keras.distribution.list_devices()), "models": {}}
last = lambda history: {key: float(values[-1]) for key, values in history.items()}
for name, build in MODELS.items():
    model, data, probe = build()
    one = model.fit(*data, batch_size=32, shuffle=False, verbose=0).history
    with data_parallel().scope():
        model, data, probe = build()
        four = model.fit(*data, batch_size=32, shuffle=False, verbose=0).history
        model.save(folder / f"{name}.keras")
        loaded = keras.saving.load_model(folder / f"{name}.keras")
        before, after = np.asarray(probe(model)), np.asarray(probe(loaded))
        resumed = loaded.fit(*data, batch_size=32, shuffle=False, verbose=0).history
    report["models"][name] = {"one": last(one), "four": last(four), "probe": list(before.shape),
                              "reloaded_gap": float(np.max(np.abs(before - after))),
                              "resumed_finite": bool(all(np.isfinite(v).all() for v in resumed.values()))}

with data_parallel().scope():
    model, data, _ = vae()
    weights = [np.array(v) for v in model.get_weights()]
    refusals = {}
    for case, call in {"batch of 66": lambda: model.fit(IMAGES, batch_size=66, verbose=0),
                       "250 samples": lambda: model.fit(IMAGES[:250], batch_size=64, verbose=0),
                       "validation split": lambda: model.fit(IMAGES, batch_size=64, validation_split=0.1, verbose=0),
                       "evaluate 250": lambda: model.evaluate(IMAGES[:250], batch_size=64, verbose=0),
                       "predict batch 30": lambda: model.predict(IMAGES, batch_size=30, verbose=0)}.items():
        try:
            call()
            refusals[case] = None
        except ValueError as error:
            refusals[case] = str(error)
    report["refusals"] = refusals
    report["untouched"] = all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    dashboard = TrainingDashboard(IMAGES, DIGITS["label"], every_seconds=0, output="png", folder=folder / "frames")
    model.fit(IMAGES, epochs=2, batch_size=64, verbose=0, callbacks=[dashboard])
    listing = json.loads((folder / "frames" / "frames.json").read_text())
    report["dashboard"] = {"epochs": [e["epoch"] for e in listing], "panels": sorted(listing[-1]["files"]),
                           "pngs": all((folder / "frames" / f).read_bytes().startswith(b"\\x89PNG")
                                       for e in listing for f in e["files"].values())}
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def four_devices():
    report = on_virtual_devices(FOUR_DEVICES, devices=4, timeout=1200)
    assert "error" not in report, report["error"]
    return report


def test_the_worker_sees_four_devices(four_devices):
    assert four_devices["devices"] == 4, "XLA_FLAGS=--xla_force_host_platform_device_count=4 gave no four devices"


@pytest.mark.parametrize("name", ["autoencoder", "vae", "gan", "gan_minimax", "wgan_gp", "gan_labels", "gan_captions",
                                  "mvae_concat", "mvae_poe", "mvae_moe", "mvae_mopoe", "mvae_poe_missing",
                                  "mvae_moe_missing", "mvae_mopoe_missing", "contrastive"])
def test_every_model_trains_on_four_devices_as_on_one(four_devices, name):
    result = four_devices["models"][name]
    assert result["one"].keys() == result["four"].keys()
    for key, one in result["one"].items():  # float32 sums in another order: rounding only
        assert result["four"][key] == pytest.approx(one, rel=1e-3, abs=1e-4), (key, result)
    assert result["probe"][0] == 10  # 10 samples on 4 devices: predict pads and trims
    assert result["reloaded_gap"] < 1e-5 and result["resumed_finite"], result


def test_a_batch_that_does_not_divide_is_refused_by_name_before_training(four_devices):
    refusals = four_devices["refusals"]
    assert "batch_size" in refusals["batch of 66"] and "66" in refusals["batch of 66"] and "4 devices" in refusals["batch of 66"]
    assert "250 samples" in refusals["250 samples"] and "last batch of 58" in refusals["250 samples"]
    assert "4 devices" in refusals["validation split"]  # 256 · 0.9 → 230 training samples: a last batch of 38
    assert "last batch of 58" in refusals["evaluate 250"]
    assert "30" in refusals["predict batch 30"] and "4 devices" in refusals["predict batch 30"]
    assert four_devices["untouched"]


def test_the_live_dashboard_draws_while_four_devices_train(four_devices):
    dashboard = four_devices["dashboard"]
    assert dashboard["epochs"] == [0, 1, 2] and dashboard["pngs"]
    assert dashboard["panels"] == ["curves", "latent", "reconstructions", "samples"]


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_two_processes_train_as_one(model):
    two = run_processes(model, processes=2, cpu_devices=2, timeout=600)
    one = run_processes(model, processes=1, cpu_devices=1, timeout=600)[0]
    for report in two + [one]:
        assert "error" not in report, report["error"]
    assert [(r["processes"], r["process"], r["devices"]) for r in two] == [(2, 0, 4), (2, 1, 4)]
    for report in two:
        for key, values in one["logs"].items():
            assert report["logs"][key][-1] == pytest.approx(values[-1], rel=1e-4, abs=1e-5), (key, report, one)


TENSORFLOW = ZOO + '''
import json
import tensorflow as tf
from mmgen_nbdev.devices import data_parallel
report = {"replicas": None, "models": {}}
for name in ("autoencoder", "vae", "mvae_mopoe", "contrastive", "gan"):
    model, data, _ = MODELS[name]()
    one = model.fit(*data, batch_size=32, shuffle=False, verbose=0).history
    strategy = data_parallel(2)
    report["same strategy"] = strategy is data_parallel(2)
    report["replicas"] = strategy.num_replicas_in_sync
    try:
        with strategy.scope():
            model, data, _ = MODELS[name]()
            two = model.fit(*data, batch_size=32, shuffle=False, verbose=0).history
        report["models"][name] = {key: [float(one[key][-1]), float(two[key][-1])] for key in one}
    except RuntimeError as error:
        report["models"][name] = {"refused": str(error)}
print(json.dumps(report))
'''
SPLIT_CPU = "import tensorflow as tf\ncpu = tf.config.list_physical_devices('CPU')[0]\n" \
            "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"


def test_tensorflow_mirrored_strategy_trains_the_autoencoder_and_the_vaes_and_the_others_refuse():
    """The autoencoder matches one device to rounding; the VAEs in expectation (each replica draws its share of the
    noise from the same seed), so within 5 %; the GAN and the contrastive encoder refuse, saying why."""
    report = run_script(SPLIT_CPU + TENSORFLOW, None, "tensorflow", timeout=600)
    assert "error" not in report, report["error"]
    assert report["replicas"] == 2 and report["same strategy"]
    for key, (one, two) in report["models"]["autoencoder"].items():
        assert two == pytest.approx(one, rel=1e-4), (key, one, two)
    for name in ("vae", "mvae_mopoe"):
        for key in ("loss", "neg_elbo"):
            one, two = report["models"][name][key]
            assert two == pytest.approx(one, rel=0.05), (name, key, one, two)
    assert "keras-team/keras#20164" in report["models"]["gan"]["refused"]
    assert "InfoNCE" in report["models"]["contrastive"]["refused"]


def test_pytorch_says_it_has_no_distribution_support():
    script = ("import json\nfrom mmgen_nbdev.devices import data_parallel\ntry:\n    data_parallel()\n"
              "except RuntimeError as error:\n    print(json.dumps({'refused': str(error)}))\n")
    report = run_script(script, None, "torch", timeout=300)
    assert "error" not in report, report["error"]
    assert "PyTorch" in report["refused"] and "KERAS_BACKEND=jax" in report["refused"]


# ----------------------------------------------------------------------------------------------- mixed precision
WORDS = len(multidigits_vocabulary())
DIGITS, TRIPLES = load_digits("train", n=64), load_multidigits("train", n=64)


def _conv_vae():
    set_seed(0)
    model = VAE(image_encoder((8, 8, 1), 3, filters=(8, 16), hidden=16, gaussian=True),
                image_decoder(3, (8, 8, 1), filters=(16, 8), hidden=16), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    return model, (DIGITS["image"],)


def _dense_ae():
    set_seed(0)
    model = Autoencoder(image_encoder((8, 8, 1), 3, "dense", hidden=16), image_decoder(3, (8, 8, 1), "dense", hidden=16),
                        seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    return model, (DIGITS["image"],)


def _gan(loss, conv=False):
    set_seed(0)
    if conv:
        model = GAN(dcgan_generator(4, (8, 8, 1), filters=(8, 4), num_classes=10),
                    dcgan_discriminator((8, 8, 1), filters=(4, 8), num_classes=10), value_range=(-1, 1), seed=0,
                    loss=loss)
        data = (DIGITS["image"] * 2 - 1, DIGITS["label"])
    else:
        model = GAN(mlp_generator(2, hidden=(16,)), mlp_discriminator(hidden=(16,)), seed=0, loss=loss)
        data = (np.random.default_rng(0).normal(size=(64, 2)).astype("float32"),)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    if isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer):
        # a scale at which no step overflows, so that every step is compared (the players may skip different
        # steps: test_the_gans_players_share_one_loss_scale_under_float16 checks the skipping)
        model.optimizer.dynamic_scale.assign(2.0 ** 8)
    return model, data


def _mopoe():
    set_seed(0)
    model = MultimodalVAE({"image": image_encoder((16, 16, 1), 4, "dense", hidden=16, gaussian=True),
                           "text": text_encoder(6, WORDS, 4, width=8, hidden=16, gaussian=True)},
                          {"image": image_decoder(4, (16, 16, 1), "dense", hidden=16),
                           "text": text_decoder(4, 6, WORDS, "parallel", width=8, hidden=16)},
                          {"image": "bernoulli", "text": "categorical"}, fusion="mopoe", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, ({"image": TRIPLES["image"], "text": TRIPLES["text"]},)


def _contrastive():
    set_seed(0)
    model = ContrastiveEncoder({"image": image_encoder((16, 16, 1), 8, "dense", hidden=16),
                                "text": text_encoder(6, WORDS, 8, width=8, hidden=16)})
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    return model, ({"image": TRIPLES["image"], "text": TRIPLES["text"]},)


MIXED = {"conv_vae": (_conv_vae, "neg_elbo", True), "dense_ae": (_dense_ae, "loss", False),
         "gan": (lambda: _gan("non_saturating"), "d_loss", False),
         "wgan_gp": (lambda: _gan("wasserstein_gp"), "d_loss", False),
         "conv_gan_labels": (lambda: _gan("non_saturating", conv=True), "g_loss", True),
         "mopoe": (_mopoe, "neg_elbo", True), "contrastive": (_contrastive, "loss", True)}  # text: Conv1D


@pytest.mark.backends
@pytest.mark.parametrize("name", list(MIXED))
def test_mixed_precision_losses_agree_with_float32(name):
    """After the steps that updated the weights (mixed_float16 skips its first ones while the loss scale falls), the
    16-bit runs' losses stay within a share of the first float32 loss (at least 1) of float32's: 2 % for float16
    (11 significant bits), 5 % for bfloat16 (8 significant bits), and 5 % for WGAN-GP under either (its gradient
    penalty differentiates the 16-bit critic's input gradient: one step differed by 2.4 % on JAX)."""
    build, key, convolutions = MIXED[name]
    policies = POLICIES
    if backend_name() == "torch" and convolutions:  # PyTorch's CPU kernels: no float16 convolution gradients
        policies = ("float32", "mixed_bfloat16")
        keras.config.set_dtype_policy("mixed_float16")
        try:
            model, data = build()
            with pytest.raises(RuntimeError, match="mixed_float16"):
                model.fit(*data, epochs=1, verbose=0)
        finally:
            keras.config.set_dtype_policy("float32")
    losses = losses_under_policies(build, steps=10, policies=policies, key=key)
    common = min(map(len, losses.values()))
    assert common >= 4, {p: len(v) for p, v in losses.items()}
    scale = max(abs(losses["float32"][0]), 1.0)
    for policy in policies[1:]:
        tolerance = (0.05 if name == "wgan_gp" else {"mixed_float16": 0.02, "mixed_bfloat16": 0.05}[policy]) * scale
        np.testing.assert_allclose(losses[policy][:common], losses["float32"][:common], atol=tolerance, rtol=0,
                                   err_msg=policy)


@pytest.mark.backends
def test_the_gans_players_share_one_loss_scale_under_float16():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model, data = _gan("non_saturating")
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        # a loss scale so large that the first gradients overflow float16: those steps are skipped, not applied
        model.optimizer.dynamic_scale.assign(2.0 ** 40)
        weights = [np.array(w) for w in model.get_weights()]
        model.fit(*data, epochs=1, batch_size=64, verbose=0)
        assert float(model.optimizer.dynamic_scale.numpy()) == 2.0 ** 38  # one step: each player's step halves it
        assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
        model.fit(*data, epochs=30, batch_size=64, verbose=0)  # the scale falls until steps go through
        assert not all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    finally:
        keras.config.set_dtype_policy("float32")
