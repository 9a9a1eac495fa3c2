"""Lags and rolling means of the target as features a model can learn from, and the
model.time_series settings that turn them on. They are read from the target history stored at
fit, so a saved model builds them from the raw feature table alone, without leaking the future.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.tasks.forecasting.seasonal_naive import SeasonalNaiveForecaster
from model_trainer.tasks.forecasting.time_index import _as_frame, _ByTime, _parse_times

logger = logging.getLogger(__name__)


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
