"""Hold-out splits and cross-validation splitters, chosen by the data's structure."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    LeaveOneOut,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)

from model_trainer.errors import ConfigurationError

logger = logging.getLogger(__name__)

CV_STRATEGIES = (
    "auto",
    "kfold",
    "stratified",
    "timeseries",
    "group",
    "repeated_kfold",
    "repeated_stratified",
    "loo",
)
# The metrics whose mean over one-row folds is the metric itself: leave-one-out can score them.
PER_ROW_METRICS = ("accuracy", "log_loss", "mae")


def split_holdout(
    table: pd.DataFrame,
    target: str,
    task: Mapping[str, Any],
    settings: Mapping[str, Any],
    time_column: str | None = None,
    group_column: str | None = None,
    in_row_order: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train / validation / test: ordered by time if given (or in the file's row order when
    `in_row_order`), group-disjoint if grouped, else stratified for classes. The test split is
    the last slice in time."""
    validation_fraction = float(settings.get("validation_fraction", 0.1))
    test_fraction = float(settings.get("test_fraction", 0.1))
    seed = int(settings.get("seed", 42))
    if time_column or in_row_order:
        ordered = (
            table.sort_values(time_column, kind="stable") if time_column else table
        ).reset_index(drop=True)
        n_test = round(len(ordered) * test_fraction)
        n_validation = round(len(ordered) * validation_fraction)
        n_train = len(ordered) - n_test - n_validation
        return (
            ordered.iloc[:n_train],
            ordered.iloc[n_train : n_train + n_validation],
            ordered.iloc[n_train + n_validation :],
        )
    if group_column:
        rest, test = _group_split(table, group_column, test_fraction, seed)
        train, validation = _group_split(
            rest, group_column, validation_fraction / (1 - test_fraction), seed
        )
        return train, validation, test
    stratify = table[target] if task["type"] == "classification" else None
    rest, test = train_test_split(
        table, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    stratify = rest[target] if task["type"] == "classification" else None
    train, validation = train_test_split(
        rest,
        test_size=validation_fraction / (1 - test_fraction),
        random_state=seed,
        stratify=stratify,
    )
    return train, validation, test


def _group_split(
    table: pd.DataFrame, group_column: str, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    keep, held = next(splitter.split(table, groups=table[group_column]))
    return table.iloc[keep], table.iloc[held]


def choose_cv(
    task: Mapping[str, Any],
    settings: Mapping[str, Any],
    time_column: str | None,
    group_column: str | None,
    n_rows: int | None = None,
    metric: str | None = None,
) -> dict[str, Any]:
    """The CV strategy and why; `validation.strategy` overrides the choice. Without time or
    group structure, few rows (`validation.small_data`) get repeated k-fold, or leave-one-out
    when the metric can be scored on one row."""
    strategy = settings.get("strategy", "auto")
    if strategy not in CV_STRATEGIES:
        raise ConfigurationError(
            f"Unknown validation.strategy '{strategy}'.",
            f"Use one of: {', '.join(CV_STRATEGIES)}.",
        )
    folds = int(settings.get("folds", 5))
    if folds < 2:
        raise ConfigurationError(
            f"validation.folds must be at least 2, got {folds}.",
            "Set validation.folds to 2 or more.",
        )
    small_data = settings.get("small_data") or {}
    repeats = int(small_data.get("repeats", 3))
    classification = task["type"] == "classification"
    if strategy != "auto":
        reason = "set by validation.strategy"
    elif time_column:
        strategy, reason = "timeseries", f"rows are ordered by the time column '{time_column}'"
    elif group_column:
        strategy, reason = "group", f"rows are grouped by '{group_column}'"
    else:
        strategy, reason = _by_size(task, small_data, n_rows, metric, folds, repeats)
    if strategy == "group" and not group_column:
        raise ConfigurationError(
            "validation.strategy is 'group' but no dataset.group_column is set.",
            "Set dataset.group_column (or groupColumn) to the column that identifies groups.",
        )
    if strategy == "timeseries" and not time_column:
        reason = "set by validation.strategy; no dataset.time_column, so the rows' file order"
    if strategy in ("stratified", "repeated_stratified") and not classification:
        raise ConfigurationError(
            f"validation.strategy '{strategy}' needs a classification task.",
            "Use kfold for regression, or leave validation.strategy as auto.",
        )
    if strategy == "loo" and metric not in PER_ROW_METRICS:
        raise ConfigurationError(
            f"validation.strategy 'loo' cannot score {metric}: each fold holds one row.",
            f"Set metric to one of: {', '.join(PER_ROW_METRICS)}, or use repeated_stratified "
            "or repeated_kfold.",
        )
    return {
        "strategy": strategy,
        "folds": n_rows if strategy == "loo" else folds,
        "repeats": repeats if strategy.startswith("repeated") else 1,
        "reason": reason,
        "shuffle": strategy in ("kfold", "stratified", "repeated_kfold", "repeated_stratified"),
        "seed": int(settings.get("seed", 42)),
        "gap": int(settings.get("gap", 0)),
        "group_column": group_column,
        "time_column": time_column,
    }


def _by_size(
    task: Mapping[str, Any],
    small_data: Mapping[str, Any],
    n_rows: int | None,
    metric: str | None,
    folds: int,
    repeats: int,
) -> tuple[str, str]:
    """Plain k-fold, or on few rows a less noisy estimate: every row scored several times."""
    classification = task["type"] == "classification"
    plain = "stratified" if classification else "kfold"
    loo_below = small_data.get("loo_below") or 0
    repeated_below = small_data.get("repeated_below") or 0
    if n_rows is not None and n_rows < loo_below and metric in PER_ROW_METRICS:
        return "loo", f"{n_rows} rows (< validation.small_data.loo_below {loo_below})"
    if n_rows is not None and n_rows < max(repeated_below, loo_below) and repeats > 1:
        reason = (
            f"{n_rows} rows (< validation.small_data.repeated_below {repeated_below}): {folds}-fold"
            f" {plain} repeated {repeats} times, a steadier estimate on few rows"
        )
        if n_rows < loo_below:
            reason += f" (leave-one-out cannot score {metric} on one row)"
        return f"repeated_{plain}", reason
    if classification:
        return plain, "classification: keep class proportions in every fold"
    return plain, "regression without time or group structure"


def cv_splits(
    cv: Mapping[str, Any], X: pd.DataFrame, y: pd.Series
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fold indices, computed once so every trial is scored on the same folds. Repeated k-fold
    lists its repeats one after the other: each repeat scores every row once."""
    strategy, folds = cv["strategy"], cv["folds"]
    if strategy == "timeseries":
        splitter: Any = TimeSeriesSplit(n_splits=folds, gap=cv.get("gap", 0))
        return list(splitter.split(X))
    if strategy == "group":
        return list(GroupKFold(n_splits=folds).split(X, y, groups=X[cv["group_column"]]))
    if strategy == "stratified":
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cv["seed"])
        return list(splitter.split(X, y))
    if strategy == "loo":
        return list(LeaveOneOut().split(X))
    if strategy.startswith("repeated"):
        repeated = RepeatedStratifiedKFold if strategy == "repeated_stratified" else RepeatedKFold
        splitter = repeated(n_splits=folds, n_repeats=cv["repeats"], random_state=cv["seed"])
        return list(splitter.split(X, y))
    return list(KFold(n_splits=folds, shuffle=True, random_state=cv["seed"]).split(X))
