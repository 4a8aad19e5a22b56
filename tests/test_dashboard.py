"""The training dashboard without a front end (ipywidgets outside a kernel get a dummy comm, so their values can be
read): on every model of the package and on plain Keras models, its throttle, its PNG and silent outputs, its replay
slider, the proof that nothing is read per batch, its bad arguments named. The browser test is tests/test_lab.py."""
import json

import keras
import numpy as np
import pytest

from mmgen_nbdev.ae import Autoencoder
from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.dashboard import Throttle, TrainingDashboard
from mmgen_nbdev.data import load_digits, load_multidigits, load_ring
from mmgen_nbdev.recipes import multidigits_vae
from mmgen_nbdev.gan import GAN, dcgan_discriminator, dcgan_generator, mlp_discriminator, mlp_generator
from mmgen_nbdev.modalities import image_decoder, image_encoder
from mmgen_nbdev.render import css_class
from mmgen_nbdev.views import ModelView
from widget_helpers import PNG, backends, digits, fit, image_bytes, small_vae


# ----------------------------------------------------------------------------- the dashboard on every model
@backends
def test_dashboard_on_a_vae_draws_every_panel_into_the_widget(digits):
    dashboard = fit(small_vae(), digits["image"], TrainingDashboard(digits["image"], digits["label"], every_seconds=0,
                                                                    output="widget"), epochs=2)
    assert dashboard.panels == ("curves", "samples", "latent", "reconstructions")
    assert [f.epoch for f in dashboard.frames] == [0, 1, 2]
    for p in dashboard.panels:
        assert image_bytes(dashboard.screen.images[p]).startswith(PNG)
        assert css_class(p) in dashboard.screen.images[p]._dom_classes
    assert dashboard.screen.status.value.startswith("epoch 2/2 · loss ")
    assert "mmgen-dashboard" in dashboard.widget._dom_classes and "mmgen-status" in dashboard.screen.status._dom_classes
    assert dashboard.frames[-1].arrays["latent"]["means"].shape == (128, 2)
    assert dashboard._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]["model_id"] == dashboard.widget.model_id


@backends
def test_dashboard_on_an_autoencoder_and_on_plain_keras_models(digits):
    set_seed(0)
    ae = Autoencoder(image_encoder((16, 16, 1), 3, "dense", hidden=32), image_decoder(3, (16, 16, 1), "dense", hidden=32))
    ae.compile(optimizer="adam")
    assert fit(ae, digits["image"], TrainingDashboard(digits["image"], output="widget")).panels == \
        ("curves", "samples", "latent", "reconstructions")
    x = keras.Input((16, 16, 1))
    plain = keras.Model(x, keras.layers.Reshape((16, 16, 1))(keras.layers.Dense(256, activation="sigmoid")(
        keras.layers.Flatten()(x))))
    plain.compile(optimizer="adam", loss="mse")
    dashboard = TrainingDashboard(digits["image"], output="widget")
    plain.fit(digits["image"], digits["image"], epochs=1, verbose=0, callbacks=[dashboard])
    assert dashboard.panels == ("curves", "reconstructions")
    classifier = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    classifier.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dashboard = TrainingDashboard(digits["image"], output="widget")
    classifier.fit(digits["image"], digits["label"], epochs=1, verbose=0, callbacks=[dashboard])
    assert dashboard.panels == ("curves",) and len(dashboard.frames) == 2


@backends
def test_dashboard_on_gans():
    ring = load_ring(512, std=0.05)
    set_seed(0)
    gan = GAN(mlp_generator(2, hidden=(16,)), mlp_discriminator(hidden=(16,)), seed=0)
    gan.compile()
    dashboard = fit(gan, ring["points"], TrainingDashboard(ring["points"], output="widget", points=200), batch_size=128)
    assert dashboard.panels == ("curves", "samples", "discriminator")
    frame = dashboard.frames[-1]
    assert frame.arrays["samples"]["samples"].shape == (200, 2)
    assert frame.arrays["discriminator"]["real"].shape == (200,) and 0 <= frame.arrays["discriminator"]["fake"].min()
    assert "d_loss" in frame.status and "g_loss" in frame.status
    images, labels = load_digits("train", n=64, image_size=16).values()
    cgan = GAN(dcgan_generator(4, (16, 16, 1), filters=(4, 4), num_classes=10),
               dcgan_discriminator((16, 16, 1), filters=(4, 4), num_classes=10), value_range=(-1, 1), seed=0)
    cgan.compile()
    x = images * 2 - 1
    dashboard = fit(cgan, x, TrainingDashboard(x, labels, output="widget"), y=labels, batch_size=32)
    assert dashboard.panels == ("curves", "samples", "discriminator")
    assert dashboard.frames[-1].arrays["samples"]["samples"].shape == (16, 16, 16, 1)
    with pytest.raises(ValueError, match="`labels` must be given with `data` for a conditional GAN"):
        fit(cgan, x, TrainingDashboard(x, output="silent"), y=labels, batch_size=32)


@backends
def test_dashboard_on_a_multimodal_vae_adds_the_cross_modal_panel():
    data = load_multidigits("train", n=32)
    model = multidigits_vae("mopoe", latent_dim=4)
    dashboard = TrainingDashboard(data, output="widget", points=16, first_frame=False)
    dashboard.set_model(model)  # Keras's calls without a fit (tracing the multimodal step would take most of a minute)
    dashboard.set_params({"epochs": 1})
    dashboard.on_train_begin()
    dashboard.on_epoch_end(0, {"loss": 1000.0, "kl": 3.0})
    dashboard.on_train_end()
    assert dashboard.panels == ("curves", "samples", "latent", "reconstructions", "cross_modal")
    frame = dashboard.frames[-1]
    assert set(frame.arrays["cross_modal"]) == {"from_text", "from_audio"}
    assert frame.arrays["cross_modal"]["from_text"].shape == (8, 16, 16, 1)
    assert frame.arrays["latent"]["means"].shape == (16, 4)
    assert ModelView(model).vocabulary is not None  # captions are written as words


# ----------------------------------------------------------------------------- the throttle
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_throttle_counts_epochs_and_seconds():
    clock = FakeClock()
    throttle = Throttle(every_epochs=2, every_seconds=10, clock=clock)
    clock.now = 5
    assert not throttle.due(2)  # only 5 s
    clock.now = 10
    assert not throttle.due(1) and throttle.due(2)
    throttle.drawn(start=10)
    clock.now = 19.9
    assert not throttle.due(5)


def test_adaptive_throttle_waits_in_proportion_to_the_last_frame():
    clock = FakeClock()
    throttle = Throttle(max_overhead=0.05, clock=clock)
    assert throttle.due(1)  # nothing drawn yet: no cost to amortise
    clock.now = 2.0
    throttle.drawn(start=1.0)  # a frame of 1 s: wait 19 s
    assert throttle.wait() == pytest.approx(19.0)
    clock.now = 20.9
    assert not throttle.due(3)
    clock.now = 21.0
    assert throttle.due(1)


def test_throttle_with_every_seconds_zero_draws_every_epoch_and_a_real_fit_agrees(digits):
    dashboard = fit(small_vae(), digits["image"], TrainingDashboard(digits["image"], every_seconds=0, output="widget",
                                                                    first_frame=False), epochs=3)
    assert [f.epoch for f in dashboard.frames] == [1, 2, 3]
    sparse = fit(small_vae(), digits["image"], TrainingDashboard(digits["image"], every_epochs=2, every_seconds=0,
                                                                 output="widget"), epochs=3)
    assert [f.epoch for f in sparse.frames] == [0, 2, 3]  # the final state is always drawn


# ----------------------------------------------------------------------------- outputs, replay
def test_png_output_writes_frames_and_a_listing(tmp_path, digits):
    dashboard = fit(small_vae(), digits["image"], TrainingDashboard(digits["image"], every_seconds=0, output="png",
                                                                    folder=tmp_path / "frames"), epochs=2)
    listing = json.loads((tmp_path / "frames" / "frames.json").read_text())
    assert [e["epoch"] for e in listing] == [0, 1, 2]
    for entry in listing:
        assert set(entry["files"]) == set(dashboard.panels)
        for name in entry["files"].values():
            assert (tmp_path / "frames" / name).read_bytes().startswith(PNG)


def test_auto_output_outside_a_notebook_is_png_with_a_folder_else_silent(tmp_path, digits):
    assert TrainingDashboard(output="auto").output == "silent"
    assert TrainingDashboard(output="auto", folder=tmp_path).output == "png"
    silent = fit(small_vae(), digits["image"], TrainingDashboard(digits["image"]), epochs=2)
    assert silent.frames == [] and len(silent.history) == 2 and silent.painter is not None


def test_replay_slider_replays_frames_after_training(digits):
    dashboard = fit(small_vae(), digits["image"], TrainingDashboard(digits["image"], every_seconds=0, output="widget"),
                    epochs=3)
    replay = dashboard.screen.replay
    assert "mmgen-replay" in replay._dom_classes
    assert (replay.disabled, replay.max, replay.value) == (False, 3, 3)
    replay.value = 1
    assert dashboard.screen.status.value == dashboard.frames[1].status
    assert image_bytes(dashboard.screen.images["samples"]) == dashboard.frames[1].images["samples"]
    assert dashboard.frames[1].images["samples"] != dashboard.frames[3].images["samples"]


# ----------------------------------------------------------------------------- nothing per batch
class Poison:
    "A logged value that refuses to be converted unless the dashboard is reading values (a redraw)."
    conversions = 0

    def __init__(self, dashboard, value):
        self.dashboard, self.value = dashboard, value

    def _check(self):
        if not self.dashboard._reading:
            raise AssertionError("a log value was read outside a redraw")
        Poison.conversions += 1

    def __float__(self):
        self._check()
        return self.value

    def __array__(self, *args, **kwargs):
        self._check()
        return np.asarray(self.value)


def test_batch_hooks_never_read_logs_only_redraws_do(digits):
    model = small_vae()
    model.fit(digits["image"], epochs=1, verbose=0)
    dashboard = TrainingDashboard(digits["image"], every_epochs=2, every_seconds=0, output="widget")
    dashboard.set_model(model)
    dashboard.set_params({"epochs": 4, "steps": 10, "verbose": 0})
    poison = lambda: {"loss": Poison(dashboard, 1.0), "kl": Poison(dashboard, 2.0)}
    dashboard.on_train_begin()
    for epoch in range(4):
        dashboard.on_epoch_begin(epoch)
        for batch in range(10):
            dashboard.on_train_batch_begin(batch, poison())
            dashboard.on_train_batch_end(batch, poison())
            dashboard.on_batch_end(batch, poison())
        dashboard.on_epoch_end(epoch, poison())
    dashboard.on_train_end(poison())
    assert [f.epoch for f in dashboard.frames] == [0, 2, 4]
    assert Poison.conversions > 0  # the redraws did read the logs
    # Keras dispatches batch callbacks asynchronously (JAX, PyTorch) only if no callback overrides a batch-end hook
    for hook in ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end"):
        assert getattr(TrainingDashboard, hook) is getattr(keras.callbacks.Callback, hook), hook


@backends
def test_every_device_to_host_copy_of_a_real_fit_happens_at_the_start_or_in_a_redraw(monkeypatch, digits):
    import inspect
    import keras.ops
    calls = {"inside": 0, "outside": 0}
    original = keras.ops.convert_to_numpy
    dashboard = TrainingDashboard(digits["image"], every_seconds=0, output="widget")

    def counting(x):
        ours = any("mmgen_nbdev" in frame.filename for frame in inspect.stack()[1:8])
        if ours:
            calls["inside" if dashboard._reading else "outside"] += 1
        return original(x)
    monkeypatch.setattr(keras.ops, "convert_to_numpy", counting)
    fit(small_vae(), digits["image"], dashboard, epochs=2)
    assert calls["inside"] > 0 and calls["outside"] == 0, calls


@pytest.mark.parametrize("kwargs, message", [
    ({"output": "html"}, "`output` must be one of"),
    ({"output": "png"}, "`folder` must name a folder"),
    ({"every_epochs": 0}, "`every_epochs` must be a positive integer"),
    ({"every_seconds": -1}, "`every_seconds` must be a finite number ≥ 0"),
    ({"every_seconds": float("inf")}, "`every_seconds` must be a finite number"),
    ({"max_overhead": 1.5}, "`max_overhead` must be a finite number > 0 and < 1"),
    ({"max_overhead": float("nan")}, "`max_overhead` must be a finite number"),
    ({"max_overhead": 0}, "`max_overhead` must be a finite number > 0"),
    ({"samples": 0}, "`samples` must be a positive integer"),
    ({"points": 2.5}, "`points` must be a positive integer"),
    ({"seed": 2**40}, "`seed` must be a non-negative integer"),
    ({"first_frame": "no"}, "`first_frame` must be True or False"),
    ({"data": np.full((4, 2), np.nan)}, "`data` holds 8 NaN"),
    ({"data": {"image": np.ones((4, 2)), "audio": np.full((4, 3), np.inf)}}, r"`data\['audio'\]` holds 0 NaN and 12 infinite"),
    ({"panels": ["loss"]}, "`panels` must be one of"),
    ({"data": np.zeros((4, 2)), "labels": np.zeros(3, "int32")}, r"`labels` must be integers of shape \(4,\)"),
    ({"data": np.zeros(4)}, r"`data` must be a batch of inputs"),
    ({"data": {"image": np.zeros((4, 2)), "text": np.zeros((3, 2))}}, "`data` must be a dict of arrays with one number"),
])
def test_dashboard_names_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingDashboard(**kwargs)
