"""Classification or regression, from the target, unless the user says which (or ranking)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.ranking import describe_relevance

TASK_TYPES = ("auto", "classification", "regression", "ranking", "clustering")


def detect_task(
    target: pd.Series | None, settings: Mapping[str, Any], group: pd.Series | None = None
) -> dict[str, Any]:
    """Ranking and clustering are never guessed: they are declared (task.type). Ranking needs
    the group column whose rows are ranked against each other (`group`); clustering needs no
    target, and a given one only measures how well the clusters find its groups."""
    declared = settings.get("type", "auto")
    if declared not in TASK_TYPES:
        raise ConfigurationError(
            f"Unknown task.type '{declared}'.", f"Use one of: {', '.join(TASK_TYPES)}."
        )
    if declared == "clustering":
        return {
            "type": "clustering",
            "reason": "set by task.type",
            "n_rows": None if target is None else len(target),
            "reference_column": None if target is None else str(target.name),
        }
    if target is None:
        raise ConfigurationError(
            "No dataset.target is set: only clustering learns without a target.",
            "Set dataset.target (targetColumn) to the column to predict, or task.type to "
            "clustering.",
        )
    if declared == "ranking":
        if group is None:
            raise ConfigurationError(
                "task.type is ranking, but no dataset.group_column names the query or user "
                "whose rows are ranked against each other.",
                "Set dataset.group_column (groupColumn in the task JSON).",
            )
        return {
            "type": "ranking",
            "reason": "set by task.type",
            "n_rows": len(target),
            **describe_relevance(target, group, settings),
        }
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    n_unique = int(target.nunique())
    max_classes = int(settings.get("classification_max_classes", 10))
    integral = numeric and bool((target == target.round()).all())
    if declared != "auto":
        kind, reason = declared, "set by task.type"
    elif not numeric:
        kind, reason = "classification", f"target '{target.name}' is not numeric"
    elif integral and n_unique <= max_classes:
        kind = "classification"
        reason = f"target '{target.name}' has {n_unique} integer values (<= {max_classes})"
    else:
        kind, reason = "regression", f"target '{target.name}' is numeric with {n_unique} values"
    if kind == "regression":
        if not numeric:
            raise DataValidationError(
                f"Target '{target.name}' is not numeric, so it cannot be a regression target.",
                "Set task.type to classification (or auto), or choose a numeric target.",
            )
        return {"type": "regression", "reason": reason, "n_rows": len(target)}
    counts = target.value_counts()
    classes = _sorted_like_sklearn(counts.index.tolist())
    positive = settings.get("positive_class")
    if positive is None:
        positive = counts.idxmin() if len(classes) == 2 else None
    elif positive not in classes:
        matches = [c for c in classes if str(c) == str(positive)]
        if not matches:
            raise ConfigurationError(
                f"task.positive_class '{positive}' is not a class of '{target.name}': {classes}.",
                "Set task.positive_class to one of the classes, or leave it empty (the minority).",
            )
        positive = matches[0]
    return {
        "type": "classification",
        "reason": reason,
        "n_rows": len(target),
        "classes": [_plain(c) for c in classes],
        "class_counts": {str(k): int(v) for k, v in counts.items()},
        "positive_class": _plain(positive),
    }


def _sorted_like_sklearn(labels: list[Any]) -> list[Any]:
    """The order of a fitted classifier's classes_ (np.unique), so probability columns match."""
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=str)


def _plain(value: Any) -> Any:
    """JSON-safe Python scalar."""
    return value.item() if hasattr(value, "item") else value
