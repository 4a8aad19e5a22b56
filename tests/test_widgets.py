"""Across the widgets: bad settings and data refused naming the argument, NumPy scalars accepted as settings, and
the `mmgen_nbdev.widgets` façade (the four widgets import without a warning, a moved name warns). Each widget's own
tests: test_dashboard.py, test_explorer.py, test_playground.py, test_human_eval.py; the browser test is
tests/test_lab.py."""
import numpy as np
import pytest

from mmgen_nbdev.dashboard import PANELS, Throttle, TrainingDashboard
from mmgen_nbdev.data import load_toy
from mmgen_nbdev.explorer import LatentExplorer
from mmgen_nbdev.human_eval import HumanEvaluation
from mmgen_nbdev.metrics import histogram_js, js_divergence, wilson_interval
from mmgen_nbdev.playground import GANPlayground
from mmgen_nbdev.views import ModelView
from widget_helpers import backends, digits, fit, small_vae


# ----------------------------------------------------------------------------- bad input
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
