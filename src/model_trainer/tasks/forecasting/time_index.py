"""Reading a table by its time column, as every forecasting estimator does: the times parsed
(dates, date strings or numbers; time zones dropped), month arithmetic on them, and the input
tags of the estimators that read them. `table.splitting` parses dates the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils import Tags

from model_trainer.errors import DataValidationError
from model_trainer.table.checks import columns_by_name

_DAY = 86_400 * 10**9  # nanoseconds
_HOUR = 3_600 * 10**9


class _ByTime:
    """What the estimators that read a table by its time column accept: dates as text, and
    missing values (a row without a usable time gets the mean, or missing lags)."""

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = tags.input_tags.allow_nan = True
        if tags.regressor_tags is not None:
            tags.regressor_tags.poor_score = True  # a baseline: the target's history by time
        return tags


def _as_frame(X: Any, time_column: str, fitted: BaseEstimator | None = None) -> pd.DataFrame:
    """The input read by column name (`columns_by_name`), once it holds the time column."""
    frame = columns_by_name(X, fitted)
    if time_column not in frame.columns:
        raise DataValidationError(
            f"The time column '{time_column}' is not among the input columns "
            f"({len(frame.columns)} given).",
            f"Keep '{time_column}' in the feature table passed to the seasonal-naive baseline, "
            "or set dataset.time_column to a column that exists.",
        )
    return frame


def _time_kind(column: pd.Series) -> str:
    """Numbers stay numbers; datetimes and date strings are datetimes."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime"
    _, valid = _parse_times(column, "datetime")
    if not valid.any() and pd.to_numeric(column, errors="coerce").notna().any():
        return "numeric"
    return "datetime"


def _parse_times(column: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Times as int64 nanoseconds (datetimes) or float64 (numbers), and which are present."""
    if kind == "numeric":
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return values, ~np.isnan(values)
    parsed = column if pd.api.types.is_datetime64_any_dtype(column) else _parse_dates(column)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)  # local wall time: days line up across DST
    parsed = parsed.astype("datetime64[ns]")
    valid = parsed.notna().to_numpy()
    return parsed.to_numpy(dtype="datetime64[ns]").view(np.int64), valid


def _parse_dates(column: pd.Series) -> pd.Series:
    """ISO dates fast; any other format element by element, as DatetimeFeatures parses them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(column, format="ISO8601")
        except (ValueError, TypeError):
            pass
        try:
            return pd.to_datetime(column, errors="coerce", format="mixed")
        except (ValueError, TypeError):  # mixed UTC offsets
            return pd.to_datetime(column, errors="coerce", format="mixed", utc=True)


def _month_index(nanoseconds: np.ndarray) -> np.ndarray:
    return nanoseconds.view("datetime64[ns]").astype("datetime64[M]").astype(np.int64)


def _minus_months(nanoseconds: np.ndarray, months: np.ndarray) -> np.ndarray:
    """t - DateOffset(months=m), per row: the same day (clipped to the month's length) and
    time of day, m months earlier."""
    stamps = nanoseconds.view("datetime64[ns]")
    month_start = stamps.astype("datetime64[M]")
    within = (stamps - month_start.astype("datetime64[ns]")).astype(np.int64)
    day, time_of_day = within // _DAY, within % _DAY
    target = month_start - months.astype("timedelta64[M]")
    next_start = (target + np.timedelta64(1, "M")).astype("datetime64[D]")
    length = (next_start - target.astype("datetime64[D]")).astype(np.int64)  # days
    day = np.minimum(day, length - 1)
    return target.astype("datetime64[ns]").view(np.int64) + day * _DAY + time_of_day
