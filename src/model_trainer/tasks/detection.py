"""Classification or regression, from the target, unless the user says which (or ranking)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.tasks.ranking import describe_relevance

TASK_TYPES = ("auto", "classification", "regression", "ranking", "clustering")


def detect_task(
    target: pd.Series | None,
    settings: Mapping[str, Any],
    group: pd.Series | None = None,
    count: bool = True,
    item: pd.Series | None = None,
) -> dict[str, Any]:
    """Ranking and clustering are never guessed: they are declared (task.type). Ranking needs
    the group column whose rows are ranked against each other (`group`); clustering needs no
    target, and a given one only measures how well the clusters find its groups. The classes
    are every label of `target`; with `count=False` the statistics counted from rows (class
    counts, a minority positive class) are left to `count_training_classes`, since the
    pipeline detects the task before it splits and may count only the training rows. An
    `item` column (what is ranked: a movie) is read by ranking only."""
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
            "item_column": None if item is None else _item_column(item, group, target),
        }
    if item is not None:
        raise ConfigurationError(
            f"dataset.item_column (itemColumn) is '{item.name}', but the task is not ranking: "
            "only a ranker learns each group's history with each item.",
            "Set task.type to ranking (modelType in the task JSON) with dataset.group_column, "
            "or set the item column to null.",
        )
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
    classes = _sorted_like_sklearn(target.drop_duplicates().tolist())
    task = {
        "type": "classification",
        "reason": reason,
        "n_rows": len(target),
        "classes": [_plain(c) for c in classes],
    }
    if not count:
        _declared_positive(task["classes"], settings, target.name)  # wrong: fail before the split
        return task
    return count_training_classes(task, target, settings, "all rows")


def count_training_classes(
    task: Mapping[str, Any], target: pd.Series, settings: Mapping[str, Any], rows: str
) -> dict[str, Any]:
    """The task with what is counted from `target` (the train split's, `rows` says which):
    the class counts, which the imbalance handling and the report read, and the positive
    class with the rule that chose it. Counting the validation or test rows too would let
    them shape the model that they judge."""
    if task["type"] != "classification":
        return dict(task)
    classes = task["classes"]
    observed = target.value_counts()
    counts = {str(c): int(observed.get(c, 0)) for c in classes}
    positive, why = _declared_positive(classes, settings, target.name)
    if positive is None and len(classes) == 2:
        positive, why = _default_positive(classes, counts, rows)
    return {
        **task,
        "class_counts": counts,
        "class_counts_from": rows,
        "positive_class": positive,
        "positive_class_reason": why,
    }


def _declared_positive(
    classes: list[Any], settings: Mapping[str, Any], column: Any
) -> tuple[Any, str | None]:
    """task.positive_class as the class it names: by value, else by its text ("1" for 1, "0"
    for 0.0, "true" for True), since conf, --params and the task JSON may give any of them."""
    declared = settings.get("positive_class")
    if declared is None or declared == "":
        return None, None
    text = str(declared).strip()
    matches = [c for c in classes if _is_bool(c) == _is_bool(declared) and c == declared]
    matches = matches or [c for c in classes if str(c) == text]
    matches = matches or [c for c in classes if _is_number(c) and _number(text) == c]
    matches = matches or [c for c in classes if _is_bool(c) and str(c).lower() == text.lower()]
    if not matches:
        raise ConfigurationError(
            f"task.positive_class '{declared}' is not a class of '{column}': {classes}.",
            "Set task.positive_class (positiveClass in the task JSON) to one of the classes, "
            "or leave it empty for the default (the larger of two numbers, True, or else the "
            "minority class).",
        )
    return matches[0], "set by task.positive_class"


def _default_positive(classes: list[Any], counts: Mapping[str, int], rows: str) -> tuple[Any, str]:
    """Which of two classes binary precision, recall and f1 describe when none is declared:
    the label that usually means "yes" when there is one (1 of 0/1, True), else the rarer
    class, usually the one worth finding."""
    if all(_is_bool(c) for c in classes):
        return True, "True of a boolean target"
    if all(_is_number(c) for c in classes):
        return max(classes), f"the larger of the two numeric labels {classes}"
    rarest = min(counts[str(c)] for c in classes)
    positive = [c for c in classes if counts[str(c)] == rarest][-1]  # a tie: the second
    total = sum(counts.values())
    return positive, f"the minority class: {rarest} of {total} rows in {rows}"


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not _is_bool(value)


def numpy_target(target: pd.Series) -> pd.Series:
    """A nullable number or boolean target (Int64, boolean, Float64 from Parquet) as its NumPy
    dtype, once the rows without a target are gone: sklearn fits Int64 labels as floats, so
    the model's classes_ (0.0, 1.0) would not be the task's (0, 1)."""
    numpy_dtype = getattr(target.dtype, "numpy_dtype", None)
    if not pd.api.types.is_extension_array_dtype(target) or numpy_dtype is None:
        return target
    if numpy_dtype.kind not in "biuf" or target.isna().any():
        return target
    return pd.Series(target.to_numpy(dtype=numpy_dtype), index=target.index, name=target.name)


def _sorted_like_sklearn(labels: list[Any]) -> list[Any]:
    """The order of a fitted classifier's classes_ (np.unique), so probability columns match."""
    try:
        return sorted(labels)
    except TypeError:
        return sorted(labels, key=str)


def _plain(value: Any) -> Any:
    """JSON-safe Python scalar."""
    return value.item() if hasattr(value, "item") else value


def _item_column(item: pd.Series, group: pd.Series, target: pd.Series) -> str:
    """The item column's name, once it is known to be neither the group nor the target and to
    name every row's item."""
    if item.name in (group.name, target.name):
        raise ConfigurationError(
            f"dataset.item_column (itemColumn) '{item.name}' is also the "
            f"{'group column' if item.name == group.name else 'target'}.",
            "Set dataset.item_column to the column naming what is ranked (a movie, a product).",
        )
    if item.isna().any():
        raise DataValidationError(
            f"Item column '{item.name}' has {int(item.isna().sum())} missing values: every row "
            "must name its item for the group's history with it to be learnt.",
            f"Fill or drop the rows with no '{item.name}', or set dataset.item_column to null.",
        )
    return str(item.name)
