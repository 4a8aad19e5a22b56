"""The single-modality models under bad input, on whichever backend KERAS_BACKEND selects: NumPy scalars accepted
as numbers, non-finite or out-of-range settings refused by name, a rejected call leaving the model exactly as it was
(weights, and the next valid call), saving before compile, and save → reload → resume continuing exactly where the
saved model stopped (its random state included)."""
import json

import keras
import numpy as np
import pytest
from keras import ops

from mmgen_nbdev.ae import Autoencoder
from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.data import load_digits, load_ring
from mmgen_nbdev.gan import (GAN, dcgan_discriminator, dcgan_generator, gan_optimizers, mlp_discriminator,
                             mlp_generator, mode_coverage, mode_spread)
from mmgen_nbdev.modalities import image_decoder, image_encoder
from mmgen_nbdev.vae import (VAE, bernoulli_log_likelihood, categorical_log_likelihood, gaussian_log_likelihood,
                             log_likelihood)

pytestmark = pytest.mark.backends
INF, NAN = float("inf"), float("nan")


@pytest.fixture(scope="module")
def images():
    return load_digits("train", n=128)["image"]


def networks(gaussian=False, code=3):
    return (image_encoder((8, 8, 1), code, kind="dense", hidden=16, gaussian=gaussian),
            image_decoder(code, (8, 8, 1), kind="dense", hidden=16))


def ae(**kwargs):
    set_seed(0)
    return Autoencoder(*networks(), **{"seed": 0, **kwargs})


def vae(**kwargs):
    set_seed(0)
    return VAE(*networks(gaussian=True), **{"seed": 0, **kwargs})


def gan(**kwargs):
    set_seed(0)
    return GAN(mlp_generator(2, hidden=(16,)), mlp_discriminator(hidden=(16,)), **{"seed": 0, **kwargs})


def image_gan(**kwargs):
    set_seed(0)
    return GAN(dcgan_generator(4, (8, 8, 1), filters=(8, 4)), dcgan_discriminator((8, 8, 1), filters=(4, 8)),
               value_range=(-1, 1), seed=0, **kwargs)


def weights(model):
    return [np.array(ops.convert_to_numpy(v)) for v in model.variables]


def same(a, b, atol=0.0):
    return len(a) == len(b) and all(np.allclose(x, y, atol=atol, rtol=0) for x, y in zip(a, b))


def test_numpy_scalars_are_numbers():
    models = [ae(noise_stddev=np.float32(0.1)), vae(beta=np.float32(0.5), kl_warmup_steps=np.int64(100)),
              gan(d_steps=np.int64(2), gp_weight=np.float32(5.0), loss="wasserstein_gp", seed=np.uint32(3))]
    for model in models:
        json.dumps(model.get_config())  # stored as plain Python numbers
    assert (models[1].beta, models[1].kl_warmup_steps, models[2].d_steps) == (0.5, 100, 2)
    assert float(gan_optimizers(np.float32(1e-3), steps=np.int64(10))["g_optimizer"].learning_rate) > 0


@pytest.mark.parametrize("build,kwargs,named", [
    (ae, {"noise_stddev": INF}, "noise_stddev"),
    (ae, {"noise_stddev": -0.1}, "noise_stddev"),
    (vae, {"beta": INF}, "beta"),
    (vae, {"beta": NAN}, "beta"),
    (vae, {"kl_warmup_steps": -1}, "kl_warmup_steps"),
    (vae, {"seed": 2**40}, "seed"),
    (gan, {"gp_weight": -1.0}, "gp_weight"),
    (gan, {"gp_weight": INF}, "gp_weight"),
    (gan, {"d_steps": 0}, "d_steps"),
    (gan, {"d_steps": True}, "d_steps"),
    (gan, {"value_range": (1, -1)}, "value_range"),
    (gan, {"value_range": (1, 1)}, "value_range"),
    (gan, {"value_range": (0, INF)}, "value_range"),
    (gan, {"loss": "hinge"}, "loss"),
    (gan_optimizers, {"learning_rate": INF}, "learning_rate"),
    (gan_optimizers, {"learning_rate": -1e-3}, "learning_rate"),
    (gan_optimizers, {"beta_1": 1.0}, "beta_1"),
    (gan_optimizers, {"final_fraction": NAN}, "final_fraction"),
    (gan_optimizers, {"steps": 0}, "steps"),
])
def test_bad_settings_named(build, kwargs, named):
    with pytest.raises(ValueError, match=f"`{named}` must be"):
        build(**kwargs)


@pytest.mark.parametrize("build,kwargs,named", [
    (image_encoder, {"input_shape": (8, 8, 1), "latent_dim": 2, "filters": (0, 8)}, "filters"),
    (image_encoder, {"input_shape": (8, 8, 1), "latent_dim": 2, "hidden": True}, "hidden"),
    (image_decoder, {"output_shape": (8, 8, 1), "latent_dim": 2, "hidden": 1.5}, "hidden"),
    (mlp_generator, {"latent_dim": 2, "output_dim": 0}, "output_dim"),
    (mlp_discriminator, {"hidden": (16, -1)}, "hidden"),
    (dcgan_generator, {"latent_dim": 2, "image_shape": (8, 8, 1), "filters": ()}, "filters"),
])
def test_bad_network_sizes_named(build, kwargs, named):
    with pytest.raises(ValueError, match=f"`{named}` must be"):
        build(**kwargs)


@pytest.mark.parametrize("kwargs,named", [
    ({"epochs": -1}, "epochs"), ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"), ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ({"validation_split": 1.5}, "validation_split"), ({"initial_epoch": 3, "epochs": 2}, "initial_epoch"),
])
def test_bad_loop_arguments_named_and_nothing_trained(images, kwargs, named):
    model = vae()
    model.compile(optimizer="adam")
    before = weights(model)
    with pytest.raises(ValueError, match=f"`{named}` must be"):
        model.fit(images, verbose=0, **kwargs)
    assert same(weights(model), before) and int(model.optimizer.iterations) == 0


def test_likelihoods_refuse_to_broadcast():
    x = np.zeros((4, 1), "float32")
    with pytest.raises(ValueError, match="`x` and `logits` must have the same shape"):
        bernoulli_log_likelihood(x, np.zeros((4, 8), "float32"))
    with pytest.raises(ValueError, match="`x` and `mean` must have the same shape"):
        gaussian_log_likelihood(x, np.zeros((4, 8), "float32"), 0.0)
    with pytest.raises(ValueError, match="`tokens` and `logits`"):
        categorical_log_likelihood(np.zeros((4, 5), "int32"), np.zeros((4, 6, 10), "float32"))
    with pytest.raises(ValueError, match="`likelihood` must be one of"):
        log_likelihood(x, x, "poisson")
    assert tuple(bernoulli_log_likelihood(x, x).shape) == (4,)


def test_mode_statistics_refuse_empty_or_degenerate_input():
    centres = np.eye(2)
    for call in (lambda: mode_coverage(np.zeros((0, 2)), centres, 0.1), lambda: mode_spread(np.zeros((5, 3)), centres, 0.1),
                 lambda: mode_coverage(np.zeros((5, 2)), np.zeros((0, 2)), 0.1)):
        with pytest.raises(ValueError, match="must be at least one 2-D point"):
            call()
    with pytest.raises(ValueError, match="`std` must be a finite number > 0"):
        mode_coverage(np.zeros((5, 2)), centres, 0.0)
    with pytest.raises(ValueError, match="`samples` holds 1 NaN"):
        mode_spread(np.array([[0.0, NAN]]), centres, 0.1)


def test_rejected_calls_leave_the_models_usable(images):
    """Each model meets a wrong call at every entry point, then must answer the valid call as if the wrong one had
    never happened: same weights, same outputs."""
    x = images
    model = ae()
    model.compile(optimizer="adam")
    reference = model.predict(x[:8], verbose=0)
    bad_calls = [lambda: model(x[..., 0]), lambda: model.predict(x[..., 0], verbose=0), lambda: model.fit(x * 255, verbose=0),
                 lambda: model.embed(x[:, :4]), lambda: model.decode(np.zeros((2, 5))),
                 lambda: model.evaluate(np.full_like(x, np.nan), verbose=0)]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()
    np.testing.assert_allclose(model.predict(x[:8], verbose=0), reference, atol=1e-6)
    model.fit(x, epochs=1, batch_size=64, verbose=0)

    model = vae()
    model.compile(optimizer="adam")
    reference, before = model.predict(x[:8], verbose=0), weights(model)
    for call in (lambda: model(x[..., 0]), lambda: model.predict(x[..., 0], verbose=0), lambda: model.embed(x[..., 0]),
                 lambda: model.decode(np.full((2, 3), np.inf)), lambda: model.reconstruct(x * 2),
                 lambda: model.importance_weighted_bound(x[:4], k=0)):
        with pytest.raises(ValueError):
            call()
    assert same(weights(model), before)
    np.testing.assert_allclose(model.predict(x[:8], verbose=0), reference, atol=1e-6)

    model = image_gan()
    model.compile()
    reference = model.generate(4, seed=1)
    for call in (lambda: model.predict(x * 2 - 1, verbose=0), lambda: model.discriminate(x[..., 0]),
                 lambda: model.generate(4, batch_size=0), lambda: model.fit(x[..., 0], verbose=0)):
        with pytest.raises(ValueError):
            call()
    np.testing.assert_allclose(model.generate(4, seed=1), reference, atol=1e-6)
    model.fit(x * 2 - 1, epochs=1, batch_size=64, verbose=0)


def test_gan_saves_before_compile(tmp_path):
    model = gan()
    model.save(tmp_path / "gan.keras")
    back = keras.saving.load_model(tmp_path / "gan.keras")
    assert same(weights(back.generator), weights(model.generator))
    back.compile()
    back.fit(load_ring(128)["points"], epochs=1, batch_size=64, verbose=0)


@pytest.mark.parametrize("build", [lambda: ae(noise_stddev=0.2), vae, lambda: image_gan(loss="wasserstein_gp")],
                         ids=["denoising-autoencoder", "vae", "wgan-gp"])
def test_reloaded_model_resumes_exactly(images, tmp_path, build):
    """Train an epoch, save, reload; then one more epoch of each must give the same weights: the noise, the
    reparameterisation and the gradient penalty's mixing draw from the saved random state."""
    x = images if not isinstance(build(), GAN) else images * 2 - 1
    model = build()
    model.compile(**({} if isinstance(model, GAN) else {"optimizer": "adam"}))
    model.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    model.save(tmp_path / "model.keras")
    back = keras.saving.load_model(tmp_path / "model.keras")
    for m in (model, back):
        m.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    assert same(weights(back), weights(model), atol=1e-5)


def resident_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_repeated_generation_runs_at_steady_memory(images):
    """100 calls of each way to generate and encode, after a warm-up: the process must not grow with the number of
    calls (something traced or compiled anew on every call grows it by megabytes a call: 2 MB × 500 calls)."""
    models = ae(), vae(), image_gan()
    calls = [lambda: models[0].embed(images[:8]), lambda: models[1].generate(8), lambda: models[1].embed(images[:8]),
             lambda: models[1].reconstruct(images[:8]), lambda: models[2].generate(8)]
    for call in calls * 10:
        call()
    before = resident_mb()
    for call in calls * 100:
        call()
    assert resident_mb() - before < 40, f"grew {resident_mb() - before:.0f} MB over {100 * len(calls)} calls"


class Batches(keras.utils.PyDataset):
    "Batches of `images`, the one at `bad` holding a NaN: data streamed, so no check sees them before training."

    def __init__(self, images, bad, targets=False):
        super().__init__()
        self.images, self.bad, self.targets = images, bad, targets

    def __len__(self):
        return len(self.images) // 16

    def __getitem__(self, index):
        batch = self.images[index * 16:(index + 1) * 16].copy()
        if index == self.bad:
            batch[0, 0] = np.nan
        return (batch, batch) if self.targets else batch


@pytest.mark.parametrize("build", [ae, vae, image_gan], ids=["autoencoder", "vae", "gan"])
def test_streamed_nan_stops_training_at_its_batch(images, build):
    model = build()
    model.compile(**({} if isinstance(model, GAN) else {"optimizer": "adam"}))
    data = images * 2 - 1 if isinstance(model, GAN) else images
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 4\b"):
        model.fit(Batches(data, bad=3), epochs=2, shuffle=False, verbose=0)  # batch order as written
