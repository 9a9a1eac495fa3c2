"""Calibration of class probabilities, fitted on out-of-fold predictions.

Three maps, as scikit-learn's `CalibratedClassifierCV` and the AutoML tools offer them:

- `Temperature`: one parameter T rescales the log-probabilities (softmax(log p / T)). T > 1
  softens over-confident probabilities, T < 1 sharpens timid ones (an average of models often
  is). The most probable class never changes, so neither do accuracy nor a binary AUC.
- `Sigmoid` (Platt scaling): a logistic map of each class's log-odds, a slope and an offset per
  class (one-vs-rest, then normalised). It also corrects a shifted base rate.
- `Isotonic`: a non-decreasing step map of each class's probability; the most flexible, so it
  needs the most rows.

Each is fitted on the search's out-of-fold predictions of the chosen model, so it never sees a
row the model was fit on; whether one is applied, and which, is decided out of sample
(`held_out_losses`), as the ensemble is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from model_trainer.models.estimators import Wrapper
from model_trainer.models.metrics import brier_score, label_codes

# log T is searched in [-3, 3]: T from 0.05 to 20, far beyond what real models need
LOG_TEMPERATURE_BOUNDS = (-3.0, 3.0)
EPSILON = 1e-12
# isotonic steps reach 0 and 1; one wrong row at a certain 0 would cost a log loss of 28
ISOTONIC_FLOOR = 1e-4


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), row by row."""
    logits = np.log(np.clip(probabilities, EPSILON, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _normalised(probabilities: np.ndarray) -> np.ndarray:
    """Rows summing to one; a row that maps to all zeros becomes uniform."""
    totals = probabilities.sum(axis=1, keepdims=True)
    uniform = np.full_like(probabilities, 1.0 / probabilities.shape[1])
    return np.where(totals > 0, probabilities / np.where(totals > 0, totals, 1.0), uniform)


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


class Temperature:
    """softmax(log p / T), T fitted to minimise the log loss."""

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    @classmethod
    def fitted(cls, probabilities: np.ndarray, codes: np.ndarray) -> Temperature:
        def loss(log_t: float) -> float:
            return _coded_log_loss(codes, scaled(probabilities, float(np.exp(log_t))))

        found = minimize_scalar(loss, bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
        return cls(float(np.exp(found.x)))

    def transform(self, probabilities: np.ndarray) -> np.ndarray:
        return scaled(probabilities, self.temperature)

    def parameters(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    def __str__(self) -> str:
        return f"temperature scaling, T = {self.temperature:.3g}"

    def __repr__(self) -> str:
        return f"Temperature(temperature={self.temperature!r})"


class Sigmoid:
    """Platt scaling: per class, p' = 1 / (1 + exp(-(a * logit(p) + b))); one map (a, b) for
    the positive class of a binary task, one-vs-rest and normalised for more classes."""

    def __init__(self, maps: Sequence[Sequence[float]]) -> None:
        self.maps = [list(m) for m in maps]

    @classmethod
    def fitted(cls, probabilities: np.ndarray, codes: np.ndarray) -> Sigmoid:
        maps = []
        for k in _mapped_classes(probabilities):
            is_k = (codes == k).astype(int)
            if is_k.min() == is_k.max():  # a class the rows never (or always) show
                maps.append([0.0, float(_log_odds(np.array([is_k.mean()]))[0])])
                continue
            logistic = LogisticRegression(C=1e4).fit(_log_odds(probabilities[:, [k]]), is_k)
            maps.append([float(logistic.coef_[0, 0]), float(logistic.intercept_[0])])
        return cls(maps)

    def transform(self, probabilities: np.ndarray) -> np.ndarray:
        mapped = [
            1.0 / (1.0 + np.exp(-(slope * _log_odds(probabilities[:, k]) + offset)))
            for k, (slope, offset) in zip(_mapped_classes(probabilities), self.maps, strict=True)
        ]
        return _completed(np.column_stack(mapped), probabilities.shape[1])

    def parameters(self) -> dict[str, Any]:
        return {"maps": self.maps}

    def __str__(self) -> str:
        slopes = ", ".join(f"{slope:.3g}" for slope, _ in self.maps)
        return f"sigmoid (Platt) scaling, slope {slopes}"

    def __repr__(self) -> str:
        return f"Sigmoid(maps={self.maps!r})"


class Isotonic:
    """Per class, a non-decreasing step map of its probability, fitted by isotonic regression
    (its steps kept as (thresholds, values), interpolated between them as scikit-learn's
    predict does); one map for the positive class of a binary task, one-vs-rest and normalised
    for more classes."""

    def __init__(self, steps: Sequence[Sequence[Sequence[float]]]) -> None:
        self.steps = [[list(x), list(y)] for x, y in steps]

    @classmethod
    def fitted(cls, probabilities: np.ndarray, codes: np.ndarray) -> Isotonic:
        steps = []
        for k in _mapped_classes(probabilities):
            regression = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            regression.fit(probabilities[:, k], (codes == k).astype(float))
            steps.append([regression.X_thresholds_.tolist(), regression.y_thresholds_.tolist()])
        return cls(steps)

    def transform(self, probabilities: np.ndarray) -> np.ndarray:
        mapped = [
            np.interp(probabilities[:, k], x, y)
            for k, (x, y) in zip(_mapped_classes(probabilities), self.steps, strict=True)
        ]
        floored = np.clip(np.column_stack(mapped), ISOTONIC_FLOOR, 1 - ISOTONIC_FLOOR)
        return _completed(floored, probabilities.shape[1])

    def parameters(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def __str__(self) -> str:
        return f"isotonic regression ({sum(len(x) for x, _ in self.steps)} steps)"

    def __repr__(self) -> str:
        return f"Isotonic(<{sum(len(x) for x, _ in self.steps)} steps>)"


CALIBRATORS: dict[str, Any] = {
    "temperature": Temperature,
    "sigmoid": Sigmoid,
    "isotonic": Isotonic,
}


def _mapped_classes(probabilities: np.ndarray) -> range:
    """A binary task maps its second column only; the first is its complement."""
    k = probabilities.shape[1]
    return range(1, 2) if k == 2 else range(k)


def _completed(mapped: np.ndarray, k: int) -> np.ndarray:
    if k == 2:
        return np.column_stack([1.0 - mapped[:, 0], mapped[:, 0]])
    return _normalised(mapped)


def _coded_log_loss(codes: np.ndarray, probabilities: np.ndarray) -> float:
    return float(log_loss(codes, probabilities, labels=list(range(probabilities.shape[1]))))


LOSSES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "log_loss": _coded_log_loss,
    "brier": brier_score,
}


def fit_calibrator(
    method: str, probabilities: np.ndarray, y: pd.Series, classes: Sequence[Any]
) -> Any:
    """The `method` map fitted on `probabilities` (columns in `classes` order) against y."""
    return CALIBRATORS[method].fitted(probabilities, label_codes(y, list(classes)))


def fit_temperature(probabilities: np.ndarray, y: pd.Series, classes: Sequence[Any]) -> float:
    """The T that minimises the log loss of `probabilities` (columns in `classes` order) on y."""
    return fit_calibrator("temperature", probabilities, y, classes).temperature


def calibrator_from(calibration: Mapping[str, Any]) -> Any | None:
    """The fitted map a search summary's `calibration` describes, or None. A summary saved
    before sigmoid and isotonic (2026-12-07) holds its temperature at the top level."""
    method = calibration.get("method", "none")
    if method == "none":
        return None
    parameters = calibration.get("parameters") or {"temperature": calibration["temperature"]}
    return CALIBRATORS[method](**parameters)


def held_out_losses(
    probabilities: np.ndarray,
    y: pd.Series,
    classes: Sequence[Any],
    held_out_rows: Sequence[np.ndarray],
    methods: Sequence[str],
    loss: str = "log_loss",
) -> dict[str, list[float]]:
    """The `loss` on each fold of the probabilities as they are ("uncalibrated") and mapped by
    each method fitted on the other folds' rows: what calibration does to rows it was not
    fitted on."""
    codes = label_codes(y, list(classes))
    score = LOSSES[loss]
    covered = np.unique(np.concatenate(list(held_out_rows)))
    losses: dict[str, list[float]] = {"uncalibrated": [], **{m: [] for m in methods}}
    for rows in held_out_rows:
        fitting = np.setdiff1d(covered, rows)
        losses["uncalibrated"].append(score(codes[rows], probabilities[rows]))
        for method in methods:
            calibrator = CALIBRATORS[method].fitted(probabilities[fitting], codes[fitting])
            losses[method].append(score(codes[rows], calibrator.transform(probabilities[rows])))
    return losses


class CalibratedClassifier(Wrapper, ClassifierMixin, BaseEstimator):
    """A classifier whose probabilities pass through a calibrator fitted beforehand (on
    out-of-fold predictions: `fit_calibrator`); fit fits the wrapped classifier only. Labels
    are the most probable class after calibration."""

    def __init__(self, estimator: Any, calibrator: Any = None) -> None:
        self.estimator = estimator
        self.calibrator = calibrator

    def fit(self, X: pd.DataFrame, y: pd.Series) -> CalibratedClassifier:
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = np.asarray(self.estimator_.classes_)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        probabilities = np.asarray(self.estimator_.predict_proba(X), dtype=float)
        if self.calibrator is None:  # scikit-learn's default construction: no map
            return probabilities
        return self.calibrator.transform(probabilities)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        probabilities = self.predict_proba(X)  # first: it says when the model is not fitted
        return self.classes_[probabilities.argmax(axis=1)]


class TemperatureScaledClassifier(CalibratedClassifier):
    """Models saved before sigmoid and isotonic calibration (2026-12-07) pickled this class with
    a `temperature`; they load as a CalibratedClassifier holding that Temperature."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "temperature" in state:
            state["calibrator"] = Temperature(state.pop("temperature"))
        super().__setstate__(state)


def calibrated(model: Any, calibrator: Any) -> Pipeline:
    """The model (to be fit) with its probabilities mapped by the fitted `calibrator`; a
    Pipeline, as every saved model is."""
    return Pipeline([("calibration", CalibratedClassifier(model, calibrator))])
