"""One test walks every model through the model protocol (modalities.ModelProtocol, "The model protocol" in the
modalities chapter): the same names, NumPy return types and shapes, and the same samples for the same seed."""
import keras
import numpy as np
import pytest

from mmgen_nbdev.ae import Autoencoder
from mmgen_nbdev.contrastive import ContrastiveEncoder
from mmgen_nbdev.fusion import MultimodalVAE
from mmgen_nbdev.gan import GAN, mlp_discriminator, mlp_generator
from mmgen_nbdev.modalities import (PROTOCOL, ModelProtocol, image_decoder, image_encoder, text_decoder,
                                    text_encoder)
from mmgen_nbdev.vae import VAE

pytestmark = pytest.mark.backends
N, LATENT = 5, 2
rng = np.random.default_rng(0)
IMAGES = rng.uniform(size=(N, 8, 8, 1)).astype("float32")
TOKENS = rng.integers(1, 5, size=(N, 4)).astype("int32")


def image_pair(gaussian):
    return (image_encoder((8, 8, 1), LATENT, "dense", hidden=16, gaussian=gaussian),
            image_decoder(LATENT, (8, 8, 1), "dense", hidden=16))


def text_pair(gaussian):
    return (text_encoder(4, 5, LATENT, width=8, hidden=16, gaussian=gaussian),
            text_decoder(LATENT, 4, 5, kind="parallel", width=8, hidden=16))


def multimodal():
    (ie, idec), (te, tdec) = image_pair(True), text_pair(True)
    return MultimodalVAE({"image": ie, "text": te}, {"image": idec, "text": tdec},
                         {"image": "bernoulli", "text": "categorical"}, fusion="mopoe", seed=0)


# name: (build, input for embed/posterior/reconstruct, condition for decode/generate, shape of one decoded sample)
MODELS = {
    "autoencoder": (lambda: Autoencoder(*image_pair(False), seed=0), IMAGES, {}, (8, 8, 1)),
    "vae": (lambda: VAE(*image_pair(True), seed=0), IMAGES, {}, (8, 8, 1)),
    "gan": (lambda: GAN(mlp_generator(LATENT, 3, hidden=(8,)), mlp_discriminator(3, hidden=(8,)), seed=0),
            None, {}, (3,)),
    "conditional-gan": (lambda: GAN(mlp_generator(LATENT, 3, hidden=(8,), num_classes=4),
                                    mlp_discriminator(3, hidden=(8,), num_classes=4), seed=0),
                        None, {"labels": np.arange(N) % 4}, (3,)),
    "multimodal-vae": (multimodal, {"image": IMAGES, "text": TOKENS}, {}, {"image": (8, 8, 1), "text": (4,)}),
    "contrastive": (lambda: ContrastiveEncoder({"image": image_pair(False)[0], "text": text_pair(False)[0]}),
                    {"image": IMAGES}, {}, None),
}


def rows(value):
    "The shape of an array, or of each array of a dict, as one tree of tuples."
    return {k: v.shape for k, v in value.items()} if isinstance(value, dict) else value.shape


def assert_numpy(value):
    for v in (value.values() if isinstance(value, dict) else [value]):
        assert type(v) is np.ndarray, type(v)


def expected(sample_shape, n):
    if isinstance(sample_shape, dict):
        return {m: (n, *s) for m, s in sample_shape.items()}
    return (n, *sample_shape)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_follows_the_protocol(name):
    build, x, condition, sample_shape = MODELS[name]
    model = build()
    assert isinstance(model, ModelProtocol)
    assert set(model.offers) <= set(PROTOCOL) and model.offers
    assert isinstance(model.latent_dim, int) and model.latent_dim > 0
    assert isinstance(model.modalities, tuple) and bool(model.modalities) == isinstance(x, dict)
    for method in PROTOCOL:
        assert model.can(method) == (method in model.offers)
        if method not in model.offers:
            with pytest.raises(NotImplementedError, match=f"has no `{method}`"):
                getattr(model, method)(x if method != "generate" else N)

    if model.can("embed"):
        codes = model.embed(x)
        assert_numpy(codes)
        assert codes.shape == (N, model.latent_dim)
        np.testing.assert_allclose(model.embed(x), codes, atol=1e-6)
    if model.can("posterior"):
        mean, log_var = model.posterior(x)
        assert_numpy(mean), assert_numpy(log_var)
        assert mean.shape == log_var.shape == (N, model.latent_dim)
        np.testing.assert_allclose(mean, model.embed(x), atol=1e-5)
    z = rng.standard_normal((N, model.latent_dim)).astype("float32")
    if model.can("decode"):
        decoded = model.decode(z, **condition)
        assert_numpy(decoded)
        assert rows(decoded) == expected(sample_shape, N)
    if model.can("reconstruct"):
        reconstruction = model.reconstruct(x)
        assert_numpy(reconstruction)
        assert rows(reconstruction) == expected(sample_shape, N)
        if not model.modalities:
            np.testing.assert_allclose(reconstruction, model.decode(model.embed(x)), atol=1e-5)
    if model.can("generate"):
        samples = model.generate(N, seed=3, **condition)
        assert_numpy(samples)
        assert rows(samples) == expected(sample_shape, N)
        again, other = model.generate(N, seed=3, **condition), model.generate(N, seed=4, **condition)
        for a, b, c in ((samples, again, other),) if not isinstance(samples, dict) else \
                [(samples[m], again[m], other[m]) for m in samples]:
            np.testing.assert_allclose(a, b, atol=1e-6)
        first = samples if not isinstance(samples, dict) else samples[model.modalities[0]]
        assert not np.allclose(first, other if not isinstance(other, dict) else other[model.modalities[0]])


def test_old_names_warn_and_answer_as_before():
    vae, ae = VAE(*image_pair(True), seed=0), Autoencoder(*image_pair(False), seed=0)
    with pytest.warns(DeprecationWarning, match="use `generate`"):
        np.testing.assert_allclose(vae.sample(3, seed=1), vae.generate(3, seed=1), atol=1e-6)
    with pytest.warns(DeprecationWarning, match="use `posterior`"):
        mean, _ = vae.encode(IMAGES)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mean), vae.embed(IMAGES), atol=1e-6)
    with pytest.warns(DeprecationWarning, match="use `embed`"):
        np.testing.assert_allclose(ae.encode(IMAGES), ae.embed(IMAGES), atol=1e-6)
