"""Splits and configuration -> a filled, stored Optuna study and its plots."""

from __future__ import annotations

import logging
from typing import Any

import optuna
import pandas as pd
from matplotlib.figure import Figure

from model_trainer import tuning
from model_trainer.ensemble import OutOfFoldPredictions
from model_trainer.metrics import get_metric
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
    study_name = settings.get("study_name") or tuning.study_name_for(
        data=tuning.data_fingerprint(rows),
        target=target,
        task=task["type"],
        metric=model_configuration["metric"],
        space=model_configuration["search_space"],
        cv=model_configuration["cv"],
    )
    metric = get_metric(model_configuration["metric"], task)
    ensemble_settings = settings.get("ensemble") or {}
    out_of_fold = (
        OutOfFoldPredictions(
            keep=int(ensemble_settings.get("max_candidates", 20)),
            greater_is_better=metric.greater_is_better,
        )
        if ensemble_settings.get("enabled", True)
        else None
    )
    study = tuning.run_study(
        rows.drop(columns=[target]),
        rows[target],
        task=task,
        feature_types=feature_types,
        configuration=model_configuration,
        settings=settings,
        study_name=study_name,
        mlflow_parent=mlflow.active_run(),
        out_of_fold=out_of_fold,
    )
    summary = tuning.summarize_study(
        study, model_configuration["algorithms"], model_configuration["metric"], settings
    )
    if out_of_fold is not None:
        summary["ensemble"] = tuning.ensemble_of_best_trials(
            study,
            out_of_fold,
            rows[target],
            task,
            model_configuration,
            int(ensemble_settings.get("max_size", 25)),
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
