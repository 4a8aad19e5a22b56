"""The VAE and its ELBO pieces on whichever backend KERAS_BACKEND selects, at small sizes: it learns, logs each term
once, saves and resumes with its optimizer state, and rejects bad input by name."""
import keras
import numpy as np
import pytest
from keras import ops

from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.data import load_digits
from mmgen_nbdev.modalities import image_decoder, image_encoder
from mmgen_nbdev.vae import (VAE, bernoulli_log_likelihood, elbo_terms, gaussian_kl, gaussian_log_density,
                             importance_weighted_bound, standard_normal_log_density)

pytestmark = pytest.mark.backends


@pytest.fixture(scope="module")
def digits():
    return load_digits("train", n=512), load_digits("test", n=128)


def small_vae(**kwargs):
    set_seed(0)
    return VAE(image_encoder((8, 8, 1), 4, kind="dense", hidden=64, gaussian=True),
               image_decoder(4, (8, 8, 1), kind="dense", hidden=64), seed=0, **kwargs)


def test_kl_matches_log_density_difference_in_expectation():
    rng = np.random.default_rng(0)
    mean, log_var = np.array([[1.0, -0.5]], "float32"), np.array([[-0.7, 0.4]], "float32")
    z = mean + np.exp(0.5 * log_var) * rng.standard_normal((100_000, 2)).astype("float32")
    mc = np.mean(ops.convert_to_numpy(gaussian_log_density(z, mean, log_var) - standard_normal_log_density(z)))
    assert float(gaussian_kl(mean, log_var)[0]) == pytest.approx(mc, abs=0.02)


def test_bernoulli_log_likelihood_is_finite_for_extreme_logits():
    x = np.array([[1.0, 0.0]], "float32")
    value = float(bernoulli_log_likelihood(x, np.array([[-80.0, 80.0]], "float32"))[0])
    assert value == pytest.approx(-160.0, abs=1e-3)


def test_importance_weighted_bound_of_equal_weights_is_the_weight():
    log_w = np.full((3, 7), -2.5, "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(importance_weighted_bound(log_w)), -2.5, atol=1e-6)


def test_elbo_terms_rejects_unknown_likelihood():
    with pytest.raises(ValueError, match="`likelihood` must be one of"):
        elbo_terms(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)), "laplace")


def test_vae_learns_and_logs_each_term_once(digits):
    train, test = digits
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = vae.evaluate(test["image"], verbose=0, return_dict=True)
    history = vae.fit(train["image"], epochs=6, batch_size=64, validation_data=test["image"], verbose=0)
    assert set(history.history) == {"loss", "reconstruction", "kl", "neg_elbo", "val_loss", "val_reconstruction",
                                    "val_kl", "val_neg_elbo"}
    after = history.history["val_neg_elbo"][-1]
    assert after < 0.8 * before["neg_elbo"]
    h = history.history
    assert h["neg_elbo"][-1] == pytest.approx(h["reconstruction"][-1] + h["kl"][-1], rel=1e-4)
    iwae = vae.importance_weighted_bound(test["image"], k=32).mean()
    elbo = vae.importance_weighted_bound(test["image"], k=1).mean()
    assert iwae > elbo and -iwae < after + 1.0


def test_kl_warmup_ramps_beta(digits):
    train, _ = digits
    vae = small_vae(beta=2.0, kl_warmup_steps=16)
    vae.compile(optimizer="adam")
    assert float(vae.kl_weight()) == pytest.approx(2.0 / 16)
    vae.fit(train["image"], epochs=1, batch_size=64, verbose=0)  # 8 steps
    assert float(vae.kl_weight()) == pytest.approx(2.0 * 9 / 16)
    vae.fit(train["image"], epochs=2, batch_size=64, verbose=0)
    assert float(vae.kl_weight()) == pytest.approx(2.0)


def test_gaussian_likelihood_learns_its_scale(digits):
    train, _ = digits
    vae = small_vae(likelihood="gaussian")
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = train["image"] * 0.5 - 0.1  # real-valued data (std ≈ 0.2) outside [0, 1] is fine for a Gaussian decoder
    vae.fit(x, epochs=5, batch_size=64, verbose=0)  # Adam moves log_scale by at most ~0.01 a step: 40 steps
    assert float(vae.log_scale) < -0.2, "the noise scale shrinks from its initial 1 towards the data's scale"


def test_save_reload_resume(tmp_path, digits):
    train, test = digits
    vae = small_vae(beta=1.5, kl_warmup_steps=10)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(train["image"], epochs=1, batch_size=64, verbose=0)
    path = tmp_path / "vae.keras"
    vae.save(path)
    back = keras.saving.load_model(path)
    assert (back.beta, back.kl_warmup_steps, back.likelihood, back.seed) == (1.5, 10, "bernoulli", 0)
    np.testing.assert_allclose(back.embed(test["image"]), vae.embed(test["image"]), atol=1e-5)
    assert int(back.optimizer.iterations) == int(vae.optimizer.iterations) == 8
    assert float(back.steps) == 8.0
    for a, b in zip(back.optimizer.variables, vae.optimizer.variables):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=1e-6)
    back.fit(train["image"], epochs=1, batch_size=64, verbose=0)
    assert int(back.optimizer.iterations) == 16


@pytest.mark.parametrize("bad,message", [
    (lambda x: x[..., 0], r"`x` must have shape \(N, 8, 8, 1\)"),
    (lambda x: x * 2, r"`x` must lie in \[0.0, 1.0\]"),
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 3, np.inf, x), "`x` holds 0 NaN and 1 infinite"),
])
def test_bad_data_named(digits, bad, message):
    train, _ = digits
    vae = small_vae()
    vae.compile(optimizer="adam")
    with pytest.raises(ValueError, match=message):
        vae.fit(bad(train["image"]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message):
        vae.evaluate(bad(train["image"]), verbose=0)


def test_bad_construction_named():
    enc = image_encoder((8, 8, 1), 2, kind="dense", gaussian=True)
    dec = image_decoder(2, (8, 8, 1), kind="dense")
    with pytest.raises(ValueError, match="`likelihood` must be one of 'bernoulli', 'gaussian'"):
        VAE(enc, dec, likelihood="poisson")
    with pytest.raises(ValueError, match="`beta` must be a finite number ≥ 0"):
        VAE(enc, dec, beta=-1)
    with pytest.raises(ValueError, match="`kl_warmup_steps` must be an integer ≥ 0"):
        VAE(enc, dec, kl_warmup_steps=1.5)
    with pytest.raises(ValueError, match="`encoder` must return two tensors"):
        VAE(image_encoder((8, 8, 1), 2, kind="dense"), dec)
    with pytest.raises(ValueError, match="`latent_dim` must be a positive integer"):
        image_encoder((8, 8, 1), 0, gaussian=True)
    vae = VAE(enc, dec)
    with pytest.raises(ValueError, match=r"`z` must have shape \(N, 2\)"):
        vae.decode(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="`n` must be a positive integer"):
        vae.generate(-2)
    with pytest.raises(ValueError, match="`seed` must be a non-negative integer"):
        vae.generate(2, seed="x")


def test_predict_returns_reconstructions(digits):
    _, test = digits
    vae = small_vae()
    vae.compile(optimizer="adam")
    out = vae.predict(test["image"], verbose=0)
    assert out.shape == test["image"].shape and 0 <= out.min() and out.max() <= 1
    np.testing.assert_allclose(out, vae.decode(vae.embed(test["image"])), atol=1e-5)


def test_dynamic_binarisation_draws_black_and_white_batches_when_training(digits, tmp_path):
    from mmgen_nbdev.vae import binarized
    train, _ = digits
    model = small_vae(binarize=True)
    seen = ops.convert_to_numpy(model(train["image"][:64], training=True)["x"])
    assert set(np.unique(seen)) <= {0.0, 1.0}
    assert abs(seen.mean() - train["image"][:64].mean()) < 0.05  # a pixel is white with probability its grey level
    np.testing.assert_array_equal(ops.convert_to_numpy(model(train["image"][:4])["x"]), train["image"][:4])
    model.compile(optimizer="adam")
    model.fit(train["image"], epochs=1, batch_size=64, verbose=0)
    model.save(tmp_path / "binary.keras")
    assert keras.saving.load_model(tmp_path / "binary.keras").binarize
    np.testing.assert_array_equal(binarized(train["image"][:8], seed=3), binarized(train["image"][:8], seed=3))
    with pytest.raises(ValueError, match="`binarize` must be True or False"):
        small_vae(likelihood="gaussian", binarize=True)
