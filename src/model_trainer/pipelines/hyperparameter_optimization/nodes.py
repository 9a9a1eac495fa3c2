"""Splits and configuration -> a filled, stored Optuna study and its plots."""

from __future__ import annotations

import logging
from typing import Any

import optuna
import pandas as pd
from matplotlib.figure import Figure

from model_trainer import tuning
from model_trainer.plots import search_figures

logger = logging.getLogger(__name__)


def optimize_hyperparameters(
    train_split: pd.DataFrame,
    validation_split: pd.DataFrame,
    task: dict[str, Any],
    feature_types: dict[str, Any],
    model_configuration: dict[str, Any],
    settings: dict[str, Any],
) -> tuple[optuna.Study, dict[str, Any], pd.DataFrame]:
    """CV over train + validation; the test split is never seen here."""
    import mlflow

    target = feature_types["target"]
    rows = pd.concat([train_split, validation_split], ignore_index=True)
    study, summary = tuning.search(
        rows.drop(columns=[target]),
        rows[target],
        task=task,
        feature_types=feature_types,
        configuration=model_configuration,
        settings=settings,
        mlflow_parent=mlflow.active_run(),
    )
    logger.info(
        "Best trial %d: %s with CV %s %.5g.",
        summary["best_trial"],
        summary["algorithm"],
        summary["metric"],
        summary["best_value"],
    )
    return study, summary, tuning.trials_table(study)


def plot_search(study: optuna.Study) -> tuple[dict[str, Figure], dict[str, float]]:
    return search_figures(study), tuning.param_importances(study)
