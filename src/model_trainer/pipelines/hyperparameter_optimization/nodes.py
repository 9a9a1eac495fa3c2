"""Splits and configuration -> a filled, stored Optuna study and its plots."""

from __future__ import annotations

import logging
from typing import Any

import optuna
import pandas as pd

from model_trainer.datasets.figure_dataset import SavableFigure
from model_trainer.evaluation import explanations
from model_trainer.search import trial_records, tuning
from model_trainer.tasks import clustering

logger = logging.getLogger(__name__)


def optimize_hyperparameters(
    train_split: pd.DataFrame,
    validation_split: pd.DataFrame,
    task: dict[str, Any],
    feature_types: dict[str, Any],
    model_configuration: dict[str, Any],
    settings: dict[str, Any],
    calibration: str,
    bagging: dict[str, Any],
    explanation_settings: dict[str, Any],
) -> tuple[optuna.Study, dict[str, Any], pd.DataFrame]:
    """CV over train + validation (for clustering, the search and fold stability); the test
    split is never seen here. The settings read after the search are checked before it."""
    import mlflow

    explanations.check_method(explanation_settings["method"])

    target = feature_types["target"]
    rows = pd.concat([train_split, validation_split], ignore_index=True)
    X, y = (rows.drop(columns=[target]), rows[target]) if target else (rows, None)
    common = {
        "feature_types": feature_types,
        "configuration": model_configuration,
        "settings": settings,
        "mlflow_parent": mlflow.active_run(),
    }
    if task["type"] == "clustering":  # y, if given, is the reference the clusters are held to
        study, summary = clustering.search(X, y, **common)
    else:
        study, summary = tuning.search(
            X, y, task=task, calibration=calibration, bagging=bagging, **common
        )
    logger.info(
        "%s trial %d: %s with CV %s %.5g.",
        "Best" if len(summary["objectives"]) == 1 else "Chosen Pareto-front",
        summary["best_trial"],
        summary["algorithm"],
        summary["metric"],
        summary["best_value"],
    )
    return study, summary, trial_records.trials_table(study, summary["objectives"])


def plot_search(
    study: optuna.Study, study_summary: dict[str, Any]
) -> tuple[dict[str, SavableFigure], dict[str, float]]:
    """With several objectives, the Pareto front too, the chosen trial marked."""
    # matplotlib loads with the first plot
    from model_trainer.reporting.search_plots import search_figures

    figures = search_figures(study, study_summary["objectives"], study_summary["best_trial"])
    return figures, trial_records.param_importances(study)
