"""The clustering algorithms: a registry of the families (class, defaults, search space,
portfolio), and the clusterers and pipelines made from it.

Agglomerative clustering, DBSCAN and HDBSCAN cannot assign new rows: they are wrapped in
`NearestTrainingPointClusterer`, so a new row takes the cluster of its nearest training row
(noise stays -1). KMeans and GaussianMixture keep their own `predict`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from model_trainer.errors import ConfigurationError
from model_trainer.models.estimators import instantiate
from model_trainer.models.preprocessing import build_preprocessor

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
