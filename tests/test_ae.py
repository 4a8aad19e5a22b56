"""The autoencoder on whichever backend KERAS_BACKEND selects: it learns through a bottleneck, denoises, saves and
reloads, and rejects bad input by name."""
import keras
import numpy as np
import pytest

from mmgen_nbdev.ae import Autoencoder
from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.data import load_digits
from mmgen_nbdev.modalities import image_decoder, image_encoder

pytestmark = pytest.mark.backends


@pytest.fixture(scope="module")
def digits():
    return load_digits("train", n=512), load_digits("test", n=128)


def small_ae(kind="dense", size=8, **kwargs):
    set_seed(0)
    return Autoencoder(image_encoder((size, size, 1), 6, kind=kind, hidden=64),
                       image_decoder(6, (size, size, 1), kind=kind, hidden=64), seed=0, **kwargs)


def test_learns_and_predicts_images(digits):
    train, test = digits
    ae = small_ae()
    ae.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = ae.evaluate(test["image"], verbose=0, return_dict=True)["reconstruction"]
    history = ae.fit(train["image"], epochs=8, batch_size=64, verbose=0)
    assert set(history.history) == {"loss", "reconstruction"}
    after = ae.evaluate(test["image"], verbose=0, return_dict=True)["reconstruction"]
    assert after < 0.8 * before
    out = ae.predict(test["image"], verbose=0)
    assert out.shape == test["image"].shape and 0 <= out.min() and out.max() <= 1
    assert np.mean((out - test["image"]) ** 2) < np.mean((train["image"].mean(0) - test["image"]) ** 2)


def test_conv_and_mse_variants_train(digits):
    train, _ = digits
    x = load_digits("train", n=256, image_size=16)["image"]
    ae = small_ae(kind="conv", size=16, loss="mse")
    ae.compile(optimizer="adam")
    history = ae.fit(x * 2 - 1, epochs=3, batch_size=64, verbose=0)  # mse accepts values outside [0, 1]
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_denoising_noise_only_in_training(digits):
    _, test = digits
    ae = small_ae(noise_stddev=0.5)
    ae.compile(optimizer="adam")
    x = test["image"][:4]
    np.testing.assert_allclose(ae.predict(x, verbose=0), ae.predict(x, verbose=0))
    assert not np.allclose(keras.ops.convert_to_numpy(ae(x, training=True)),
                           keras.ops.convert_to_numpy(ae(x, training=True)))


def test_save_and_reload(tmp_path, digits):
    train, test = digits
    ae = small_ae(noise_stddev=0.2)
    ae.compile(optimizer="adam")
    ae.fit(train["image"], epochs=1, batch_size=64, verbose=0)
    ae.save(tmp_path / "ae.keras")
    back = keras.saving.load_model(tmp_path / "ae.keras")
    np.testing.assert_allclose(back.predict(test["image"], verbose=0), ae.predict(test["image"], verbose=0), atol=1e-5)
    assert (back.noise_stddev, back.reconstruction_loss, back.code_dim) == (0.2, "bce", 6)
    assert int(back.optimizer.iterations) == 8
    back.fit(train["image"], epochs=1, batch_size=64, verbose=0)
    assert int(back.optimizer.iterations) == 16


def test_bad_input_named(digits):
    train, _ = digits
    ae = small_ae()
    ae.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, 8, 8, 1\)"):
        ae.fit(train["image"][:, None], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"`x` must lie in \[0.0, 1.0\]"):
        ae.fit(train["image"] + 1, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`validation_data` holds"):
        ae.fit(train["image"], validation_data=train["image"] * np.nan, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`loss` must be one of"):
        Autoencoder(ae.encoder, ae.decoder, loss="huber")
    with pytest.raises(ValueError, match="`noise_stddev` must be a finite number ≥ 0"):
        Autoencoder(ae.encoder, ae.decoder, noise_stddev=-0.1)
    with pytest.raises(ValueError, match="`encoder` must return one code"):
        Autoencoder(image_encoder((8, 8, 1), 2, kind="dense", gaussian=True), ae.decoder)
