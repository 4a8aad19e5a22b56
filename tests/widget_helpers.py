"""What the widget tests share: a few digits, a small VAE, a fit with a callback, an image widget's bytes."""
import keras
import pytest

from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.data import load_digits
from mmgen_nbdev.modalities import image_decoder, image_encoder
from mmgen_nbdev.vae import VAE

PNG = b"\x89PNG\r\n\x1a\n"
backends = pytest.mark.backends


@pytest.fixture(scope="module")
def digits():
    return load_digits("train", n=128, image_size=16)


def small_vae(latent=2):
    set_seed(0)
    model = VAE(image_encoder((16, 16, 1), latent, "dense", hidden=32, gaussian=True),
                image_decoder(latent, (16, 16, 1), "dense", hidden=32), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    return model


def fit(model, x, dashboard, epochs=1, y=None, batch_size=64):
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[dashboard])
    return dashboard


def image_bytes(widget):
    return bytes(widget.value)
