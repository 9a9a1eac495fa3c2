"""The seasonal-naive baseline: each row gets the target one season before its time.

A model that forecasts no better than "the same weekday last week" has learned nothing from its
features, so time-series runs compare against this baseline as well as against the mean. Its
fitted target history by time is also what the SARIMAX baseline and the lag features read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.tasks.forecasting.time_index import (
    _DAY,
    _HOUR,
    _as_frame,
    _ByTime,
    _minus_months,
    _month_index,
    _parse_times,
    _time_kind,
)

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


class SeasonalNaiveForecaster(_ByTime, RegressorMixin, BaseEstimator):
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
        target = column_or_1d(y, dtype=float, warn=True)
        check_consistent_length(frame, target)
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
        frame = _as_frame(X, self.time_column, self)
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


def _describe_step(fitted: SeasonalNaiveForecaster) -> str:
    if fitted.step_name_ is not None:
        return f"1 {fitted.step_name_}"
    if fitted.kind_ != "datetime":
        return f"{fitted.step_:g} time unit{'' if fitted.step_ == 1 else 's'}"
    return str(fitted.step_)


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
