"""The backend module on whichever backend KERAS_BACKEND selects: seeding, the report, and the gradient adapter,
checked against gradients derived by hand in NumPy, so every backend is held to the same numbers."""
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from mmgen_nbdev.backend import (PortableModel, apply_gradients, backend_name, backend_report, check_seed,
                                 input_gradients, set_seed, value_and_gradients)

pytestmark = pytest.mark.backends


def to_numpy(x):
    return ops.convert_to_numpy(x)


def mlp_and_data():
    "A 3-4-2 tanh MLP with fixed weights, a batch of inputs and targets."
    rng = np.random.default_rng(42)
    x = rng.normal(size=(5, 3)).astype("float32")
    y = rng.normal(size=(5, 2)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)])
    weights = [rng.normal(size=w.shape).astype("float32") for w in model.get_weights()]
    model.set_weights(weights)
    return model, weights, x, y


def mlp_gradients_numpy(weights, x, y):
    "Loss and gradients of mean((tanh(x W1 + b1) W2 + b2 - y)^2), by hand."
    w1, b1, w2, b2 = weights
    h = np.tanh(x @ w1 + b1)
    out = h @ w2 + b2
    loss = np.mean((out - y) ** 2)
    d_out = 2 * (out - y) / out.size
    d_h = d_out @ w2.T * (1 - h ** 2)
    return loss, [x.T @ d_h, d_h.sum(0), h.T @ d_out, d_out.sum(0)]


def test_gradients_match_hand_derivation():
    model, weights, x, y = mlp_and_data()
    expected_loss, expected = mlp_gradients_numpy(weights, x, y)
    target = ops.convert_to_tensor(y)  # torch tensors do not subtract NumPy arrays that need a gradient
    loss, aux, grads = value_and_gradients(lambda: ops.mean((model(x) - target) ** 2), model.trainable_variables)
    assert aux is None
    assert float(loss) == pytest.approx(expected_loss, rel=1e-5)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(to_numpy(got), want, rtol=1e-4, atol=1e-6)


def test_unused_variables_get_zero_gradients_and_aux_passes_through():
    model, weights, x, y = mlp_and_data()
    first = model.layers[0]
    loss, aux, grads = value_and_gradients(lambda: (ops.sum(first(x)), "kept"), model.trainable_variables)
    assert aux == "kept"
    np.testing.assert_array_equal(to_numpy(grads[2]), np.zeros_like(weights[2]))
    np.testing.assert_array_equal(to_numpy(grads[3]), np.zeros_like(weights[3]))
    h = np.tanh(x @ weights[0] + weights[1])
    np.testing.assert_allclose(to_numpy(grads[1]), (1 - h ** 2).sum(0), rtol=1e-4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`variables` must hold at least one variable"):
        value_and_gradients(lambda: 0.0, [])
    v = keras.Variable(1.0)
    with pytest.raises(ValueError, match="scalar or a pair"):
        value_and_gradients(lambda: (v * 1.0, 1, 2), [v])


def test_gradient_penalty_is_differentiable():
    w = keras.Variable(np.float32(0.5))
    x0 = np.array([1.0, -2.0, 0.5], "float32")
    np.testing.assert_allclose(to_numpy(input_gradients(lambda x: w * x ** 3, x0)), 1.5 * x0 ** 2, rtol=1e-5)
    _, _, (g,) = value_and_gradients(lambda: ops.sum(input_gradients(lambda x: w * x ** 3, x0) ** 2), [w])
    assert float(g) == pytest.approx(18 * 0.5 * np.sum(x0 ** 4), rel=1e-4)


def test_state_written_by_the_loss_persists_outside_any_step():
    seeds = keras.random.SeedGenerator(3)
    w = keras.Variable(np.float32(1.0))
    draws = []
    for _ in range(3):
        _, eps, _ = value_and_gradients(lambda: (w * 2.0, keras.random.normal((), seed=seeds)), [w],
                                        state=[seeds.state])
        draws.append(float(eps))
    assert len(set(draws)) == 3, "the seed generator must advance on every call"


def test_apply_gradients_is_one_sgd_step():
    v = keras.Variable(np.array([1.0, 2.0], "float32"))
    optimizer = keras.optimizers.SGD(0.5)
    optimizer.build([v])
    _, _, grads = value_and_gradients(lambda: ops.sum(v ** 2), [v])
    apply_gradients(optimizer, grads, [v])
    np.testing.assert_allclose(to_numpy(v), [0.0, 0.0], atol=1e-7)


class TwoPlayers(PortableModel):
    "Two scalars with their own losses and optimizers; b reads a without differentiating it."

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = self.add_weight(shape=(), initializer="zeros", name="a")
        self.b = self.add_weight(shape=(), initializer="zeros", name="b")
        self.noise = keras.random.SeedGenerator(0)
        self.loss_a, self.loss_b = keras.metrics.Mean("loss_a"), keras.metrics.Mean("loss_b")
        self.built = True

    @property
    def metrics(self):
        return [self.loss_a, self.loss_b]

    def compile(self, lr_a=0.1, lr_b=0.2):
        self.opt_a, self.opt_b = keras.optimizers.SGD(lr_a), keras.optimizers.Adam(lr_b)
        super().compile(optimizer=keras.optimizers.MultiOptimizer(lambda v: self.opt_a if v.name == "a" else self.opt_b))

    def train_step_body(self, data):
        x, y = data
        la, _, ga = self.value_and_gradients(lambda: ops.mean((self.a * x - y) ** 2), [self.a])
        apply_gradients(self.opt_a, ga, [self.a])
        eps = keras.random.normal((), seed=self.noise)
        lb, _, gb = self.value_and_gradients(lambda: (self.b - self.a - 0.01 * eps) ** 2, [self.b])
        apply_gradients(self.opt_b, gb, [self.b])
        self.loss_a.update_state(la)
        self.loss_b.update_state(lb)
        return {"loss_a": self.loss_a.result(), "loss_b": self.loss_b.result(), "eps": eps}

    def test_step_body(self, data):
        x, y = data
        self.loss_a.update_state(ops.mean((self.a * x - y) ** 2))
        self.loss_b.update_state((self.b - self.a) ** 2)
        return {"loss_a": self.loss_a.result(), "loss_b": self.loss_b.result()}


class RecordNoise(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.eps = []

    def on_train_batch_end(self, batch, logs=None):
        self.eps.append(float(logs["eps"]))


def adam_step(value, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-7):
    "One Adam update as Keras computes it."
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    alpha = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    return value - alpha * m / (np.sqrt(v) + eps), m, v


def test_portable_model_fit_matches_numpy_replay_with_two_optimizers():
    x = np.linspace(-1, 1, 32).astype("float32")
    y = 3 * x
    model = TwoPlayers()
    model.compile()
    recorder = RecordNoise()
    history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[recorder])
    assert len(recorder.eps) == 12 and len(set(recorder.eps)) == 12
    a, b, m, v = 0.0, 0.0, 0.0, 0.0
    for step, eps in enumerate(recorder.eps):
        xb, yb = x[8 * (step % 4): 8 * (step % 4) + 8], y[8 * (step % 4): 8 * (step % 4) + 8]
        a -= 0.1 * np.mean(2 * (a * xb - yb) * xb)
        b, m, v = adam_step(b, 2 * (b - a - 0.01 * eps), m, v, step + 1, 0.2)
    assert float(model.a) == pytest.approx(a, abs=1e-5)
    assert float(model.b) == pytest.approx(b, abs=1e-5)
    assert set(history.history) == {"loss_a", "loss_b", "eps"}
    assert int(model.opt_a.iterations) == 12 and int(model.opt_b.iterations) == 12
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert logs["loss_a"] == pytest.approx(np.mean((a * x - y) ** 2), rel=1e-4)
    assert logs["loss_b"] == pytest.approx((b - a) ** 2, rel=1e-3, abs=1e-6)


def test_portable_model_without_body_says_what_to_implement():
    class Empty(PortableModel):
        pass

    with pytest.raises(NotImplementedError, match="train_step_body"):
        Empty().train_step_body(None)


def test_set_seed_repeats_draws_and_weights():
    def draw(seed):
        set_seed(seed)
        layer = keras.layers.Dense(3)
        layer.build((None, 4))
        return to_numpy(keras.random.normal((4,))), to_numpy(layer.kernel), np.random.rand()

    first, again, other = draw(5), draw(5), draw(6)
    for p, q in zip(first, again):
        np.testing.assert_array_equal(p, q)
    assert not np.allclose(first[0], other[0])


def test_set_seed_deterministic_runs_in_a_fresh_process():
    code = ("from mmgen_nbdev.backend import set_seed; import keras;"
            "set_seed(1, deterministic=True); print(float(keras.random.uniform(())))")
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert outs[0] == outs[1] and outs[0].strip()


@pytest.mark.parametrize("bad", [1.5, "3", True, -1, None, [1]])
def test_check_seed_rejects(bad):
    with pytest.raises(ValueError, match="`seed` must be a non-negative integer"):
        check_seed(bad)


def test_backend_report_names_backend_and_devices():
    report = backend_report()
    assert report.backend == backend_name() == keras.backend.backend()
    assert report.keras_version == keras.__version__
    assert report.devices[-1] == "cpu:0"
    assert report.backend in str(report)
