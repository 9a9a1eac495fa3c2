"""Hold-out splits and cross-validation folds, cut by the data's structure (the CV strategy is
chosen in cv_strategy)."""

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

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.tasks.forecasting.time_index import (
    _parse_dates,  # the forecasters' reading of the same times
)

logger = logging.getLogger(__name__)


def group_timeseries_needs_both() -> ConfigurationError:
    return ConfigurationError(
        "validation.strategy is 'group_timeseries' but dataset.time_column and "
        "dataset.group_column are not both set.",
        "Set both (the time that orders each group's rows, and the group), or use timeseries "
        "or group.",
    )


def split_holdout(
    table: pd.DataFrame,
    target: str,
    task: Mapping[str, Any],
    settings: Mapping[str, Any],
    time_column: str | None = None,
    group_column: str | None = None,
    in_row_order: bool = False,
    within_groups: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train / validation / test: ordered by time if given (or in the file's row order when
    `in_row_order`), group-disjoint if grouped, else stratified for classes. The test split is
    the last slice in time: `time_split` says how ties and missing times are handled; with
    `within_groups`, each group's last slice (`group_time_split`)."""
    validation_fraction = float(settings.get("validation_fraction", 0.1))
    test_fraction = float(settings.get("test_fraction", 0.1))
    seed = int(settings.get("seed", 42))
    if within_groups and not (time_column and group_column):
        raise group_timeseries_needs_both()
    if within_groups:
        return group_time_split(
            table, time_column, group_column, validation_fraction, test_fraction
        )
    if time_column:
        parts = time_split(table, time_column, validation_fraction, test_fraction)
        if group_column:
            warn_groups_across_time_cut(parts, time_column, group_column)
        return parts
    if in_row_order:
        ordered = table.reset_index(drop=True)
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


def time_values(table: pd.DataFrame, time_column: str) -> pd.Series:
    """The time column as values that sort in time: dates written as text are parsed (text
    sorts "10/1/2020" before "2/1/2020"). A row whose time is missing, or is text that is not a
    date in a column of dates, cannot be placed in time: a time-ordered split refuses it rather
    than guess a side (in training it could be from the test period; in the test slice it would
    be scored as the future). The user drops those rows or fills their time."""
    column = table[time_column]
    values = column
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)):
        parsed = _parse_dates(column)
        values = parsed if parsed.notna().any() else column  # labels, not dates: their order
    unusable = values.isna()
    if unusable.any():
        examples = column[unusable & column.notna()].astype(str).unique()[:3].tolist()
        unreadable = f" ({len(examples)} not dates, such as {examples})" if examples else ""
        raise DataValidationError(
            f"The time column '{time_column}' has no usable time in {int(unusable.sum())} of "
            f"{len(column)} rows{unreadable}: a time-ordered split cannot place them before or "
            "after the cut.",
            f"Drop the rows without a time, or fill '{time_column}' for them (from another date "
            "column, say) before training; or unset dataset.time_column to split at random.",
        )
    return values


def time_split(
    table: pd.DataFrame, time_column: str, validation_fraction: float, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cut on time values, not row positions: every row of one timestamp falls on the same side
    (rows cut apart at one time would put the same moment in training and test), and the test
    slice is the latest timestamps, as close to `test_fraction` of the rows as the ties allow.
    Rows without a time are refused (`time_values`)."""
    values = time_values(table, time_column)
    order = np.argsort(values.to_numpy(), kind="stable")
    ordered = table.iloc[order].reset_index(drop=True)
    starts = _tie_starts(values.iloc[order])
    n = len(ordered)
    n_test, n_validation = round(n * test_fraction), round(n * validation_fraction)
    test_start = _cut(starts, n - n_test, 0, n, time_column) if n_test else n
    validation_start = (
        _cut(starts, test_start - n_validation, 0, test_start, time_column)
        if n_validation
        else test_start
    )
    parts = (
        ordered.iloc[:validation_start],
        ordered.iloc[validation_start:test_start],
        ordered.iloc[test_start:],
    )
    times = values.iloc[order].reset_index(drop=True)
    logger.info(
        "Time-ordered split on '%s' (ties kept on one side): train %d rows up to %s, "
        "validation %d rows, test %d rows from %s.",
        time_column, len(parts[0]), times.iloc[validation_start - 1], len(parts[1]),
        len(parts[2]), times.iloc[test_start] if test_start < n else "-",
    )  # fmt: skip
    return parts


def group_time_split(
    table: pd.DataFrame,
    time_column: str,
    group_column: str,
    validation_fraction: float,
    test_fraction: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Each group's latest rows held out (a user's last ratings): of a group of n rows, the
    last n x test_fraction (rounded half up) are test and the n x validation_fraction before
    them validation, so a group of 5 or more rows (at 10%) has test rows and the model is
    judged on what known groups do next. A group's rows of one time stay on one side (the
    earlier). Groups are not cut at one moment: one group's test rows may be older than
    another's training rows."""
    positions, sizes = _positions_in_groups(table, time_column, group_column)
    n_test = np.floor(sizes * test_fraction + 0.5).astype(int)
    n_validation = np.floor(sizes * validation_fraction + 0.5).astype(int)
    test = positions >= sizes - n_test
    validation = ~test & (positions >= sizes - n_test - n_validation)
    parts = table[~test & ~validation], table[validation], table[test]
    if not len(parts[2]) or (validation_fraction > 0 and not len(parts[1])):
        raise DataValidationError(
            f"The groups of '{group_column}' have too few rows to hold out each one's latest "
            f"{test_fraction:.0%} and {validation_fraction:.0%} before it (largest group: "
            f"{int(sizes.max())} rows).",
            "Raise split.test_fraction and split.validation_fraction, or use "
            "validation.strategy timeseries (one cut in time for all groups).",
        )
    logger.info(
        "Split within each group of '%s' by '%s': train %d rows, validation %d rows, test %d "
        "rows (each group's latest).",
        group_column, time_column, *(len(part) for part in parts),
    )  # fmt: skip
    return parts


def _positions_in_groups(
    table: pd.DataFrame, time_column: str, group_column: str
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's 0-based place in its group by time and its group's size, in the table's row
    order. Rows of one group and one time share the place of the first of them, so a cut at a
    place never parts them."""
    times = time_values(table, time_column).to_numpy()
    codes, _ = pd.factorize(table[group_column])
    if (codes < 0).any():
        raise DataValidationError(
            f"The group column '{group_column}' has {int((codes < 0).sum())} missing values: "
            "validation.strategy group_timeseries cuts each group in time, so every row needs "
            "its group.",
            f"Fill or drop the rows with no '{group_column}', or use validation.strategy "
            "timeseries.",
        )
    order = np.lexsort((times, codes))
    in_group = pd.Series(codes[order]).groupby(codes[order]).cumcount().to_numpy()
    sorted_codes, sorted_times = codes[order], times[order]
    new_moment = np.r_[True, (sorted_codes[1:] != sorted_codes[:-1])]
    new_moment[1:] |= sorted_times[1:] != sorted_times[:-1]
    first_of_moment = np.maximum.accumulate(np.where(new_moment, np.arange(len(order)), 0))
    positions = np.empty(len(table), dtype=int)
    positions[order] = in_group[first_of_moment]
    return positions, np.bincount(codes)[codes]


def _tie_starts(sorted_values: pd.Series) -> np.ndarray:
    """For each position in time-sorted rows, the position of the first row of its time."""
    values = sorted_values.to_numpy()
    new_time = np.r_[True, values[1:] != values[:-1]]
    return np.maximum.accumulate(np.where(new_time, np.arange(len(values)), 0))


def _cut(starts: np.ndarray, target: int, low: int, high: int, time_column: str) -> int:
    """The boundary between two times nearest to position `target`, strictly inside
    (low, high) so that neither side is empty."""
    boundaries = np.unique(starts)
    inside = boundaries[(boundaries > low) & (boundaries < high)]
    if not len(inside):
        raise DataValidationError(
            f"The time column '{time_column}' has too few distinct times to cut "
            f"{high - low} rows into a time-ordered train, validation and test split.",
            f"Give rows from more distinct times in '{time_column}', or unset "
            "dataset.time_column to split at random.",
        )
    return int(inside[np.argmin(np.abs(inside - target))])


def warn_groups_across_time_cut(
    parts: tuple[pd.DataFrame, ...], time_column: str, group_column: str
) -> None:
    """A time-ordered split keeps the past apart from the future, not the groups: a group
    (a customer, a store) seen in training and scored again in test flatters the test score
    for new groups. Said out loud, with how many groups it concerns."""
    seen = [set(part[group_column].dropna()) for part in parts]
    shared = (seen[0] & (seen[1] | seen[2])) | (seen[1] & seen[2])
    if shared:
        logger.warning(
            "The split is ordered by the time column '%s', not by the group column '%s': %d of "
            "%d groups have rows on both sides of a time cut, so the test score is for groups "
            "partly seen in training. For a score on groups never seen in training, unset "
            "dataset.time_column: the split is then group-disjoint.",
            time_column, group_column, len(shared), len(seen[0] | seen[1] | seen[2]),
        )  # fmt: skip


def _group_split(
    table: pd.DataFrame, group_column: str, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    keep, held = next(splitter.split(table, groups=table[group_column]))
    return table.iloc[keep], table.iloc[held]


def cv_splits(
    cv: Mapping[str, Any], X: pd.DataFrame, y: pd.Series
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fold indices, computed once so every trial is scored on the same folds. Repeated k-fold
    lists its repeats one after the other: each repeat scores every row once."""
    strategy, folds = cv["strategy"], cv["folds"]
    if strategy == "timeseries":
        return _time_folds(X, folds, int(cv.get("gap", 0)), cv.get("time_column"))
    if strategy == "group_timeseries":
        return _group_time_folds(X, folds, cv["time_column"], cv["group_column"])
    if strategy == "group":
        return list(GroupKFold(n_splits=folds).split(X, y, groups=X[cv["group_column"]]))
    shuffle = cv.get("shuffle", True)
    seed = cv["seed"] if shuffle else None
    if strategy == "stratified":
        splitter: Any = StratifiedKFold(n_splits=folds, shuffle=shuffle, random_state=seed)
        return list(splitter.split(X, y))
    if strategy == "loo":
        return list(LeaveOneOut().split(X))
    if strategy.startswith("repeated"):
        repeated = RepeatedStratifiedKFold if strategy == "repeated_stratified" else RepeatedKFold
        splitter = repeated(n_splits=folds, n_repeats=cv["repeats"], random_state=cv["seed"])
        return list(splitter.split(X, y))
    return list(KFold(n_splits=folds, shuffle=shuffle, random_state=seed).split(X))


def _group_time_folds(
    X: pd.DataFrame, folds: int, time_column: str, group_column: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding folds within each group: its rows in time order cut into folds + 1 slices;
    fold j learns from every group's slices up to j and is scored on their slice j + 1."""
    positions, sizes = _positions_in_groups(X, time_column, group_column)
    slices = positions * (folds + 1) // sizes
    kept = []
    for fold in range(folds):
        train, scored = np.flatnonzero(slices <= fold), np.flatnonzero(slices == fold + 1)
        if len(train) and len(scored):
            kept.append((train, scored))
    if not kept:
        raise DataValidationError(
            f"The groups of '{group_column}' have too few rows for {folds} folds in time.",
            "Lower validation.folds, or use validation.strategy timeseries or group.",
        )
    if len(kept) < folds:
        logger.warning(
            "%d of %d folds in time within the groups of '%s' kept: the others would score no "
            "row (the groups have too few rows of distinct times).",
            len(kept), folds, group_column,
        )  # fmt: skip
    return kept


def _time_folds(
    X: pd.DataFrame, folds: int, gap: int, time_column: str | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """TimeSeriesSplit's expanding folds, by time value when X has the time column: the rows are
    taken in time order and every fold boundary moves back to the first row of its time, so no
    timestamp is both trained on and scored, and at least `gap` rows separate the two. Without
    the time column, the rows' own order. A fold left empty by the ties is dropped, said so."""
    n = len(X)
    if time_column and time_column in X:
        values = time_values(X, time_column)
        order = np.argsort(values.to_numpy(), kind="stable")
        starts = _tie_starts(values.iloc[order])
    else:
        order, starts = np.arange(n), np.arange(n)
    kept = []
    for _, validation_idx in TimeSeriesSplit(n_splits=folds, gap=gap).split(X):
        begin = starts[validation_idx[0]]
        end = starts[validation_idx[-1] + 1] if validation_idx[-1] + 1 < n else n
        train_end = starts[begin - gap] if begin > gap else 0
        if train_end and end > begin:
            kept.append((np.sort(order[:train_end]), np.sort(order[begin:end])))
    if not kept:
        raise DataValidationError(
            f"The time column '{time_column}' has too few distinct times for {folds} "
            "time-ordered folds.",
            "Lower validation.folds (and validation.gap), or give rows from more distinct times.",
        )
    if len(kept) < folds:
        logger.warning(
            "%d of %d time-ordered folds kept: the others would have split the rows of one time "
            "of '%s' (many rows share a time).",
            len(kept), folds, time_column,
        )  # fmt: skip
    return kept
