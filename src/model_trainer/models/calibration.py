"""Temperature scaling of class probabilities, fitted on out-of-fold predictions.

One parameter T rescales the model's log-probabilities (softmax(log p / T)): T > 1 softens
over-confident probabilities, T < 1 sharpens under-confident ones (an average of several models
is often too timid). The predicted class never changes, so neither does accuracy, nor a binary
AUC; the probabilities' quality (log loss) does. Fitted on the search's out-of-fold predictions of
the chosen model, it never sees a row the model was fit on; whether it is applied is decided
out of sample (`held_out_temperature`), as the ensemble is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from model_trainer.models.estimators import Wrapper
from model_trainer.models.metrics import label_codes

# log T is searched in [-3, 3]: T from 0.05 to 20, far beyond what real models need
LOG_TEMPERATURE_BOUNDS = (-3.0, 3.0)
EPSILON = 1e-12


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), row by row."""
    logits = np.log(np.clip(probabilities, EPSILON, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _log_loss(y: pd.Series, probabilities: np.ndarray, classes: Sequence[Any]) -> float:
    """Scored on the labels' positions in `classes`: scikit-learn calls an object array of
    integers an 'unknown' target and refuses it."""
    codes = label_codes(y, list(classes))
    return float(log_loss(codes, probabilities, labels=list(range(len(classes)))))


def fit_temperature(probabilities: np.ndarray, y: pd.Series, classes: Sequence[Any]) -> float:
    """The T that minimises the log loss of `probabilities` (columns in `classes` order) on y."""

    def loss(log_t: float) -> float:
        return _log_loss(y, scaled(probabilities, float(np.exp(log_t))), classes)

    found = minimize_scalar(loss, bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
    return float(np.exp(found.x))


def held_out_temperature(
    probabilities: np.ndarray,
    y: pd.Series,
    classes: Sequence[Any],
    held_out_rows: Sequence[np.ndarray],
) -> dict[str, list[float]]:
    """Log loss on each fold of the probabilities as they are and scaled by a T fitted on the
    other folds' rows: what scaling would do to rows it was not fitted on."""
    covered = np.unique(np.concatenate(list(held_out_rows)))
    before, after = [], []
    for rows in held_out_rows:
        fitting = np.setdiff1d(covered, rows)
        temperature = fit_temperature(probabilities[fitting], y.iloc[fitting], classes)
        before.append(_log_loss(y.iloc[rows], probabilities[rows], classes))
        after.append(_log_loss(y.iloc[rows], scaled(probabilities[rows], temperature), classes))
    return {"uncalibrated": before, "calibrated": after}


class TemperatureScaledClassifier(Wrapper, ClassifierMixin, BaseEstimator):
    """A fitted classifier's probabilities scaled by a temperature chosen beforehand (on
    out-of-fold predictions: `fit_temperature`); fit fits the wrapped classifier."""

    def __init__(self, estimator: Any, temperature: float = 1.0) -> None:
        self.estimator = estimator
        self.temperature = temperature

    def fit(self, X: pd.DataFrame, y: pd.Series) -> TemperatureScaledClassifier:
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = np.asarray(self.estimator_.classes_)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        return scaled(np.asarray(self.estimator_.predict_proba(X), dtype=float), self.temperature)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        probabilities = self.predict_proba(X)  # first: it says when the model is not fitted
        return self.classes_[probabilities.argmax(axis=1)]


def with_temperature(model: Any, temperature: float) -> Pipeline:
    """The model (to be fit) with its probabilities scaled by `temperature`; a Pipeline, as
    every saved model is."""
    return Pipeline([("calibration", TemperatureScaledClassifier(model, temperature))])
