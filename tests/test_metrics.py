"""The metrics where their answers are known: Fréchet distance of Gaussians, MMD of equal and shifted samples,
precision and recall of a collapsed sample, the classification accuracy score, the package's digit classifier, and
the Shapes factor readers (colour from pixels, a trained shape classifier, the caption parser), the JS estimate of
2-D samples and Wilson's interval."""
import math

import keras

import numpy as np
import pytest

from mmgen_nbdev.data import load_digits, load_toy
from mmgen_nbdev.metrics import (classification_accuracy_score, digit_classifier, digit_frechet_distance,
                                 frechet_distance, histogram_js, js_divergence, mmd, precision_recall,
                                 wilson_interval)


def test_frechet_distance_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((100_000, 3)), 1.0 + 3.0 * rng.standard_normal((100_000, 3))
    assert frechet_distance(a, b) == pytest.approx(3 * 1.0 + 3 * (1 - 3) ** 2, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(a, b[:, :2])


def test_mmd_separates_distributions():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 2))
    assert abs(mmd(x, rng.standard_normal((300, 2)))) < 0.01
    assert mmd(x, rng.standard_normal((300, 2)) + 1.0) > 0.1


def test_precision_recall_of_a_collapsed_sample():
    rng = np.random.default_rng(3)
    angles = 2 * np.pi * np.arange(10) / 10
    centres = 10 * np.stack([np.cos(angles), np.sin(angles)], -1)  # ten well separated clusters in the plane
    real = np.repeat(centres, 200, axis=0) + rng.standard_normal((2000, 2)) * 0.5
    full = np.repeat(centres, 50, axis=0) + rng.standard_normal((500, 2)) * 0.5
    collapsed = np.repeat(centres[:2], 250, axis=0) + rng.standard_normal((500, 2)) * 0.5
    p_full, r_full = precision_recall(real, full)
    p_col, r_col = precision_recall(real, collapsed)
    assert p_full > 0.9 and r_full > 0.9
    assert p_col > 0.9 and r_col < 0.3


def test_classification_accuracy_score_needs_right_labels():
    train, test = load_digits("train"), load_digits("test")
    assert classification_accuracy_score(train["image"], train["label"], test["image"], test["label"]) > 0.9
    shuffled = np.random.default_rng(0).permutation(train["label"])
    assert classification_accuracy_score(train["image"], shuffled, test["image"], test["label"]) < 0.25


def test_digit_classifier_and_frechet_distance_rank_quality():
    classifier, extractor = digit_classifier(16)
    train, test = load_digits("train", image_size=16), load_digits("test", image_size=16)
    assert classifier.evaluate(test["image"], test["label"], verbose=0)[1] > 0.95
    assert extractor.output.shape[-1] == 64
    noise = np.random.default_rng(0).uniform(size=test["image"].shape).astype("float32")
    assert digit_frechet_distance(train["image"], test["image"]) < 0.1 * digit_frechet_distance(train["image"], noise)


def test_read_colour_recovers_each_pure_colour_at_any_brightness():
    from mmgen_nbdev.shapes import _RGB, SHAPE_FACTORS
    from mmgen_nbdev.metrics import read_colour
    names = SHAPE_FACTORS["colour"]
    images = np.zeros((2 * len(names) + 1, 6, 6, 3), "float32")
    for i, name in enumerate(names):
        images[i, 2:4, 1:5] = _RGB[name]
        images[len(names) + i, 1:5, 2:4] = 0.75 * np.array(_RGB[name])
    assert read_colour(images).tolist() == 2 * list(range(len(names))) + [-1]
    with pytest.raises(ValueError, match="RGB images of shape"):
        read_colour(images[..., :1])


def test_shape_readers_are_exact_on_real_level_2_data():
    from mmgen_nbdev.data import load_shapes
    from mmgen_nbdev.metrics import read_shape_factors
    test = load_shapes(2, "test", n=200)
    for modality in ("image", "text"):
        read = read_shape_factors(modality, test[modality], level=2)
        assert sorted(read) == ["colour", "shape"]
        for factor, values in read.items():
            np.testing.assert_array_equal(values, test["factors"][factor], err_msg=f"{modality}: {factor}")


def test_caption_parser_and_factor_accuracy():
    from mmgen_nbdev.data import shapes_vocabulary
    from mmgen_nbdev.metrics import factor_accuracy, read_shape_factors
    vocabulary = shapes_vocabulary()
    captions = ["a large red square at the top left", "small cyan cross bottom right", "a large small blue circle"]
    read = read_shape_factors("text", np.stack([vocabulary.encode(c) for c in captions]), level=3)
    assert {f: v.tolist() for f, v in read.items()} == {"shape": [1, 3, 0], "colour": [0, 5, 2], "size": [1, 0, -1],
                                                       "position": [0, 3, -1]}
    true = {"shape": [1, 3, 0], "colour": [0, 5, 2], "size": [1, 0, 1], "position": [0, 3, 2]}
    assert factor_accuracy(read, true) == {"shape": 1.0, "colour": 1.0, "size": 2 / 3, "position": 2 / 3, "all": 2 / 3}
    with pytest.raises(ValueError, match="lacks the factors"):
        factor_accuracy(read, {"shape": [1, 3, 0]})
    with pytest.raises(ValueError, match="`modality` must be one of 'image', 'text'"):
        read_shape_factors("audio", np.zeros((1, 10), "int32"))
    with pytest.raises(ValueError, match="`level` must be one of"):
        read_shape_factors("text", np.zeros((1, 10), "int32"), level=0)


# ---- bad input: NaN data, sets too small for their estimator, shapes that would broadcast, zero vectors ----------
import re  # noqa: E402

from mmgen_nbdev.metrics import (factor_accuracy, iwae_nll, linear_probe_accuracy, mmd,  # noqa: E402
                                 read_colour, read_digits, read_shape_factors, reconstruction_error,
                                 retrieval_metrics)

RNG = np.random.default_rng(0)
A, B = RNG.normal(size=(40, 3)), RNG.normal(size=(30, 3))
NAN = A.copy()
NAN[3, 1] = np.nan
INF = A.copy()
INF[0, 0] = np.inf
LABELS = np.arange(40) % 4

BAD_CALLS = [
    (lambda: frechet_distance(NAN, B), "features_a"),
    (lambda: frechet_distance(A, INF), "features_b"),
    (lambda: frechet_distance(A[:1], B), "features_a"),
    (lambda: frechet_distance(A[0], B), "features_a"),
    (lambda: frechet_distance(A, B[:, :2]), "features_a"),
    (lambda: mmd(A[:1], B), "x"),
    (lambda: mmd(A, B[:1]), "y"),
    (lambda: mmd(NAN, B), "x"),
    (lambda: mmd(A, B[:, :2]), "x"),
    (lambda: mmd(A, B, bandwidths=(1.0, -1.0)), "bandwidths"),
    (lambda: mmd(A, B, bandwidths=(float("inf"),)), "bandwidths"),
    (lambda: mmd(A, B, bandwidths=()), "bandwidths"),
    (lambda: precision_recall(A, B, k=0), "k"),
    (lambda: precision_recall(A, B, k=2.5), "k"),
    (lambda: precision_recall(A, B, k=30), "k"),
    (lambda: precision_recall(A, B[:1]), "generated_features"),
    (lambda: precision_recall(NAN, B), "real_features"),
    (lambda: precision_recall(A, B[:, :2]), "real_features"),
    (lambda: classification_accuracy_score(NAN, LABELS, A, LABELS), "generated_images"),
    (lambda: classification_accuracy_score(A, LABELS, INF, LABELS), "real_images"),
    (lambda: classification_accuracy_score(A, LABELS[:-1], A, LABELS), "generated_labels"),
    (lambda: classification_accuracy_score(A, LABELS, A, LABELS[:5]), "real_labels"),
    (lambda: classification_accuracy_score(A, np.zeros(40, int), A, LABELS), "generated_labels"),
    (lambda: classification_accuracy_score(A, LABELS, B[:, :2], LABELS[:30]), "generated_images"),
    (lambda: linear_probe_accuracy(NAN, LABELS, A, LABELS), "train_features"),
    (lambda: linear_probe_accuracy(A, LABELS, A[:, :2], LABELS), "train_features"),
    (lambda: linear_probe_accuracy(A, LABELS[:3], A, LABELS), "train_labels"),
    (lambda: linear_probe_accuracy(A, LABELS, A, LABELS[:3]), "test_labels"),
    (lambda: retrieval_metrics(np.vstack([A[:-1], np.zeros((1, 3))]), A), "queries"),
    (lambda: retrieval_metrics(A, np.zeros((40, 3))), "keys"),
    (lambda: retrieval_metrics(NAN, A), "queries"),
    (lambda: retrieval_metrics(A, B), "queries"),
    (lambda: retrieval_metrics(A, A, LABELS), "query_labels"),
    (lambda: retrieval_metrics(A, A, LABELS[:3], LABELS), "query_labels"),
    (lambda: retrieval_metrics(A, A, LABELS, LABELS + 10), "query_labels"),
    (lambda: retrieval_metrics(A, A, ks=(0,)), "ks"),
    (lambda: retrieval_metrics(A, A, ks=(1.5,)), "ks"),
    (lambda: factor_accuracy({"shape": [0, 1, 2]}, {"shape": [0]}), "predicted"),
    (lambda: factor_accuracy({"shape": [0, 1], "colour": [0, 1, 2]}, {"shape": [0, 1], "colour": [0, 1, 2]}),
     "predicted"),
    (lambda: factor_accuracy({}, {}), "predicted"),
    (lambda: read_digits("text", np.full((2, 6), np.nan)), "values"),
    (lambda: read_digits("text", np.full((2, 6), 1000)), "values"),
    (lambda: read_digits("text", np.array([1.5, 2.0])), "values"),
    (lambda: read_digits("audio", np.full((2, 32, 32), np.inf)), "values"),
    (lambda: read_digits("audio", np.zeros((2, 32, 5))), "values"),
    (lambda: read_digits("image", np.full((2, 16, 16, 1), np.nan)), "values"),
    (lambda: read_digits("image", np.zeros((2, 8, 8, 1))), "values"),
    (lambda: read_digits("image", np.zeros((2, 16, 16, 1)), image_size=16.5), "image_size"),
    (lambda: read_digits("video", np.zeros((2, 16, 16, 1))), "modality"),
    (lambda: read_colour(np.full((2, 8, 8, 3), np.nan)), "images"),
    (lambda: read_shape_factors("text", np.full((2, 10), -1)), "values"),
    (lambda: read_shape_factors("image", np.zeros((2, 8, 12, 3))), "values"),
    (lambda: read_shape_factors("text", np.zeros((2, 10), int), level=2.0), "level"),
    (lambda: digit_classifier(image_size=4), "image_size"),
    (lambda: digit_classifier(epochs=0), "epochs"),
    (lambda: digit_classifier(seed=-1), "seed"),
    (lambda: digit_frechet_distance(np.full((4, 16, 16, 1), np.nan), np.zeros((4, 16, 16, 1))), "real_images"),
    (lambda: iwae_nll(None, np.zeros((2, 4)), k=0), "k"),
    (lambda: iwae_nll(None, np.full((2, 4), np.nan)), "images"),
    (lambda: reconstruction_error(None, np.full((2, 4), np.inf)), "images"),
]


@pytest.mark.parametrize("call,argument", BAD_CALLS, ids=[f"{i}-{a}" for i, (_, a) in enumerate(BAD_CALLS)])
def test_bad_input_is_refused_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=re.escape(f"`{argument}`")):
        call()


def test_degenerate_but_valid_sets_give_the_right_finite_answer():
    point = np.ones((6, 3))
    assert mmd(point, point[:4]) == 0.0  # one point mass against itself
    assert mmd(A, A) == pytest.approx(0.0, abs=0.05)  # identical samples: the unbiased estimate is near 0
    mostly_same = np.vstack([np.zeros((9, 2)), np.ones((1, 2))])  # the median distance is 0
    assert np.isfinite(mmd(mostly_same, mostly_same + 3))
    assert frechet_distance(point, point) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(point, point + 1) == pytest.approx(3.0, abs=1e-6)
    assert mmd(A.astype("float32"), np.float32(2) + B, bandwidths=np.float32(1)) > 0  # NumPy scalars are numbers
    assert precision_recall(A, B, k=np.int64(29)) == (1.0, 1.0)


def test_too_few_rows_for_a_covariance_warns_but_answers():
    with pytest.warns(UserWarning, match="covariance is singular"):
        assert np.isfinite(frechet_distance(A[:3], B[:3]))


def test_retrieval_without_a_match_for_a_label_and_recall_counts():
    labels = np.arange(40) % 4
    result = retrieval_metrics(A, A, labels, labels, ks=np.int64(1))
    assert result == {"recall@1": 1.0, "median_rank": 1.0}


def test_js_estimator_bounds():
    rng = np.random.default_rng(0)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(math.log(2))
    assert js_divergence([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    a, b = rng.normal(size=(5000, 2)), rng.normal(size=(5000, 2))
    assert 0 < histogram_js(a, b) < 0.05  # the sampling bias of 30×30 cells and 5,000 points
    assert histogram_js(a, b + 100) == pytest.approx(math.log(2))
    ring = load_toy("ring", 500)["points"]
    assert histogram_js(ring, ring) == pytest.approx(0.0)


def test_wilson_interval_matches_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    low, high = wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)


# ---- the layout: the readers in their own module, every name still importable from mmgen_nbdev.metrics ---------
METRICS_NAMES = ['frechet_distance', 'digit_classifier', 'digit_frechet_distance', 'precision_recall',
                 'classification_accuracy_score', 'mmd', 'reconstruction_error', 'iwae_nll', 'read_digits',
                 'cross_modal_coherence', 'joint_coherence', 'read_colour', 'shape_classifier', 'read_shape_factors',
                 'factor_accuracy', 'cross_modal_factor_accuracy', 'linear_probe_accuracy', 'retrieval_metrics',
                 'js_divergence', 'grid_edges', 'histogram_js', 'spread', 'wilson_interval']


def test_metrics_still_exports_every_name_it_exported_before_the_split():
    from mmgen_nbdev import metrics, readers
    assert set(METRICS_NAMES) <= set(metrics.__all__) and all(hasattr(metrics, name) for name in METRICS_NAMES)
    assert metrics.read_digits is readers.read_digits and metrics.digit_classifier is readers.digit_classifier


# ---- judges: feature networks shown to read the data they score ------------------------------------------------
def _mnist_format_cache(folder):
    "A small mnist.npz in Keras's cache format, written from the embedded digits at 28×28 (never the real file)."
    from mmgen_nbdev.data import load_digits
    arrays = {}
    for split, n in (("train", 600), ("test", 200)):
        d = load_digits(split, n=n, image_size=28)
        arrays[f"x_{split}"] = np.round(d["image"][..., 0] * 255).astype(np.uint8)
        arrays[f"y_{split}"] = d["label"].astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "mnist.npz", **arrays)


def test_a_score_carries_its_judges_accuracy_and_a_judge_near_chance_refuses():
    from mmgen_nbdev.metrics import digit_frechet_distance
    test = load_digits("test", image_size=16)
    score = digit_frechet_distance(test["image"][:180], test["image"][180:])
    assert isinstance(score, float) and score.judge_accuracy > 0.9 and "reads" in repr(score)
    shuffled = np.random.default_rng(0).permutation(test["label"][:180])
    with pytest.raises(ValueError, match=r"reads \d+\.\d% of the real images correctly \(chance"):
        digit_frechet_distance(test["image"][:180], test["image"][180:], real_labels=shuffled)


def test_a_users_own_feature_network_judges(digits):
    from mmgen_nbdev.metrics import Judge, judged_frechet_distance
    from keras import layers
    train, test = digits
    network = keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(), layers.Dense(32, activation="relu")])
    judge = Judge(network, test["image"], test["label"], name="my features")
    assert judge.accuracy > 2 * judge.chance
    score = judged_frechet_distance(train["image"][:128], test["image"], judge)
    assert score.judge == "my features" and score.judge_accuracy == judge.accuracy
    with pytest.raises(TypeError, match="`network` must be a Keras model"):
        Judge(lambda x: x, test["image"], test["label"])


def test_a_judge_trained_on_a_keras_cache_dataset_reads_it(tmp_path, monkeypatch):
    from mmgen_nbdev.metrics import judged_frechet_distance, keras_dataset_judge
    from mmgen_nbdev.mnist import load_mnist
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    _mnist_format_cache(tmp_path / "keras" / "datasets")
    keras_dataset_judge.cache_clear()
    judge = keras_dataset_judge("mnist", epochs=3)
    test = load_mnist("test")
    assert judge.accuracy > 0.8 and judge.image_shape == (28, 28, 1)
    score = judged_frechet_distance(test["image"][:100], test["image"][100:], judge, real_labels=test["label"][:100])
    assert score.where == "the real images" and score.judge_accuracy > 0.8
    keras_dataset_judge.cache_clear()
