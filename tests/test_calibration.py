"""Calibration (temperature, sigmoid, isotonic): fitted on out-of-fold predictions, chosen only
where it pays off out of sample, a saved model that maps its probabilities, and the Brier score
and reliability diagram that show it."""

from __future__ import annotations

import json
import pickle

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
    CALIBRATORS,
    CalibratedClassifier,
    Temperature,
    TemperatureScaledClassifier,
    calibrated,
    calibrator_from,
    fit_calibrator,
    fit_temperature,
    held_out_losses,
    scaled,
)
from model_trainer.models.ensemble import OutOfFoldPredictions
from model_trainer.models.metrics import classification_metrics
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
    held_out = held_out_losses(over, y, CLASSES, folds, ["temperature"])
    assert np.mean(held_out["temperature"]) < 0.95 * np.mean(held_out["uncalibrated"])
    already, y = _sampled(1.0)
    held_out = held_out_losses(already, y, CLASSES, folds, ["temperature"])
    assert np.mean(held_out["temperature"]) == pytest.approx(
        np.mean(held_out["uncalibrated"]), rel=0.01
    )


def test_the_scaled_model_predicts_its_inner_models_labels_with_scaled_probabilities():
    inner = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=100.0))])
    model = calibrated(inner, Temperature(3.0))
    with pytest.raises(NotFittedError):
        model.named_steps["calibration"].predict_proba(X)
    model.fit(X, Y)
    plain = inner.fit(X, Y)
    assert list(model.classes_) == list(plain.classes_)
    assert (model.predict(X) == plain.predict(X)).all()
    assert np.allclose(model.predict_proba(X), scaled(plain.predict_proba(X), 3.0))
    assert log_loss(Y, model.predict_proba(X)) != pytest.approx(log_loss(Y, plain.predict_proba(X)))


def test_an_onnx_export_of_a_scaled_model_is_refused_naming_the_setting():
    model = calibrated(
        Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]), Temperature(2.0)
    ).fit(X, Y)
    assert isinstance(model.steps[-1][1], CalibratedClassifier)
    with pytest.raises(onnx_export.NotConvertible, match=r"training\.calibration"):
        onnx_export.to_onnx(model, {c: "number" for c in X.columns})


def _chosen(
    setting: str, metric: str = "log_loss", task_type: str = "classification", n: int = 1000
):
    probabilities, y = _sampled(2.5, n=n)
    store = OutOfFoldPredictions(keep=3, greater_is_better=False, covered=np.arange(n))
    store.add(7, 0.5, probabilities)
    task = {"type": task_type, "classes": CLASSES}
    summary = {"best_trial": 7, "ensemble": None}
    folds = list(np.array_split(np.arange(n), 5))
    return final_model.chosen_calibration(
        setting, summary, store, y, task, {"metric": metric}, folds
    )


def test_auto_calibrates_an_over_confident_log_loss_model_and_says_by_how_much():
    chosen = _chosen("auto")
    # the model is over-confident by one common factor: temperature is the right map, and
    # the held-out comparison finds it (sigmoid has three times the parameters)
    assert chosen["method"] == "temperature"
    assert chosen["parameters"]["temperature"] == pytest.approx(2.5, rel=0.25)
    figures = chosen["held_out"]
    assert chosen["loss"] == "log_loss"
    assert set(figures) == {"uncalibrated", "temperature", "sigmoid", "isotonic"}
    assert figures["temperature"] == min(figures.values())
    assert figures["temperature"] < figures["uncalibrated"]
    assert "T = 2" in chosen["description"]


def test_auto_leaves_a_search_of_another_metric_and_none_leaves_all():
    assert _chosen("auto", metric="roc_auc")["method"] == "none"
    assert "roc_auc" in _chosen("auto", metric="roc_auc")["reason"]
    assert _chosen("none")["method"] == "none"
    assert _chosen("temperature", metric="roc_auc")["method"] == "temperature"
    assert _chosen("isotonic", metric="roc_auc")["method"] == "isotonic"


def test_auto_tries_isotonic_only_on_enough_rows_and_scores_a_brier_search_by_brier():
    few = _chosen("auto", n=500)
    assert "isotonic" not in few["held_out"]
    brier = _chosen("auto", metric="brier")
    assert brier["loss"] == "brier" and brier["method"] != "none"


def test_an_unknown_setting_is_refused_with_the_accepted_values():
    with pytest.raises(ConfigurationError, match=r"training\.calibration") as error:
        final_model.check_final_model_settings("platt", {})
    assert "auto, temperature, sigmoid, isotonic, none" in str(error.value.remediation)


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


def _binary_shifted(n: int, seed: int = 0):
    """A binary model whose probabilities are right in ranking but shifted: it says 0.1 to 0.5
    where the truth is 0.5 to 0.9. Temperature (which keeps 0.5 fixed) cannot move them there;
    sigmoid's offset and isotonic's steps can."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.5, 0.9, n)
    labels = pd.Series(np.where(rng.uniform(size=n) < truth, "yes", "no"))
    said = truth - 0.4
    return np.column_stack([1 - said, said]), labels


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_sigmoid_and_isotonic_repair_a_shifted_binary_model_that_temperature_cannot(method):
    probabilities, y = _binary_shifted(4000)
    folds = list(np.array_split(np.arange(4000), 5))
    held_out = {k: np.mean(v) for k, v in held_out_losses(
        probabilities, y, ["no", "yes"], folds, ["temperature", method]
    ).items()}  # fmt: skip
    assert held_out[method] < 0.8 * held_out["uncalibrated"]
    assert held_out[method] < held_out["temperature"]
    mapped = fit_calibrator(method, probabilities, y, ["no", "yes"]).transform(probabilities)
    assert np.allclose(mapped.sum(axis=1), 1.0)
    assert abs(mapped[:, 1].mean() - (y == "yes").mean()) < 0.02  # the base rate restored


@pytest.mark.parametrize("method", list(CALIBRATORS))
def test_a_fitted_map_survives_json_and_a_multiclass_map_gives_probabilities(method):
    """The search's summary is JSON: the final fit rebuilds the map from it."""
    probabilities, y = _sampled(2.0, n=1500)
    fitted = fit_calibrator(method, probabilities, y, CLASSES)
    rebuilt = CALIBRATORS[method](**json.loads(json.dumps(fitted.parameters())))
    assert np.allclose(rebuilt.transform(probabilities), fitted.transform(probabilities))
    mapped = fitted.transform(probabilities)
    assert np.allclose(mapped.sum(axis=1), 1.0) and (mapped > 0).all()


def test_a_model_saved_with_the_former_temperature_class_loads_with_its_temperature():
    inner = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    fitted = CalibratedClassifier(inner, Temperature(3.0)).fit(X, Y)
    former = TemperatureScaledClassifier.__new__(TemperatureScaledClassifier)
    state = {**fitted.__dict__, "temperature": 3.0}
    del state["calibrator"]
    former.__setstate__(state)
    loaded = pickle.loads(pickle.dumps(former))
    assert np.allclose(loaded.predict_proba(X), fitted.predict_proba(X))


def test_the_brier_score_is_scikit_learns_for_two_classes_and_for_more():
    from sklearn.metrics import brier_score_loss

    probabilities, y = _binary_shifted(300)
    task = {"type": "classification", "classes": ["no", "yes"], "positive_class": "yes"}
    ours = classification_metrics(y, y, probabilities, ["no", "yes"], task, ("brier",))
    assert ours["brier"] == pytest.approx(brier_score_loss(y == "yes", probabilities[:, 1]))
    probabilities, y = _sampled(1.0, n=300)
    task = {"type": "classification", "classes": CLASSES}
    ours = classification_metrics(y, y, probabilities, CLASSES, task, ("brier",))
    assert ours["brier"] == pytest.approx(brier_score_loss(y, probabilities, labels=CLASSES))


@pytest.mark.parametrize("classes", [["no", "yes"], CLASSES])
def test_the_reliability_diagram_is_drawn_for_two_classes_and_for_more(classes):
    from model_trainer.reporting.plots import prediction_figures

    probabilities, y = _binary_shifted(300) if len(classes) == 2 else _sampled(1.0, n=300)
    predictions = pd.DataFrame({"actual": y, "predicted": y})
    for index, label in enumerate(classes):
        predictions[f"proba_{label}"] = probabilities[:, index]
    task = {"type": "classification", "classes": classes, "positive_class": classes[-1]}
    figure = prediction_figures(predictions, task)["calibration.png"]
    curve = figure.axes[0]
    assert "Reliability" in curve.get_title()
    # the model's line: observed frequency per bin, below the diagonal for the shifted binary
    # model (it says less than happens: the points lie above it) and near it when calibrated
    x, observed = (np.asarray(v) for v in curve.lines[-1].get_data())
    gap = float(np.mean(observed - x))
    assert gap == pytest.approx(0.4, abs=0.1) if len(classes) == 2 else abs(gap) < 0.1


def test_a_summary_saved_before_sigmoid_and_isotonic_still_gives_its_temperature():
    former = {"method": "temperature", "temperature": 2.5, "held_out_log_loss": {}}
    assert isinstance(calibrator_from(former), Temperature)
    assert calibrator_from(former).temperature == 2.5
    assert calibrator_from({"method": "none", "reason": "x"}) is None
    from model_trainer.reporting.decisions import _calibration_decision

    assert "T = 2.5" in _calibration_decision(former)["choice"]


def test_the_decision_record_says_what_was_tried_skipped_and_when_a_named_method_hurt():
    from model_trainer.reporting.decisions import _calibration_decision

    few = _calibration_decision(_chosen("auto", n=500))
    assert few["choice"].startswith("temperature scaling")
    assert "isotonic (fewer than 1000 out-of-fold rows) not tried" in few["why"]
    assert "temperature" in few["why"] and "sigmoid" in few["why"]
    # an over-confident model by a common factor: isotonic by name is worse than temperature;
    # against a well calibrated one, a named method raises the loss and the record says so
    probabilities, y = _sampled(1.0, n=400)
    store = OutOfFoldPredictions(keep=3, greater_is_better=False, covered=np.arange(400))
    store.add(7, 0.5, probabilities)
    named = final_model.chosen_calibration(
        "isotonic", {"best_trial": 7, "ensemble": None}, store, y,
        {"type": "classification", "classes": CLASSES}, {"metric": "log_loss"},
        list(np.array_split(np.arange(400), 5)),
    )  # fmt: skip
    record = _calibration_decision(named)
    assert "training.calibration names it" in record["why"]
    assert "it raised the held-out loss" in record["why"]
