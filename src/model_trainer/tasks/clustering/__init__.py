"""Clustering (modelType: clustering): a registry of algorithms, a Pipeline whose `predict`
assigns new rows to clusters (`estimators`), internal and external scores and fold stability
(`scores`), an Optuna search over the algorithms and their parameters (`selection`), and
per-cluster profiles for the report (`profiles`).

The names are exported here, where the pipelines import them and where models saved before the
split name `NearestTrainingPointClusterer`.
"""

from model_trainer.tasks.clustering.estimators import (
    CLUSTERING_ALGORITHMS,
    DEFAULT_ALGORITHMS,
    NOISE,
    TASK,
    NearestTrainingPointClusterer,
    algorithm_entry,
    build_clustering_preprocessor,
    make_clusterer,
    make_clustering_pipeline,
    resolve_algorithms,
)
from model_trainer.tasks.clustering.profiles import cluster_profiles
from model_trainer.tasks.clustering.scores import (
    INTERNAL_METRICS,
    assignment_importance,
    assignment_scores,
    clustering_scores,
    evaluate_clustering,
    external_scores,
    fold_stability,
    holdout_scores,
    internal_scores,
)
from model_trainer.tasks.clustering.selection import (
    clustering_configuration,
    final_pipeline,
    search,
    search_clustering,
)

__all__ = [
    "CLUSTERING_ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "INTERNAL_METRICS",
    "NOISE",
    "TASK",
    "NearestTrainingPointClusterer",
    "algorithm_entry",
    "assignment_importance",
    "assignment_scores",
    "build_clustering_preprocessor",
    "cluster_profiles",
    "clustering_configuration",
    "clustering_scores",
    "evaluate_clustering",
    "external_scores",
    "final_pipeline",
    "fold_stability",
    "holdout_scores",
    "internal_scores",
    "make_clusterer",
    "make_clustering_pipeline",
    "resolve_algorithms",
    "search",
    "search_clustering",
]
