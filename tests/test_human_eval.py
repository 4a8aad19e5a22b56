"""The human evaluation: the buttons, the accuracy with its interval, the table and the CSV export."""
import numpy as np
import pytest

from mmgen_nbdev.human_eval import HumanEvaluation
from mmgen_nbdev.metrics import wilson_interval
from widget_helpers import PNG, digits, image_bytes


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
