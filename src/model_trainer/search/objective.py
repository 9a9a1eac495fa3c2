"""A trial's score: the chosen family's pipeline cross-validated on the study's fixed folds,
fold fits side by side, stopped before the budget's deadline or when the pruner says so."""

from __future__ import annotations

import os
import pickle
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from model_trainer.errors import ConfigurationError
from model_trainer.models.ensemble import (
    OutOfFoldPredictions,
    predict_output,
    score_output,
)
from model_trainer.models.estimators import pipeline_from_configuration
from model_trainer.models.metrics import get_metric
from model_trainer.search import study_predictions
from model_trainer.search.budget import (
    SearchBudget,
    expected_batch_seconds,
    past_deadline,
    rounds_of,
)
from model_trainer.search.space import suggest
from model_trainer.table.splitting import cv_splits


def make_objective(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    out_of_fold: OutOfFoldPredictions | None = None,
    budget: SearchBudget | None = None,
    fold_jobs: int = 1,
    objectives: Sequence[str] = (),
) -> Callable[[optuna.Trial], float | list[float]]:
    """The CV objective. Once some trial has completed, a trial stops before a batch of folds
    that would end past the budget's deadline (judged by its previous batch), so the timeout
    bounds the search's time, not just the start of its last trial. With `fold_jobs` > 1,
    folds are fit side by side, one thread each (OpenMP limited to one thread): the result does
    not depend on the order they finish in, and single-threaded models never wait on each
    other, where multi-threaded boosting on a busy or small machine spins at every round.
    With `objectives` beyond the metric, it returns their fold means after the metric's (and
    does not report to the pruner: Optuna prunes single-objective studies only)."""
    metric = get_metric(configuration["metric"], task)
    folds = cv_splits(configuration["cv"], X, y)
    algorithms = configuration["algorithms"]
    if out_of_fold is not None:
        out_of_fold.covered = np.unique(np.concatenate([rows for _, rows in folds]))

    others = list(objectives[1:])
    groups = X[task["group_column"]].to_numpy() if task["type"] == "ranking" else np.zeros(len(X))

    def fit_and_predict(
        pipeline: Any, fit_rows: np.ndarray, score_rows: np.ndarray
    ) -> tuple[Any, float, dict[str, float]]:
        started = time.perf_counter()
        model = clone(pipeline).fit(X.iloc[fit_rows], y.iloc[fit_rows])
        predicting = time.perf_counter()
        output = predict_output(model, X.iloc[score_rows], task)
        ended = time.perf_counter()
        measured = {
            "latency": 1e6 * (ended - predicting) / len(score_rows),
            "model_size": float(len(pickle.dumps(model))) if "model_size" in others else 0.0,
        }
        return output, ended - started, {name: measured[name] for name in others}

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        algorithm, params = suggest(trial, algorithms, configuration["search_space"])
        trial.set_user_attr("algorithm", algorithm)
        pipeline = pipeline_from_configuration(
            configuration, algorithm, params, task["type"], feature_types
        )
        scores: list[float] = []
        fold_seconds: list[float] = []
        fold_measures: list[dict[str, float]] = []
        trial.set_user_attr("rounds", rounds_of(params))
        # each batch judged by the one before it; the first by the family's earlier trials
        batch_wall = expected_batch_seconds(trial.study, algorithm, params)
        oof: np.ndarray | None = None
        deadline = budget.deadline() if budget is not None else None
        try:
            for start in range(0, len(folds), fold_jobs):
                if past_deadline(trial, deadline, batch_wall):
                    trial.set_user_attr("stopped", "tuning.timeout reached")
                    raise optuna.TrialPruned()
                batch = folds[start : start + fold_jobs]
                batch_started = time.monotonic()
                with warnings.catch_warnings(), ThreadPoolExecutor(len(batch)) as pool:
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    results = list(pool.map(lambda f, p=pipeline: fit_and_predict(p, *f), batch))
                batch_wall = time.monotonic() - batch_started
                if not start:
                    trial.set_user_attr("first_batch_s", batch_wall)
                fold_seconds += [seconds for _, seconds, _ in results]
                fold_measures += [measures for _, _, measures in results]
                outputs = [output for output, _, _ in results]
                for (_, score_rows), output in zip(batch, outputs, strict=True):
                    if oof is None:
                        oof = np.zeros((len(X), *output.shape[1:]))
                    oof[score_rows] = output
                    scores.append(
                        score_output(
                            output, y.iloc[score_rows], metric.name, task, groups[score_rows]
                        )
                    )
                trial.set_user_attr("fold_scores", scores)
                trial.set_user_attr("fold_fit_s", float(np.mean(fold_seconds)))
                if not others:
                    trial.report(float(np.mean(scores)), len(scores) - 1)
                    if trial.should_prune():
                        raise optuna.TrialPruned()
        except (optuna.TrialPruned, ConfigurationError):
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            return [float("nan")] * len(objectives) if others else float("nan")
        trial.set_user_attr("cv_std", float(np.std(scores)))
        value = float(np.mean(scores))
        if out_of_fold is not None and oof is not None and np.isfinite(value):
            out_of_fold.add(trial.number, value, oof)
            study_predictions.store(trial, value, oof, out_of_fold)
        if not others:
            return value
        means = {name: float(np.mean([m[name] for m in fold_measures])) for name in others}
        for name, mean in means.items():
            trial.set_user_attr(name, mean)
        return [value, *means.values()]

    return objective
