"""Temperature scaling: fitted on out-of-fold predictions, applied only where it pays off out of
sample, and a saved model that keeps its labels and scales its probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from model_trainer.errors import ConfigurationError
from model_trainer.models.calibration import (
    TemperatureScaledClassifier,
    fit_temperature,
    held_out_temperature,
    scaled,
    with_temperature,
)
from model_trainer.models.ensemble import OutOfFoldPredictions
from model_trainer.search import final_model
from model_trainer.serving import onnx_export
from tests.conftest import BENCH, require_bench_data

CLASSES = ["a", "b", "c"]
require_bench_data()  # read on import
PENGUINS = pd.read_csv(BENCH / "penguins" / "train.csv").dropna()
X = PENGUINS[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]]
Y = PENGUINS["species"]


def _sampled(temperature_of_model: float, n: int = 3000, seed: int = 0):
    """Labels drawn from softmax(z), and a model's probabilities softmax(z * T): a model
    over-confident by the factor T, which scaling by T undoes."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, 3))
    truth = scaled(np.exp(logits), 1.0)
    labels = pd.Series([CLASSES[rng.choice(3, p=row)] for row in truth])
    return scaled(np.exp(logits * temperature_of_model), 1.0), labels


def test_the_fitted_temperature_undoes_a_known_over_confidence():
    probabilities, y = _sampled(2.0)
    assert fit_temperature(probabilities, y, CLASSES) == pytest.approx(2.0, rel=0.15)
    calibrated, _ = _sampled(1.0)
    assert fit_temperature(calibrated, y, CLASSES) == pytest.approx(1.0, rel=0.15)


def test_scaling_keeps_each_rows_most_probable_class_and_sums_to_one():
    probabilities, _ = _sampled(2.0, n=200)
    for temperature in (0.3, 1.0, 4.0):
        out = scaled(probabilities, temperature)
        assert np.allclose(out.sum(axis=1), 1.0)
        assert (out.argmax(axis=1) == probabilities.argmax(axis=1)).all()


@pytest.mark.slow
def test_held_out_scaling_helps_an_over_confident_model_and_not_a_calibrated_one():
    folds = list(np.array_split(np.arange(3000), 5))
    over, y = _sampled(2.5)
    held_out = held_out_temperature(over, y, CLASSES, folds)
    assert np.mean(held_out["calibrated"]) < 0.95 * np.mean(held_out["uncalibrated"])
    calibrated, y = _sampled(1.0)
    held_out = held_out_temperature(calibrated, y, CLASSES, folds)
    assert np.mean(held_out["calibrated"]) == pytest.approx(
        np.mean(held_out["uncalibrated"]), rel=0.01
    )


def test_the_scaled_model_predicts_its_inner_models_labels_with_scaled_probabilities():
    inner = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=100.0))])
    model = with_temperature(inner, 3.0)
    with pytest.raises(NotFittedError):
        model.named_steps["calibration"].predict_proba(X)
    model.fit(X, Y)
    plain = inner.fit(X, Y)
    assert list(model.classes_) == list(plain.classes_)
    assert (model.predict(X) == plain.predict(X)).all()
    assert np.allclose(model.predict_proba(X), scaled(plain.predict_proba(X), 3.0))
    assert log_loss(Y, model.predict_proba(X)) != pytest.approx(log_loss(Y, plain.predict_proba(X)))


def test_an_onnx_export_of_a_scaled_model_is_refused_naming_the_setting():
    model = with_temperature(
        Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]), 2.0
    ).fit(X, Y)
    assert isinstance(model.steps[-1][1], TemperatureScaledClassifier)
    with pytest.raises(onnx_export.NotConvertible, match=r"training\.calibration"):
        onnx_export.to_onnx(model, {c: "number" for c in X.columns})


def _chosen(setting: str, metric: str = "log_loss", task_type: str = "classification"):
    probabilities, y = _sampled(2.5, n=1000)
    store = OutOfFoldPredictions(keep=3, greater_is_better=False, covered=np.arange(1000))
    store.add(7, 0.5, probabilities)
    task = {"type": task_type, "classes": CLASSES}
    summary = {"best_trial": 7, "ensemble": None}
    folds = list(np.array_split(np.arange(1000), 5))
    return final_model.chosen_calibration(
        setting, summary, store, y, task, {"metric": metric}, folds
    )


def test_auto_scales_an_over_confident_log_loss_model_and_says_by_how_much():
    chosen = _chosen("auto")
    assert chosen["method"] == "temperature"
    assert chosen["temperature"] == pytest.approx(2.5, rel=0.25)
    figures = chosen["held_out_log_loss"]
    assert figures["calibrated"] < figures["uncalibrated"]


def test_auto_leaves_a_search_of_another_metric_and_none_leaves_all():
    assert _chosen("auto", metric="roc_auc")["method"] == "none"
    assert "roc_auc" in _chosen("auto", metric="roc_auc")["reason"]
    assert _chosen("none")["method"] == "none"
    assert _chosen("temperature", metric="roc_auc")["method"] == "temperature"


def test_an_unknown_setting_is_refused_with_the_accepted_values():
    with pytest.raises(ConfigurationError, match=r"training\.calibration") as error:
        final_model.check_final_model_settings("isotonic", {})
    assert "auto, temperature, none" in str(error.value.remediation)


def test_auto_leaves_a_bag_alone_whose_averaged_probabilities_are_softer():
    probabilities, y = _sampled(2.5, n=1000)
    store = OutOfFoldPredictions(keep=3, greater_is_better=False, covered=np.arange(1000))
    store.add(7, 0.5, probabilities)
    summary = {"best_trial": 7, "ensemble": None, "bagging": {"folds": 5}}
    folds = list(np.array_split(np.arange(1000), 5))
    task = {"type": "classification", "classes": CLASSES}
    chosen = final_model.chosen_calibration(
        "auto", summary, store, y, task, {"metric": "log_loss"}, folds
    )
    assert chosen["method"] == "none" and "bag of 5" in chosen["reason"]


def test_integer_labels_are_scored_as_the_project_scores_them():
    probabilities, y = _sampled(2.0, n=600)
    as_integers = y.map({"a": 0, "b": 1, "c": 2}).astype(object)
    assert fit_temperature(probabilities, as_integers, [0, 1, 2]) == pytest.approx(
        fit_temperature(probabilities, y, CLASSES)
    )
