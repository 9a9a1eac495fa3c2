"""Metrics fit the task, know their direction, and score the class the user cares about."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from model_trainer.errors import ConfigurationError
from model_trainer.models.metrics import (
    CLASSIFICATION_REPORT,
    METRICS,
    REGRESSION_REPORT,
    classification_metrics,
    default_metric,
    evaluate,
    get_metric,
    is_better,
    regression_metrics,
    score,
)
from tests.conftest import BENCH

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

PENGUINS = BENCH / "penguins" / "train.csv"
BINARY = {"type": "classification", "classes": ["bad", "good"], "positive_class": "bad"}
MULTICLASS = {"type": "classification", "classes": ["a", "b", "c"], "positive_class": None}
REGRESSION = {"type": "regression"}


class FixedProba:
    """A fitted-model stand-in whose probabilities are known."""

    def __init__(self, classes, proba):
        self.classes_ = np.asarray(classes)
        self._proba = np.asarray(proba, dtype=float)

    def predict_proba(self, X):
        return self._proba

    def predict(self, X):
        return self.classes_[self._proba.argmax(axis=1)]


def test_default_metric_is_roc_auc_log_loss_or_rmse_by_task():
    assert default_metric(BINARY) == "roc_auc"
    assert default_metric(MULTICLASS) == "log_loss"
    assert default_metric(REGRESSION) == "rmse"


def test_every_metric_knows_its_direction():
    assert {name for name, m in METRICS.items() if not m.greater_is_better} == {
        "log_loss", "brier", "rmse", "mae", "davies_bouldin",
    }  # fmt: skip
    assert is_better(METRICS["roc_auc"], 0.9, 0.8)
    assert not is_better(METRICS["roc_auc"], 0.8, 0.9)
    assert is_better(METRICS["rmse"], 10.0, 12.0)
    assert not is_better(METRICS["log_loss"], 0.7, 0.5)


def test_refuses_a_regression_metric_for_classification_listing_the_allowed_ones():
    with pytest.raises(ConfigurationError) as caught:
        get_metric("rmse", BINARY)
    assert "Metric 'rmse' does not fit a classification task" in caught.value.message
    for name in CLASSIFICATION_REPORT:
        assert name in caught.value.remediation


def test_refuses_a_classification_metric_for_regression():
    with pytest.raises(ConfigurationError) as caught:
        get_metric("roc_auc", REGRESSION)
    assert "'roc_auc' does not fit a regression task" in caught.value.message
    assert "rmse, mae, r2" in caught.value.remediation


def test_regression_metrics_match_their_definitions():
    y = np.array([3.0, 5.0, 7.0, 9.0])
    predicted = np.array([4.0, 5.0, 6.0, 11.0])
    result = regression_metrics(y, predicted)
    assert set(result) == set(REGRESSION_REPORT)
    assert result["rmse"] == pytest.approx(math.sqrt((1 + 0 + 1 + 4) / 4))
    assert result["mae"] == pytest.approx(1.0)
    assert result["r2"] == pytest.approx(1 - 6 / 20)


def test_binary_metrics_are_for_the_positive_class():
    y = np.array(["bad", "bad", "good", "good", "good", "good"])
    predicted = np.array(["bad", "good", "good", "good", "good", "good"])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.1, 0.9], [0.35, 0.65]])
    as_bad = classification_metrics(y, predicted, proba, ["bad", "good"], BINARY)
    as_good = classification_metrics(
        y, predicted, proba, ["bad", "good"], {**BINARY, "positive_class": "good"}
    )
    assert as_bad["recall"] == pytest.approx(0.5)
    assert as_bad["precision"] == pytest.approx(1.0)
    assert as_good["recall"] == pytest.approx(1.0)
    assert as_good["precision"] == pytest.approx(0.8)
    # The ranking is perfect whichever class is positive.
    assert as_bad["roc_auc"] == pytest.approx(1.0)
    assert as_good["roc_auc"] == pytest.approx(1.0)
    assert as_bad["accuracy"] == pytest.approx(5 / 6)


def test_multiclass_metrics_are_macro_averages():
    y = np.array(["a", "a", "b", "b", "c", "c"])
    predicted = np.array(["a", "a", "b", "c", "c", "c"])
    proba = np.full((6, 3), 0.1) + np.eye(3)[[0, 0, 1, 2, 2, 2]] * 0.7
    result = classification_metrics(y, predicted, proba, ["a", "b", "c"], MULTICLASS)
    assert result["recall"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert result["precision"] == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert result["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert result["log_loss"] > 0


def test_multiclass_roc_auc_is_nan_when_a_class_is_absent():
    y = np.array(["a", "a", "b", "b"])
    proba = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    result = classification_metrics(y, y, proba, ["a", "b", "c"], MULTICLASS, names=("roc_auc",))
    assert math.isnan(result["roc_auc"])


def test_multiclass_pr_auc_does_not_penalise_a_class_absent_from_y():
    y = np.array(["a", "a", "b", "b"])
    proba = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    result = classification_metrics(y, y, proba, ["a", "b", "c"], MULTICLASS, names=("pr_auc",))
    assert math.isnan(result["pr_auc"]) or result["pr_auc"] == pytest.approx(1.0)


def test_evaluate_predicts_the_most_probable_class_once_probabilities_are_needed():
    model = FixedProba(["bad", "good"], [[0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    y = pd.Series(["bad", "good", "bad"])
    result = evaluate(model, None, y, BINARY)
    assert set(result) == set(CLASSIFICATION_REPORT)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["roc_auc"] == pytest.approx(0.5)


@pytest.mark.slow
def test_score_on_a_model_fitted_to_penguins():
    table = pd.read_csv(PENGUINS).dropna()
    X, y = table[["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]], table["species"]
    model = LogisticRegression(max_iter=2000).fit(X, y)
    task = {"type": "classification", "classes": sorted(y.unique()), "positive_class": None}
    assert score(model, X, y, "accuracy", task) > 0.9
    assert score(model, X, y, "log_loss", task) < 0.3
    assert score(model, X, y, "roc_auc", task) > 0.95


# --- any encoding of the target scores alike ----------------------------------------------------

# The credit target's two labels in each encoding a table may give them (bad, good).
ENCODINGS = {
    "0/1 ints": (np.array([0, 1]), 1),
    "-1/1 ints": (np.array([-1, 1]), 1),
    "1/2 ints": (np.array([1, 2]), 2),
    "0.0/1.0 floats": (np.array([0.0, 1.0]), 1.0),
    "booleans": (np.array([False, True]), True),
}


def encoded(labels: np.ndarray, as_text: np.ndarray, dtype: str | None = None) -> pd.Series:
    """`as_text` ('bad'/'good') recoded with `labels`."""
    return pd.Series(np.where(as_text == "good", labels[1], labels[0]), dtype=dtype)


def credit_predictions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real labels and a real model's predictions: logistic regression on credit scoring."""
    table = pd.read_csv(BENCH / "credit_data" / "train.csv").dropna().head(1500)
    X, y = table[["Seniority", "Income", "Amount", "Age"]], table["Status"].to_numpy()
    model = LogisticRegression(max_iter=2000).fit(X.head(1000), y[:1000])
    proba = model.predict_proba(X.tail(500))
    return y[1000:], model.classes_[proba.argmax(axis=1)], proba


def test_every_encoding_scores_like_text_labels_for_the_same_predictions():
    y, predicted, proba = credit_predictions()
    as_text = classification_metrics(
        y, predicted, proba, ["bad", "good"], {**BINARY, "positive_class": "good"}
    )
    assert 0.5 < as_text["f1"] < 1 and as_text["precision"] != as_text["recall"]
    cases = {
        name: (encoded(labels, y), encoded(labels, predicted), list(labels), positive)
        for name, (labels, positive) in ENCODINGS.items()
    }
    cases["nullable Int64"] = (
        encoded(np.array([0, 1]), y, "Int64"),
        encoded(np.array([0, 1]), predicted, "Int64"),
        [0, 1],
        1,
    )
    cases["category"] = (
        pd.Series(y, dtype="category"),
        pd.Series(predicted, dtype="category"),
        ["bad", "good"],
        "good",
    )
    for name, (y_coded, predicted_coded, classes, positive) in cases.items():
        task = {"type": "classification", "classes": classes, "positive_class": positive}
        as_labels = classification_metrics(y_coded, predicted_coded, proba, classes, task)
        assert as_labels == pytest.approx(as_text), name
        # what ensemble.score_output gives: the classes picked from an object array
        as_objects = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        assert classification_metrics(y_coded, as_objects, proba, classes, task) == (
            pytest.approx(as_text)
        ), name


def test_labels_read_back_from_json_match_the_classes_by_text():
    y, predicted, proba = credit_predictions()
    task = {"type": "classification", "classes": [0, 1], "positive_class": 1}
    as_ints = classification_metrics(
        encoded(np.array([0, 1]), y), encoded(np.array([0, 1]), predicted), proba, [0, 1], task
    )
    as_text = classification_metrics(
        encoded(np.array(["0", "1"]), y),
        encoded(np.array(["0", "1"]), predicted),
        proba,
        [0, 1],
        {**task, "positive_class": "1"},
    )
    assert as_text == pytest.approx(as_ints)


def test_a_label_that_is_no_class_counts_as_wrong():
    y = np.array([0, 0, 1, 1, 7])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.3, 0.7], [0.5, 0.5]])
    task = {"type": "classification", "classes": [0, 1], "positive_class": 1}
    result = classification_metrics(y, np.array([0, 0, 1, 1, 7]), proba, [0, 1], task)
    assert result["accuracy"] == pytest.approx(4 / 5), "a predicted 7 never matches a 7"
    assert result["recall"] == pytest.approx(1.0) and result["precision"] == pytest.approx(1.0)
    known = classification_metrics(y[:4], y[:4], proba[:4], [0, 1], task)
    assert result["log_loss"] > known["log_loss"] + 1, "no probability was given to it"


def test_multiclass_integer_labels_are_macro_averages():
    y = np.array([3, 3, 5, 5, 9, 9])
    predicted = np.array([3, 3, 5, 9, 9, 9], dtype=object)
    proba = np.full((6, 3), 0.1) + np.eye(3)[[0, 0, 1, 2, 2, 2]] * 0.7
    task = {"type": "classification", "classes": [3, 5, 9], "positive_class": None}
    as_ints = classification_metrics(y, predicted, proba, [3, 5, 9], task)
    as_text = classification_metrics(
        np.array(["a", "a", "b", "b", "c", "c"]),
        np.array(["a", "a", "b", "c", "c", "c"]),
        proba,
        ["a", "b", "c"],
        MULTICLASS,
    )
    assert as_ints == pytest.approx(as_text)
    assert as_ints["recall"] == pytest.approx((1 + 0.5 + 1) / 3)


def test_a_positive_class_that_is_no_class_is_refused_not_guessed():
    task = {"type": "classification", "classes": [0, 1], "positive_class": "yes"}
    with pytest.raises(ConfigurationError, match=r"'yes' is not one of the classes \[0, 1\]"):
        classification_metrics([0, 1], [0, 1], None, [0, 1], task, ("f1",))
