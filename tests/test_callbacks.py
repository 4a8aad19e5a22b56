"""SafeCheckpoint on whichever backend KERAS_BACKEND selects: a diverging run stops, and the last good checkpoint is
neither lost nor overwritten, for a plain model and for a GAN (whose logs have no `loss`)."""
import math

import keras
import numpy as np
import pytest

from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.callbacks import SafeCheckpoint
from mmgen_nbdev.data import load_ring
from mmgen_nbdev.gan import GAN, mlp_discriminator, mlp_generator

pytestmark = pytest.mark.backends


class BlowUpAt(keras.callbacks.Callback):
    "From epoch `epoch` (0-based) on, multiply every learning rate by an absurd factor."
    def __init__(self, epoch, optimizers):
        super().__init__()
        self.epoch, self.optimizers = epoch, optimizers

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            for optimizer in self.optimizers():
                optimizer.learning_rate.assign(1e30)


def test_gan_divergence_keeps_last_good_checkpoint(tmp_path, capsys):
    set_seed(0)
    gan = GAN(mlp_generator(2, hidden=(32,)), mlp_discriminator(hidden=(32,)), seed=0)
    gan.compile(d_optimizer=keras.optimizers.SGD(0.01), g_optimizer=keras.optimizers.SGD(0.01))
    checkpoint = SafeCheckpoint(tmp_path / "gan.keras")
    history = gan.fit(load_ring(512)["points"], epochs=8, batch_size=64, verbose=0,
                      callbacks=[BlowUpAt(2, lambda: (gan.d_optimizer, gan.g_optimizer)), checkpoint])
    assert checkpoint.last_good_epoch == 1 and checkpoint.stopped_epoch is not None
    assert len(history.history["d_loss"]) == checkpoint.stopped_epoch + 1 < 8
    assert "Training stopped at epoch" in capsys.readouterr().out
    saved = keras.saving.load_model(checkpoint.path)
    assert np.isfinite(saved.generate(16)).all()
    assert int(saved.g_optimizer.iterations) == 16, "the file holds epoch 2's state, not a later one"


def test_stop_before_any_checkpoint_says_so(tmp_path):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e30), loss="mse")
    checkpoint = SafeCheckpoint(tmp_path / "m.keras", verbose=False)
    model.fit(np.ones((8, 1)) * 1e3, np.ones((8, 1)), epochs=5, batch_size=2, verbose=0, callbacks=[checkpoint])
    assert checkpoint.stopped_epoch is not None and checkpoint.last_good_epoch is None
    assert "no checkpoint had been written" in checkpoint.message and not checkpoint.path.exists()


def test_path_must_be_keras_file():
    with pytest.raises(ValueError, match="`path` must name a .keras file"):
        SafeCheckpoint("model.weights.h5")
