"""Figures for the report and MLflow: evaluation plots per task, and the search's own plots."""

from __future__ import annotations

import base64
import logging
import warnings
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
)

logger = logging.getLogger(__name__)


def evaluation_figures(
    predictions: pd.DataFrame,
    importance: pd.DataFrame,
    task: Mapping[str, Any],
) -> dict[str, Figure]:
    """Confusion matrix, ROC and PR curves for classes; residual plots for regression."""
    figures: dict[str, Figure] = {}
    if task["type"] == "classification":
        figure, axes = plt.subplots(figsize=(5, 4.5))
        ConfusionMatrixDisplay.from_predictions(
            predictions["actual"].astype(str),
            predictions["predicted"].astype(str),
            ax=axes,
            colorbar=False,
        )
        axes.set_title("Confusion matrix (test split)")
        figures["confusion_matrix.png"] = figure
        positive = task.get("positive_class")
        if f"proba_{positive}" in predictions:
            is_positive = predictions["actual"] == positive
            for name, display in (
                ("roc_curve", RocCurveDisplay),
                ("pr_curve", PrecisionRecallDisplay),
            ):
                figure, axes = plt.subplots(figsize=(5, 4.5))
                display.from_predictions(
                    is_positive, predictions[f"proba_{positive}"], ax=axes, name=f"class {positive}"
                )
                axes.set_title(f"{name.replace('_', ' ').upper()} (test split)")
                figures[f"{name}.png"] = figure
    else:
        residuals = predictions["actual"] - predictions["predicted"]
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
        left.scatter(predictions["predicted"], predictions["actual"], s=8, alpha=0.5)
        low = float(min(predictions["actual"].min(), predictions["predicted"].min()))
        high = float(max(predictions["actual"].max(), predictions["predicted"].max()))
        left.plot([low, high], [low, high], color="grey", linestyle="--")
        left.set(xlabel="predicted", ylabel="actual", title="Predicted vs actual (test split)")
        right.scatter(predictions["predicted"], residuals, s=8, alpha=0.5)
        right.axhline(0, color="grey", linestyle="--")
        right.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals")
        figure.tight_layout()
        figures["residuals.png"] = figure
    figures["feature_importance.png"] = importance_figure(importance)
    return figures


def importance_figure(importance: pd.DataFrame, top: int = 20) -> Figure:
    shown = importance.head(top).iloc[::-1]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(shown) + 1.5))
    axes.barh(shown["feature"], shown["importance"], xerr=shown["importance_std"], color="#4c72b0")
    axes.set(xlabel="drop in score when shuffled", title="Permutation feature importance (test)")
    figure.tight_layout()
    return figure


def search_figures(study: optuna.Study) -> dict[str, Figure]:
    """History, parameter importance and parallel coordinates; those that need more trials
    than ran are left out."""
    from optuna.visualization import matplotlib as optuna_plots

    makers = {
        "optimization_history.png": optuna_plots.plot_optimization_history,
        "param_importances.png": optuna_plots.plot_param_importances,
        "parallel_coordinate.png": optuna_plots.plot_parallel_coordinate,
    }
    figures: dict[str, Figure] = {}
    for name, make in makers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                axes = make(study)
            except (ValueError, RuntimeError) as exc:
                logger.info("Search plot %s left out: %s", name, exc)
                continue
        axes = axes.flat[0] if isinstance(axes, np.ndarray) else axes
        figure = axes.get_figure()
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figures[name] = figure
    return figures


def to_data_uri(png: bytes) -> str:
    """A PNG the HTML report can embed, so it works offline as one file."""
    return "data:image/png;base64," + base64.b64encode(png).decode()
