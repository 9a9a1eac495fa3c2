"""Figures for the report and MLflow: evaluation plots per task (the search's own are in
search_plots).

Nodes import this module when they draw, so matplotlib (0.3 s) is not loaded at start-up; a
train run loads it in the background while the search runs (hooks.prepare_run_tail)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
)

from model_trainer.tasks.ranking import RANKING_REPORT, per_group_metrics


def evaluation_figures(
    predictions: pd.DataFrame,
    importance: pd.DataFrame,
    task: Mapping[str, Any],
    learning_curves: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Figure]:
    """Confusion matrix, ROC and PR curves for classes; residual plots for regression; the
    learning curves of iterative models (boosting rounds, epochs) when there are some."""
    figures = prediction_figures(predictions, task)
    figures["feature_importance.png"] = importance_figure(importance)
    if learning_curves:
        figures["learning_curves.png"] = learning_curves_figure(learning_curves)
    return figures


def learning_curves_figure(curves: Sequence[Mapping[str, Any]]) -> Figure:
    """Train and validation values per step, one panel per model; the dashed line is the step
    the kept model ends at (early stopping's choice)."""
    figure, panels = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.2), squeeze=False)
    for axes, curve in zip(panels[0], curves, strict=True):
        train, validation = curve["train"], curve["validation"]
        steps = np.arange(1, len(train["values"]) + 1)
        axes.plot(steps, train["values"], label=f"train {train['metric']}", color="#4c72b0")
        shared = train["metric"] == validation["metric"]
        right = axes if shared else axes.twinx()
        right.plot(
            np.arange(1, len(validation["values"]) + 1),
            validation["values"],
            label=f"validation {validation['metric']}",
            color="#dd8452",
        )
        axes.axvline(curve["final_step"], color="grey", linestyle="--", label="kept model")
        axes.set(xlabel=curve["unit"], ylabel=train["metric"], title=f"{curve['model']}")
        if not shared:
            right.set_ylabel(validation["metric"])
            right.grid(False)
        handles = [*axes.get_legend_handles_labels()[0], *right.get_legend_handles_labels()[0]]
        axes.legend(handles=list(dict.fromkeys(handles)), fontsize="small")
    figure.suptitle("Learning curves")
    figure.tight_layout()
    return figure


def prediction_figures(
    predictions: pd.DataFrame, task: Mapping[str, Any], data_label: str = "test split"
) -> dict[str, Figure]:
    """The plots of `training.predictions_table`'s rows; `data_label` names them in titles."""
    figures: dict[str, Figure] = {}
    if task["type"] == "ranking":
        figures["ranking_by_group.png"] = ranking_by_group_figure(predictions, task, data_label)
    elif task["type"] == "clustering":
        figures["clusters.png"] = clusters_figure(predictions, data_label)
    elif task["type"] == "classification":
        figure, axes = plt.subplots(figsize=(5, 4.5))
        ConfusionMatrixDisplay.from_predictions(
            predictions["actual"].astype(str),
            predictions["predicted"].astype(str),
            ax=axes,
            colorbar=False,
        )
        axes.grid(False)  # the style's grid would cross the cells
        axes.set_title(f"Confusion matrix ({data_label})")
        figure.tight_layout()
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
                axes.set_title(f"{name.replace('_', ' ').upper()} ({data_label})")
                figure.tight_layout()
                figures[f"{name}.png"] = figure
        reliability = reliability_figure(predictions, task, data_label)
        if reliability is not None:
            figures["calibration.png"] = reliability
    else:
        residuals = predictions["actual"] - predictions["predicted"]
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
        left.scatter(predictions["predicted"], predictions["actual"], s=8, alpha=0.5)
        low = float(min(predictions["actual"].min(), predictions["predicted"].min()))
        high = float(max(predictions["actual"].max(), predictions["predicted"].max()))
        left.plot([low, high], [low, high], color="grey", linestyle="--")
        left.set(xlabel="predicted", ylabel="actual", title=f"Predicted vs actual ({data_label})")
        right.scatter(predictions["predicted"], residuals, s=8, alpha=0.5)
        right.axhline(0, color="grey", linestyle="--")
        right.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals")
        figure.tight_layout()
        figures["residuals.png"] = figure
    return figures


def reliability_figure(
    predictions: pd.DataFrame, task: Mapping[str, Any], data_label: str
) -> Figure | None:
    """The reliability diagram: in bins of equal rows, the mean predicted probability against
    the observed frequency (on the diagonal when calibrated), and how many rows fall where. For
    two classes, of the positive class; for more, of each row's most probable class (its
    confidence against its accuracy). None when the rows carry no probabilities."""
    classes = list(task["classes"])
    columns = [f"proba_{c}" for c in classes]
    if not set(columns) <= set(predictions) or len(predictions) < 2:
        return None
    actual = predictions["actual"].astype(str).to_numpy()
    if len(classes) == 2:
        positive = task.get("positive_class")
        positive = positive if f"proba_{positive}" in predictions else classes[1]
        probability = predictions[f"proba_{positive}"].to_numpy(dtype=float)
        happened, what = actual == str(positive), f"P(class {positive})"
    else:
        proba = predictions[columns].to_numpy(dtype=float)
        probability = proba.max(axis=1)
        happened = np.asarray(classes, dtype=str)[proba.argmax(axis=1)] == actual
        what = "the most probable class's probability"
    figure, (curve, counts) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=(3, 1), sharex=True)
    bins = int(min(10, max(2, len(predictions) // 20)))
    CalibrationDisplay.from_predictions(
        happened, probability, n_bins=bins, strategy="quantile", ax=curve, name="model"
    )
    curve.set(xlabel="", ylabel="observed frequency", title=f"Reliability ({data_label})")
    counts.hist(probability, bins=20, range=(0, 1), color="#4c72b0")
    counts.set(xlabel=f"predicted {what}", ylabel="rows")
    figure.tight_layout()
    return figure


def clusters_figure(predictions: pd.DataFrame, data_label: str) -> Figure:
    """Cluster sizes, and the rows on the first two principal components of their numeric
    columns (standardised), coloured by cluster: are the clusters apart or slices of one cloud?"""
    clusters = predictions["predicted"].astype(str)
    sizes = clusters.value_counts().sort_index()
    numeric = predictions.drop(columns=["predicted", "error", "actual"], errors="ignore")
    numeric = numeric.select_dtypes("number")
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.bar(sizes.index, sizes.to_numpy(), color="#4c72b0")
    left.set(xlabel="cluster (-1 = noise)", ylabel="rows", title=f"Cluster sizes ({data_label})")
    if numeric.shape[1] >= 2:
        values = numeric.fillna(numeric.median()).to_numpy(float)
        values = (values - values.mean(axis=0)) / np.where(
            values.std(axis=0) > 0, values.std(axis=0), 1
        )
        _, _, components = np.linalg.svd(values, full_matrices=False)
        projected = values @ components[:2].T
        for label in sizes.index:
            rows = (clusters == label).to_numpy()
            right.scatter(projected[rows, 0], projected[rows, 1], s=8, alpha=0.6, label=label)
        right.set(xlabel="PC 1", ylabel="PC 2", title="Numeric columns, first two components")
        right.legend(title="cluster", fontsize="small")
    else:
        right.set_axis_off()
    figure.tight_layout()
    return figure


def ranking_by_group_figure(
    predictions: pd.DataFrame, task: Mapping[str, Any], data_label: str
) -> Figure:
    """How NDCG, MAP and MRR spread over the groups: a mean can hide many badly ranked ones."""
    per_group = per_group_metrics(
        predictions["actual"], predictions["predicted"], predictions[task["group_column"]], task
    )
    figure, axes = plt.subplots(1, len(RANKING_REPORT), figsize=(12, 3.8), sharey=True)
    for axis, name in zip(axes, RANKING_REPORT, strict=True):
        values = per_group[name].dropna()
        axis.hist(values, bins=20, range=(0, 1), color="#4c72b0")
        axis.axvline(values.mean(), color="#c44e52", linestyle="--", label="mean")
        label = name.upper() + ("" if name == "mrr" else f"@{task['k']}")
        axis.set(xlabel=label, title=f"{label}: mean {values.mean():.3f} over {len(values)}")
    axes[0].set_ylabel("groups")
    axes[0].legend()
    figure.suptitle(f"Ranking quality per '{task['group_column']}' ({data_label})")
    figure.tight_layout()
    return figure


def importance_figure(importance: pd.DataFrame, top: int = 20) -> Figure:
    shown = importance.head(top).iloc[::-1]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(shown) + 1.5))
    axes.barh(shown["feature"], shown["importance"], xerr=shown["importance_std"], color="#4c72b0")
    axes.set(xlabel="drop in score when shuffled", title="Permutation feature importance (test)")
    figure.tight_layout()
    return figure


def explanation_figures(model_explanation: Mapping[str, Any], top: int = 15) -> dict[str, Figure]:
    """SHAP's summary of the explained rows (shap's beeswarm for one output: a dot per row and
    feature, coloured by the feature's value; mean |SHAP| per class for several) and the
    partial-dependence curves of the top features. None when the model was not explained."""
    explanation = model_explanation.get("explanation")
    if explanation is None:
        return {}
    figures = {"shap_summary.png": shap_summary_figure(explanation, top)}
    if model_explanation.get("partial_dependence"):
        figures["partial_dependence.png"] = partial_dependence_figure(
            model_explanation["partial_dependence"]
        )
    return figures


def shap_summary_figure(explanation: Any, top: int) -> Figure:
    shown = explanation.importance().head(top)
    if len(explanation.outputs) > 1:
        figure, axes = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.8))
        left = np.zeros(len(shown))
        for output in explanation.outputs:
            widths = shown[f"mean_abs_shap_{output}"].to_numpy()[::-1] / len(explanation.outputs)
            axes.barh(shown["feature"].iloc[::-1], widths, left=left, label=output)
            left += widths
        axes.legend(title="class", fontsize="small")
        axes.set(xlabel="mean |SHAP| (probability), averaged over classes")
    else:
        figure, axes = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.8))
        _beeswarm(axes, explanation, list(shown["feature"]))
        axes.set_xlabel(f"SHAP value (impact on {explanation.outputs[0]})")
    how = textwrap.fill(explanation.describe(), 80)  # exact, or estimated and why
    axes.set_title(f"SHAP values ({len(explanation.rows)} test rows)\n{how}", fontsize="small")
    figure.tight_layout()
    return figure


def _beeswarm(axes: Any, explanation: Any, features: list[str]) -> None:
    """shap's summary plot, drawn here (importing shap takes 2 s of numba): a dot per row and
    feature at its SHAP value, spread vertically where dots crowd, coloured from blue (the
    feature's low values) to red (high); grey where the feature is not a number."""
    rng = np.random.default_rng(0)
    colours = plt.get_cmap("coolwarm")
    for position, feature in enumerate(reversed(features)):
        shaps = explanation.values[:, explanation.columns.index(feature), 0]
        counts, edges = np.histogram(shaps, bins=min(50, max(len(shaps), 1)))
        crowd = counts[np.clip(np.digitize(shaps, edges) - 1, 0, len(counts) - 1)]
        spread = 0.4 * crowd / max(counts.max(), 1) * rng.uniform(-1, 1, len(shaps))
        values = explanation.rows[feature]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        ranks = values.rank(pct=True).to_numpy() if numeric else np.full(len(values), np.nan)
        colour = [colours(r) if np.isfinite(r) else "#999999" for r in ranks]
        axes.scatter(shaps, position + spread, s=9, c=colour, linewidths=0)
    axes.axvline(0, color="grey", linewidth=0.8)
    axes.set_yticks(range(len(features)), list(reversed(features)))
    scale = plt.cm.ScalarMappable(cmap=colours)
    bar = axes.figure.colorbar(scale, ax=axes, ticks=[0, 1], aspect=40, pad=0.02)
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label("feature value")


def partial_dependence_figure(curves: Sequence[Mapping[str, Any]]) -> Figure:
    """One panel per feature: the model's mean output with the feature set to each value."""
    figure, panels = plt.subplots(
        1, len(curves), figsize=(4 * len(curves), 3.6), squeeze=False, sharey=True
    )
    for axes, curve in zip(panels[0], curves, strict=True):
        positions = np.arange(len(curve["grid"]))
        for output, average in zip(curve["outputs"], curve["average"], strict=True):
            if curve["categorical"]:
                axes.plot(positions, average, marker="o", linestyle="", label=output)
            else:
                axes.plot(curve["grid"], average, label=output)
        if curve["categorical"]:
            axes.set_xticks(positions, [str(v)[:12] for v in curve["grid"]], rotation=45)
        axes.set(xlabel=curve["feature"])
    panels[0][0].set_ylabel(
        "mean prediction" if curves[0]["outputs"] == ["prediction"] else "mean probability"
    )
    if len(curves[0]["outputs"]) > 1:
        panels[0][-1].legend(fontsize="small")
    figure.suptitle("Partial dependence (test rows)")
    figure.tight_layout()
    return figure


def error_analysis_figures(
    predictions: pd.DataFrame,
    patterns: pd.DataFrame,
    task: Mapping[str, Any],
    data_label: str,
    top: int = 15,
) -> dict[str, Figure]:
    """The prediction plots, how the errors are spread, and the segments where they gather."""
    figures = prediction_figures(predictions, task, data_label)
    figures["error_distribution.png"] = error_distribution_figure(predictions, task, data_label)
    if not patterns.empty:
        figures["error_patterns.png"] = error_patterns_figure(patterns, top)
    return figures


def error_distribution_figure(
    predictions: pd.DataFrame, task: Mapping[str, Any], data_label: str
) -> Figure:
    if task["type"] == "regression":
        values = predictions["actual"] - predictions["predicted"]
        label = "actual - predicted"
    elif task["type"] == "ranking":
        values, label = predictions["error"], "distance from the rank its relevance earns (share)"
    elif task["type"] == "clustering":
        values, label = predictions["error"], "ambiguity: (1 - silhouette) / 2"
    else:
        values, label = predictions["error"], "1 - probability given to the actual class"
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.hist(values, bins=40, color="#4c72b0")
    axes.set(xlabel=label, ylabel="rows", title=f"Error distribution ({data_label})")
    figure.tight_layout()
    return figure


def error_patterns_figure(patterns: pd.DataFrame, top: int) -> Figure:
    """The segments with the highest mean error relative to the overall mean (1 = average)."""
    shown = patterns.head(top).iloc[::-1]
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.5))
    axes.barh(shown["feature"] + ": " + shown["segment"], shown["lift"], color="#dd8452")
    axes.axvline(1.0, color="grey", linestyle="--")
    axes.set(xlabel="mean error / overall mean error", title="Where the errors concentrate")
    figure.tight_layout()
    return figure


def drift_figures(drift: Mapping[str, Any], top: int) -> dict[str, Figure]:
    """PSI per feature against the threshold, then reference against current shares for the
    predictions and the `top` most drifted features (file names keep that order)."""
    results = drift["features"]
    if not results:
        return {}
    ranked = results[::-1]
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(ranked) + 1.5))
    colours = ["#c44e52" if r["drifted"] else "#4c72b0" for r in ranked]
    axes.barh([r["feature"] for r in ranked], [r["psi"] for r in ranked], color=colours)
    axes.axvline(drift["psi_threshold"], color="grey", linestyle="--")
    axes.set(xlabel="population stability index", title="Drift per feature (red: over threshold)")
    figure.tight_layout()
    figures = {"00_psi.png": figure}
    shown = ([drift["prediction"]] if drift.get("prediction") else []) + results[:top]
    for index, result in enumerate(shown, start=1):
        name = re.sub(r"[^\w.-]+", "_", result["feature"]).strip("_")
        figures[f"{index:02d}_{name}.png"] = shares_figure(result)
    return figures


def shares_figure(result: Mapping[str, Any]) -> Figure:
    bins = pd.DataFrame(result["bins"])
    positions = np.arange(len(bins))
    figure, axes = plt.subplots(figsize=(max(5, 0.5 * len(bins) + 2), 4))
    axes.bar(positions - 0.2, bins["reference"], width=0.4, label="training", color="#4c72b0")
    axes.bar(positions + 0.2, bins["current"], width=0.4, label="scored", color="#dd8452")
    axes.set_xticks(positions, bins["bin"], rotation=45, ha="right")
    axes.set(ylabel="share of rows", title=f"{result['feature']}: PSI {result['psi']:.3g}")
    axes.legend()
    figure.tight_layout()
    return figure
