"""A model and labelled data named at run time -> metrics against a dummy and the model's earlier
registered versions, where its errors are, recommendations and a report, all logged to MLflow."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from model_trainer.datasets.figure_dataset import SavableFigure
from model_trainer.evaluation import compare
from model_trainer.evaluation import holdout as evaluation
from model_trainer.evaluation.error_analysis import breakdown, error_patterns
from model_trainer.evaluation.held_out import predictions_table
from model_trainer.reporting import report as reporting
from model_trainer.reporting.pages import render_evaluation_html
from model_trainer.serving.model_store import StoredModel, load_stored_model

logger = logging.getLogger(__name__)


def load_model_to_evaluate(settings: dict[str, Any]) -> StoredModel:
    """Runs first, so a missing data path is reported (naming evaluation.data) before the
    catalog tries to read it."""
    evaluation.require_data_path(settings.get("data"), "evaluation.data", "evaluate")
    stored = load_stored_model(
        settings.get("model"),
        Path(settings["models_dir"]),
        trust_unverified=bool(settings.get("trust_unverified", False)),
    )
    logger.info("Evaluating the model %s on %s.", stored.source, settings["data"])
    return stored


def check_evaluation_data(
    evaluation_stored_model: StoredModel, evaluation_table: pd.DataFrame, settings: dict[str, Any]
) -> pd.DataFrame:
    return evaluation.check_labelled_rows(
        evaluation_table, evaluation_stored_model.card, f"the evaluation data '{settings['data']}'"
    )


def predict_evaluation_rows(
    evaluation_stored_model: StoredModel, evaluation_rows: pd.DataFrame
) -> pd.DataFrame:
    """Every row with its features, prediction and error, worst first."""
    card = evaluation_stored_model.card
    return predictions_table(
        evaluation_stored_model.model,
        evaluation_rows[card["input_columns"]],
        evaluation_rows[card["target"]],
        evaluation.model_task(card),
    )


def compare_models(
    evaluation_stored_model: StoredModel, evaluation_rows: pd.DataFrame, settings: dict[str, Any]
) -> dict[str, Any]:
    comparison = compare.compare_models(
        evaluation_stored_model,
        evaluation_rows,
        Path(settings["models_dir"]),
        Path(settings["splits_dir"]),
        int(settings["earlier_versions"]),
    )
    metric = comparison["metric"]
    logger.info(
        "%s: %.5g on %d rows (dummy %.5g, %.5g at training).",
        metric,
        comparison["metrics"][metric],
        len(evaluation_rows),
        comparison["dummy"][metric],
        comparison["at_training"].get(metric, float("nan")),
    )
    return {**comparison, "data": {"path": settings["data"], "rows": len(evaluation_rows)}}


def analyse_errors(
    evaluation_predictions: pd.DataFrame,
    evaluation_stored_model: StoredModel,
    settings: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per class (or target range), per feature segment, and the worst rows."""
    card = evaluation_stored_model.card
    patterns = settings["error_patterns"]
    return (
        breakdown(evaluation_predictions, evaluation.model_task(card), int(patterns["bins"])),
        error_patterns(evaluation_predictions, card["features"], patterns),
        evaluation_predictions.head(int(settings["worst_predictions"])),
    )


def plot_evaluation_charts(
    evaluation_predictions: pd.DataFrame,
    evaluation_error_patterns: pd.DataFrame,
    evaluation_stored_model: StoredModel,
) -> dict[str, SavableFigure]:
    from model_trainer.reporting.plots import (
        error_analysis_figures,  # matplotlib loads with the first plot
    )

    return error_analysis_figures(
        evaluation_predictions,
        evaluation_error_patterns,
        evaluation.model_task(evaluation_stored_model.card),
        "evaluation data",
    )


def recommend_after_evaluation(
    evaluation_comparison: dict[str, Any],
    evaluation_breakdown: pd.DataFrame,
    evaluation_error_patterns: pd.DataFrame,
    evaluation_rows: pd.DataFrame,
    evaluation_stored_model: StoredModel,
    settings: dict[str, Any],
) -> list[dict[str, str]]:
    card = evaluation_stored_model.card
    findings = reporting.evaluation_recommendations(
        evaluation_comparison,
        evaluation_breakdown,
        evaluation_error_patterns,
        {name: float(evaluation_rows[name].isna().mean()) for name in card["features"]},
        card,
        settings["recommendations"],
    )
    for finding in findings:
        logger.info("Recommendation: %s: %s", finding["finding"], finding["evidence"])
    return findings


def track_evaluation(evaluation_comparison: dict[str, Any]) -> dict[str, dict[str, float]]:
    """This model's metrics under their own names (comparable across evaluate runs in the MLflow
    UI), the dummy's and earlier versions' with a prefix."""
    tracked = {
        **evaluation_comparison["metrics"],
        **{f"dummy_{k}": v for k, v in evaluation_comparison["dummy"].items()},
        "n_rows": evaluation_comparison["data"]["rows"],
    }
    for earlier in evaluation_comparison["earlier_versions"]:
        version = earlier["model"].rsplit("/", 1)[-1]
        tracked.update({f"v{version}_{k}": v for k, v in earlier.get("metrics", {}).items()})
    return {name: {"value": float(v), "step": 0} for name, v in tracked.items() if pd.notna(v)}


def render_evaluation_report(
    evaluation_comparison: dict[str, Any],
    evaluation_breakdown: pd.DataFrame,
    evaluation_error_patterns: pd.DataFrame,
    evaluation_worst_predictions: pd.DataFrame,
    evaluation_findings: list[dict[str, str]],
    evaluation_charts: dict[str, bytes],
) -> str:
    return render_evaluation_html(
        comparison=evaluation_comparison,
        breakdown=evaluation_breakdown,
        patterns=evaluation_error_patterns,
        worst_predictions=evaluation_worst_predictions,
        findings=evaluation_findings,
        figures=evaluation_charts,
    )
