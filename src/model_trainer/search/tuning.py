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
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.study import MaxTrialsCallback
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from model_trainer.errors import ModelTrainerError
from model_trainer.models.ensemble import OutOfFoldPredictions
from model_trainer.models.metrics import get_metric
from model_trainer.search import study_predictions
from model_trainer.search.budget import (
    SearchBudget,
    has_complete,
    search_seconds,
    seconds_left,
)
from model_trainer.search.final_model import (
    bag_fits,
    bagging_refusal,
    check_final_model_settings,
    chosen_bagging,
    chosen_calibration,
    ensemble_of_best_trials,
)
from model_trainer.search.objective import make_objective
from model_trainer.search.progress import search_progress
from model_trainer.search.samplers import choose_sampler, make_pruner, make_sampler, objectives_of
from model_trainer.search.space import portfolio_trials
from model_trainer.search.stale_trials import grace_seconds, settle_stale_trials
from model_trainer.search.storage import make_storage
from model_trainer.search.trial_records import (
    COUNTED_STATES,
    TrialLogger,
    describe_study,
    summarize_study,
)
from model_trainer.table.splitting import cv_splits
from model_trainer.tasks.ranking import sample_groups

logger = logging.getLogger(__name__)


def data_fingerprint(table: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(table, index=False).to_numpy()
    header = json.dumps([str(c) for c in table.columns]).encode()
    return hashlib.sha256(header + hashed.tobytes()).hexdigest()[:16]


def study_name_for(**identity: Any) -> str:
    """Same data, target, task, metric, space and folds -> same study, so a re-run resumes it."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    return f"model_trainer_{digest.hexdigest()[:12]}"


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
    calibration of its probabilities (`calibration`: training.calibration) and the
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


def sample_for_search(
    X: pd.DataFrame,
    y: pd.Series,
    rows: int | None,
    task: Mapping[str, Any],
    cv: Mapping[str, Any],
    seed: int,
) -> tuple[pd.DataFrame, pd.Series]:
    """At most `rows` rows for the search on a big table (the final model is still refit on
    every row) or for a slow model's permutation importance: stratified by class for
    classification, the latest rows for time-ordered folds, whole groups for ranking or folds
    in time within groups, else at
    random. The study's fingerprint is the sample's, so it
    differs from a full search."""
    if not rows or len(X) <= int(rows):
        return X, y
    rows = int(rows)
    positions = np.arange(len(X))
    if cv.get("strategy") == "timeseries":
        keep = positions[-rows:]
    elif task["type"] == "ranking" or cv.get("strategy") == "group_timeseries":
        keep = sample_groups(X[cv.get("group_column") or task["group_column"]], rows, seed)
    else:
        counts = y.value_counts()
        stratify = y if task["type"] == "classification" and counts.min() >= 2 else None
        if stratify is not None and len(X) - rows < len(counts):
            # fewer rows to leave out than classes, which a stratified split refuses: they
            # come from the largest class (chile: 3 of 203 held-out rows, 4 classes)
            largest = positions[(y == counts.idxmax()).to_numpy()]
            dropped = np.random.default_rng(seed).choice(largest, len(X) - rows, replace=False)
            keep = np.setdiff1d(positions, dropped)
        else:
            keep, _ = train_test_split(
                positions, train_size=rows, stratify=stratify, random_state=seed
            )
            keep = np.sort(keep)
    return X.iloc[keep].reset_index(drop=True), y.iloc[keep].reset_index(drop=True)


def sampler_seed(configuration: Mapping[str, Any], settings: Mapping[str, Any]) -> int:
    """The model's seed, so a run is repeatable; with `tuning.worker_seeds`, offset by the process
    id, since workers sharing a study with one seed would sample the same points."""
    offset = os.getpid() if settings.get("worker_seeds", False) else 0
    return (int(configuration["seed"]) + offset) % 2**32


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
    if remaining > 0 and not settings.get("continue_search", True) and has_complete(study):
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
        with (
            threadpool_limits(limits=1 if fold_jobs > 1 else None, user_api="openmp"),
            search_progress(n_trials, timeout, metric.name) as bar,
        ):
            study.optimize(
                objective,
                n_trials=trials,
                timeout=timeout,
                callbacks=[
                    MaxTrialsCallback(n_trials, states=COUNTED_STATES),
                    TrialLogger(metric.name, n_trials, mlflow_parent, objectives, budget),
                    budget,
                    *([bar] if bar else []),
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
    if not has_complete(study):
        errors = {t.user_attrs.get("error") for t in study.trials if t.user_attrs.get("error")}
        raise ModelTrainerError(
            f"No trial of study '{study_name}' completed. Errors: {sorted(errors) or 'none'}.",
            "Check the algorithms' search spaces in conf, raise tuning.timeout, or choose "
            "another algorithm.",
        )
    return study
