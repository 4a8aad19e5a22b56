"""The keras.io VAE and DCGAN examples as the benchmark re-implements them (on TensorFlow, as written) and ours on
whichever backend KERAS_BACKEND selects: both train and are scored by the same code, and the data is MNIST from Keras's
cache (a small file in its format, written here) or, without it, the embedded digits, said so."""
import keras
import numpy as np
import pytest

from mmgen_nbdev.bench.keras_io import (KERAS_IO_MODELS, build_keras_io, keras_io_data, keras_io_fit_inputs,
                                        keras_io_quality)

pytestmark = pytest.mark.backends
# The examples' training steps are TensorFlow code (tf.GradientTape), so they train on TensorFlow only, as written.
IMPLEMENTATIONS = ["keras.io", "ours"] if keras.backend.backend() == "tensorflow" else ["ours"]


@pytest.fixture
def mnist_cache(tmp_path, monkeypatch):
    "A Keras home whose cache holds a small mnist.npz (random digits-shaped arrays, never the real file)."
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    folder = tmp_path / "keras" / "datasets"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(folder / "mnist.npz", x_train=rng.integers(0, 256, (96, 28, 28), dtype=np.uint8),
             y_train=(np.arange(96) % 10).astype(np.uint8),
             x_test=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), y_test=(np.arange(64) % 10).astype(np.uint8))
    return folder


def test_the_data_says_where_it_came_from(mnist_cache, tmp_path, monkeypatch):
    data = keras_io_data()
    assert data["origin"].startswith("MNIST from Keras's cache") and data["train"]["image"].shape == (96, 28, 28, 1)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    data = keras_io_data(n=10, n_test=5)
    assert "embedded" in data["origin"] and data["train"]["image"].shape == (10, 28, 28, 1)


@pytest.mark.parametrize("model", list(KERAS_IO_MODELS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_each_implementation_trains_and_is_scored(model, implementation, mnist_cache):
    data = keras_io_data()
    net, evaluator = build_keras_io(model, implementation)
    history = net.fit(keras_io_fit_inputs(model, implementation, data["train"]["image"]), epochs=1,
                      batch_size=KERAS_IO_MODELS[model]["batch_size"] // 4, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    if model == "vae":  # the digit judge cannot read random pixels, so the DCGAN's score is checked on real digits
        assert np.isfinite(keras_io_quality(model, evaluator, data["test"]))
