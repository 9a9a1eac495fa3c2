"""How good a clustering is without a target to score it on: internal scores (with the
validity rules that keep a degenerate clustering from winning), agreement with known groups,
stability across folds, held-out scores beside baselines, and which columns the clusters use."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_samples,
    silhouette_score,
)
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from model_trainer.tasks.clustering.estimators import (
    NOISE,
    build_clustering_preprocessor,
    make_clustering_pipeline,
)

# Internal scores an Optuna search can optimise, and their direction.
INTERNAL_METRICS = {
    "silhouette": "maximize",
    "calinski_harabasz": "maximize",
    "davies_bouldin": "minimize",
}


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
