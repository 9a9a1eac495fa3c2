"""Which clustering the run keeps: the task's model configuration, an Optuna study over the
registry's algorithms and their parameters scored by an internal score, and the chosen
configuration as the pipeline to fit."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from model_trainer.errors import ConfigurationError, ModelTrainerError
from model_trainer.search.samplers import make_sampler
from model_trainer.search.space import portfolio_trials, split_params, suggest
from model_trainer.search.storage import make_storage, redact
from model_trainer.search.trial_records import TrialLogger
from model_trainer.search.tuning import data_fingerprint, study_name_for
from model_trainer.tasks.clustering.estimators import (
    CLUSTERING_ALGORITHMS,
    TASK,
    build_clustering_preprocessor,
    make_clusterer,
    make_clustering_pipeline,
    resolve_algorithms,
)
from model_trainer.tasks.clustering.scores import (
    INTERNAL_METRICS,
    external_scores,
    fold_stability,
    internal_scores,
)

logger = logging.getLogger(__name__)


def search_clustering(
    X: pd.DataFrame,
    preprocessor: Any,
    *,
    algorithms: str | Sequence[str] | None = "auto",
    metric: str = "silhouette",
    n_trials: int = 30,
    timeout: float | None = None,
    seed: int = 0,
    storage: Any | None = None,
    study_name: str | None = None,
    sample_rows: int | None = 5000,
    silhouette_sample: int = 2000,
    max_noise_share: float = 0.5,
    min_cluster_share: float = 0.01,
    cv_folds: int = 5,
    y_true: Any | None = None,
    enqueue_portfolio: bool = True,
    registry: Mapping[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
) -> tuple[optuna.Study, dict[str, Any]]:
    """An Optuna study (TPE, seeded) over the algorithm and its parameters, scored by `metric`
    (silhouette or calinski_harabasz maximised, davies_bouldin minimised). The preprocessor is
    fit once on the (sampled) rows, so every trial clusters the same matrix. A trial whose
    clustering is invalid (`internal_scores`: fewer than 2 clusters, more than `max_noise_share`
    noise, a cluster smaller than `min_cluster_share` of the rows) is PRUNED
    with its reason in `user_attrs["invalid"]`: TPE ranks pruned trials below every completed
    one, and no made-up score enters the study. A trial that raises is FAILED (one log line).
    `n_trials` counts the whole study, so a stored study (`storage`, e.g.
    storage.make_storage(settings)) resumes. `y_true` is only reported (ARI/NMI), never optimised.
    The summary has trial_records.summarize_study's keys, `cross_validation` being
    `fold_stability` of the best configuration. `callbacks` are Optuna's (one line and an MLflow
    run per trial)."""
    registry = CLUSTERING_ALGORITHMS if registry is None else registry
    names = resolve_algorithms(algorithms, registry)
    if metric not in INTERNAL_METRICS:
        raise ConfigurationError(
            f"Unknown clustering metric '{metric}'.",
            f"Use one of: {', '.join(INTERNAL_METRICS)}.",
        )
    spaces = {name: registry[name].get("search_space") or {} for name in names}
    rows = _sample_rows(len(X), sample_rows, seed)
    X_search = X.iloc[rows].reset_index(drop=True)
    truth = None if y_true is None else np.asarray(y_true, dtype=object)[rows]
    fitted = clone(preprocessor)
    matrix = np.asarray(fitted.fit_transform(X_search), dtype=float)
    study_name = study_name or study_name_for(
        data=data_fingerprint(X_search),
        task=TASK,
        metric=metric,
        space=spaces,
        max_noise_share=max_noise_share,
        min_cluster_share=min_cluster_share,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=INTERNAL_METRICS[metric],
        sampler=make_sampler("tpe", seed),
        load_if_exists=True,
    )
    study.set_user_attr("sampler", "tpe")
    counted = (TrialState.COMPLETE, TrialState.PRUNED)
    if not study.trials and enqueue_portfolio:
        for params in portfolio_trials(names, registry)[:n_trials]:
            study.enqueue_trial(params, skip_if_exists=True)
    done = len(study.get_trials(deepcopy=False, states=counted))
    if n_trials - done > 0:
        objective = _objective(
            matrix,
            names,
            spaces,
            metric,
            seed,
            {
                "sample_size": silhouette_sample,
                "seed": seed,
                "max_noise_share": max_noise_share,
                "min_cluster_share": min_cluster_share,
            },
            registry,
        )
        study.optimize(
            objective,
            n_trials=n_trials - done,
            timeout=float(timeout) if timeout else None,
            callbacks=[MaxTrialsCallback(n_trials, states=counted), *callbacks],
        )
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        reasons = sorted(
            {t.user_attrs.get("invalid") or t.user_attrs.get("error") or "" for t in study.trials}
            - {""}
        )
        raise ModelTrainerError(
            f"No clustering trial of study '{study_name}' gave a valid clustering: "
            f"{'; '.join(reasons) or 'no trial ran'}.",
            "Try other algorithms (e.g. kmeans), more tuning trials, or a longer timeout; with "
            "density methods, check that the features separate groups at all.",
        )
    summary = _summary(study, names, metric, storage)
    algorithm, params = summary["algorithm"], summary["best_params"]
    best = make_clustering_pipeline(
        algorithm, params, preprocessor, seed, n_rows=len(X_search), registry=registry
    )
    best_labels = best.fit_predict(X_search)
    summary["cross_validation"] = fold_stability(
        best, X_search, folds=cv_folds, seed=seed, reference=best_labels
    )
    if truth is not None:
        summary["external_scores"] = external_scores(truth, best_labels)
    summary["search_rows"] = len(X_search)
    return study, summary


def _sample_rows(n: int, sample_rows: int | None, seed: int) -> np.ndarray:
    if not sample_rows or n <= int(sample_rows):
        return np.arange(n)
    generator = np.random.default_rng(seed)
    return np.sort(generator.choice(n, size=int(sample_rows), replace=False))


def _objective(
    matrix: np.ndarray,
    names: Sequence[str],
    spaces: Mapping[str, Any],
    metric: str,
    seed: int,
    validity: Mapping[str, Any],
    registry: Mapping[str, Any],
) -> Any:
    def objective(trial: optuna.Trial) -> float:
        algorithm, params = suggest(trial, names, spaces)
        trial.set_user_attr("algorithm", algorithm)
        started = time.perf_counter()
        try:
            clusterer = make_clusterer(
                algorithm, params, seed, n_rows=len(matrix), registry=registry
            )
            labels = clusterer.fit_predict(matrix)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            logger.info("Clustering trial %d (%s) failed: %s", trial.number, algorithm, exc)
            return math.nan  # Optuna marks the trial failed, in one log line
        trial.set_user_attr("fit_s", time.perf_counter() - started)
        scores = internal_scores(matrix, labels, **validity)
        for key in ("silhouette", "calinski_harabasz", "davies_bouldin", "n_clusters"):
            trial.set_user_attr(key, scores[key])
        trial.set_user_attr("noise_share", scores["noise_share"])
        if not scores["valid"]:
            trial.set_user_attr("invalid", scores["reason"])
            raise optuna.TrialPruned(scores["reason"])
        return float(scores[metric])

    return objective


def _summary(
    study: optuna.Study, names: Sequence[str], metric: str, storage: Any | None
) -> dict[str, Any]:
    best = study.best_trial
    algorithm, params = split_params(best.params, names)
    states = [t.state for t in study.trials]
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    return {
        "study_name": study.study_name,
        "storage": redact(url) if url else ("in-memory" if storage is None else "stored"),
        "metric": metric,
        "direction": study.direction.name.lower(),
        "sampler": study.user_attrs.get("sampler", "tpe"),
        "objectives": [metric],
        "objective_values": {metric: best.value},
        "pareto_front": [best.number],
        "n_trials": len(states),
        "n_complete": states.count(TrialState.COMPLETE),
        "n_pruned": states.count(TrialState.PRUNED),
        "n_failed": states.count(TrialState.FAIL),
        "best_trial": best.number,
        "best_value": best.value,
        "algorithm": algorithm,
        "best_params": params,
        "internal_scores": {
            key: best.user_attrs.get(key)
            for key in ("silhouette", "calinski_harabasz", "davies_bouldin", "n_clusters")
        }
        | {"noise_share": best.user_attrs.get("noise_share")},
        "algorithms_tried": sorted(
            {
                t.params.get("algorithm") or t.user_attrs.get("algorithm", "")
                for t in study.get_trials(
                    deepcopy=False,
                    states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL),
                )
            }
        ),
    }


def clustering_configuration(
    metric: str,
    requested: str | Sequence[str],
    settings: Mapping[str, Any],
    encoding: Mapping[str, Any],
    folds: int,
    seed: int,
) -> dict[str, Any]:
    """The model configuration of a clustering task, with the keys the other tasks' has (the
    decision record and report read them): the internal score, the families, how stability is
    measured and the search settings (`model.clustering` in conf)."""
    metric = "silhouette" if metric == "auto" else metric
    if metric not in INTERNAL_METRICS:
        raise ConfigurationError(
            f"Metric '{metric}' does not fit a clustering task.",
            f"Set metric to one of: {', '.join(INTERNAL_METRICS)} (or auto = silhouette).",
        )
    algorithms = resolve_algorithms(requested)
    return {
        "metric": metric,
        "algorithms": algorithms,
        "algorithms_reason": "set by model.algorithm"
        if requested != "auto"
        else "auto: one family of each kind (centroid, mixture, hierarchical, density)",
        "cv": {
            "strategy": "stability",
            "folds": folds,
            "repeats": 1,
            "seed": seed,
            "reason": f"no target to score folds on: the best configuration is refit on {folds} "
            "k-fold training parts and its clusters compared with the fit on all rows (ARI)",
        },
        "search_space": {
            name: CLUSTERING_ALGORITHMS[name].get("search_space") or {} for name in algorithms
        },
        "registry": {name: CLUSTERING_ALGORITHMS[name] for name in algorithms},
        "simple_baseline": "kmeans",
        "encoding": {**encoding, "imputation": "median", "high_cardinality": "ordinal"},
        "imputation_reason": "distances need every value: median, without missing-value "
        "indicators (scaled, they would set rows with a gap far apart)",
        "clustering": {
            "sample_rows": settings.get("sample_rows", 5000),
            "max_noise_share": float(settings.get("max_noise_share", 0.5)),
            "min_cluster_share": float(settings.get("min_cluster_share", 0.01)),
            "silhouette_sample": int(settings.get("silhouette_sample", 2000)),
        },
        "imbalance": None,
        "ranking": None,
        "seed": seed,
    }


def search(
    X: pd.DataFrame,
    reference: pd.Series | None,
    *,
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    settings: Mapping[str, Any],
    mlflow_parent: Any | None = None,
) -> tuple[optuna.Study, dict[str, Any]]:
    """`search_clustering` with the run's tuning settings (budget, storage, study name), each
    trial a line in the log and a nested MLflow run as for the other tasks."""
    enabled = settings.get("enabled", True)
    n_trials = int(settings.get("n_trials", 50)) if enabled else 1
    timeout = settings.get("timeout") if enabled else None
    options = configuration["clustering"]
    logger_callback = TrialLogger(configuration["metric"], n_trials, mlflow_parent)
    return search_clustering(
        X,
        build_clustering_preprocessor(feature_types, configuration["encoding"]),
        algorithms=configuration["algorithms"],
        metric=configuration["metric"],
        n_trials=n_trials,
        timeout=float(timeout) if timeout else None,
        seed=int(configuration["seed"]),
        storage=make_storage(settings) if enabled else None,
        study_name=settings.get("study_name"),
        sample_rows=options["sample_rows"],
        silhouette_sample=options["silhouette_sample"],
        max_noise_share=options["max_noise_share"],
        min_cluster_share=options["min_cluster_share"],
        cv_folds=int(configuration["cv"]["folds"]),
        y_true=reference,
        enqueue_portfolio=settings.get("enqueue_portfolio", True),
        callbacks=[logger_callback],
    )


def final_pipeline(
    summary: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    n_rows: int,
) -> Pipeline:
    """The chosen configuration, unfitted, for the rows it will cluster."""
    return make_clustering_pipeline(
        summary["algorithm"],
        summary["best_params"],
        build_clustering_preprocessor(feature_types, configuration["encoding"]),
        int(configuration["seed"]),
        n_rows=n_rows,
    )
