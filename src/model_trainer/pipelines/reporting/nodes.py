"""Results -> metrics files, plots, worst predictions, recommendations and the HTML report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from model_trainer.datasets.figure_dataset import SavableFigure
from model_trainer.evaluation.compare import previous_version
from model_trainer.reporting import report as reporting
from model_trainer.reporting.decisions import decision_record
from model_trainer.reporting.pages import render_html
from model_trainer.table.leak_audit import leaks
from model_trainer.tasks import clustering
from model_trainer.tracking.runs import log_diagnosis_tags

logger = logging.getLogger(__name__)


def summarize_metrics(
    test_metrics: dict[str, float],
    baseline_metrics: dict[str, dict[str, float]],
    study_summary: dict[str, Any],
    training_info: dict[str, Any],
    model_configuration: dict[str, Any],
) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
    """metrics.json (the model on the test split), training_metrics.json (how it got there),
    and the same figures as MLflow metrics."""
    training_metrics = {
        "metric": model_configuration["metric"],
        "algorithm": training_info["algorithm"],
        "best_params": training_info["params"],
        "ensemble": training_info.get("ensemble"),
        "ensemble_cv_score": (study_summary.get("ensemble") or {}).get("cv_score"),
        "ensemble_fold_scores": (study_summary.get("ensemble") or {}).get("fold_scores"),
        "cross_validation": study_summary["cross_validation"],
        "baselines": baseline_metrics,
        "early_stopping": training_info["early_stopping"],
        "n_training_rows": training_info["n_training_rows"],
        "study": {
            k: study_summary[k] for k in ("study_name", "n_trials", "n_complete", "n_pruned")
        },
        "convergence_warnings": training_info["convergence_warnings"],
    }
    cv = study_summary["cross_validation"]
    tracked = {
        **{f"test_{k}": v for k, v in test_metrics.items()},
        **{f"{b}_test_{k}": v for b, values in baseline_metrics.items() for k, v in values.items()},
        "cv_mean": cv["mean"],
        "cv_std": cv["std"],
    }
    mlflow_metrics = {
        name: {"value": float(value), "step": 0}
        for name, value in tracked.items()
        if pd.notna(value)
    }
    return test_metrics, training_metrics, mlflow_metrics


def plot_evaluation(
    test_predictions: pd.DataFrame,
    feature_importance: pd.DataFrame,
    model_explanation: dict[str, Any],
    task: dict[str, Any],
    training_info: dict[str, Any],
) -> dict[str, SavableFigure]:
    from model_trainer.reporting.plots import (  # matplotlib loads with the first plot
        evaluation_figures,
        explanation_figures,
    )

    return {
        **evaluation_figures(
            test_predictions, feature_importance, task, training_info.get("learning_curves", [])
        ),
        **explanation_figures(model_explanation),
    }


def select_worst_predictions(
    test_predictions: pd.DataFrame, settings: dict[str, Any]
) -> pd.DataFrame:
    return test_predictions.head(int(settings["worst_predictions"]))


def profile_clusters(
    test_predictions: pd.DataFrame, task: dict[str, Any], feature_types: dict[str, Any]
) -> pd.DataFrame:
    """What each cluster of the test split looks like; no rows for the other tasks."""
    if task["type"] != "clustering":
        return pd.DataFrame({"cluster": []})
    features = [c for c in test_predictions.columns if c in feature_types["columns"]]
    return clustering.cluster_profiles(
        test_predictions[features], test_predictions["predicted"], feature_types
    )


def compare_with_previous_version(
    test_split: pd.DataFrame,
    model_card: dict[str, Any],
    model_registration: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The previous registered version on this run's test split, for the report's table."""
    compared = previous_version(
        model_registration,
        model_card,
        test_split,
        Path(settings["models_dir"]),
        Path(settings["splits_dir"]),
    )
    if "metrics" in compared:
        metric = model_card["metric"]
        logger.info(
            "Previous version %s on this test split: %s %.5g (trained on %s of these rows).",
            compared["model"],
            metric,
            compared["metrics"][metric],
            "?" if compared["trained_on_share"] is None else f"{compared['trained_on_share']:.0%}",
        )
    return compared


def recommend(
    test_metrics: dict[str, float],
    baseline_metrics: dict[str, dict[str, float]],
    study_summary: dict[str, Any],
    training_info: dict[str, Any],
    task: dict[str, Any],
    model_configuration: dict[str, Any],
    leak_audit: dict[str, Any],
    settings: dict[str, Any],
) -> list[dict[str, str]]:
    """The leak audit's findings first (the report shows them under its headline), then the
    rules' recommendations."""
    findings = [
        {
            "finding": f"possible leak: {f['check'].replace('_', ' ')}",
            "evidence": f["evidence"],
            "advice": f["advice"],
            "leak": True,
        }
        for f in leaks(leak_audit["findings"])
    ]
    findings += reporting.recommendations(
        model_configuration["metric"],
        task,
        test_metrics,
        baseline_metrics,
        {**study_summary["cross_validation"], "strategy": model_configuration["cv"]["strategy"]},
        training_info,
        settings["recommendations"],
        (model_configuration.get("imbalance") or {}).get("strategy", "none"),
    )
    for finding in findings:
        logger.info("Recommendation: %s: %s", finding["finding"], finding["evidence"])
    log_diagnosis_tags(findings)
    return findings


def record_decisions(
    task: dict[str, Any],
    feature_types: dict[str, Any],
    model_configuration: dict[str, Any],
    study_summary: dict[str, Any],
    training_info: dict[str, Any],
    tuning: dict[str, Any],
    metric: str,
    leak_audit: dict[str, Any],
) -> list[dict[str, str]]:
    record = decision_record(
        task=task,
        feature_types=feature_types,
        configuration=model_configuration,
        study_summary=study_summary,
        training_info=training_info,
        tuning=tuning,
        metric_setting=metric,
        leak_audit=leak_audit,
    )
    logger.info("Decision record: %d automatic decisions, each with its conf key.", len(record))
    return record


def render_report(
    test_metrics: dict[str, float],
    baseline_metrics: dict[str, dict[str, float]],
    study_summary: dict[str, Any],
    model_configuration: dict[str, Any],
    task: dict[str, Any],
    feature_types: dict[str, Any],
    evaluation_plots: dict[str, bytes],
    search_plots: dict[str, bytes],
    feature_importance: pd.DataFrame,
    shap_importance: pd.DataFrame,
    worst_predictions: pd.DataFrame,
    recommendations: list[dict[str, str]],
    decisions: list[dict[str, str]],
    node_resources: dict[str, Any],
    model_registration: dict[str, Any],
    dataset: dict[str, Any],
    cluster_profiles: pd.DataFrame,
    previous_version: dict[str, Any],
) -> str:
    metric = model_configuration["metric"]
    simple = model_configuration["simple_baseline"]
    cv = study_summary["cross_validation"]
    summary = {
        **study_summary,
        "target": feature_types["target"],
        "task": task["type"],
        "data_path": dataset["path"],
        "n_rows": task["n_rows"],
        "run_id": model_registration.get("run_id", "none"),
        "test_score": test_metrics[metric],
        "dummy_score": baseline_metrics["dummy"][metric],
        "simple_name": simple,
        "simple_score": baseline_metrics[simple][metric],
        "cv_mean": cv["mean"],
        "cv_std": cv["std"],
        "cv_folds": cv["folds"],
        "cv_strategy": model_configuration["cv"]["strategy"],
        "cv_reason": model_configuration["cv"]["reason"],
    }
    earlier = {}
    if "metrics" in previous_version:
        share = previous_version.get("trained_on_share")
        seen = "" if not share else f", trained on {share:.0%} of these rows"
        earlier[f"previous version ({previous_version['model']}{seen})"] = previous_version[
            "metrics"
        ]
    table = pd.DataFrame({"tuned model": test_metrics, **baseline_metrics, **earlier}).T
    return render_html(
        summary=summary,
        metrics_table=table,
        figures=evaluation_plots,
        search_figures=search_plots,
        feature_importance=feature_importance.merge(
            shap_importance[["feature", "mean_abs_shap"]], on="feature", how="left"
        )
        if len(shap_importance)
        else feature_importance,
        worst_predictions=worst_predictions,
        leaks=[f for f in recommendations if f.get("leak")],
        findings=[f for f in recommendations if not f.get("leak")],
        decisions=decisions,
        node_resources=node_resources,
        feature_types=feature_types,
        cluster_profiles=cluster_profiles,
    )
