"""A seasonal-naive baseline for time series (the value one season earlier), and lag and
rolling-mean features of the target that a model can learn from.

A model that forecasts no better than "the same weekday last week" has learned nothing from its
features, so time-series runs compare against this baseline as well as against the mean. Both
follow the saved-model contract: they take the raw feature table (target removed) and work from
each row's own time column, so the target history they need is stored when they are fitted.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from model_trainer.errors import ConfigurationError, DataValidationError

_DAY = 86_400 * 10**9  # nanoseconds
_HOUR = 3_600 * 10**9
# Fixed sampling steps: (step in ns, name, season in steps).
_FIXED_STEPS = {_HOUR: ("hour", 24), _DAY: ("day", 7), 7 * _DAY: ("week", 52)}
# Calendar steps, whose length in days varies: (min days, max days, months, name, season).
_MONTH_STEPS = [(28, 31, 1, "month", 12), (89, 92, 3, "quarter", 4), (365, 366, 12, "year", 1)]
# What a row after the end of training repeats, by (step name, season in steps).
_LATER_ROWS = {
    ("hour", 24): "the same hour of the last observed day",
    ("day", 7): "the same weekday of the last observed week",
    ("week", 52): "the same week of the last observed year",
    ("month", 12): "the same month of the last observed year",
    ("quarter", 4): "the same quarter of the last observed year",
}
# Rows off the time grid would otherwise walk back through the whole history one season at a
# time; past this many seasons they take the nearest earlier value instead.
_MAX_SEASONS_BACK = 1000


class SeasonalNaiveForecaster(RegressorMixin, BaseEstimator):
    """Predicts the target one season before each row's time (the standard seasonal naive).

    `fit` stores the training target by time (sorted; the duplicates of one time averaged) and
    infers the sampling step: the most common gap between consecutive distinct times. With
    `season=None` the season, in steps, follows from the step: 24 for hourly data, 7 for daily,
    52 for weekly, 12 for monthly (a 28-31 day step), 4 for quarterly (89-92 days), and 1 (plain
    naive: the previous value) for yearly, numeric or any other step. Monthly, quarterly and
    yearly steps shift by calendar months, not by a fixed number of days, and match the stored
    time in that month.

    `predict`: a row at time t gets the stored target at t - k * season for the smallest k >= 1
    whose time is stored, so rows inside the history get the value one season before (known at
    the time) and rows after its end repeat the last observed season. Without such a time (before
    the history's start, or a gap) the nearest strictly earlier stored value is used, else the
    training mean; a row whose time is missing or unparseable gets the training mean.

    The time column may be datetime64, strings parseable as dates, or numbers (then the season
    defaults to 1 step unless `season` is given). Time zones are dropped, keeping the local
    wall-clock time, so days line up across daylight saving.
    """

    def __init__(self, time_column: str, season: int | None = None) -> None:
        self.time_column = time_column
        self.season = season

    def fit(self, X: pd.DataFrame, y: Any) -> SeasonalNaiveForecaster:
        frame = _as_frame(X, self.time_column)
        column = frame[self.time_column]
        self.kind_ = _time_kind(column)
        times, valid = _parse_times(column, self.kind_)
        target = np.asarray(y, dtype=float).ravel()
        if len(target) != len(frame):
            raise DataValidationError(
                f"X has {len(frame)} rows but y has {len(target)}.",
                "Pass the target values of the same rows as X.",
            )
        known = valid & ~np.isnan(target)
        history = pd.Series(target[known]).groupby(times[known], sort=True).mean()
        if len(history) < 2:
            raise DataValidationError(
                f"The time column '{self.time_column}' has {len(history)} distinct usable "
                "time(s) (with a target value); the seasonal-naive baseline needs at least 2.",
                f"Check that '{self.time_column}' holds dates or numbers that vary across rows, "
                "or choose a validation strategy other than timeseries.",
            )
        self.history_times_ = history.index.to_numpy()
        self.history_values_ = history.to_numpy(dtype=float)
        self.mean_ = float(np.nanmean(target))
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self._infer_season()
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "history_times_")
        frame = _as_frame(X, self.time_column)
        times, valid = _parse_times(frame[self.time_column], self.kind_)
        history, values = self.history_times_, self.history_values_
        prediction = np.full(len(frame), self.mean_)
        found = np.zeros(len(frame), dtype=bool)
        rows = np.flatnonzero(valid)
        k = self._first_k(times[rows])
        for _ in range(_MAX_SEASONS_BACK):
            if rows.size == 0:
                break
            lagged = self._shift_back(times[rows], k)
            hit, position = self._lookup(lagged)
            prediction[rows[hit]] = values[position[hit]]
            found[rows[hit]] = True
            still = ~hit & (lagged > history[0])  # at or before the start nothing can match
            rows, k = rows[still], k[still] + 1
        fallback = np.flatnonzero(valid & ~found)
        earlier = np.searchsorted(history, times[fallback], side="left") - 1
        has_earlier = earlier >= 0
        prediction[fallback[has_earlier]] = values[earlier[has_earlier]]
        return prediction

    def _lookup(self, lagged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which lagged times are stored, and where. Fixed steps match exactly; calendar steps
        match the stored time nearest in the same month (month-end dates differ across leap
        years); numeric times within a billionth of a step (t - k * lag is not exact in floats).
        """
        history = self.history_times_
        right = np.minimum(np.searchsorted(history, lagged), len(history) - 1)
        if self.kind_ == "datetime" and self.lag_months_ is None:
            return history[right] == lagged, right
        left = np.maximum(right - 1, 0)
        nearer = np.where(
            np.abs(history[left] - lagged) < np.abs(history[right] - lagged), left, right
        )
        if self.lag_months_ is not None:
            return _month_index(history[nearer]) == _month_index(lagged), nearer
        return np.abs(history[nearer] - lagged) <= 1e-9 * abs(self.step_), nearer

    def _infer_season(self) -> None:
        """Step and season from the stored times; calendar steps shift by months."""
        gaps, counts = np.unique(np.diff(self.history_times_), return_counts=True)
        step = gaps[np.argmax(counts)]
        self.step_name_, self.lag_months_, default_season = None, None, 1
        if self.kind_ == "datetime":
            step = int(step)
            if step in _FIXED_STEPS:
                self.step_name_, default_season = _FIXED_STEPS[step]
            for low, high, months, name, season in _MONTH_STEPS:
                if low * _DAY <= step <= high * _DAY and step % _DAY == 0:
                    self.step_name_, default_season, self.lag_months_ = name, season, months
            self.step_ = pd.Timedelta(step, unit="ns")
        else:
            self.step_ = float(step)
        season = default_season if self.season is None else self.season
        if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
            raise ConfigurationError(
                f"season must be a whole number of steps >= 1, not {self.season!r}.",
                "Give the season length in sampling steps (7 for a weekly pattern in daily "
                "data), or leave it unset to infer it from the step.",
            )
        self.season_ = int(season)
        if self.lag_months_ is not None:
            self.lag_months_ *= self.season_
            self.lag_ = pd.DateOffset(months=self.lag_months_)
        elif self.kind_ == "datetime":
            self.lag_ = pd.Timedelta(int(step) * self.season_, unit="ns")
        else:
            self.lag_ = self.step_ * self.season_

    def _first_k(self, times: np.ndarray) -> np.ndarray:
        """Smallest k >= 1 that reaches back to the last stored time, so later rows skip the
        seasons after the history's end instead of walking through them."""
        last = self.history_times_[-1]
        if self.lag_months_ is not None:
            months = _month_index(times) - _month_index(np.asarray([last]))[0]
            k = -(-months // self.lag_months_)
        elif self.kind_ == "datetime":
            k = -(-(times - last) // self.lag_.value)
        else:
            k = -(-(times - last) // self.lag_)
        return np.maximum(np.asarray(k), 1).astype(np.int64)

    def _shift_back(self, times: np.ndarray, k: np.ndarray) -> np.ndarray:
        if self.lag_months_ is not None:
            return _minus_months(times, k * self.lag_months_)
        if self.kind_ == "datetime":
            return times - k * self.lag_.value
        return times - k * self.lag_


class TargetLagFeatures(TransformerMixin, BaseEstimator):
    """Adds lags and rolling means of the target, looked up in the target history stored at fit.

    `fit(X, y)` stores the target by time as SeasonalNaiveForecaster does (same time parsing,
    duplicates of one time averaged, the step inferred from the most common gap; monthly,
    quarterly and yearly steps shift by calendar months). `transform(X)` returns X with, for a
    row at time t, `target_lag_{k}` = the stored target at t - k steps for each k in `lags`, and
    `target_rolling_mean_{w}` = the mean of the `w` stored values ending at t - `horizon` steps
    (t - horizon - w + 1 ... t - horizon) for each w in `windows`. A value not in the stored
    history is NaN: a time before its start, a gap, after its end, or a missing row time; a
    rolling mean is NaN unless all its `w` values are stored.

    No leakage: every lag is at least `horizon`, the number of steps ahead the model is asked to
    predict, so a feature only uses target values that are known `horizon` steps before the row
    (a shorter lag is a ConfigurationError). At fit time the training rows' own features come
    from the training history (values at least `horizon` steps before each row: legitimate).
    Rows after the stored history's end get a value only while t - k is still inside it, else
    NaN: the features never read a target that was not known when the model was fitted, which
    is also what the saved model does at prediction time. Inside a Pipeline, cross-validation
    refits the whole Pipeline per fold, so a validation fold's rows see only that fold's training
    history (the last `horizon` steps of it at most, for the first rows of the fold).
    """

    def __init__(
        self,
        time_column: str,
        lags: Any = (),
        windows: Any = (),
        horizon: int = 1,
    ) -> None:
        self.time_column = time_column
        self.lags = lags
        self.windows = windows
        self.horizon = horizon

    def fit(self, X: pd.DataFrame, y: Any) -> TargetLagFeatures:
        lags, windows, horizon = check_lag_settings(self.lags, self.windows, self.horizon)
        frame = _as_frame(X, self.time_column)
        if y is None:
            raise DataValidationError(
                "TargetLagFeatures was fitted without a target.",
                "Fit it (or the Pipeline holding it) with the target values: fit(X, y).",
            )
        self.history_ = SeasonalNaiveForecaster(self.time_column, season=1).fit(frame, y)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.lag_columns_ = lag_feature_names(lags, windows)
        clash = sorted(set(self.lag_columns_) & {str(c) for c in frame.columns})
        if clash:
            raise ConfigurationError(
                f"The input already has columns named {clash}, which the target lag features "
                "would overwrite.",
                "Rename those columns, or turn the lags off (model.time_series.target_lags and "
                "rolling_windows: []).",
            )
        self.lags_, self.windows_, self.horizon_ = lags, windows, horizon
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "history_")
        frame = _as_frame(X, self.time_column)
        history = self.history_
        times, valid = _parse_times(frame[self.time_column], history.kind_)
        rows = np.flatnonzero(valid)
        steps = {*self.lags_, *(self.horizon_ + j for w in self.windows_ for j in range(w))}
        at: dict[int, np.ndarray] = {}
        for k in sorted(steps):
            values = np.full(len(frame), np.nan)
            if rows.size:
                lagged = history._shift_back(times[rows], np.full(rows.size, k, dtype=np.int64))
                hit, position = history._lookup(lagged)
                values[rows[hit]] = history.history_values_[position[hit]]
            at[k] = values
        new = {f"target_lag_{k}": at[k] for k in self.lags_}
        for w in self.windows_:  # NaN unless all w values are stored
            window = np.column_stack([at[self.horizon_ + j] for j in range(w)])
            new[f"target_rolling_mean_{w}"] = window.mean(axis=1)
        return frame.assign(**new)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "history_")
        return np.asarray([*self.feature_names_in_, *self.lag_columns_], dtype=object)


def lag_feature_names(lags: Any, windows: Any) -> list[str]:
    """The columns TargetLagFeatures adds, in order."""
    return [*(f"target_lag_{k}" for k in lags), *(f"target_rolling_mean_{w}" for w in windows)]


def check_lag_settings(lags: Any, windows: Any, horizon: Any) -> tuple[list[int], list[int], int]:
    """model.time_series as whole numbers, or a ConfigurationError that says why not."""

    def whole(value: Any, low: int) -> bool:
        return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= low

    if not whole(horizon, 1):
        raise ConfigurationError(
            f"model.time_series.horizon must be a whole number of steps >= 1, not {horizon!r}.",
            "Set it to how many sampling steps ahead the model predicts (1 = the next step).",
        )
    lags, windows = list(lags or []), list(windows or [])
    bad = [value for value in [*lags, *windows] if not whole(value, 1)]
    if bad:
        raise ConfigurationError(
            f"model.time_series.target_lags and rolling_windows must be whole numbers of steps "
            f">= 1; got {bad}.",
            "List lags and window lengths in sampling steps, e.g. target_lags: [7, 14].",
        )
    short = [k for k in lags if k < horizon]
    if short:
        raise ConfigurationError(
            f"Target lags {short} are shorter than the horizon ({horizon} steps): when the model "
            f"predicts {horizon} steps ahead, the target {short[0]} step(s) before the predicted "
            "time is not known yet, so training on it would leak the future.",
            f"Use lags >= {horizon} in model.time_series.target_lags, or lower "
            "model.time_series.horizon if the model really predicts fewer steps ahead.",
        )
    return sorted(set(map(int, lags))), sorted(set(map(int, windows))), int(horizon)


def seasonal_naive_reason(fitted: SeasonalNaiveForecaster) -> str:
    """One line for the report: which earlier value the baseline predicts."""
    check_is_fitted(fitted, "history_times_")
    later = _LATER_ROWS.get((fitted.step_name_, fitted.season_))
    if later is None:
        later = (
            "the last observed value"
            if fitted.season_ == 1
            else "the same point of the last observed season"
        )
    return (
        f"Seasonal naive: the value {_describe_lag(fitted)} before ({later} for later rows); "
        "the nearest earlier value where that time is missing."
    )


def _describe_lag(fitted: SeasonalNaiveForecaster) -> str:
    if fitted.lag_months_ is not None:
        if fitted.lag_months_ % 12 == 0:
            years = fitted.lag_months_ // 12
            return f"{years} year{'s' if years > 1 else ''}"
        return f"{fitted.lag_months_} month{'s' if fitted.lag_months_ > 1 else ''}"
    if fitted.step_name_ == "week":
        return f"{fitted.season_} week{'s' if fitted.season_ > 1 else ''}"
    if fitted.kind_ != "datetime":
        return f"{fitted.lag_:g} time units"
    nanoseconds = fitted.lag_.value
    for unit, size in (("day", _DAY), ("hour", _HOUR), ("minute", 60 * 10**9), ("second", 10**9)):
        if nanoseconds % size == 0:
            count = nanoseconds // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return str(fitted.lag_)


def _as_frame(X: Any, time_column: str) -> pd.DataFrame:
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
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
