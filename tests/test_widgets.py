"""The widgets without a front end (ipywidgets outside a kernel get a dummy comm, so their values can be read):
the dashboard on every model of the package and on a plain Keras model, its throttle, its PNG and silent outputs,
its replay slider, the proof that nothing is read per batch; the GAN playground's buttons; the latent explorer;
the human evaluation's accuracy, interval and export; bad input named. The browser test is tests/test_lab.py."""
import json
import math

import keras
import numpy as np
import pytest

from mmgen_nbdev.ae import Autoencoder
from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.dashboard import PANELS, Throttle, TrainingDashboard
from mmgen_nbdev.data import load_digits, load_multidigits, load_ring, load_toy
from mmgen_nbdev.explorer import LatentExplorer
from mmgen_nbdev.fusion import multidigits_vae
from mmgen_nbdev.gan import GAN, dcgan_discriminator, dcgan_generator, mlp_discriminator, mlp_generator
from mmgen_nbdev.human_eval import HumanEvaluation
from mmgen_nbdev.metrics import histogram_js, js_divergence, wilson_interval
from mmgen_nbdev.modalities import image_decoder, image_encoder
from mmgen_nbdev.playground import GANPlayground
from mmgen_nbdev.render import css_class
from mmgen_nbdev.vae import VAE
from mmgen_nbdev.views import ModelView

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


# ----------------------------------------------------------------------------- the GAN playground
def weights(network):
    return [keras.ops.convert_to_numpy(v).copy() for v in network.trainable_variables]


def changed(before, network):
    return any(not np.allclose(a, b) for a, b in zip(before, weights(network)))


@backends
def test_playground_buttons_step_what_they_say():
    playground = GANPlayground(hidden=(8,), n=256, batch_size=32, steps_per_click=2)
    assert image_bytes(playground.field).startswith(PNG) and image_bytes(playground.curves).startswith(PNG)
    d0, g0 = weights(playground.discriminator), weights(playground.generator)
    playground.buttons["d"].click()
    assert changed(d0, playground.discriminator) and not changed(g0, playground.generator)
    d1 = weights(playground.discriminator)
    playground.buttons["g"].click()
    assert changed(g0, playground.generator) and not changed(d1, playground.discriminator)
    g2, d2 = weights(playground.generator), weights(playground.discriminator)
    playground.buttons["both"].click()
    assert changed(g2, playground.generator) and changed(d2, playground.discriminator)
    assert (playground.updates, playground.d_updates, playground.g_updates) == (6, 4, 4)
    assert playground.history["update"] == [0, 2, 4, 6]
    assert int(playground.d_optimizer.iterations) == 4 and int(playground.g_optimizer.iterations) == 4
    assert playground.status.value.startswith("update 6 (D 4, G 4)")
    playground.reset_button.click()
    assert playground.updates == 0 and all(np.allclose(a, b) for a, b in zip(d0, weights(playground.discriminator)))


@backends
def test_playground_choosers_and_play():
    playground = GANPlayground(hidden=(8,), n=256, batch_size=32, steps_per_click=1)
    playground.loss_choice.value = "minimax"
    assert playground.loss == "minimax"
    playground.play.value = 1  # one tick of the Play widget: one click of "step both"
    assert playground.updates == 1 and ("both", "minimax") in playground._models
    points, arrows = playground.generator_gradients(n=10)
    _, other = playground.generator_gradients("non_saturating", n=10)
    assert arrows.shape == (10, 2) and not np.allclose(arrows, other)
    playground.dataset_choice.value = "grid"
    assert playground.dataset == "grid" and playground.updates == 0 and len(playground.data["centres"]) == 25
    assert "modes 0/25" in playground.status.value or "modes" in playground.status.value


def test_js_estimator_bounds():
    rng = np.random.default_rng(0)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(math.log(2))
    assert js_divergence([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    a, b = rng.normal(size=(5000, 2)), rng.normal(size=(5000, 2))
    assert 0 < histogram_js(a, b) < 0.05  # the sampling bias of 30×30 cells and 5,000 points
    assert histogram_js(a, b + 100) == pytest.approx(math.log(2))
    ring = load_toy("ring", 500)["points"]
    assert histogram_js(ring, ring) == pytest.approx(0.0)


# ----------------------------------------------------------------------------- the latent explorer
@backends
def test_explorer_decodes_the_sliders_point_and_interpolates(digits):
    vae = small_vae()
    vae.fit(digits["image"], epochs=1, verbose=0)
    explorer = LatentExplorer(vae, digits["image"], digits["label"])
    assert len(explorer.sliders) == 2 and "mmgen-explorer" in explorer.widget._dom_classes
    before = image_bytes(explorer.outputs["x"])
    explorer.sliders[0].value = 2.0
    assert image_bytes(explorer.outputs["x"]) != before
    np.testing.assert_allclose(explorer.point(), [2.0, 0.0])
    a, b = (end.value for end in explorer.ends)
    assert digits["label"][a] != digits["label"][b]
    _, decoded = explorer.interpolation(a, b)
    np.testing.assert_allclose(decoded["x"][[0, -1]], vae.reconstruct(digits["image"][[a, b]]), atol=1e-4)
    strip = image_bytes(explorer.strip)
    explorer.ends[1].value = b + 1
    assert image_bytes(explorer.strip) != strip


@backends
def test_explorer_on_a_multimodal_vae_and_a_conditional_gan():
    data = load_multidigits("test", n=24)
    explorer = LatentExplorer(multidigits_vae("mopoe", latent_dim=6), data, sliders=3, steps=2)
    assert explorer.axis_names == ["PC1", "PC2", "PC3"]
    assert set(explorer.outputs) == {"image", "text", "audio"}
    assert explorer.kinds == {"image": "image", "text": "text", "audio": "spectrogram"}
    assert explorer.outputs["text"].value.startswith("<code>")
    assert image_bytes(explorer.outputs["audio"]).startswith(PNG)
    cgan = GAN(dcgan_generator(4, (16, 16, 1), filters=(4, 4), num_classes=10),
               dcgan_discriminator((16, 16, 1), filters=(4, 4), num_classes=10), value_range=(-1, 1), seed=0)
    explorer = LatentExplorer(cgan)
    before = image_bytes(explorer.outputs["x"])
    explorer.label.value = 7
    assert image_bytes(explorer.outputs["x"]) != before
    assert explorer.ends[0].description == "from seed"


# ----------------------------------------------------------------------------- human evaluation
def test_wilson_interval_matches_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    low, high = wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_human_evaluation_buttons_accuracy_and_export(tmp_path, digits):
    evaluation = HumanEvaluation(digits["image"], np.random.default_rng(0).uniform(size=(30, 16, 16)), n=5)
    assert image_bytes(evaluation.image).startswith(PNG)
    shown = [evaluation.current()[0] for _ in range(1)]
    for i in range(10):
        truth = evaluation.current()[0]
        # right on the first 8, wrong on the last 2
        says_real = (truth == "real") if i < 8 else (truth != "real")
        (evaluation.real_button if says_real else evaluation.fake_button).click()
    assert shown and evaluation.done and evaluation.real_button.disabled
    result = evaluation.accuracy()
    assert (result["correct"], result["answered"]) == (8, 10)
    assert (result["low"], result["high"]) == pytest.approx(wilson_interval(8, 10))
    assert "right 8 of 10 = 80%" in evaluation.result.value
    assert sorted(a["shown"] for a in evaluation.answers).count("real") == 5
    table = evaluation.table()
    assert len(table) == 10
    lines = evaluation.to_csv(tmp_path / "answers.csv").read_text().splitlines()
    assert lines[0] == "trial,shown,index,answer,correct,seconds" and len(lines) == 11
    with pytest.raises(ValueError, match="answered already"):
        evaluation.answer(True)


def test_human_evaluation_table_without_pandas(monkeypatch, digits):
    import builtins
    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("no pandas here")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    evaluation = HumanEvaluation(digits["image"], digits["image"], n=2)
    evaluation.answer(True)
    table = evaluation.table()
    assert isinstance(table, list) and set(table[0]) == set(HumanEvaluation.COLUMNS)


# ----------------------------------------------------------------------------- bad input
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


def test_bad_input_elsewhere_is_named(digits):
    with pytest.raises(TypeError, match="`data` must be a NumPy array or a dict"):
        TrainingDashboard("digits.npy")
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        ModelView("vae")
    with pytest.raises(ValueError, match="`dataset` must be one of"):
        GANPlayground(dataset="spiral", draw=False)
    with pytest.raises(ValueError, match="`name` must be one of"):
        load_toy("spiral")
    with pytest.raises(ValueError, match=r"`n` = 20 images of each kind"):
        HumanEvaluation(digits["image"], digits["image"][:5])
    with pytest.raises(ValueError, match="`successes` must lie in 0..`trials`"):
        wilson_interval(5, 3)
    with pytest.raises(ValueError, match=r"`a` must be 2-D points"):
        histogram_js(np.zeros((3, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"`data` must have shape \(N, 16, 16, 1\)"):
        fit(small_vae(), digits["image"], TrainingDashboard(digits["image"][:, :8, :8], output="silent"))
    assert set(PANELS) == {"curves", "samples", "latent", "reconstructions", "discriminator", "cross_modal"}


NAN_IMAGES = np.full((30, 16, 16, 1), np.nan, "float32")


def bad_widget_calls(digits):
    "(call, the argument its error must name), for `test_widget_settings_and_data_are_refused_naming_them`."
    images = digits["image"]
    return [
        (lambda: HumanEvaluation(images, NAN_IMAGES, n=5), "generated"),
        (lambda: HumanEvaluation(np.where(images > 0.5, np.inf, images), images, n=5), "real"),
        (lambda: HumanEvaluation(images, images, n=5, value_range=(1, -1)), "value_range"),
        (lambda: HumanEvaluation(images, images, n=5, value_range=(1, 1)), "value_range"),
        (lambda: HumanEvaluation(images, images, n=5, value_range=(0, np.inf)), "value_range"),
        (lambda: HumanEvaluation(images, images * 2 - 1, n=5), "generated"),  # in [-1, 1], not the range given
        (lambda: HumanEvaluation(images, images, n=5, size=0), "size"),
        (lambda: HumanEvaluation(images, images, n=0), "n"),
        (lambda: HumanEvaluation(images, images, n=2).answer("fake"), "says_real"),
        (lambda: wilson_interval(3, 10, confidence=1.0), "confidence"),
        (lambda: wilson_interval(3, 10, confidence=float("nan")), "confidence"),
        (lambda: wilson_interval(3.0, 10), "successes"),
        (lambda: wilson_interval(3, -10), "trials"),
        (lambda: Throttle(every_seconds=-0.5), "every_seconds"),
        (lambda: Throttle(max_overhead=1), "max_overhead"),
        (lambda: GANPlayground(learning_rate=float("inf"), draw=False), "learning_rate"),
        (lambda: GANPlayground(learning_rate=-1e-3, draw=False), "learning_rate"),
        (lambda: GANPlayground(learning_rate=0, draw=False), "learning_rate"),
        (lambda: GANPlayground(arrow_scale=float("nan"), draw=False), "arrow_scale"),
        (lambda: GANPlayground(arrow_scale=-1, draw=False), "arrow_scale"),
        (lambda: GANPlayground(steps_per_click=20_000, draw=False), "steps_per_click"),
        (lambda: GANPlayground(draw="no"), "draw"),
        (lambda: GANPlayground(hidden=64, draw=False), "hidden"),
        (lambda: GANPlayground(batch_size=0, draw=False), "batch_size"),
        (lambda: js_divergence([1, np.nan], [1, 1]), "p"),
        (lambda: js_divergence([1, 1], [np.inf, 1]), "q"),
        (lambda: histogram_js(np.zeros((3, 2)), np.full((3, 2), np.nan)), "b"),
        (lambda: histogram_js(np.zeros((3, 2)), np.ones((3, 2)), bounds=((1, -1), (0, 1))), "bounds"),
        (lambda: histogram_js(np.zeros((3, 2)), np.ones((3, 2)), bins=0), "bins"),
        (lambda: load_toy("ring", n=0), "n"),
    ]


def test_widget_settings_and_data_are_refused_naming_them(digits):
    for i, (call, argument) in enumerate(bad_widget_calls(digits)):
        with pytest.raises(ValueError, match=f"`{argument}`"):
            call()
            pytest.fail(f"call {i} accepted bad `{argument}`")


@backends
def test_nan_data_into_the_explorer_and_the_dashboard_is_refused_before_any_model_call(digits):
    vae = small_vae()
    bad = digits["image"].copy()
    bad[3, 2, 2, 0] = np.nan
    for make in (lambda: LatentExplorer(vae, bad), lambda: TrainingDashboard(bad, output="silent")):
        with pytest.raises(ValueError, match="`data` holds 1 NaN"):
            make()
    with pytest.raises(ValueError, match="`limit` must be a finite number > 0"):
        LatentExplorer(vae, digits["image"], limit=float("inf"))
    explorer = LatentExplorer(vae, digits["image"][:20], limit=np.float32(2.5), steps=np.int64(3), sliders=np.int64(2))
    assert explorer.sliders[0].max == 2.5 and len(explorer.interpolation(0, 1)[0]) == 3
    for z, argument in (([np.nan, 0.0], "z"), ([0.0, 0.0, 0.0], "z")):
        with pytest.raises(ValueError, match=f"`{argument}`"):
            explorer.decode_point(z)
    with pytest.raises(ValueError, match="`b` must be an integer"):
        explorer.interpolation(0, 20)
    with pytest.raises(ValueError, match="`steps` must be a positive integer"):
        explorer.interpolation(0, 1, steps=0)


def test_numpy_scalars_are_accepted_as_settings(digits):
    assert Throttle(every_epochs=np.int64(2), every_seconds=np.float32(0.5), max_overhead=np.float64(0.1)).wait() == 0.5
    assert wilson_interval(np.int64(8), np.int64(10), np.float32(0.95)) == pytest.approx(wilson_interval(8, 10))
    evaluation = HumanEvaluation(digits["image"], digits["image"], n=np.int64(2), value_range=(np.float32(0), 1),
                                 seed=np.uint32(3), size=np.int64(64))
    evaluation.answer(np.bool_(True))
    assert evaluation.accuracy(np.float32(0.9))["answered"] == 1


# ----------------------------------------------------------------------------- the façade
def test_widgets_facade_keeps_the_public_names_and_warns_for_moved_ones():
    import warnings

    import mmgen_nbdev.widgets as facade
    from mmgen_nbdev import dashboard, metrics, render
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from mmgen_nbdev.widgets import GANPlayground as G, HumanEvaluation as H, LatentExplorer as L, TrainingDashboard as T
    assert (G, H, L, T) == (GANPlayground, HumanEvaluation, LatentExplorer, TrainingDashboard)
    for name, home in (("wilson_interval", metrics), ("Throttle", dashboard), ("figure_png", render)):
        with pytest.warns(DeprecationWarning, match=f"{home.__name__}.{name}"):
            assert getattr(facade, name) is getattr(home, name)
    with pytest.raises(AttributeError):
        facade.no_such_name
