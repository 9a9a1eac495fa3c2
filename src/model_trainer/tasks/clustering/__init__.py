"""Clustering (modelType: clustering): a registry of algorithms, a Pipeline whose `predict`
assigns new rows to clusters, internal and external scores, fold stability, an Optuna search over
the algorithms and their parameters, and per-cluster profiles for the report.

Agglomerative clustering, DBSCAN and HDBSCAN cannot assign new rows: they are wrapped in
`NearestTrainingPointClusterer`, so a new row takes the cluster of its nearest training row
(noise stays -1). KMeans and GaussianMixture keep their own `predict`.
"""

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
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_samples,
    silhouette_score,
)
from sklearn.model_selection import KFold
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from model_trainer.errors import ConfigurationError, ModelTrainerError
from model_trainer.models.estimators import instantiate
from model_trainer.models.preprocessing import build_preprocessor
from model_trainer.search.samplers import make_sampler
from model_trainer.search.space import portfolio_trials, split_params, suggest
from model_trainer.search.storage import make_storage, redact
from model_trainer.search.trial_records import TrialLogger
from model_trainer.search.tuning import data_fingerprint, study_name_for

logger = logging.getLogger(__name__)

NOISE = -1
TASK = "clustering"

# The registry, in the shape of conf's `model.algorithms` (class path under the task's key,
# fixed defaults, search space in `space.suggest`'s format, a portfolio tried first), so it can
# move to conf unchanged. `predict: nearest_training_point` wraps an estimator that cannot assign
# new rows; `max_fit_rows` caps the rows such an estimator is fit on (agglomerative needs memory
# quadratic in rows): the other rows take their nearest fitted row's cluster.
CLUSTERING_ALGORITHMS: dict[str, dict[str, Any]] = {
    "kmeans": {
        TASK: "sklearn.cluster.KMeans",
        "predict": "native",
        "defaults": {"n_init": 4},
        "search_space": {"n_clusters": {"type": "int", "low": 2, "high": 12}},
        "portfolio": [{"n_clusters": 4}],
    },
    "gaussian_mixture": {
        TASK: "sklearn.mixture.GaussianMixture",
        "predict": "native",
        # One-hot columns make full covariances singular without some regularisation.
        "defaults": {"n_init": 1, "reg_covar": 1.0e-4},
        "search_space": {
            "n_components": {"type": "int", "low": 2, "high": 12},
            "covariance_type": {
                "type": "categorical",
                "choices": ["full", "diag", "tied", "spherical"],
            },
        },
        "portfolio": [{"n_components": 4, "covariance_type": "full"}],
    },
    "agglomerative": {
        TASK: "sklearn.cluster.AgglomerativeClustering",
        "predict": "nearest_training_point",
        "max_fit_rows": 5000,
        "search_space": {
            "n_clusters": {"type": "int", "low": 2, "high": 12},
            "linkage": {"type": "categorical", "choices": ["ward", "average", "complete"]},
        },
        "portfolio": [{"n_clusters": 4, "linkage": "ward"}],
    },
    "hdbscan": {
        TASK: "sklearn.cluster.HDBSCAN",
        "predict": "nearest_training_point",
        "max_fit_rows": 20000,
        "defaults": {"copy": True},  # sklearn 1.9 warns until `copy` is given
        "search_space": {
            "min_cluster_size": {"type": "int", "low": 5, "high": 200, "log": True},
            "min_samples": {"type": "int", "low": 1, "high": 30, "log": True},
            "cluster_selection_method": {"type": "categorical", "choices": ["eom", "leaf"]},
        },
        "portfolio": [
            {"min_cluster_size": 15, "min_samples": 5, "cluster_selection_method": "eom"}
        ],
    },
    "dbscan": {
        TASK: "sklearn.cluster.DBSCAN",
        "predict": "nearest_training_point",
        "max_fit_rows": 20000,
        # eps is a distance in the scaled feature space, so it grows with the number of columns.
        "search_space": {
            "eps": {"type": "float", "low": 0.05, "high": 5.0, "log": True},
            "min_samples": {"type": "int", "low": 2, "high": 30, "log": True},
        },
        "portfolio": [{"eps": 0.5, "min_samples": 5}],
    },
}
# What `algorithm: auto` searches: one family of each kind (centroid, mixture, hierarchical,
# density). DBSCAN is there by name; HDBSCAN covers it without a distance scale to guess.
DEFAULT_ALGORITHMS = ("kmeans", "gaussian_mixture", "agglomerative", "hdbscan")

# Internal scores an Optuna search can optimise, and their direction.
INTERNAL_METRICS = {
    "silhouette": "maximize",
    "calinski_harabasz": "maximize",
    "davies_bouldin": "minimize",
}


class NearestTrainingPointClusterer(ClusterMixin, BaseEstimator):
    """Gives `predict` to a clusterer that has none (agglomerative, DBSCAN, HDBSCAN): a row takes
    the label of its nearest fitted training row, so noise (-1) stays noise. With `max_fit_rows`,
    the estimator is fit on a seeded sample of that many rows and the rest are assigned the same
    way, which keeps quadratic-memory algorithms usable on big tables."""

    def __init__(
        self, estimator: Any, max_fit_rows: int | None = None, random_state: int | None = None
    ) -> None:
        self.estimator = estimator
        self.max_fit_rows = max_fit_rows
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> NearestTrainingPointClusterer:
        X = validate_data(self, X, dtype=np.float64)
        rows = np.arange(len(X))
        if self.max_fit_rows and len(X) > self.max_fit_rows:
            generator = np.random.default_rng(self.random_state)
            rows = np.sort(generator.choice(len(X), size=int(self.max_fit_rows), replace=False))
        self.estimator_ = clone(self.estimator).fit(X[rows])
        self.fit_labels_ = np.asarray(self.estimator_.labels_)
        self.neighbors_ = NearestNeighbors(n_neighbors=1).fit(X[rows])
        self.labels_ = self.fit_labels_ if len(rows) == len(X) else self._nearest_label(X)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self._nearest_label(validate_data(self, X, dtype=np.float64, reset=False))

    def _nearest_label(self, X: np.ndarray) -> np.ndarray:
        nearest = self.neighbors_.kneighbors(X, n_neighbors=1, return_distance=False)
        return self.fit_labels_[nearest[:, 0]]


def algorithm_entry(name: str, registry: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    registry = CLUSTERING_ALGORITHMS if registry is None else registry
    if name not in registry or not registry[name].get(TASK):
        known = sorted(n for n, entry in registry.items() if entry.get(TASK))
        raise ConfigurationError(
            f"Unknown clustering algorithm '{name}'.",
            f"Use 'auto' or one of: {', '.join(known)}.",
        )
    return registry[name]


def resolve_algorithms(
    requested: str | Sequence[str] | None, registry: Mapping[str, Any] | None = None
) -> list[str]:
    """`auto`/None -> DEFAULT_ALGORITHMS; a name or a list of names, each checked."""
    if requested in (None, "auto"):
        names = list(DEFAULT_ALGORITHMS)
    elif isinstance(requested, str):
        names = [requested]
    else:
        names = list(requested)
    for name in names:
        algorithm_entry(name, registry)
    return names


def make_clusterer(
    name: str,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    *,
    n_rows: int | None = None,
    registry: Mapping[str, Any] | None = None,
) -> Any:
    """The registry entry's estimator with defaults, `params` and the seed; wrapped when it has
    no `predict`. `params` None means the entry's first portfolio configuration (what runs when
    the search is off); {} means the defaults alone. With `n_rows`, sizes are clipped to what
    that many rows allow (a search space made for big tables still works on 100 rows)."""
    entry = algorithm_entry(name, registry)
    if params is None:
        params = (entry.get("portfolio") or [{}])[0]
    arguments = {**(entry.get("defaults") or {}), **params}
    if n_rows is not None:
        arguments = _clip_to_rows(arguments, n_rows)
    estimator = instantiate(
        entry[TASK],
        arguments,
        seed,
        name,
        f"Fix the defaults or search space of clustering algorithm '{name}'.",
    )
    if entry.get("predict", "native") == "nearest_training_point" or not hasattr(
        estimator, "predict"
    ):
        return NearestTrainingPointClusterer(
            estimator, max_fit_rows=entry.get("max_fit_rows"), random_state=seed
        )
    return estimator


def _clip_to_rows(arguments: dict[str, Any], n_rows: int) -> dict[str, Any]:
    clipped = dict(arguments)
    for key in ("n_clusters", "n_components"):
        if clipped.get(key) is not None:
            clipped[key] = max(2, min(int(clipped[key]), n_rows - 1))
    if clipped.get("min_cluster_size") is not None:
        clipped["min_cluster_size"] = max(2, min(int(clipped["min_cluster_size"]), n_rows // 2))
    if clipped.get("min_samples") is not None:
        clipped["min_samples"] = max(1, min(int(clipped["min_samples"]), n_rows - 1))
    return clipped


def build_clustering_preprocessor(
    feature_types: Mapping[str, Any], encoding: Mapping[str, Any] | None = None
) -> Any:
    """`build_preprocessor` as clustering needs it: scaled (distances must not be dominated by
    the column with the biggest unit), imputed, no target encoding (there is no target), and no
    missing-value indicators: a rarely missing column's indicator, once scaled, puts its few
    rows some 15 standard deviations away, and the clustering would isolate them."""
    encoding = {**(encoding or {}), "high_cardinality": "ordinal"}
    preprocessor = build_preprocessor(
        feature_types, scale=True, impute=True, encoding=encoding, task="clustering"
    )
    indicators = [k for k in preprocessor.get_params(deep=True) if k.endswith("add_indicator")]
    return preprocessor.set_params(**dict.fromkeys(indicators, False))


def make_clustering_pipeline(
    name: str,
    params: Mapping[str, Any] | None,
    preprocessor: Any,
    seed: int = 0,
    *,
    n_rows: int | None = None,
    registry: Mapping[str, Any] | None = None,
) -> Pipeline:
    """Preprocessing + clusterer: what is saved; `predict` takes raw columns and gives clusters."""
    clusterer = make_clusterer(name, params, seed, n_rows=n_rows, registry=registry)
    return Pipeline([("preprocess", clone(preprocessor)), ("model", clusterer)])


def internal_scores(
    X_matrix: Any,
    labels: Any,
    *,
    sample_size: int = 2000,
    seed: int = 0,
    max_noise_share: float = 0.5,
    min_cluster_share: float = 0.01,
) -> dict[str, Any]:
    """Silhouette (on a seeded sample of `sample_size` rows: it is quadratic), Calinski-Harabasz
    and Davies-Bouldin over the clustered rows (noise left out, as density methods mean it),
    with n_clusters and noise_share. Never raises: fewer than 2 clusters, more than
    `max_noise_share` noise, or a cluster smaller than `min_cluster_share` of the rows (at least
    2 rows) gives `valid: False`, the scores None and a `reason`. The last rule is there because
    splitting off a single outlier scores a high silhouette while saying nothing about the data."""
    X_matrix = np.asarray(X_matrix, dtype=float)
    labels = np.asarray(labels)
    clustered = labels != NOISE
    names, sizes = np.unique(labels[clustered], return_counts=True)
    n_clusters = len(names)
    min_rows = max(2, math.ceil(min_cluster_share * len(labels))) if min_cluster_share else 1
    noise_share = float(1.0 - clustered.mean()) if len(labels) else 1.0
    scores: dict[str, Any] = {
        "silhouette": None,
        "calinski_harabasz": None,
        "davies_bouldin": None,
        "n_clusters": int(n_clusters),
        "noise_share": round(noise_share, 6),
        "valid": False,
        "reason": None,
    }
    if n_clusters < 2:
        scores["reason"] = f"{n_clusters} cluster(s) besides noise; at least 2 are needed"
    elif noise_share > max_noise_share:
        scores["reason"] = f"{noise_share:.0%} of rows are noise (more than {max_noise_share:.0%})"
    elif sizes.min() < min_rows:
        scores["reason"] = (
            f"a cluster of {sizes.min()} row(s), fewer than {min_rows} "
            f"(min_cluster_share {min_cluster_share:g})"
        )
    if scores["reason"]:
        return scores
    X_clustered, kept = X_matrix[clustered], labels[clustered]
    sample = min(sample_size, len(kept))
    scores.update(
        silhouette=float(
            silhouette_score(
                X_clustered,
                kept,
                sample_size=sample if sample < len(kept) else None,
                random_state=seed,
            )
        ),
        calinski_harabasz=float(calinski_harabasz_score(X_clustered, kept)),
        davies_bouldin=float(davies_bouldin_score(X_clustered, kept)),
        valid=True,
    )
    return scores


def external_scores(y_true: Any, labels: Any) -> dict[str, float]:
    """Agreement with known groups (an optional target column): adjusted Rand index (0 = chance,
    1 = the same partition) and normalized mutual information. Noise counts as one more group;
    rows whose true group is missing are left out."""
    truth = pd.Series(np.asarray(y_true, dtype=object))
    known = truth.notna().to_numpy()
    truth_known = truth[known].astype(str).to_numpy()
    predicted = np.asarray(labels)[known]
    return {
        "ari": float(adjusted_rand_score(truth_known, predicted)),
        "nmi": float(normalized_mutual_info_score(truth_known, predicted)),
    }


def evaluate_clustering(
    pipeline: Pipeline,
    X: pd.DataFrame,
    labels: Any,
    y_true: Any | None = None,
    *,
    seed: int = 0,
    sample_size: int = 2000,
) -> dict[str, Any]:
    """The metrics of a fitted clustering pipeline on the rows it clustered, in its own
    preprocessed space: internal scores, and ARI/NMI when the true groups are given."""
    matrix = pipeline[:-1].transform(X)
    metrics = internal_scores(matrix, labels, sample_size=sample_size, seed=seed)
    if y_true is not None:
        metrics.update(external_scores(y_true, labels))
    return metrics


def fold_stability(
    pipeline: Pipeline,
    X: pd.DataFrame,
    *,
    folds: int = 5,
    seed: int = 0,
    reference: Any | None = None,
) -> dict[str, Any]:
    """How much the clustering depends on which rows it saw: the pipeline is refit on each
    k-fold training part, assigns every row, and is compared with the fit on all rows by ARI
    (label names do not matter to ARI). `reference` is that fit's labels, if already known.
    Returns the metric it is (`ari`: stability, not the search's metric), mean, std, folds and
    fold_scores, as crossValidation reports them."""
    folds = max(2, min(int(folds), len(X)))
    if reference is None:
        reference = clone(pipeline).fit_predict(X)
    scores = []
    for fit_rows, _ in KFold(n_splits=folds, shuffle=True, random_state=seed).split(X):
        model = clone(pipeline).fit(X.iloc[fit_rows])
        scores.append(float(adjusted_rand_score(reference, model.predict(X))))
    return {
        "metric": "ari",
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "folds": len(scores),
        "fold_scores": scores,
    }


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


def cluster_profiles(
    X_raw: pd.DataFrame,
    labels: Any,
    feature_types: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """What each cluster looks like in the user's own columns, one row per cluster ("noise" for
    -1) and a last row "all" for the whole table: size, share, for a numeric column
    `<col> mean`, for a categorical or boolean one `<col> top` (most frequent value) and
    `<col> top share` (its share within the cluster). Types come from `feature_types`
    (infer_feature_types' output) when given, else from the dtypes; text and datetime columns
    are left out."""
    numeric, categorical = _profile_columns(X_raw, feature_types)
    labels = np.asarray(labels)
    groups = [
        (str(c) if c != NOISE else "noise", labels == c) for c in sorted(set(labels.tolist()))
    ]
    groups.append(("all", np.ones(len(labels), dtype=bool)))
    records = []
    for name, mask in groups:
        part = X_raw.loc[mask]
        record: dict[str, Any] = {
            "cluster": name,
            "size": int(mask.sum()),
            "share": float(mask.mean()) if len(mask) else 0.0,
        }
        for column in numeric:
            values = pd.to_numeric(part[column], errors="coerce")
            record[f"{column} mean"] = float(values.mean()) if values.notna().any() else None
        for column in categorical:
            counts = part[column].dropna().astype(str).value_counts()
            record[f"{column} top"] = counts.index[0] if len(counts) else None
            record[f"{column} top share"] = (
                float(counts.iloc[0] / len(part)) if len(counts) else None
            )
        records.append(record)
    return pd.DataFrame.from_records(records)


def _profile_columns(
    X_raw: pd.DataFrame, feature_types: Mapping[str, Any] | None
) -> tuple[list[str], list[str]]:
    if feature_types is not None:
        kinds = {name: info["type"] for name, info in feature_types["columns"].items()}
        present = [str(c) for c in X_raw.columns if str(c) in kinds]
        numeric = [c for c in present if kinds[c] == "numeric"]
        categorical = [c for c in present if kinds[c] in ("categorical", "boolean")]
        return numeric, categorical
    numeric, categorical = [], []
    for column in X_raw.columns:
        dtype = X_raw[column].dtype
        if pd.api.types.is_bool_dtype(dtype):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(dtype):
            numeric.append(column)
        elif not pd.api.types.is_datetime64_any_dtype(dtype):
            categorical.append(column)
    return numeric, categorical


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


def holdout_scores(
    model: Pipeline,
    fit_rows: pd.DataFrame,
    X: pd.DataFrame,
    reference: pd.Series | None,
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
) -> tuple[dict[str, float], dict[str, dict[str, float]], pd.DataFrame]:
    """The model's clusters of held-out rows it never saw, scored in its own preprocessed space
    (and against the reference column, if any), beside two baselines on the same rows: a
    random assignment into as many clusters (no structure at all) and KMeans as it comes, fit
    on the same rows as the model."""
    seed = int(configuration["seed"])
    sample = configuration["clustering"]["silhouette_sample"]
    metrics, random = clustering_scores(model, X, reference, seed, sample)
    kmeans = make_clustering_pipeline(
        "kmeans",
        None,
        build_clustering_preprocessor(feature_types, configuration["encoding"]),
        seed,
        n_rows=len(fit_rows),
    ).fit(fit_rows)
    matrix = np.asarray(model[:-1].transform(X), dtype=float)
    baselines = {
        "dummy": random,
        "kmeans": assignment_scores(matrix, kmeans.predict(X), reference, seed, sample),
    }
    table = X.copy()
    if reference is not None:
        table["actual"] = reference.to_numpy()
    labels = model.predict(X)
    table["predicted"] = labels
    # how ambiguous each row's cluster is: 0 = deep inside it, 1 = closer to another cluster
    table["error"] = _ambiguity(matrix, labels)
    return metrics, baselines, table.sort_values("error", ascending=False).reset_index(drop=True)


def clustering_scores(
    model: Pipeline, X: pd.DataFrame, reference: Any | None, seed: int, sample: int = 2000
) -> tuple[dict[str, float], dict[str, float]]:
    """The model's clusters of `X` and a random assignment into as many clusters, scored alike."""
    labels = model.predict(X)
    matrix = np.asarray(model[:-1].transform(X), dtype=float)
    n_clusters = max(2, len(set(labels.tolist()) - {NOISE}))
    random = np.random.default_rng(seed).integers(0, n_clusters, len(X))
    return (
        assignment_scores(matrix, labels, reference, seed, sample),
        assignment_scores(matrix, random, reference, seed, sample),
    )


def assignment_scores(
    matrix: np.ndarray, labels: np.ndarray, reference: Any | None, seed: int, sample: int
) -> dict[str, float]:
    """Internal scores (and ARI/NMI with a reference) of any assignment of these rows, with no
    validity rule (held-out rows may hold a cluster's single row): NaN for fewer than 2
    clusters."""
    scores = internal_scores(
        matrix, labels, sample_size=sample, seed=seed, max_noise_share=1.0, min_cluster_share=0.0
    )
    if reference is not None:
        scores.update(external_scores(reference, labels))
    return {
        k: float("nan") if v is None else float(v)
        for k, v in scores.items()
        if k not in ("valid", "reason")
    }


def _ambiguity(matrix: np.ndarray, labels: np.ndarray) -> np.ndarray:
    clustered = labels != NOISE
    ambiguity = np.ones(len(labels))
    if len(set(labels[clustered].tolist())) >= 2:
        ambiguity[clustered] = (1.0 - silhouette_samples(matrix[clustered], labels[clustered])) / 2
    return ambiguity


def assignment_importance(
    model: Pipeline, X: pd.DataFrame, repeats: int, seed: int, max_rows: int | None = None
) -> pd.DataFrame:
    """Permutation importance for clusters: how much the assignment changes (1 - ARI with the
    unshuffled clusters) when one column is shuffled. A column the clusters ignore scores 0."""
    if max_rows and len(X) > max_rows:
        X = X.sample(max_rows, random_state=seed)
    X = X.reset_index(drop=True)
    labels = model.predict(X)
    rng = np.random.default_rng(seed)
    rows = []
    for column in X.columns:
        changes = []
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[column] = X[column].to_numpy()[rng.permutation(len(X))]
            changes.append(1.0 - adjusted_rand_score(labels, model.predict(shuffled)))
        rows.append(
            {"feature": column, "importance": np.mean(changes), "importance_std": np.std(changes)}
        )
    table = pd.DataFrame(rows).sort_values("importance", ascending=False)
    return table.reset_index(drop=True)
