"""Task-appropriate metrics, each with its direction, computed from a fitted model's predictions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from model_trainer.errors import ConfigurationError
from model_trainer.models.estimators import predicted_labels
from model_trainer.tasks.ranking import RANKING_REPORT, ranking_metrics


@dataclass(frozen=True)
class Metric:
    name: str
    greater_is_better: bool
    needs_proba: bool


METRICS = {
    m.name: m
    for m in (
        Metric("roc_auc", True, True),
        Metric("log_loss", False, True),
        Metric("brier", False, True),
        Metric("accuracy", True, False),
        Metric("balanced_accuracy", True, False),
        Metric("f1", True, False),
        Metric("precision", True, False),
        Metric("recall", True, False),
        Metric("pr_auc", True, True),
        Metric("rmse", False, False),
        Metric("mae", False, False),
        Metric("r2", True, False),
        Metric("ndcg", True, False),
        Metric("map", True, False),
        Metric("mrr", True, False),
        Metric("silhouette", True, False),
        Metric("calinski_harabasz", True, False),
        Metric("davies_bouldin", False, False),
        Metric("ari", True, False),
        Metric("nmi", True, False),
    )
}
CLASSIFICATION_REPORT = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "brier",
    "pr_auc",
)
REGRESSION_REPORT = ("rmse", "mae", "r2")
REPORTS = {
    "classification": CLASSIFICATION_REPORT,
    "regression": REGRESSION_REPORT,
    "ranking": RANKING_REPORT,
    "clustering": ("silhouette", "calinski_harabasz", "davies_bouldin"),
}


def default_metric(task: Mapping[str, Any]) -> str:
    if task["type"] == "regression":
        return "rmse"
    if task["type"] == "ranking":
        return "ndcg"
    return "roc_auc" if len(task["classes"]) == 2 else "log_loss"


def get_metric(name: str, task: Mapping[str, Any]) -> Metric:
    allowed = REPORTS[task["type"]]
    if name not in allowed:
        raise ConfigurationError(
            f"Metric '{name}' does not fit a {task['type']} task.",
            f"Set metric to one of: {', '.join(allowed)} (or auto).",
        )
    return METRICS[name]


def score(model: Any, X: pd.DataFrame, y: pd.Series, name: str, task: Mapping[str, Any]) -> float:
    return evaluate(model, X, y, task, names=(name,))[name]


def evaluate(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    task: Mapping[str, Any],
    names: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """Every requested metric from one predict (or one predict_proba) call; labels follow the
    model's decision threshold when it has one. Ranking metrics group the rows by the task's
    group column, which `X` keeps."""
    if task["type"] == "regression":
        names = names or REGRESSION_REPORT
        return regression_metrics(y, model.predict(X), names)
    if task["type"] == "ranking":
        names = names or RANKING_REPORT
        return ranking_metrics(y, model.predict(X), X[task["group_column"]], task, names)
    names = names or CLASSIFICATION_REPORT
    needs_proba = any(METRICS[n].needs_proba for n in names)
    proba = model.predict_proba(X) if needs_proba else None
    predicted = predicted_labels(model, proba) if proba is not None else model.predict(X)
    return classification_metrics(y, predicted, proba, list(model.classes_), task, names)


def regression_metrics(
    y: Any, predicted: Any, names: tuple[str, ...] = REGRESSION_REPORT
) -> dict[str, float]:
    functions = {
        "rmse": lambda: skm.root_mean_squared_error(y, predicted),
        "mae": lambda: skm.mean_absolute_error(y, predicted),
        "r2": lambda: skm.r2_score(y, predicted),
    }
    return {name: float(functions[name]()) for name in names}


def classification_metrics(
    y: Any,
    predicted: Any,
    proba: np.ndarray | None,
    classes: list[Any],
    task: Mapping[str, Any],
    names: tuple[str, ...] = CLASSIFICATION_REPORT,
) -> dict[str, float]:
    """Binary metrics are for `task['positive_class']`; multiclass ones are macro averages.
    Labels are scored as their positions in `classes`, so any encoding of the target (text,
    integers, booleans, floats, a category, an object array of ints) scores alike: sklearn
    calls an object array of ints "unknown" and refuses to compare it with integer labels. A
    label that is no class counts as wrong (a code no prediction has)."""
    k = len(classes)
    actual = label_codes(y, classes)
    actual[actual < 0] = k
    guessed = label_codes(predicted, classes)
    guessed[guessed < 0] = k + 1
    positive = label_codes([task.get("positive_class")], classes)[0] if k == 2 else None
    if positive is not None and positive < 0:
        raise ConfigurationError(
            f"task.positive_class {task.get('positive_class')!r} is not one of the classes "
            f"{list(classes)}, so binary metrics have no class to describe.",
            "Set task.positive_class to one of the classes, or leave it empty for the default.",
        )
    result: dict[str, float] = {}
    for name in names:
        if name == "accuracy":
            value = skm.accuracy_score(actual, guessed)
        elif name == "balanced_accuracy":
            value = _balanced_accuracy(actual, guessed)
        elif name in ("precision", "recall", "f1"):
            function = {"precision": skm.precision_score, "recall": skm.recall_score}.get(
                name, skm.f1_score
            )
            value = (
                function(actual, guessed, labels=[positive], average=None, zero_division=0)[0]
                if k == 2
                else function(
                    actual, guessed, labels=list(range(k)), average="macro", zero_division=0
                )
            )
        elif name == "log_loss":
            # a label that is no class had probability 0 (clipped by sklearn): the worst loss
            scored = np.column_stack([proba, np.zeros(len(actual))])
            value = skm.log_loss(actual, scored, labels=list(range(k + 1)))
        elif name == "brier":
            value = brier_score(actual, proba)
        elif name == "roc_auc":
            value = _roc_auc(actual, proba, k, positive)
        else:  # pr_auc
            value = _pr_auc(actual, proba, k, positive)
        result[name] = float(value)
    return result


def label_codes(values: Any, classes: list[Any]) -> np.ndarray:
    """Each value's position in `classes`, or -1. Values are matched as they are, then by str()
    (classes read back from JSON or CSV: "1" for 1, "True" for True)."""
    values = np.asarray(values, dtype=object).ravel()
    codes = pd.Index(list(classes), dtype=object).get_indexer(values)
    missing = codes < 0
    if missing.any():
        as_text = pd.Index([str(c) for c in classes]).get_indexer([str(v) for v in values[missing]])
        codes[missing] = as_text
    return codes


def _balanced_accuracy(actual: np.ndarray, guessed: np.ndarray) -> float:
    """The mean recall of the labels present in `actual` (sklearn's definition), without
    sklearn's warning about predicted codes that never occur."""
    present = np.unique(actual)
    return float(np.mean([(guessed[actual == code] == code).mean() for code in present]))


def brier_score(actual: np.ndarray, proba: np.ndarray) -> float:
    """Mean squared distance of the probabilities to the one-hot truth of the class codes
    `actual` (code k, a label that is no class, is a column no probability reaches), halved for
    two classes: the usual binary Brier score, the positive class's, as scikit-learn's
    brier_score_loss scales it."""
    k = proba.shape[1]
    truth = np.eye(k + 1)[actual]
    squared = ((np.column_stack([proba, np.zeros(len(actual))]) - truth) ** 2).sum(axis=1)
    return float(squared.mean() / (2.0 if k == 2 else 1.0))


def _roc_auc(actual: np.ndarray, proba: np.ndarray, k: int, positive: int | None) -> float:
    if len(np.unique(actual)) < 2:
        return float("nan")
    if k == 2:
        return skm.roc_auc_score(actual == positive, proba[:, positive])
    if not np.isin(np.arange(k), actual).all():
        return float("nan")
    return skm.roc_auc_score(_one_hot(actual, k), proba, average="macro")


def _pr_auc(actual: np.ndarray, proba: np.ndarray, k: int, positive: int | None) -> float:
    if k == 2:
        return skm.average_precision_score(actual == positive, proba[:, positive])
    present = [code for code in range(k) if (actual == code).any()]
    return skm.average_precision_score(
        _one_hot(actual, k)[:, present], proba[:, present], average="macro"
    )


def _one_hot(actual: np.ndarray, k: int) -> np.ndarray:
    """One column per class; a label that is no class is a row of zeros (negative for all)."""
    return (actual[:, None] == np.arange(k)).astype(int)


def is_better(metric: Metric, candidate: float, reference: float) -> bool:
    return candidate > reference if metric.greater_is_better else candidate < reference
