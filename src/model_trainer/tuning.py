"""Hyperparameter search: a stored, resumable Optuna study over a conditional space of families.

Each trial picks an algorithm, then that algorithm's parameters (named `<algorithm>__<param>`),
and is scored by cross-validation on folds fixed for the whole study. Strong configurations
from each family's portfolio are enqueued before the sampler takes over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import count, zip_longest
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sqlalchemy.exc import IntegrityError, ProgrammingError
from threadpoolctl import threadpool_limits

from model_trainer.ensemble import (
    OutOfFoldPredictions,
    predict_output,
    score_output,
    select_ensemble,
)
from model_trainer.errors import ConfigurationError, ModelTrainerError
from model_trainer.estimators import pipeline_from_configuration
from model_trainer.metrics import get_metric, is_better
from model_trainer.splitting import cv_splits

logger = logging.getLogger(__name__)

PARAM_SEPARATOR = "__"
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(
            multivariate=True, group=True, seed=seed, warn_independent_sampling=False
        ),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    if name not in samplers:
        raise ConfigurationError(
            f"Unknown tuning.sampler '{name}'.", f"Use one of: {', '.join(samplers)}."
        )
    return samplers[name]()


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    pruners: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        "hyperband": optuna.pruners.HyperbandPruner,
        "none": optuna.pruners.NopPruner,
    }
    if name not in pruners:
        raise ConfigurationError(
            f"Unknown tuning.pruner '{name}'.", f"Use one of: {', '.join(pruners)}."
        )
    return pruners[name]()


STORAGE_OPEN_ATTEMPTS = 5


def make_storage(settings: Mapping[str, Any]) -> optuna.storages.BaseStorage | None:
    """SQLite/PostgreSQL (RDB, with heartbeats so a killed trial is marked failed), a journal
    file (`journal:PATH`, no heartbeat), or in memory when tuning is not stored. `env:NAME`
    reads the URL from the environment variable NAME, so a password stays out of conf and of
    the parameters kedro-mlflow logs."""
    url = storage_url(settings.get("storage"))
    if not url:
        return None
    if url.startswith("journal:"):
        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(os.path.abspath(url.removeprefix("sqlite:///"))), exist_ok=True)
    for attempt in count(1):
        try:
            return RDBStorage(
                url,
                heartbeat_interval=int(settings.get("heartbeat_interval", 60)),
                grace_period=int(settings.get("heartbeat_grace_period", 120)),
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
        except (IntegrityError, ProgrammingError) as exc:
            # Workers starting together on a fresh database race to create the tables: the
            # loser's CREATE collides with the winner's, and on a retry the tables exist.
            if attempt == STORAGE_OPEN_ATTEMPTS:
                raise _storage_error(url, exc) from exc
            logger.info("Optuna tables being created by another worker; retry %d.", attempt)
            time.sleep(random.uniform(0.2, 1.0) * attempt)
        except Exception as exc:
            raise _storage_error(url, exc) from exc


def storage_url(value: str | None) -> str | None:
    if not value or not value.startswith("env:"):
        return value
    name = value.removeprefix("env:")
    if not os.environ.get(name):
        raise ConfigurationError(
            f"tuning.storage is {value}, but the environment variable {name} is not set.",
            f"Set {name} to the study's storage URL (e.g. postgresql://user:password@host/db).",
        )
    return os.environ[name]


def _storage_error(url: str, exc: Exception) -> ModelTrainerError:
    return ModelTrainerError(
        f"Cannot open the Optuna storage '{redact(url)}': {type(exc).__name__}: {redact(str(exc))}",
        "Check tuning.storage: a SQLAlchemy URL (sqlite:///path.db, postgresql://…) or "
        "journal:path.log, and that its server is reachable.",
    )


def redact(url: str) -> str:
    """Storage URLs may carry a password (user info or a query parameter); never log or save it."""
    url = re.sub(r"(?<=[/:])[^/@?]*@", "***@", url, count=1)
    return re.sub(r"(?i)([?&][^=&]*pass[^=&]*=)[^&]*", r"\1***", url)


def data_fingerprint(table: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(table, index=False).to_numpy()
    header = json.dumps([str(c) for c in table.columns]).encode()
    return hashlib.sha256(header + hashed.tobytes()).hexdigest()[:16]


def study_name_for(**identity: Any) -> str:
    """Same data, target, task, metric, space and folds -> same study, so a re-run resumes it."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    return f"model_trainer_{digest.hexdigest()[:12]}"


def suggest(
    trial: optuna.Trial, algorithms: Sequence[str], spaces: Mapping[str, Mapping[str, Any]]
) -> tuple[str, dict[str, Any]]:
    algorithm = (
        trial.suggest_categorical("algorithm", list(algorithms))
        if len(algorithms) > 1
        else algorithms[0]
    )
    params = {}
    for name, spec in (spaces.get(algorithm) or {}).items():
        key = f"{algorithm}{PARAM_SEPARATOR}{name}"
        kind = spec.get("type")
        if kind == "int":
            value: Any = trial.suggest_int(
                key, spec["low"], spec["high"], log=spec.get("log", False)
            )
        elif kind == "float":
            value = trial.suggest_float(key, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "categorical":
            value = trial.suggest_categorical(key, spec["choices"])
        else:
            raise ConfigurationError(
                f"Search space entry model.algorithms.{algorithm}.search_space.{name} has "
                f"type '{kind}'.",
                "Use type int, float (with low, high, optional log) or categorical (with choices).",
            )
        params[name] = value
    return algorithm, params


def split_params(params: Mapping[str, Any], algorithms: Sequence[str]) -> tuple[str, dict]:
    """A trial's flat Optuna params -> (algorithm, estimator params)."""
    algorithm = params.get("algorithm", algorithms[0])
    prefix = f"{algorithm}{PARAM_SEPARATOR}"
    return algorithm, {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


def portfolio_trials(
    algorithms: Sequence[str], registry: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Each family's strong configurations, interleaved so a small budget tries every family."""
    per_family = [
        [
            {
                **({"algorithm": name} if len(algorithms) > 1 else {}),
                **{f"{name}{PARAM_SEPARATOR}{k}": v for k, v in config.items()},
            }
            for config in registry[name].get("portfolio") or [{}]
        ]
        for name in algorithms
    ]
    return [config for group in zip_longest(*per_family) for config in group if config]


class TrialLogger:
    """One line per trial, and each trial as a nested MLflow run of the kedro-mlflow run."""

    def __init__(self, metric: str, n_trials: int, mlflow_parent: Any | None) -> None:
        self.metric = metric
        self.n_trials = n_trials
        self.parent = mlflow_parent

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counted = len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
        algorithm = trial.params.get("algorithm") or trial.user_attrs.get("algorithm", "")
        duration = trial.duration.total_seconds() if trial.duration else 0.0
        if trial.state == TrialState.COMPLETE:
            best = study.best_trial
            outcome = (
                f"{self.metric}={trial.value:.5g} (best {best.value:.5g}, trial {best.number})"
            )
        elif trial.state == TrialState.PRUNED:
            outcome = "pruned"
        else:
            outcome = f"failed: {trial.user_attrs.get('error', 'see MLflow')}"
        logger.info(
            "Trial %d [%d/%d] %s %s in %.1fs",
            trial.number,
            counted,
            self.n_trials,
            algorithm,
            outcome,
            duration,
        )
        if self.parent is not None:
            log_trial_run(self.parent, trial, self.metric)


def log_trial_run(parent: Any, trial: optuna.trial.FrozenTrial, metric: str) -> None:
    """A child run with params, fold scores and duration, written in one batch."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient()
    run = client.create_run(
        parent.info.experiment_id,
        run_name=f"trial_{trial.number}",
        tags={"mlflow.parentRunId": parent.info.run_id, "optuna.trial": str(trial.number)},
    )
    now = int(time.time() * 1000)
    values = {
        f"fold_{metric}": trial.user_attrs.get("fold_scores", []),
        "duration_s": [trial.duration.total_seconds() if trial.duration else 0.0],
    }
    if trial.value is not None:
        values[f"cv_{metric}"] = [trial.value]
    metrics = [
        Metric(name, float(value), now, step)
        for name, series in values.items()
        for step, value in enumerate(series)
        if value is not None and math.isfinite(value)
    ]
    params = [Param(k, str(v)[:6000]) for k, v in trial.params.items()]
    tags = [RunTag("optuna.state", trial.state.name)]
    if "worker" in trial.user_attrs:
        tags.append(RunTag("optuna.worker", trial.user_attrs["worker"]))
    client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
    status = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}.get(
        trial.state, "FAILED"
    )
    client.set_terminated(run.info.run_id, status=status)


class SearchBudget:
    """The search's share of `tuning.timeout`: the search stops early enough to leave time for
    the final fits (evaluation model and refit on all rows), estimated as `final_fit_factor`
    times the best trial's mean fold fit, so the whole run, not just the search, keeps to the
    budget on big tables. `deadline()` is a time.monotonic() value."""

    def __init__(self, timeout: float | None, final_fit_factor: float) -> None:
        self.end = time.monotonic() + timeout if timeout else None
        self.final_fit_factor = final_fit_factor
        self.reserve_s = 0.0

    def deadline(self) -> float | None:
        return None if self.end is None else self.end - self.reserve_s

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """An Optuna callback: update the reserve from the best trial, stop when time is up."""
        if self.end is None:
            return
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if complete:
            best = study.best_trial
            self.reserve_s = self.final_fit_factor * float(best.user_attrs.get("fold_fit_s", 0))
        if complete and time.monotonic() >= self.deadline():
            logger.info(
                "Search stopped with %.0fs of tuning.timeout left for the final fits.",
                max(self.end - time.monotonic(), 0.0),
            )
            study.stop()


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
) -> Callable[[optuna.Trial], float]:
    """The CV objective. Once some trial has completed, a trial stops before a batch of folds
    that would end past the budget's deadline (judged by its previous batch), so the timeout
    bounds the search's time, not just the start of its last trial. With `fold_jobs` > 1,
    folds are fit side by side, one thread each (OpenMP limited to one thread): the result does
    not depend on the order they finish in, and single-threaded models never wait on each
    other, where multi-threaded boosting on a busy or small machine spins at every round."""
    metric = get_metric(configuration["metric"], task)
    folds = cv_splits(configuration["cv"], X, y)
    algorithms = configuration["algorithms"]
    if out_of_fold is not None:
        out_of_fold.covered = np.unique(np.concatenate([rows for _, rows in folds]))

    def fit_and_predict(
        pipeline: Any, fit_rows: np.ndarray, score_rows: np.ndarray
    ) -> tuple[Any, float]:
        started = time.perf_counter()
        model = clone(pipeline).fit(X.iloc[fit_rows], y.iloc[fit_rows])
        return predict_output(model, X.iloc[score_rows], task), time.perf_counter() - started

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        algorithm, params = suggest(trial, algorithms, configuration["search_space"])
        trial.set_user_attr("algorithm", algorithm)
        pipeline = pipeline_from_configuration(
            configuration, algorithm, params, task["type"], feature_types
        )
        scores: list[float] = []
        fold_seconds: list[float] = []
        batch_wall = 0.0
        oof: np.ndarray | None = None
        deadline = budget.deadline() if budget is not None else None
        try:
            for start in range(0, len(folds), fold_jobs):
                if start and _past_deadline(trial, deadline, batch_wall):
                    trial.set_user_attr("stopped", "tuning.timeout reached")
                    raise optuna.TrialPruned()
                batch = folds[start : start + fold_jobs]
                batch_started = time.monotonic()
                with warnings.catch_warnings(), ThreadPoolExecutor(len(batch)) as pool:
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    results = list(pool.map(lambda f, p=pipeline: fit_and_predict(p, *f), batch))
                batch_wall = time.monotonic() - batch_started
                fold_seconds += [seconds for _, seconds in results]
                outputs = [output for output, _ in results]
                for (_, score_rows), output in zip(batch, outputs, strict=True):
                    if oof is None:
                        oof = np.zeros((len(X), *output.shape[1:]))
                    oof[score_rows] = output
                    scores.append(score_output(output, y.iloc[score_rows], metric.name, task))
                trial.set_user_attr("fold_scores", scores)
                trial.set_user_attr("fold_fit_s", float(np.mean(fold_seconds)))
                trial.report(float(np.mean(scores)), len(scores) - 1)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        except (optuna.TrialPruned, ConfigurationError):
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            return float("nan")
        trial.set_user_attr("cv_std", float(np.std(scores)))
        value = float(np.mean(scores))
        if out_of_fold is not None and oof is not None and np.isfinite(value):
            out_of_fold.add(trial.number, value, oof)
        return value

    return objective


def search(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    settings: Mapping[str, Any],
    mlflow_parent: Any | None = None,
) -> tuple[optuna.Study, dict[str, Any]]:
    """The whole search: the study named by the job's fingerprint (unless tuning.study_name
    names it), filled up to its budget, summarized, with the ensemble of its best trials."""
    all_rows = len(X)
    X, y = sample_for_search(
        X, y, settings.get("sample_rows"), task, configuration["cv"], configuration["seed"]
    )
    if len(X) < all_rows:
        logger.info(
            "Search on %d of %d rows (tuning.sample_rows); the final model is fit on all of them.",
            len(X),
            all_rows,
        )
    study_name = settings.get("study_name") or study_name_for(
        data=data_fingerprint(pd.concat([X, y], axis=1)),
        target=y.name,
        task=task["type"],
        metric=configuration["metric"],
        space=configuration["search_space"],
        cv=configuration["cv"],
    )
    ensemble_settings = settings.get("ensemble") or {}
    out_of_fold = (
        OutOfFoldPredictions(
            keep=int(ensemble_settings.get("max_candidates", 20)),
            greater_is_better=get_metric(configuration["metric"], task).greater_is_better,
        )
        if ensemble_settings.get("enabled", True)
        else None
    )
    study = run_study(
        X,
        y,
        task=task,
        feature_types=feature_types,
        configuration=configuration,
        settings=settings,
        study_name=study_name,
        mlflow_parent=mlflow_parent,
        out_of_fold=out_of_fold,
    )
    summary = summarize_study(study, configuration["algorithms"], configuration["metric"], settings)
    if out_of_fold is not None:
        summary["ensemble"] = ensemble_of_best_trials(
            study,
            out_of_fold,
            y,
            task,
            configuration,
            int(ensemble_settings.get("max_size", 25)),
        )
    return study, summary


def sample_for_search(
    X: pd.DataFrame,
    y: pd.Series,
    rows: int | None,
    task: Mapping[str, Any],
    cv: Mapping[str, Any],
    seed: int,
) -> tuple[pd.DataFrame, pd.Series]:
    """At most `rows` rows for the search on a big table (the final model is still refit on
    every row): stratified by class for classification, the latest rows for time-ordered folds,
    else at random. The study's fingerprint is the sample's, so it differs from a full search."""
    if not rows or len(X) <= int(rows):
        return X, y
    rows = int(rows)
    positions = np.arange(len(X))
    if cv.get("strategy") == "timeseries":
        keep = positions[-rows:]
    else:
        stratify = y if task["type"] == "classification" and y.value_counts().min() >= 2 else None
        keep, _ = train_test_split(positions, train_size=rows, stratify=stratify, random_state=seed)
        keep = np.sort(keep)
    return X.iloc[keep].reset_index(drop=True), y.iloc[keep].reset_index(drop=True)


def sampler_seed(configuration: Mapping[str, Any], settings: Mapping[str, Any]) -> int:
    """The model's seed, so a run is repeatable; with `tuning.worker_seeds`, offset by the process
    id, since workers sharing a study with one seed would sample the same points."""
    offset = os.getpid() if settings.get("worker_seeds", False) else 0
    return (int(configuration["seed"]) + offset) % 2**32


def _has_complete(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _past_deadline(trial: optuna.Trial, deadline: float | None, next_seconds: float) -> bool:
    """The next `next_seconds` would end past the deadline, and the study already has a model
    to show for it."""
    return (
        deadline is not None
        and time.monotonic() + next_seconds > deadline
        and _has_complete(trial.study)
    )


def run_study(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    settings: Mapping[str, Any],
    study_name: str,
    mlflow_parent: Any | None = None,
    out_of_fold: OutOfFoldPredictions | None = None,
) -> optuna.Study:
    """Create or resume the study and fill it up to `n_trials` finished trials in total."""
    metric = get_metric(configuration["metric"], task)
    direction = "maximize" if metric.greater_is_better else "minimize"
    enabled = settings.get("enabled", True)
    n_trials = int(settings.get("n_trials", 50)) if enabled else 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=make_storage(settings) if enabled else None,
        study_name=study_name,
        direction=direction,
        sampler=make_sampler(settings.get("sampler", "tpe"), sampler_seed(configuration, settings)),
        pruner=make_pruner(settings.get("pruner", "median")),
        load_if_exists=True,
    )
    done = len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
    if not study.trials and settings.get("enqueue_portfolio", True):
        for params in portfolio_trials(configuration["algorithms"], configuration["registry"])[
            :n_trials
        ]:
            study.enqueue_trial(params, skip_if_exists=True)
    remaining = n_trials - done
    if done:
        logger.info(
            "Resuming study '%s': %d of %d trials already done.", study_name, done, n_trials
        )
    if remaining > 0 and not settings.get("continue_search", True) and _has_complete(study):
        logger.info(
            "tuning.continue_search is false: the best of the study's %d trials is used as is.",
            done,
        )
        remaining = 0
    if remaining > 0:
        timeout = settings.get("timeout") if enabled else None
        budget = SearchBudget(
            float(timeout) if timeout else None, float(settings.get("final_fit_factor", 3.0))
        )
        fold_jobs = max(1, int(settings.get("fold_jobs", 1)))
        objective = make_objective(
            X,
            y,
            task=task,
            feature_types=feature_types,
            configuration=configuration,
            out_of_fold=out_of_fold,
            budget=budget,
            fold_jobs=fold_jobs,
        )
        with threadpool_limits(limits=1 if fold_jobs > 1 else None, user_api="openmp"):
            study.optimize(
                objective,
                n_trials=remaining,
                timeout=float(timeout) if timeout else None,
                callbacks=[
                    MaxTrialsCallback(n_trials, states=COUNTED_STATES),
                    TrialLogger(metric.name, n_trials, mlflow_parent),
                    budget,
                ],
                n_jobs=int(settings.get("n_jobs", 1)),
            )
    if not _has_complete(study):
        errors = {t.user_attrs.get("error") for t in study.trials if t.user_attrs.get("error")}
        raise ModelTrainerError(
            f"No trial of study '{study_name}' completed. Errors: {sorted(errors) or 'none'}.",
            "Check the algorithms' search spaces in conf, raise tuning.timeout, or choose "
            "another algorithm.",
        )
    return study


def summarize_study(
    study: optuna.Study, algorithms: Sequence[str], metric: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    best = study.best_trial
    algorithm, params = split_params(best.params, algorithms)
    states = [t.state for t in study.trials]
    fold_scores = best.user_attrs.get("fold_scores", [])
    return {
        "study_name": study.study_name,
        "storage": redact(settings["storage"])
        if settings.get("storage") and settings.get("enabled", True)
        else "in-memory",
        "metric": metric,
        "direction": study.direction.name.lower(),
        "n_trials": len(states),
        "n_complete": states.count(TrialState.COMPLETE),
        "n_pruned": states.count(TrialState.PRUNED),
        "n_failed": states.count(TrialState.FAIL),
        "best_trial": best.number,
        "best_value": best.value,
        "algorithm": algorithm,
        "best_params": params,
        "cross_validation": {
            "mean": float(np.mean(fold_scores)),
            "std": float(np.std(fold_scores)),
            "folds": len(fold_scores),
            "fold_scores": fold_scores,
        },
        "algorithms_tried": sorted(
            {
                t.params.get("algorithm") or t.user_attrs.get("algorithm", "")
                for t in study.get_trials(deepcopy=False, states=(*COUNTED_STATES, TrialState.FAIL))
            }
        ),
    }


def ensemble_of_best_trials(
    study: optuna.Study,
    out_of_fold: OutOfFoldPredictions,
    y: pd.Series,
    task: Mapping[str, Any],
    configuration: Mapping[str, Any],
    max_size: int,
) -> dict[str, Any] | None:
    """Members with weights when the ensemble's CV score beats the best trial's, else None."""
    metric = configuration["metric"]
    selection = select_ensemble(out_of_fold, y, metric, task, max_size)
    if len(selection["weights"]) < 2 or not is_better(
        get_metric(metric, task), selection["score"], study.best_value
    ):
        return None
    trials = {t.number: t for t in study.trials}
    members = []
    for number, weight in sorted(selection["weights"].items(), key=lambda item: -item[1]):
        algorithm, params = split_params(trials[number].params, configuration["algorithms"])
        members.append(
            {"trial": number, "algorithm": algorithm, "params": params, "weight": weight}
        )
    logger.info(
        "Ensemble of %d trials (%s): CV %s %.5g against %.5g for the best trial.",
        len(members),
        ", ".join(f"{m['algorithm']} {m['weight']:.2f}" for m in members),
        metric,
        selection["score"],
        study.best_value,
    )
    return {"members": members, "cv_score": selection["score"]}


def trials_table(study: optuna.Study) -> pd.DataFrame:
    table = study.trials_dataframe(attrs=("number", "value", "state", "duration", "params"))
    table["algorithm"] = [
        t.params.get("algorithm") or t.user_attrs.get("algorithm") for t in study.trials
    ]
    table["duration"] = table["duration"].dt.total_seconds()
    return table


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Empty when too few trials completed to say anything."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3:
        return {}
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError) as exc:
        logger.info("Parameter importance not computed: %s", exc)
        return {}
