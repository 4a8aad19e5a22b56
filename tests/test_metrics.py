"""The metrics where their answers are known: Fréchet distance of Gaussians, MMD of equal and shifted samples,
precision and recall of a collapsed sample, the classification accuracy score, the package's digit classifier, and
the Shapes factor readers (colour from pixels, a trained shape classifier, the caption parser)."""
import numpy as np
import pytest

from mmgen_nbdev.data import load_digits
from mmgen_nbdev.metrics import (classification_accuracy_score, digit_classifier, digit_frechet_distance,
                                 frechet_distance, mmd, precision_recall)


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
    from mmgen_nbdev.data import SHAPE_FACTORS, _RGB
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
    with pytest.raises(ValueError, match="`modality` must be 'image' or 'text'"):
        read_shape_factors("audio", np.zeros((1, 10), "int32"))
    with pytest.raises(ValueError, match="`level` must be one of"):
        read_shape_factors("text", np.zeros((1, 10), "int32"), level=0)
