"""Which cross-validation strategy a task gets, and why: chosen from the data's structure and
size, or set by validation.strategy and checked against the task and the metric."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model_trainer.errors import ConfigurationError
from model_trainer.table.splitting import (
    group_timeseries_needs_both,  # the hold-out split's refusal of the same settings
)

CV_STRATEGIES = (
    "auto",
    "kfold",
    "stratified",
    "timeseries",
    "group_timeseries",
    "group",
    "repeated_kfold",
    "repeated_stratified",
    "loo",
)
# The metrics whose mean over one-row folds is the metric itself: leave-one-out can score them.
PER_ROW_METRICS = ("accuracy", "log_loss", "brier", "mae")


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
    if strategy == "group_timeseries" and not (time_column and group_column):
        raise group_timeseries_needs_both()
    if strategy == "group_timeseries":
        reason += (
            f"; each group of '{group_column}' is cut in time on its own: its later rows are "
            "scored, having learnt from its earlier ones"
        )
    if strategy == "timeseries" and not time_column:
        reason = "set by validation.strategy; no dataset.time_column, so the rows' file order"
    if strategy == "timeseries" and group_column:
        reason += (
            f"; folds are cut in time, not by '{group_column}': a group may have rows on both "
            "sides of a fold's cut"
        )
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
        "shuffle": _shuffled(strategy, settings),
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


def _shuffled(strategy: str, settings: Mapping[str, Any]) -> bool:
    """k-fold shuffles the rows unless validation.shuffle is false (each fold then a contiguous
    block of rows); repeats differ only by their shuffle, so they cannot go without one."""
    shuffle = bool(settings.get("shuffle", True))
    if not shuffle and strategy.startswith("repeated"):
        raise ConfigurationError(
            f"validation.shuffle is false, but validation.strategy '{strategy}' repeats the "
            "folds, and repeats differ only by how the rows are shuffled.",
            "Set validation.shuffle to true, or validation.strategy to kfold or stratified.",
        )
    return shuffle and strategy in ("kfold", "stratified", "repeated_kfold", "repeated_stratified")
