"""Greedy ensemble selection (Caruana et al., 2004) over the search's best trials.

Each completed trial leaves its out-of-fold predictions; a weighted average of a few trials
usually beats the best single one (different families err differently). Weights come from
forward selection with replacement on those predictions. Whether the ensemble or the best single
trial ships is decided out of sample (`held_out_choice`): a choice scored on the rows it was made
on flatters it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    clone,
    is_classifier,
    is_regressor,
)
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import ClassifierTags, RegressorTags, Tags, _safe_indexing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, indexable

from model_trainer.models.estimators import Wrapper
from model_trainer.models.metrics import (
    classification_metrics,
    get_metric,
    is_better,
    regression_metrics,
)
from model_trainer.tasks.ranking import ranking_metrics


def predict_output(model: Any, X: pd.DataFrame, task: Mapping[str, Any]) -> np.ndarray:
    """What ensembles average: class probabilities, or predictions (scores for ranking)."""
    if task["type"] in ("regression", "ranking"):
        return np.asarray(model.predict(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    classes = list(task["classes"])
    fitted = list(model.classes_)
    if fitted == classes:
        return proba
    aligned = np.zeros((len(X), len(classes)))  # a fold that lacked a class predicts it as 0
    for column, label in enumerate(fitted):
        aligned[:, classes.index(label)] = proba[:, column]
    return aligned


def score_output(
    output: np.ndarray,
    y: pd.Series,
    metric: str,
    task: Mapping[str, Any],
    groups: Any = None,
) -> float:
    """`groups`: the rows' group column, for ranking metrics."""
    if task["type"] == "regression":
        return regression_metrics(y, output, (metric,))[metric]
    if task["type"] == "ranking":
        return ranking_metrics(y, output, groups, task, (metric,))[metric]
    classes = list(task["classes"])
    predicted = np.asarray(classes, dtype=object)[output.argmax(axis=1)]
    return classification_metrics(y, predicted, output, classes, task, (metric,))[metric]


@dataclass
class OutOfFoldPredictions:
    """The best trials' out-of-fold predictions of this process, at most `keep` of them."""

    keep: int
    greater_is_better: bool
    covered: np.ndarray | None = None  # the rows some fold predicts (not all, for timeseries)
    outputs: dict[int, np.ndarray] = field(default_factory=dict)
    values: dict[int, float] = field(default_factory=dict)

    def add(self, trial_number: int, value: float, output: np.ndarray) -> None:
        self.outputs[trial_number] = output
        self.values[trial_number] = value
        ranked = sorted(self.values, key=self.values.get, reverse=self.greater_is_better)
        for dropped in ranked[self.keep :]:
            del self.outputs[dropped], self.values[dropped]


def select_ensemble(
    predictions: OutOfFoldPredictions,
    y: pd.Series,
    metric: str,
    task: Mapping[str, Any],
    max_size: int,
    rows: np.ndarray | None = None,
) -> dict[str, Any]:
    """Trial numbers with weights, the ensemble's score on `rows` (by default every out-of-fold
    row) and `first`: the trial selected first, the best single one on those rows."""
    if not predictions.outputs:
        return {"weights": {}, "score": None, "first": None}
    rule = get_metric(metric, task)
    covered = predictions.covered if rows is None else rows
    y_covered = y.iloc[covered]
    candidates = {n: output[covered] for n, output in predictions.outputs.items()}
    first = None
    counts: dict[int, int] = {}
    total = None
    best_score = None
    for _ in range(max_size):
        step_best = None
        for number, output in candidates.items():
            trial_total = output if total is None else total + output
            size = sum(counts.values()) + 1
            value = score_output(trial_total / size, y_covered, metric, task)
            if step_best is None or is_better(rule, value, step_best[1]):
                step_best = (number, value)
        if step_best is None:
            break
        if best_score is not None and not is_better(rule, step_best[1], best_score):
            break
        number, best_score = step_best
        first = number if first is None else first
        counts[number] = counts.get(number, 0) + 1
        total = candidates[number] if total is None else total + candidates[number]
    size = sum(counts.values())
    weights = {n: c / size for n, c in counts.items()}
    return {"weights": weights, "score": best_score, "first": first}


def held_out_choice(
    predictions: OutOfFoldPredictions,
    y: pd.Series,
    metric: str,
    task: Mapping[str, Any],
    max_size: int,
    held_out_rows: Sequence[np.ndarray],
) -> dict[str, list[float]]:
    """The two ways of picking the final model from the trials, each scored out of sample: for
    every fold, greedy ensemble selection and the best single trial are chosen on the other
    folds' out-of-fold rows and scored on this fold's rows. Like for like: scored on the rows it
    was chosen on, an ensemble of 20 pure-noise trials reached AUC 0.52-0.57, and that figure
    was compared with the best trial's mean fold score."""
    ensemble_scores, single_scores = [], []
    for rows in held_out_rows:
        choosing = np.setdiff1d(predictions.covered, rows)
        chosen = select_ensemble(predictions, y, metric, task, max_size, rows=choosing)
        outputs = predictions.outputs
        weighted = sum(weight * outputs[n][rows] for n, weight in chosen["weights"].items())
        single = outputs[chosen["first"]][rows]
        ensemble_scores.append(score_output(weighted, y.iloc[rows], metric, task))
        single_scores.append(score_output(single, y.iloc[rows], metric, task))
    return {"ensemble": ensemble_scores, "single_trial": single_scores}


class WeightedEnsemble(Wrapper, BaseEstimator):
    """A weighted average of fitted Pipelines that each take the raw columns."""

    def __init__(self, estimators: Sequence[Any], weights: Sequence[float]) -> None:
        self.estimators = estimators
        self.weights = weights

    def __sklearn_tags__(self) -> Tags:
        """A classifier or a regressor as its members are: scikit-learn asks `is_classifier`
        (a tuned decision threshold around an ensemble or a bag refuses anything else)."""
        tags = super().__sklearn_tags__()
        first = self.estimators[0]
        if is_classifier(first):
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
        elif is_regressor(first):
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        return tags

    def _wrapped(self) -> list[Any]:
        return list(self.estimators)

    def _fitted(self) -> Any:
        return self.estimators_[0]

    def fit(self, X: pd.DataFrame, y: pd.Series) -> WeightedEnsemble:
        y = _one_target(y)
        return self.with_fitted([clone(estimator).fit(X, y) for estimator in self.estimators])

    def with_fitted(self, members: Sequence[Any]) -> WeightedEnsemble:
        """The ensemble of members fit elsewhere (each in its checkpointed chunks, say)."""
        self.estimators_ = list(members)
        first = self.estimators_[0]
        if hasattr(first, "classes_"):
            self.classes_ = np.asarray(first.classes_)
        return self

    @available_if(lambda self: all(hasattr(e, "predict_proba") for e in self.estimators))
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        return sum(
            w * np.asarray(e.predict_proba(X))
            for e, w in zip(self.estimators_, self.weights, strict=True)
        )

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        if hasattr(self, "classes_"):
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return sum(
            w * np.asarray(e.predict(X))
            for e, w in zip(self.estimators_, self.weights, strict=True)
        )

    def score(self, X: pd.DataFrame, y: pd.Series, sample_weight: Any = None) -> float:
        """Accuracy or R², as for the members' kind (known only from them)."""
        kind = ClassifierMixin if hasattr(self, "classes_") else RegressorMixin
        return kind.score(self, X, y, sample_weight)


def _one_target(y: Any) -> Any:
    """A column vector is one target, raveled with scikit-learn's DataConversionWarning (each
    member would otherwise fit it its own way); any other y is handed on as it is."""
    return column_or_1d(y, warn=True) if np.asarray(y).ndim == 2 else y


class FoldBag(WeightedEnsemble):
    """One model (a Pipeline, or an ensemble of them) fit `folds` times, each time without one
    k-th of the rows (stratified by class for a classifier), its predictions averaged: k-fold
    bagging, AutoGluon's default. Less variance than one fit on every row, at about k times
    the fitting; an ensemble whose members are the k fits, so everything that reads a
    WeightedEnsemble (serving, ONNX, importance) reads a bag."""

    def __init__(self, estimator: Any, folds: int = 5, seed: int = 0, jobs: int = 1) -> None:
        self.estimator = estimator
        self.folds = folds
        self.seed = seed
        self.jobs = jobs

    @property
    def estimators(self) -> list[Any]:
        return [self.estimator] * self.folds

    @property
    def weights(self) -> list[float]:
        return [1.0 / self.folds] * self.folds

    def fit(self, X: pd.DataFrame, y: pd.Series) -> FoldBag:
        return self.fit_with(X, y, lambda model, X_part, y_part: model.fit(X_part, y_part))

    def fit_with(self, X: pd.DataFrame, y: pd.Series, fit: Any) -> FoldBag:
        """`fit(model, X_part, y_part)` fits each of the k clones (checkpointed, say), `jobs`
        of them side by side in threads (the models are single-threaded, as in the search)."""
        X, y = indexable(X, _one_target(y))  # rows can be taken: CSR for sparse data
        if hasattr(self.estimator, "predict_proba"):
            check_classification_targets(y)  # what StratifiedKFold refuses, in sklearn's words
            splitter = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        else:
            splitter = KFold(self.folds, shuffle=True, random_state=self.seed)
        parts = [rows for rows, _ in splitter.split(X, y)]
        with ThreadPoolExecutor(max(1, self.jobs)) as pool:
            members = pool.map(
                lambda rows: fit(
                    clone(self.estimator), _safe_indexing(X, rows), _safe_indexing(y, rows)
                ),
                parts,
            )
            return self.with_fitted(list(members))
