"""Boosting rounds chosen on held-out rows: a LightGBM or XGBoost model inside its Pipeline, fit
with the rows it is scored on each round, stopped when they stop improving."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from model_trainer.errors import ConfigurationError
from model_trainer.models.estimators import LabelEncodedClassifier

# The tuned metric in each library's own words, so early stopping watches what the search
# optimised; a metric without an equivalent (accuracy, f1, r2, a multiclass roc_auc for
# LightGBM) leaves the library's loss (logloss, l2), which log_loss and rmse are anyway. Not
# pr_auc: the libraries' average precision scores their class 1 (the later label in sorted
# order), not necessarily the positive class the project chose (the minority one).
BOOSTING_METRICS = {
    "lightgbm": {"roc_auc": "auc", "rmse": "rmse", "mae": "l1"},
    "xgboost": {"roc_auc": "auc", "rmse": "rmse", "mae": "mae"},
}


# the libraries' metric names (before any "@k") where a higher value is better
GREATER_IS_BETTER = ("auc", "aucpr", "average_precision", "map", "ndcg", "accuracy", "r2")


def watched_metric(style: str, metric: str | None, y: Any) -> str | None:
    """The library's name for the tuned metric, or None for its default loss."""
    watched = BOOSTING_METRICS.get(style, {}).get(metric or "")
    if style == "lightgbm" and watched == "auc" and len(np.unique(np.asarray(y))) != 2:
        return None  # LightGBM's auc is binary only
    return watched


def fit_stopping_early(
    pipeline: Pipeline,
    style: str,
    X_train: pd.DataFrame,
    y_train: Any,
    evaluation: Sequence[tuple[pd.DataFrame, Any]],
    patience: int | None,
    watched: str | None,
    fit_args: dict[str, Any] | None = None,
    train_first: bool = False,
) -> tuple[Pipeline, int | None, list[dict[str, list[float]]]]:
    """A clone of `pipeline` fit on the training rows as Pipeline.fit would fit it, its model
    scored at every round on each `evaluation` set (raw rows, through the fitted preprocessing)
    and, with `patience`, stopped at the best round of the last set. `train_first` scores the
    training rows too, first (LightGBM never stops on them). Returns the fitted pipeline, the
    rounds kept (None without patience) and each set's per-round history."""
    pipeline = clone(pipeline)
    # fit_transform, as Pipeline.fit does: the TargetEncoder cross-fits the training rows, where
    # fit then transform would encode each with its own label (a noise target: CV AUC 0.90)
    preprocessor = pipeline.named_steps["preprocess"]
    train_matrix = preprocessor.fit_transform(X_train, y_train)
    eval_set = [(preprocessor.transform(X), y) for X, y in evaluation]
    if "balance" in pipeline.named_steps:  # SMOTE: the training rows only, as in the pipeline
        train_matrix, y_train = pipeline.named_steps["balance"].fit_resample(train_matrix, y_train)
    if train_first:
        eval_set.insert(0, (train_matrix, y_train))
    estimator = pipeline.named_steps["model"]
    inner = estimator.estimator if isinstance(estimator, LabelEncodedClassifier) else estimator
    fit_args = fit_args or {}
    rounds = None
    if style == "lightgbm":
        import lightgbm

        callbacks = (
            [lightgbm.early_stopping(patience, first_metric_only=True, verbose=False)]
            if patience
            else []
        )
        estimator.fit(
            train_matrix,
            y_train,
            eval_set=eval_set,
            eval_metric=watched,
            callbacks=callbacks,
            **fit_args,
        )
        fitted = getattr(estimator, "estimator_", estimator)
        if patience:
            rounds = int(fitted.best_iteration_) or None
        history = list(fitted.evals_result_.values())
    elif style == "xgboost":
        inner.set_params(early_stopping_rounds=patience)
        if watched:
            inner.set_params(eval_metric=watched)
        estimator.fit(train_matrix, y_train, eval_set=eval_set, verbose=False, **fit_args)
        fitted = getattr(estimator, "estimator_", estimator)
        if patience:
            rounds = int(fitted.best_iteration) + 1
        history = list(fitted.evals_result().values())
    else:
        raise ConfigurationError(
            f"Unknown early_stopping style '{style}' in model.algorithms.",
            "Use lightgbm or xgboost, or remove the early_stopping key.",
        )
    return pipeline, rounds, history


def watched_curve(
    history: dict[str, list[float]], style: str, watched: str | None
) -> tuple[str, list[float], bool]:
    """The metric early stopping watched in one evaluation set's history (LightGBM lists
    eval_metric first, XGBoost stops on the last one), its values per round, and whether
    higher is better."""
    name = watched or list(history)[0 if style == "lightgbm" else -1]
    return name, [float(v) for v in history[name]], name.split("@")[0] in GREATER_IS_BETTER
