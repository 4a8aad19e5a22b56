"""The metrics where their answers are known: Fréchet distance of Gaussians, MMD of equal and shifted samples,
precision and recall of a collapsed sample, the classification accuracy score, and the package's digit classifier."""
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
