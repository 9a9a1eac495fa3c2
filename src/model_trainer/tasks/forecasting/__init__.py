"""A seasonal-naive baseline for time series (the value one season earlier), a small SARIMAX
baseline, and lag and rolling-mean features of the target that a model can learn from.

A model that forecasts no better than "the same weekday last week" has learned nothing from its
features, so time-series runs compare against this baseline as well as against the mean. Both
follow the saved-model contract: they take the raw feature table (target removed) and work from
each row's own time column, so the target history they need is stored when they are fitted.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.utils import Tags
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.table.checks import columns_by_name

logger = logging.getLogger(__name__)

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


class _ByTime:
    """What the estimators that read a table by its time column accept: dates as text, and
    missing values (a row without a usable time gets the mean, or missing lags)."""

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = tags.input_tags.allow_nan = True
        if tags.regressor_tags is not None:
            tags.regressor_tags.poor_score = True  # a baseline: the target's history by time
        return tags


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


# SARIMAX candidates, all on the same differencing so their AICs compare the same data: with a
# season, one seasonal difference (the seasonal naive forecast is the SARIMA (0,0,0)x(0,1,0,s)
# these extend); without one, one plain difference (the naive forecast is ARIMA(0,1,0)).
_SEASONAL_ORDERS = [((1, 0, 1), (0, 1, 1)), ((2, 0, 1), (0, 1, 1)), ((1, 0, 1), (1, 1, 1))]
_PLAIN_ORDERS = [(0, 1, 1), (1, 1, 1), (2, 1, 1)]
# The time grid may hold at most this many steps per stored time (else the times are too
# irregular for a fixed step) and forecasts reach at most this many steps past the end.
_MAX_GRID_PER_TIME = 10
_MAX_FORECAST_STEPS = 100_000


class SarimaxForecaster(_ByTime, RegressorMixin, BaseEstimator):
    """A small SARIMAX on the target by time, chosen by AIC among a few fixed orders.

    `fit` orders the rows by time, infers the step and the season as SeasonalNaiveForecaster
    does (daily -> 7, hourly -> 24, ...; `season` overrides), and lays the target on a regular
    grid of that step from the first to the last training time (the duplicates of one time
    averaged, rows off the grid at the nearest step, missing steps left empty for the Kalman
    filter). It fits statsmodels SARIMAX with each of (1,0,1)x(0,1,1,s), (2,0,1)x(0,1,1,s) and
    (1,0,1)x(1,1,1,s) - (0,1,1), (1,1,1), (2,1,1) when the season is 1 step or the grid is
    shorter than 3 seasons - on the last `max_fit_rows` steps of the grid, keeps the lowest AIC
    whose autoregressive part is stationary, and runs its Kalman filter over the whole grid.

    The parameters are not constrained while fitting (enforce_stationarity=False,
    enforce_invertibility=False): on daily Chicago ridership the constrained fit of
    (2,0,1)x(0,1,1,7) took 8.7 s instead of 1.2 s, warned that its start was not stationary and
    stopped at a worse AIC (19471 vs 19440). Fits whose AR polynomial has a root on or inside the
    unit circle (explosive forecasts) are discarded instead.

    `exog_columns`: numeric columns used as exogenous regressors, median-imputed and
    standardised with the training statistics. None by default: each one is another parameter
    of the optimiser (four weather columns made the Chicago fit 4x slower, all 48 numeric
    columns 25x), and a forecast row must then bring its own future values, which a forecast
    made in advance does not know (the day's actual weather), so the baseline would flatter.

    `predict`: a row at a time inside the training span gets the filter's one-step-ahead
    prediction for its step (from the targets before it, not its own), except during the
    filter's burn-in (the first `burn_` steps, where the differencing has no past yet) where it
    gets the seasonal-naive prediction; a row after the end gets the forecast `steps` ahead,
    its position on the grid after the last training step (exogenous values from the rows
    themselves, the training median for steps without a row); a row before the start, or
    without a usable time, gets the training mean.

    If every SARIMAX fit fails (LinAlgError, ValueError) or the times do not fit a grid, it
    predicts the seasonal naive forecast instead, and `fallback_reason_` says why. statsmodels'
    warnings (convergence, frequency, ...) are caught: `warnings_` counts them and
    `warning_messages_` keeps the distinct ones.
    """

    def __init__(
        self,
        time_column: str,
        exog_columns: Any = None,
        season: int | None = None,
        max_fit_rows: int = 5_000,
        maxiter: int = 50,
    ) -> None:
        self.time_column = time_column
        self.exog_columns = exog_columns
        self.season = season
        self.max_fit_rows = max_fit_rows
        self.maxiter = maxiter

    def fit(self, X: pd.DataFrame, y: Any) -> SarimaxForecaster:
        frame = _as_frame(X, self.time_column)
        self.naive_ = SeasonalNaiveForecaster(self.time_column, self.season).fit(frame, y)
        naive = self.naive_
        self.mean_ = naive.mean_
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.exog_columns_ = self._check_exog(frame)
        self.fallback_reason_: str | None = None
        self.order_ = self.seasonal_order_ = self.params_ = None
        self.aic_, self.n_candidates_, self.burn_ = np.nan, 0, 0
        self.warnings_, self.warning_messages_ = 0, []
        self.start_ = naive.history_times_[0]
        positions = self._positions(naive.history_times_)
        n_grid = int(positions[-1]) + 1
        if n_grid > _MAX_GRID_PER_TIME * len(positions):
            self.fallback_reason_ = (
                f"the {len(positions)} distinct times would spread over {n_grid} steps of "
                f"{_describe_step(naive)}, too irregular for a fixed-step model"
            )
            return self
        endog = _mean_by_position(positions, naive.history_values_, n_grid)
        exog = None
        if self.exog_columns_:
            table = frame[self.exog_columns_].apply(pd.to_numeric, errors="coerce")
            values = table.to_numpy(dtype=float, na_value=np.nan)
            self.exog_median_ = table.median().fillna(0.0).to_numpy(dtype=float)
            filled = np.where(np.isnan(values), self.exog_median_, values)
            self.exog_mean_ = filled.mean(axis=0)
            scale = filled.std(axis=0)
            self.exog_scale_ = np.where(scale > 0, scale, 1.0)
            times, valid = _parse_times(frame[self.time_column], naive.kind_)
            rows = np.flatnonzero(valid)
            exog = self._exog_by_step(frame.iloc[rows], self._positions(times[rows]), n_grid)
        self.endog_, self.exog_ = endog, exog
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self._fit_sarimax(endog, exog)
            except (np.linalg.LinAlgError, ValueError) as error:
                self.fallback_reason_ = f"{type(error).__name__}: {str(error)[:200]}"
        self._record_warnings(caught)
        return self

    def _fit_sarimax(self, endog: np.ndarray, exog: np.ndarray | None) -> None:
        season = self.naive_.season_
        window = min(int(self.max_fit_rows), len(endog))
        if season > 1 and window >= 3 * season:
            candidates = [(order, (*seasonal, season)) for order, seasonal in _SEASONAL_ORDERS]
        else:
            candidates = [(order, (0, 0, 0, 0)) for order in _PLAIN_ORDERS]
        best, failures = None, []
        for order, seasonal_order in candidates:
            model = _sarimax(endog[-window:], _tail(exog, window), order, seasonal_order)
            try:
                result = model.fit(disp=False, maxiter=self.maxiter)
            except (np.linalg.LinAlgError, ValueError) as error:
                failures.append(f"{type(error).__name__}: {str(error)[:200]}")
                continue
            if not np.isfinite(result.aic):
                failures.append("a non-finite AIC")
            elif np.any(np.abs(np.roots(result.polynomial_reduced_ar[::-1])) <= 1.0):
                failures.append("a non-stationary AR part")
            elif best is None or result.aic < best[2].aic:
                best = (order, seasonal_order, result)
        self.n_candidates_ = len(candidates)
        if best is None:
            failed = "; ".join(dict.fromkeys(failures))
            raise ValueError(f"no SARIMAX order could be fitted ({failed})")
        self.order_, self.seasonal_order_, result = best
        self.aic_, self.params_ = float(result.aic), np.asarray(result.params, dtype=float)
        self.fit_rows_ = window
        full = _sarimax(endog, exog, self.order_, self.seasonal_order_).filter(self.params_)
        self.in_sample_ = np.asarray(full.predict(), dtype=float)
        self.burn_ = int(full.model.loglikelihood_burn)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "naive_")
        frame = _as_frame(X, self.time_column, self)
        if self.fallback_reason_ is not None:
            return self.naive_.predict(frame)
        missing = [c for c in self.exog_columns_ if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"The exogenous column(s) {missing} of the SARIMAX baseline are not among the "
                "input columns.",
                "Pass the same columns the baseline was fitted with.",
            )
        times, valid = _parse_times(frame[self.time_column], self.naive_.kind_)
        prediction = np.full(len(frame), self.mean_)
        rows = np.flatnonzero(valid & (times >= self.start_))
        position = self._positions(times[rows])
        last = len(self.in_sample_) - 1
        burn = rows[position < self.burn_]
        if burn.size:
            prediction[burn] = self.naive_.predict(frame.iloc[burn])
        inside = (position >= self.burn_) & (position <= last)
        prediction[rows[inside]] = self.in_sample_[position[inside]]
        later = position > last
        if later.any():
            steps = np.minimum(position[later] - last, _MAX_FORECAST_STEPS)
            horizon = int(steps.max())
            exog = None
            if self.exog_columns_:
                exog = self._exog_by_step(frame.iloc[rows[later]], steps - 1, horizon)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = _sarimax(self.endog_, self.exog_, self.order_, self.seasonal_order_)
                result = model.filter(self.params_, low_memory=True)
                forecast = np.asarray(result.forecast(horizon, exog=exog), dtype=float)
            self._record_warnings(caught)
            prediction[rows[later]] = forecast[steps - 1]
        return prediction

    def _positions(self, times: np.ndarray) -> np.ndarray:
        """Each time's step on the grid that starts at the first training time (nearest)."""
        naive = self.naive_
        if naive.lag_months_ is not None:
            months = naive.lag_months_ // naive.season_
            offset = _month_index(times) - _month_index(np.asarray([self.start_]))[0]
            return np.rint(offset / months).astype(np.int64)
        if naive.kind_ == "datetime":
            step = naive.step_.value
            return (times - self.start_ + step // 2) // step
        return np.rint((times - self.start_) / naive.step_).astype(np.int64)

    def _check_exog(self, frame: pd.DataFrame) -> list[str]:
        if self.exog_columns is None or isinstance(self.exog_columns, str):
            columns = [] if self.exog_columns is None else [self.exog_columns]
        else:
            columns = list(self.exog_columns)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"The exogenous column(s) {missing} of the SARIMAX baseline are not among the "
                "input columns.",
                "Name columns of the feature table in exog_columns, or leave it unset.",
            )
        text = [
            c
            for c in columns
            if c == self.time_column or not pd.api.types.is_numeric_dtype(frame[c])
        ]
        if text:
            raise ConfigurationError(
                f"The SARIMAX baseline's exogenous columns must be numeric and not the time "
                f"column; {text} are not.",
                "List only numeric feature columns in exog_columns.",
            )
        return columns

    def _exog_by_step(self, rows: pd.DataFrame, steps: np.ndarray, n_steps: int) -> np.ndarray:
        """Standardised exogenous values per grid step: the mean of the rows at that step, the
        training median where no row falls on it."""
        values = rows[self.exog_columns_].apply(pd.to_numeric, errors="coerce")
        values = values.to_numpy(dtype=float, na_value=np.nan)
        values = np.where(np.isnan(values), self.exog_median_, values)
        keep = (steps >= 0) & (steps < n_steps)
        by_step = np.tile(self.exog_median_, (n_steps, 1))
        for column in range(values.shape[1]):
            mean = _mean_by_position(steps[keep], values[keep, column], n_steps)
            by_step[:, column] = np.where(np.isnan(mean), by_step[:, column], mean)
        return (by_step - self.exog_mean_) / self.exog_scale_

    def _record_warnings(self, caught: list[warnings.WarningMessage]) -> None:
        self.warnings_ += len(caught)
        messages = {*self.warning_messages_, *(str(w.message)[:200] for w in caught)}
        self.warning_messages_ = sorted(messages)[:5]


def _sarimax(endog: np.ndarray, exog: np.ndarray | None, order: Any, seasonal_order: Any) -> Any:
    """statsmodels SARIMAX (imported here: statsmodels takes over a second to import)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    return SARIMAX(
        endog,
        exog=exog,
        order=order,
        seasonal_order=seasonal_order,
        enforce_stationarity=False,
        enforce_invertibility=False,
        concentrate_scale=True,
    )


def _tail(exog: np.ndarray | None, rows: int) -> np.ndarray | None:
    return None if exog is None else exog[-rows:]


def _mean_by_position(positions: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    """The mean of the values at each position 0 .. length - 1; NaN where there are none."""
    total = np.bincount(positions, weights=values, minlength=length)[:length]
    count = np.bincount(positions, minlength=length)[:length]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class TargetLagFeatures(_ByTime, TransformerMixin, BaseEstimator):
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
        frame = _as_frame(X, self.time_column, self)
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


def lag_configuration(
    task_type: str, settings: Mapping[str, Any], time_column: str | None
) -> dict[str, Any] | None:
    """The target lag features every pipeline gets (model.time_series), or None: they are
    opt-in, and only for a regression ordered by a time column."""
    lags, windows, horizon = check_lag_settings(
        settings.get("target_lags"), settings.get("rolling_windows"), settings.get("horizon", 1)
    )
    if not lags and not windows:
        return None
    if task_type != "regression" or not time_column:
        logger.warning(
            "model.time_series lags are off: they apply to a regression with "
            "dataset.time_column set (this is %s%s).",
            task_type,
            "" if time_column else " without a time column",
        )
        return None
    logger.info(
        "Target lag features: lags %s, rolling means over %s, %d step(s) ahead, by '%s'.",
        lags, windows, horizon, time_column,
    )  # fmt: skip
    return {
        "time_column": time_column,
        "target_lags": lags,
        "rolling_windows": windows,
        "horizon": horizon,
    }


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


def sarimax_reason(fitted: SarimaxForecaster) -> str:
    """One line for the report: the order chosen and its AIC, or why it fell back."""
    check_is_fitted(fitted, "naive_")
    if fitted.fallback_reason_ is not None:
        return (
            f"SARIMAX could not be fitted ({fitted.fallback_reason_}); it predicts the seasonal "
            "naive forecast instead."
        )
    order = "({},{},{})".format(*fitted.order_)
    if fitted.seasonal_order_[3]:
        order += "x({},{},{},{})".format(*fitted.seasonal_order_)
    exog = f" with {len(fitted.exog_columns_)} exogenous column(s)" if fitted.exog_columns_ else ""
    caught = f"; {fitted.warnings_} statsmodels warning(s) caught" if fitted.warnings_ else ""
    return (
        f"SARIMAX{order}{exog}: lowest AIC {fitted.aic_:.1f} of {fitted.n_candidates_} orders, "
        f"fitted on the last {fitted.fit_rows_} of {len(fitted.endog_)} steps of "
        f"{_describe_step(fitted.naive_)}; one-step-ahead in the training span, forecast after "
        f"it{caught}."
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
