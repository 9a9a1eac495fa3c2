"""Task-appropriate metrics, each with its direction, computed from a fitted model's predictions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from model_trainer.errors import ConfigurationError
from model_trainer.estimators import predicted_labels
from model_trainer.ranking import RANKING_REPORT, ranking_metrics


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
    """Binary metrics are for `task['positive_class']`; multiclass ones are macro averages."""
    binary = len(classes) == 2
    positive = task.get("positive_class")
    average = "binary" if binary else "macro"
    label_args = {"pos_label": positive} if binary else {}
    result: dict[str, float] = {}
    for name in names:
        if name == "accuracy":
            value = skm.accuracy_score(y, predicted)
        elif name == "balanced_accuracy":
            value = skm.balanced_accuracy_score(y, predicted)
        elif name in ("precision", "recall", "f1"):
            function = {"precision": skm.precision_score, "recall": skm.recall_score}.get(
                name, skm.f1_score
            )
            value = function(y, predicted, average=average, zero_division=0, **label_args)
        elif name == "log_loss":
            value = skm.log_loss(y, proba, labels=classes)
        elif name == "roc_auc":
            value = _roc_auc(y, proba, classes, positive)
        else:  # pr_auc
            value = _pr_auc(y, proba, classes, positive)
        result[name] = float(value)
    return result


def _roc_auc(y: Any, proba: np.ndarray, classes: list[Any], positive: Any) -> float:
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    if len(classes) == 2:
        return skm.roc_auc_score(y == positive, proba[:, classes.index(positive)])
    present = np.isin(classes, np.unique(y))
    if not present.all():
        return float("nan")
    return skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)


def _pr_auc(y: Any, proba: np.ndarray, classes: list[Any], positive: Any) -> float:
    y = np.asarray(y)
    if len(classes) == 2:
        return skm.average_precision_score(y == positive, proba[:, classes.index(positive)])
    present = [i for i, c in enumerate(classes) if (y == c).any()]
    onehot = np.column_stack([y == classes[i] for i in present])
    return skm.average_precision_score(onehot, proba[:, present], average="macro")


def is_better(metric: Metric, candidate: float, reference: float) -> bool:
    return candidate > reference if metric.greater_is_better else candidate < reference
