"""A small SARIMAX baseline: a classical time-series model of the target by time, a stronger
yardstick than the seasonal naive for a model that claims to forecast.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.tasks.forecasting.seasonal_naive import (
    SeasonalNaiveForecaster,
    _describe_step,
)
from model_trainer.tasks.forecasting.time_index import (
    _as_frame,
    _ByTime,
    _month_index,
    _parse_times,
)

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
