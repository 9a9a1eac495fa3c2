"""Hyperparameter search: a stored, resumable Optuna study over a conditional space of families.

Each trial picks an algorithm, then that algorithm's parameters (named `<algorithm>__<param>`),
and is scored by cross-validation on folds fixed for the whole study. Strong configurations
from each family's portfolio are enqueued before the sampler takes over.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import pickle
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
from optuna.study import MaxTrialsCallback, StudyDirection
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sqlalchemy.exc import IntegrityError, ProgrammingError
from threadpoolctl import threadpool_limits

from model_trainer.errors import ConfigurationError, ModelTrainerError
from model_trainer.models.calibration import fit_temperature, held_out_temperature
from model_trainer.models.ensemble import (
    OutOfFoldPredictions,
    held_out_choice,
    predict_output,
    score_output,
    select_ensemble,
)
from model_trainer.models.estimators import pipeline_from_configuration
from model_trainer.models.metrics import get_metric, is_better
from model_trainer.search import study_predictions
from model_trainer.search.stale_trials import grace_seconds, settle_stale_trials
from model_trainer.table.splitting import cv_splits
from model_trainer.tasks.ranking import sample_groups

logger = logging.getLogger(__name__)

PARAM_SEPARATOR = "__"
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


SAMPLERS = ("auto", "tpe", "random", "grid", "cmaes", "nsga2")
# Objectives besides the metric, all minimised: prediction time per row of a fold's score rows in
# microseconds, and the size of the fitted pipeline pickled, in bytes.
EXTRA_OBJECTIVES = ("latency", "model_size")


CALIBRATIONS = ("auto", "temperature", "none")
BAGGED_TASKS = ("classification", "regression")


def make_sampler(
    name: str,
    seed: int,
    *,
    grid: Mapping[str, list] | None = None,
    population_size: int = 50,
) -> optuna.samplers.BaseSampler:
    """A resolved sampler name (not `auto`: see `choose_sampler`) -> the Optuna sampler."""
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(
            multivariate=True, group=True, seed=seed, warn_independent_sampling=False
        ),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "grid": lambda: optuna.samplers.GridSampler(dict(grid or {}), seed=seed),
        "cmaes": lambda: _cmaes_sampler(seed),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed),
    }
    if name not in samplers:
        raise _unknown_sampler(name)
    return samplers[name]()


def _unknown_sampler(name: str) -> ConfigurationError:
    return ConfigurationError(
        f"Unknown tuning.sampler '{name}'.", f"Use one of: {', '.join(SAMPLERS)}."
    )


def _cmaes_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's CMA-ES needs the separate `cmaes` package, which is not a dependency here."""
    if importlib.util.find_spec("cmaes") is None:
        raise ConfigurationError(
            "tuning.sampler is cmaes, but the Python package 'cmaes' that Optuna's CmaEsSampler "
            "needs is not installed.",
            "Add the package (uv add cmaes), or use tuning.sampler: tpe, which also handles "
            "continuous spaces.",
        )
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def objectives_of(settings: Mapping[str, Any], metric: str) -> list[str]:
    """`tuning.objectives` as names, the model's metric first: a list, or a string such as
    `metric+latency` (`--params` splits lists on commas). `metric` stands for the metric's name."""
    value = settings.get("objectives") or ["metric"]
    given = value.split("+") if isinstance(value, str) else list(value)
    names = [
        metric if str(name).strip() in ("metric", metric) else str(name).strip() for name in given
    ]
    if (
        names[0] != metric
        or len(set(names)) != len(names)
        or any(name not in EXTRA_OBJECTIVES for name in names[1:])
    ):
        raise ConfigurationError(
            f"tuning.objectives is {value!r}.",
            f"Start with metric (here {metric}), then any of {', '.join(EXTRA_OBJECTIVES)} once "
            "each, e.g. [metric, latency] or metric+model_size.",
        )
    return names


def grid_space(
    algorithms: Sequence[str], spaces: Mapping[str, Mapping[str, Any]], max_points: int
) -> dict[str, list] | None:
    """The grid of a small discrete space, named as `suggest` names parameters, or None. Only a
    single family qualifies: the `algorithm` choice makes the space conditional, and a grid over
    every family's parameters at once would repeat each family's points."""
    if len(algorithms) != 1:
        return None
    algorithm = algorithms[0]
    grid: dict[str, list] = {}
    for name, spec in (spaces.get(algorithm) or {}).items():
        if spec.get("type") == "categorical":
            values = list(spec["choices"])
        elif spec.get("type") == "int" and not spec.get("log", False):
            if spec["high"] - spec["low"] >= max_points:
                return None
            values = list(range(spec["low"], spec["high"] + 1))
        else:
            return None
        grid[f"{algorithm}{PARAM_SEPARATOR}{name}"] = values
    return grid if math.prod(len(v) for v in grid.values()) <= max_points else None


def choose_sampler(
    settings: Mapping[str, Any], configuration: Mapping[str, Any], objectives: Sequence[str]
) -> tuple[str, dict[str, list] | None]:
    """`tuning.sampler` resolved, with the grid when it is `grid`. `auto`: NSGA-II for several
    objectives; grid when the space is small and discrete (`grid_space`) and `n_trials` covers
    it; else TPE. Auto never picks CMA-ES: it needs the `cmaes` package and an all-numeric
    space, where multivariate TPE does as well at these budgets."""
    name = settings.get("sampler", "auto")
    if name not in SAMPLERS:
        raise _unknown_sampler(name)
    n_trials = int(settings.get("n_trials", 50))
    max_points = int(settings.get("grid_max_points", 64))
    grid = grid_space(configuration["algorithms"], configuration["search_space"], max_points)
    several = len(objectives) > 1
    if name == "auto":
        if several:
            return "nsga2", None
        if grid is not None and n_trials >= math.prod(len(v) for v in grid.values()):
            return "grid", grid
        return "tpe", None
    if name == "grid" and grid is None:
        raise ConfigurationError(
            "tuning.sampler is grid, but the search space is not a small discrete one: a "
            f"single family whose parameters are categorical or int (not log), with at most "
            f"tuning.grid_max_points={max_points} points in all.",
            "Use tuning.sampler: auto or tpe, or set model.algorithm to one family with such a "
            "search space (or raise tuning.grid_max_points).",
        )
    if name == "nsga2" and not several:
        raise ConfigurationError(
            "tuning.sampler is nsga2, which searches for several objectives, but "
            "tuning.objectives has only the metric.",
            "Set tuning.objectives: [metric, latency] (or model_size), or use tuning.sampler: "
            "auto or tpe.",
        )
    if name == "cmaes" and several:
        raise ConfigurationError(
            "tuning.sampler is cmaes, which optimises a single objective, but tuning.objectives "
            f"has {len(objectives)}.",
            "Use tuning.sampler: nsga2 (or auto) for several objectives.",
        )
    return name, grid if name == "grid" else None


def chosen_trial(study: optuna.Study, tolerance: float) -> optuna.trial.FrozenTrial:
    """The trial the final model is built from. One objective: the best trial. Several: on the
    Pareto front, the trials whose metric is within `tolerance` (relative, e.g. 0.01 = 1%) of the
    front's best metric, and of those the one lowest in the other objectives (in their order),
    then the earliest."""
    if len(study.directions) == 1:
        return study.best_trial
    front = study.best_trials
    sign = 1.0 if study.directions[0] == StudyDirection.MAXIMIZE else -1.0
    best = max(sign * t.values[0] for t in front)
    close = [t for t in front if sign * t.values[0] >= best - tolerance * abs(best)]
    return min(close, key=lambda t: (*t.values[1:], t.number))


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

    def __init__(
        self,
        metric: str,
        n_trials: int,
        mlflow_parent: Any | None,
        objectives: Sequence[str] = (),
        budget: SearchBudget | None = None,
    ) -> None:
        self.metric = metric
        self.n_trials = n_trials
        self.parent = mlflow_parent
        self.objectives = list(objectives) or [metric]
        self.budget = budget
        self.started = time.monotonic()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counted = len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
        algorithm = trial.params.get("algorithm") or trial.user_attrs.get("algorithm", "")
        duration = trial.duration.total_seconds() if trial.duration else 0.0
        if trial.state == TrialState.COMPLETE and len(self.objectives) > 1:
            others = " ".join(
                f"{name}={value:.4g}"
                for name, value in zip(self.objectives[1:], trial.values[1:], strict=True)
            )
            outcome = (
                f"{self.metric}={trial.values[0]:.5g} {others} "
                f"(Pareto front: {len(study.best_trials)} trials)"
            )
        elif trial.state == TrialState.COMPLETE:
            best = study.best_trial
            outcome = (
                f"{self.metric}={trial.value:.5g} (best {best.value:.5g}, trial {best.number})"
            )
        elif trial.state == TrialState.PRUNED:
            outcome = "pruned"
        else:
            outcome = f"failed: {trial.user_attrs.get('error', 'see MLflow')}"
        logger.info(
            "Trial %d [%d/%d] %s %s in %.1fs; %s",
            trial.number,
            counted,
            self.n_trials,
            algorithm,
            outcome,
            duration,
            self._clock(),
        )
        if self.parent is not None:
            log_trial_run(self.parent, trial, self.objectives)

    def _clock(self) -> str:
        """How far the search is: its elapsed time, and what is left of tuning.timeout."""
        now = time.monotonic()
        elapsed = f"{now - self.started:.0f} s elapsed"
        if self.budget is None or self.budget.end is None:
            return elapsed
        return f"{elapsed}, {max(self.budget.end - now, 0.0):.0f} s of the budget left"


def describe_study(
    study: optuna.Study,
    objectives: Sequence[str],
    X: pd.DataFrame,
    y: pd.Series,
    task: Mapping[str, Any],
    configuration: Mapping[str, Any],
) -> None:
    """What the study optimises and what it was run on, where optuna-dashboard (which reads
    the same storage) and a later reader of the study find them: its metric names and user
    attributes for the target, task, rows, features and folds."""
    study.set_metric_names(list(objectives))
    for key, value in {
        "target": str(y.name),
        "task": task["type"],
        "metric": configuration["metric"],
        "rows": len(X),
        "features": [str(c) for c in X.columns][:200],
        "cv": f"{configuration['cv']['folds']}-fold {configuration['cv']['strategy']}",
    }.items():
        study.set_user_attr(key, value)


def log_trial_run(parent: Any, trial: optuna.trial.FrozenTrial, objectives: Sequence[str]) -> None:
    """A child run with params, fold scores, duration and the objectives' values (the metric as
    `cv_<metric>`), written in one batch."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient()
    run = client.create_run(
        parent.info.experiment_id,
        run_name=f"trial_{trial.number}",
        tags={"mlflow.parentRunId": parent.info.run_id, "optuna.trial": str(trial.number)},
    )
    now = int(time.time() * 1000)
    metric, *others = objectives
    values = {
        f"fold_{metric}": trial.user_attrs.get("fold_scores", []),
        "duration_s": [trial.duration.total_seconds() if trial.duration else 0.0],
    }
    if trial.values is not None:
        values[f"cv_{metric}"] = [trial.values[0]]
        values.update({name: [value] for name, value in zip(others, trial.values[1:], strict=True)})
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

    def update_reserve(self, study: optuna.Study) -> bool:
        """The reserve from the best trials; whether the study has a complete trial."""
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if complete:
            # The slowest fit on the Pareto front: any of them may be the final model.
            fold_fit_s = max(float(t.user_attrs.get("fold_fit_s", 0)) for t in study.best_trials)
            self.reserve_s = self.final_fit_factor * fold_fit_s
        return bool(complete)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """An Optuna callback: update the reserve from the best trial, stop when time is up."""
        if self.end is None:
            return
        complete = self.update_reserve(study)
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


def search(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    settings: Mapping[str, Any],
    mlflow_parent: Any | None = None,
    calibration: str = "none",
    bagging: Mapping[str, Any] | None = None,
) -> tuple[optuna.Study, dict[str, Any]]:
    """The whole search: the study named by the job's fingerprint (unless tuning.study_name
    names it), filled up to its budget, summarized, with the ensemble of its best trials, the
    temperature its probabilities are scaled by (`calibration`: training.calibration) and the
    k-fold bagging of the final model (`bagging`: training.bagging)."""
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
    objectives = objectives_of(settings, configuration["metric"])
    # A study's directions are fixed when it is created: several objectives make another study.
    several = {"objectives": objectives} if len(objectives) > 1 else {}
    study_name = settings.get("study_name") or study_name_for(
        data=data_fingerprint(pd.concat([X, y], axis=1)),
        target=y.name,
        task=task["type"],
        metric=configuration["metric"],
        space=configuration["search_space"],
        cv=configuration["cv"],
        # how the rows reach the models: a trial scored under other encodings is another trial
        preprocessing={
            key: configuration.get(key) for key in ("encoding", "imbalance", "time_series")
        },
        # families given many-level columns as categories rather than codes
        native_categorical=sorted(
            name
            for name in configuration["algorithms"]
            if configuration["registry"][name].get("native_categorical")
        ),
        # the features the models get: a column the leak audit drops makes another study
        features=sorted(feature_types["columns"]),
        **several,
    )
    ensemble_settings = settings.get("ensemble") or {}
    ensemble = ensemble_settings.get("enabled", True)
    if several and ensemble:
        logger.info(
            "Ensemble of the best trials skipped: it optimises %s alone, and the study has "
            "several objectives (%s).",
            configuration["metric"],
            ", ".join(objectives),
        )
    if task["type"] == "ranking" and ensemble:
        logger.info(
            "Ensemble of the best trials skipped: rankers' scores are on scales of their own, "
            "so their average is not a ranking of either."
        )
        ensemble = False
    out_of_fold = (
        OutOfFoldPredictions(
            keep=int(ensemble_settings.get("max_candidates", 20)),
            greater_is_better=get_metric(configuration["metric"], task).greater_is_better,
        )
        if ensemble and not several
        else None
    )
    bagging = bagging or {}
    check_final_model_settings(calibration, bagging)
    refusal = bagging_refusal(bagging, task, configuration, objectives, y)
    seconds = search_seconds(settings) if settings.get("enabled", True) else None
    end = time.monotonic() + seconds if seconds else None
    # a trial's fold fits are timed on the search's rows; the bag fits all of them
    rows_scale = all_rows / len(X)
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
        extra_reserve_factor=0.0 if refusal else bag_fits(bagging) * rows_scale,
    )
    summary = summarize_study(study, configuration, settings)
    # out-of-fold predictions hold the last repeat of repeated k-fold: its folds
    distinct = cv_splits(configuration["cv"], X, y)[-int(configuration["cv"]["folds"]) :]
    if out_of_fold is not None:
        summary["ensemble"] = ensemble_of_best_trials(
            study,
            out_of_fold,
            y,
            task,
            configuration,
            int(ensemble_settings.get("max_size", 25)),
            [rows for _, rows in distinct],
        )
    # a cheap bag is worth a few seconds past the budget (a last slow trial may have used it)
    grace = float(bagging.get("max_overrun", 0.0)) * float(settings.get("timeout") or 0.0)
    left = None if end is None else max(end - time.monotonic(), 0.0) + grace
    summary["bagging"] = chosen_bagging(bagging, refusal, summary, study, left, rows_scale)
    if summary["bagging"].get("replaces_ensemble"):
        summary["ensemble"] = None
    summary["calibration"] = chosen_calibration(
        calibration, summary, out_of_fold, y, task, configuration, [rows for _, rows in distinct]
    )
    return study, summary


def check_final_model_settings(calibration: str, bagging: Mapping[str, Any]) -> None:
    """Before the search, not after it: a typo must not cost the budget."""
    if calibration not in CALIBRATIONS:
        raise ConfigurationError(
            f"training.calibration is '{calibration}'.", f"Use one of {', '.join(CALIBRATIONS)}."
        )
    for key, kind, low in (("folds", int, 1), ("jobs", int, 1), ("max_overrun", float, 0)):
        value = bagging.get(key, low)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise ConfigurationError(
                f"training.bagging.{key} is {value!r}.",
                f"Give {'an integer' if kind is int else 'a number'} of at least {low}.",
            )


def bag_fits(bagging: Mapping[str, Any]) -> float:
    """A bag's cost in fold fits of the search: k fits for the evaluation model and k on 10%
    more rows for the refit on every row, `jobs` at a time."""
    return 2.1 * int(bagging.get("folds", 1)) / max(1, int(bagging.get("jobs", 1)))


def bagging_refusal(
    bagging: Mapping[str, Any],
    task: Mapping[str, Any],
    configuration: Mapping[str, Any],
    objectives: Sequence[str],
    y: pd.Series,
) -> str | None:
    """Why the final model is not bagged whatever the time left (known before the search, which
    then keeps no time for a bag), or None."""
    folds = int(bagging.get("folds", 1))
    smallest_class = int(y.value_counts().min()) if task["type"] == "classification" else folds
    return (
        "training.bagging.folds is below 2" if folds < 2
        else f"a {task['type']} model is not bagged" if task["type"] not in BAGGED_TASKS
        else f"the search weighed {' and '.join(objectives[1:])} too: a bag is k times slower "
        "and bigger" if len(objectives) > 1
        else "the rows are ordered in time or grouped: a bag's folds would cut across them"
        if configuration["cv"].get("strategy") in ("timeseries", "group")
        else f"a class has {smallest_class} rows, fewer than the {folds} folds"
        if smallest_class < folds
        else None
    )  # fmt: skip


def chosen_bagging(
    bagging: Mapping[str, Any],
    refusal: str | None,
    summary: Mapping[str, Any],
    study: optuna.Study,
    seconds_left: float | None,
    rows_scale: float = 1.0,
) -> dict[str, Any]:
    """training.bagging.folds k-fold bagging of the final model (`FoldBag`) unless `refusal`
    says why not or the time left of tuning.timeout does not cover the fits of the model's
    trials (their fold fit times, scaled from the search's rows to all of them). When an
    ensemble's bag does not fit but the best single trial's does, that bag replaces the
    ensemble (`replaces_ensemble`): where both were tried on the same studies, a bag lowered
    the error more than an ensemble did (leaf's log loss 0.0084 -> 0.0025,
    benchmarks/results/bag-or-ensemble-60s.md)."""
    folds = int(bagging.get("folds", 1))
    ensemble = [m["trial"] for m in (summary.get("ensemble") or {}).get("members", [])]
    trials = {t.number: t for t in study.trials}

    def seconds_for(members: Sequence[int]) -> float:
        fold_fit_s = sum(float(trials[n].user_attrs.get("fold_fit_s", 0.0)) for n in members)
        return bag_fits(bagging) * fold_fit_s * rows_scale

    needed = seconds_for(ensemble or [summary["best_trial"]])
    short = seconds_left is not None and needed > seconds_left
    single = seconds_for([summary["best_trial"]])
    if not refusal and short and ensemble and single <= seconds_left:
        logger.info(
            "The final model: a bag of %d fits of the best trial instead of the ensemble, whose "
            "bag (about %.0f s) does not fit in the %.0f s left.",
            folds, needed, seconds_left,
        )  # fmt: skip
        return {
            "folds": folds,
            "jobs": int(bagging.get("jobs", 1)),
            "replaces_ensemble": True,
            "reason": f"the ensemble's bag (about {needed:.0f} s) does not fit in the "
            f"{seconds_left:.0f} s left of tuning.timeout, the best trial's (about {single:.0f} "
            "s) does, and a bag lowers the error more than an ensemble",
        }
    reason = refusal or (
        f"the {seconds_left:.0f} s left of tuning.timeout (with training.bagging.max_overrun) "
        f"do not cover it (about {needed:.0f} s)"
        if short
        else None
    )
    if reason:
        return {"folds": 1, "reason": reason}
    logger.info("The final model: a bag of %d fits, each without 1/%d of the rows.", folds, folds)
    return {
        "folds": folds,
        "jobs": int(bagging.get("jobs", 1)),
        "reason": f"averaging {folds} fits lowers the variance of one; about {needed:.0f} s",
    }


def chosen_calibration(
    setting: str,
    summary: Mapping[str, Any],
    out_of_fold: OutOfFoldPredictions | None,
    y: pd.Series,
    task: Mapping[str, Any],
    configuration: Mapping[str, Any],
    held_out_rows: Sequence[np.ndarray],
) -> dict[str, Any]:
    """training.calibration: `temperature` scales the chosen model's probabilities by the T
    that fits its out-of-fold predictions best; `auto` does so for a log_loss search whose model
    is not bagged when, fitted on the other folds, it lowers the log loss of each held-out fold
    on average; else none."""
    metric = configuration["metric"]
    bag = int((summary.get("bagging") or {}).get("folds", 1))
    ensemble = summary.get("ensemble")
    kept = out_of_fold.outputs if out_of_fold is not None else {}
    reason = (
        "training.calibration is none" if setting == "none"
        else "not a classification" if task["type"] != "classification"
        else f"auto calibrates a log_loss search; this one optimised {metric}"
        if setting == "auto" and metric != "log_loss"
        else f"the model is a bag of {bag} fits, whose averaged probabilities are softer than "
        "the out-of-fold ones a temperature would be fitted on"
        if setting == "auto" and bag > 1
        else "fewer than two folds to fit it on and check it on" if len(held_out_rows) < 2
        else "no out-of-fold predictions of the chosen model were kept to fit it on"
        if not ensemble and summary["best_trial"] not in kept
        else None
    )  # fmt: skip
    if reason:
        return {"method": "none", "reason": reason}
    oof = (
        sum(m["weight"] * kept[m["trial"]] for m in ensemble["members"])
        if ensemble
        else kept[summary["best_trial"]]
    )
    classes = list(task["classes"])
    held_out = held_out_temperature(oof, y, classes, held_out_rows)
    before, after = (float(np.mean(held_out[k])) for k in ("uncalibrated", "calibrated"))
    figures = {"held_out_log_loss": {"uncalibrated": before, "calibrated": after}}
    if setting == "auto" and after >= before:
        return {
            "method": "none",
            "reason": f"it did not lower the held-out log loss ({after:.5g}, not {before:.5g})",
            **figures,
        }
    covered = out_of_fold.covered
    temperature = fit_temperature(oof[covered], y.iloc[covered], classes)
    logger.info(
        "Probabilities scaled by temperature %.3g: held-out log loss %.5g instead of %.5g.",
        temperature,
        after,
        before,
    )
    return {"method": "temperature", "temperature": temperature, **figures}


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
    whole groups for ranking, else at random. The study's fingerprint is the sample's, so it
    differs from a full search."""
    if not rows or len(X) <= int(rows):
        return X, y
    rows = int(rows)
    positions = np.arange(len(X))
    if cv.get("strategy") == "timeseries":
        keep = positions[-rows:]
    elif task["type"] == "ranking":
        keep = sample_groups(X[task["group_column"]], rows, seed)
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


def search_seconds(settings: Mapping[str, Any]) -> float | None:
    """What is left of `tuning.timeout` for the search and final fits: it counts from
    `tuning.started_at` (`kedro task` sets its start) or else from now. At least a second: one
    trial always runs."""
    left = seconds_left(settings)
    if left is None:
        return None
    if left <= 0:
        timeout = float(settings["timeout"])
        logger.warning(
            "%.0f s of the %.0f s budget (tuning.timeout) were spent before the search: one trial "
            "runs.",
            timeout - left,
            timeout,
        )
    return max(left, 1.0)


def seconds_left(settings: Mapping[str, Any]) -> float | None:
    """`tuning.timeout` less the time since `tuning.started_at` (or none, if not started);
    None without a timeout."""
    timeout = settings.get("timeout")
    if not timeout:
        return None
    started = settings.get("started_at")
    return float(timeout) - (time.time() - float(started) if started else 0.0)


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
    extra_reserve_factor: float = 0.0,
) -> optuna.Study:
    """Create or resume the study and fill it up to `n_trials` finished trials in total. The
    search leaves `tuning.final_fit_factor` + `extra_reserve_factor` (bagging's fits) times
    the best trial's fold fit for the final fits."""
    metric = get_metric(configuration["metric"], task)
    objectives = objectives_of(settings, metric.name)
    directions = ["maximize" if metric.greater_is_better else "minimize"] + ["minimize"] * (
        len(objectives) - 1
    )
    enabled = settings.get("enabled", True)
    n_trials = int(settings.get("n_trials", 50)) if enabled else 1
    sampler_name, grid = choose_sampler(settings, configuration, objectives)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(settings) if enabled else None
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=directions,
        sampler=make_sampler(
            sampler_name,
            sampler_seed(configuration, settings),
            grid=grid,
            # At least three generations within the budget, at most NSGA-II's default 50.
            population_size=min(50, max(4, n_trials // 3)),
        ),
        pruner=make_pruner(settings.get("pruner", "median")),
        load_if_exists=True,
    )
    study.set_user_attr("sampler", sampler_name)
    describe_study(study, objectives, X, y, task, configuration)
    logger.info(
        "Search with the %s sampler (tuning.sampler: %s) for %s.",
        sampler_name,
        settings.get("sampler", "auto"),
        " and ".join(objectives),
    )
    if len(objectives) > 1 and settings.get("pruner", "median") != "none":
        logger.info("No pruning: Optuna prunes single-objective studies only.")
    if grid is not None and n_trials < math.prod(len(v) for v in grid.values()):
        logger.info(
            "The grid has %d points and tuning.n_trials is %d: a random part of it is searched.",
            math.prod(len(v) for v in grid.values()),
            n_trials,
        )
    settle_stale_trials(study, storage)  # a dead worker's trial: failed (and retried), not counted
    done = len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
    # The grid covers the space itself; enqueued points would repeat some of its points.
    if not study.trials and settings.get("enqueue_portfolio", True) and grid is None:
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

    final_fit_factor = float(settings.get("final_fit_factor", 3.0)) + extra_reserve_factor

    def optimize(trials: int) -> None:
        timeout = search_seconds(settings) if enabled else None
        budget = SearchBudget(timeout, final_fit_factor)
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
            objectives=objectives,
        )
        with threadpool_limits(limits=1 if fold_jobs > 1 else None, user_api="openmp"):
            study.optimize(
                objective,
                n_trials=trials,
                timeout=timeout,
                callbacks=[
                    MaxTrialsCallback(n_trials, states=COUNTED_STATES),
                    TrialLogger(metric.name, n_trials, mlflow_parent, objectives, budget),
                    budget,
                ],
                n_jobs=int(settings.get("n_jobs", 1)),
            )

    if remaining > 0:
        optimize(remaining)
    # Trials still running elsewhere get the grace period to finish or go stale, within what the
    # search may still spend (the final fits' reserve kept); stale ones are failed, and retried
    # while the trial and time budgets last.
    budget = SearchBudget(seconds_left(settings) if enabled else None, final_fit_factor)
    budget.update_reserve(study)
    deadline = budget.deadline()
    grace = grace_seconds(storage)
    wait = grace if deadline is None else min(grace, max(deadline - time.monotonic(), 0.0))
    if settle_stale_trials(study, storage, wait) and settings.get("continue_search", True):
        retries = n_trials - len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
        if retries > 0 and (deadline is None or time.monotonic() < deadline):
            optimize(retries)
    if out_of_fold is not None:
        # the trials of earlier runs and other workers are candidates for the ensemble too
        folds = [] if out_of_fold.covered is not None else cv_splits(configuration["cv"], X, y)
        study_predictions.restore(study, out_of_fold, len(X), folds)
    if not _has_complete(study):
        errors = {t.user_attrs.get("error") for t in study.trials if t.user_attrs.get("error")}
        raise ModelTrainerError(
            f"No trial of study '{study_name}' completed. Errors: {sorted(errors) or 'none'}.",
            "Check the algorithms' search spaces in conf, raise tuning.timeout, or choose "
            "another algorithm.",
        )
    return study


def summarize_study(
    study: optuna.Study, configuration: Mapping[str, Any], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The chosen trial (`chosen_trial`: the best one, or the Pareto rule's) as `best_*`. Its
    cross-validation counts `folds` fold scores: `distinct_folds` drawn `repeats` times."""
    algorithms, metric = configuration["algorithms"], configuration["metric"]
    objectives = objectives_of(settings, metric)
    best = chosen_trial(study, float(settings.get("pareto_tolerance", 0.01)))
    algorithm, params = split_params(best.params, algorithms)
    states = [t.state for t in study.trials]
    fold_scores = best.user_attrs.get("fold_scores", [])
    return {
        "study_name": study.study_name,
        "storage": redact(settings["storage"])
        if settings.get("storage") and settings.get("enabled", True)
        else "in-memory",
        "metric": metric,
        "direction": study.directions[0].name.lower(),
        "sampler": study.user_attrs.get("sampler", settings.get("sampler", "auto")),
        "objectives": objectives,
        "objective_values": dict(zip(objectives, best.values, strict=True)),
        "pareto_front": sorted(t.number for t in study.best_trials),
        "n_trials": len(states),
        "n_complete": states.count(TrialState.COMPLETE),
        "n_pruned": states.count(TrialState.PRUNED),
        "n_failed": states.count(TrialState.FAIL),
        "best_trial": best.number,
        "best_value": best.values[0],
        "algorithm": algorithm,
        "best_params": params,
        "cross_validation": {
            "mean": float(np.mean(fold_scores)),
            "std": float(np.std(fold_scores)),
            "folds": len(fold_scores),
            "distinct_folds": int(configuration["cv"]["folds"]),
            "repeats": int(configuration["cv"].get("repeats", 1)),
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
    held_out_rows: Sequence[np.ndarray],
) -> dict[str, Any] | None:
    """Members with weights when the ensemble beats the best single trial out of sample (each
    chosen on the other folds, scored on the held-out one: `held_out_choice`), else None.
    `fold_scores` and `cv_score` are those held-out scores, not the flattering ones the weights
    were selected on. Any gain counts: asking for more than one standard error of the fold gains
    changed 3 of 21 models, 1 for the better, 1.009 times the error on the geometric mean
    (benchmarks/results/reselect-ensemble-rules-60s.md)."""
    metric = configuration["metric"]
    selection = select_ensemble(out_of_fold, y, metric, task, max_size)
    if len(selection["weights"]) < 2 or len(held_out_rows) < 2:
        return None  # one fold leaves no other fold to choose on
    held_out = held_out_choice(out_of_fold, y, metric, task, max_size, held_out_rows)
    ensemble_score, single_score = (float(np.mean(held_out[k])) for k in held_out)
    if not is_better(get_metric(metric, task), ensemble_score, single_score):
        logger.info(
            "The best trial is kept: chosen on other folds and scored on the held-out one, the "
            "ensemble's %s %.5g does not beat the best single trial's %.5g.",
            metric,
            ensemble_score,
            single_score,
        )
        return None
    trials = {t.number: t for t in study.trials}
    members = []
    for number, weight in sorted(selection["weights"].items(), key=lambda item: -item[1]):
        algorithm, params = split_params(trials[number].params, configuration["algorithms"])
        members.append(
            {"trial": number, "algorithm": algorithm, "params": params, "weight": weight}
        )
    logger.info(
        "Ensemble of %d trials (%s): held-out %s %.5g against %.5g for the best single trial.",
        len(members),
        ", ".join(f"{m['algorithm']} {m['weight']:.2f}" for m in members),
        metric,
        ensemble_score,
        single_score,
    )
    return {
        "members": members,
        "cv_score": ensemble_score,
        "fold_scores": [float(score) for score in held_out["ensemble"]],
        "single_trial_cv_score": single_score,
    }


def trials_table(study: optuna.Study, objectives: Sequence[str] = ()) -> pd.DataFrame:
    """One row per trial: `value` is the metric, then a column per other objective. Optuna
    names the value columns by the study's metric names when it has them (`value_roc_auc`,
    `values_latency`), else by position (`values_1`)."""
    table = study.trials_dataframe(attrs=("number", "value", "state", "duration", "params"))
    names = list(study.metric_names or objectives)
    renames = {"values_0": "value"}
    if names:
        renames |= {f"value_{names[0]}": "value", f"values_{names[0]}": "value"}
        renames |= {f"values_{name}": name for name in names[1:]}
    renames |= {f"values_{i}": name for i, name in enumerate(objectives[1:], start=1)}
    table = table.rename(columns=renames)
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
    # With several objectives, the importance for the metric (the first).
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    try:
        return {
            k: float(v)
            for k, v in optuna.importance.get_param_importances(study, target=target).items()
        }
    except (ValueError, RuntimeError) as exc:
        logger.info("Parameter importance not computed: %s", exc)
        return {}
