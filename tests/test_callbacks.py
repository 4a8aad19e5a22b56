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
    # the model's own guard (StopOnNonFinite, in every fit) stops the diverging epoch at its first NaN batch
    with pytest.raises(FloatingPointError, match="training stopped at epoch 3, batch"):
        gan.fit(load_ring(512)["points"], epochs=8, batch_size=64, verbose=0,
                callbacks=[BlowUpAt(2, lambda: (gan.d_optimizer, gan.g_optimizer)), checkpoint])
    assert checkpoint.last_good_epoch == 1
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


# --- issue 13: weights, paths, loading, non-finite batches -------------------------------------------------------
from pathlib import Path  # noqa: E402

from mmgen_nbdev.callbacks import StopOnNonFinite, first_non_finite_variable, load_model, with_guard  # noqa: E402


def tiny_ae():
    from mmgen_nbdev.ae import Autoencoder
    from mmgen_nbdev.modalities import image_decoder, image_encoder
    set_seed(0)
    ae = Autoencoder(image_encoder((8, 8, 1), 4, kind="dense", hidden=16),
                     image_decoder(4, (8, 8, 1), kind="dense", hidden=16), seed=0)
    ae.compile(optimizer=keras.optimizers.Adam(1e-3))
    return ae


def images(n=128):
    return np.random.default_rng(0).uniform(size=(n, 8, 8, 1)).astype("float32")


class PoisonAt(keras.callbacks.Callback):
    "When epoch `epoch` (0-based) begins, set the first entry of `variable()` to `value`."
    def __init__(self, epoch, variable, value=np.nan):
        super().__init__()
        self.epoch, self.variable, self.value = epoch, variable, value

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            v = self.variable()
            values = keras.ops.convert_to_numpy(v).copy()
            values.flat[0] = self.value
            v.assign(values)


def test_nan_kernel_the_loss_may_miss_is_never_checkpointed(tmp_path):
    ae = tiny_ae()
    x = images()
    ae.fit(x, epochs=1, batch_size=32, verbose=0)
    kernel = ae.encoder.trainable_variables[0]
    checkpoint = SafeCheckpoint(tmp_path / "ae.keras", verbose=False)
    try:
        ae.fit(x, epochs=5, batch_size=32, verbose=0, callbacks=[PoisonAt(2, lambda: kernel), checkpoint])
        loss_saw_it = False
    except FloatingPointError as error:  # the NaN reached the loss: the model's own guard stopped the batch
        assert "epoch 3" in str(error)
        loss_saw_it = True
    assert checkpoint.last_good_epoch == 1
    if not loss_saw_it:  # oneDNN's fused MatMul+ReLU hid it from the loss: only the weight check can catch it
        assert checkpoint.stopped_epoch == 2
        assert kernel.path in checkpoint.message and "NaN" in checkpoint.message
    restored = checkpoint.restore()
    assert type(restored) is type(ae)
    assert all(np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in restored.variables)
    assert np.isfinite(keras.ops.convert_to_numpy(restored.embed(x[:8]))).all()


def test_infinite_batchnorm_statistics_are_never_checkpointed(tmp_path):
    set_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    checkpoint = SafeCheckpoint(tmp_path / "bn.keras", verbose=False)
    history = model.fit(x, x[:, :1], epochs=4, batch_size=16, verbose=0,
                        callbacks=[PoisonAt(1, lambda: model.layers[1].moving_variance, np.inf), checkpoint])
    assert np.isfinite(history.history["loss"]).all(), "training-mode batches never read the moving variance"
    assert (checkpoint.last_good_epoch, checkpoint.stopped_epoch) == (0, 1)
    assert "non-trainable" in checkpoint.message and model.layers[1].moving_variance.path in checkpoint.message
    assert np.isfinite(keras.ops.convert_to_numpy(checkpoint.restore().layers[1].moving_variance)).all()


def test_non_finite_optimizer_state_is_named():
    set_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0)
    assert first_non_finite_variable(model) is None
    state = next(v for v in model.optimizer.variables if "velocity" in v.path)
    state.assign(np.full(state.shape, np.nan, "float32"))
    assert "optimizer variable" in first_non_finite_variable(model) and state.path in first_non_finite_variable(model)


def test_bad_paths_fail_at_construction(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="`path`"):
        SafeCheckpoint(tmp_path / "a_file" / "m.keras")
    (tmp_path / "folder.keras").mkdir()
    with pytest.raises(ValueError, match="`path`.*folder"):
        SafeCheckpoint(tmp_path / "folder.keras")
    with pytest.raises(TypeError, match="`path`"):
        SafeCheckpoint(3)
    assert SafeCheckpoint(tmp_path / "new" / "m.keras").path.parent.is_dir()


def test_load_model_fails_by_cause(tmp_path):
    ae = tiny_ae()
    ae.fit(images(32), epochs=1, batch_size=16, verbose=0)
    good = tmp_path / "ae.keras"
    ae.save(good)
    assert type(load_model(good, expected=type(ae))) is type(ae)
    assert type(load_model(good, expected=(keras.Sequential, keras.Model))) is type(ae)
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    for content in (good.read_bytes()[: len(good.read_bytes()) // 2], np.random.default_rng(0).bytes(4096), b""):
        bad.write_bytes(content)
        with pytest.raises(ValueError, match="not a readable .keras archive") as caught:
            load_model(bad)
        assert str(bad) in str(caught.value)
    with pytest.raises(TypeError) as caught:
        load_model(good, expected=keras.Sequential)
    assert "Autoencoder" in str(caught.value) and "Sequential" in str(caught.value)
    with pytest.raises(TypeError, match="`expected`"):
        load_model(good, expected="Autoencoder")
    with pytest.raises(ValueError, match="`path`"):
        load_model(tmp_path / "ae.h5")


def test_restore_before_any_checkpoint_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        SafeCheckpoint(tmp_path / "m.keras").restore()


class NaNBatches(keras.utils.PyDataset):
    "Eight batches of 16 images; the one at index `bad` holds a NaN."
    def __init__(self, bad):
        super().__init__()
        self.bad, self.x = bad, images(128)

    def __len__(self):
        return 8

    def __getitem__(self, i):
        batch = self.x[16 * i:16 * (i + 1)].copy()
        if i == self.bad:
            batch[0, 0, 0, 0] = np.nan
        return batch


@pytest.mark.parametrize("bad", [5, 7])
def test_guard_names_term_and_batch_of_a_streamed_dataset(bad):
    ae = tiny_ae()
    with pytest.raises(FloatingPointError) as caught:
        ae.fit(NaNBatches(bad), epochs=2, shuffle=False, verbose=0, callbacks=[StopOnNonFinite()])
    message = str(caught.value)
    assert f"epoch 1, batch {bad + 1}:" in message
    assert "`reconstruction` is nan" in message and "loss = nan" in message


def test_a_nan_in_a_streams_first_batch_is_refused_before_training():
    ae = tiny_ae()
    with pytest.raises(ValueError, match=r"`x` holds 1 NaN .*first batch of the NaNBatches passed as `x`"):
        ae.fit(NaNBatches(0), epochs=2, shuffle=False, verbose=0, callbacks=[StopOnNonFinite()])


def test_guard_and_checkpoint_with_a_generator(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")

    def stream():
        for epoch in range(100):
            for i in range(4):
                y = x[16 * i:16 * (i + 1), :1].copy()
                if (epoch, i) == (2, 1):
                    y[0, 0] = np.inf
                yield x[16 * i:16 * (i + 1)], y

    set_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    checkpoint = SafeCheckpoint(tmp_path / "m.keras", verbose=False)
    with pytest.raises(FloatingPointError, match="epoch 3, batch 2: `loss` is inf"):
        model.fit(stream(), steps_per_epoch=4, epochs=6, shuffle=False, verbose=0, callbacks=with_guard([checkpoint]))
    assert checkpoint.last_good_epoch == 1 and checkpoint.stopped_epoch is None
    assert int(checkpoint.restore().optimizer.iterations) == 8, "the file holds epoch 2's state"


def test_with_guard_adds_one_guard():
    own, history = StopOnNonFinite(), keras.callbacks.History()
    assert [type(c) for c in with_guard()] == [StopOnNonFinite]
    assert with_guard([history, own]) == [history, own]
    assert [type(c) for c in with_guard((history,))] == [keras.callbacks.History, StopOnNonFinite]
    with pytest.raises(TypeError, match="`callbacks`"):
        with_guard([history, "not a callback"])
    with pytest.raises(TypeError, match="`callbacks`"):
        with_guard("nope")
