"""What the numbers mean: headline metrics against baselines, rule-based recommendations, and
one self-contained HTML page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jinja2
import pandas as pd

from model_trainer.metrics import get_metric
from model_trainer.plots import to_data_uri

FIXED_SCALE_METRICS = ("r2",)


def relative_change(metric: str, task: Mapping[str, Any], value: float, reference: float) -> float:
    """Improvement of `value` over `reference`, > 0 is better: as a fraction of the reference, or
    as a plain difference for metrics on a fixed 0..1 scale whose baseline sits near 0 (r2)."""
    sign = 1.0 if get_metric(metric, task).greater_is_better else -1.0
    if metric in FIXED_SCALE_METRICS:
        return sign * (value - reference)
    if reference == 0:
        return 0.0
    return sign * (value - reference) / abs(reference)


def recommendations(
    metric: str,
    task: Mapping[str, Any],
    test_metrics: Mapping[str, float],
    baseline_metrics: Mapping[str, Mapping[str, float]],
    cross_validation: Mapping[str, Any],
    training_info: Mapping[str, Any],
    thresholds: Mapping[str, float],
) -> list[dict[str, str]]:
    """Each finding with its evidence and what to try; the rules are the thresholds in conf."""
    found: list[dict[str, str]] = []
    test_value, cv_mean = test_metrics[metric], cross_validation["mean"]
    gap = relative_change(metric, task, cv_mean, test_value)
    if gap > thresholds["overfitting_gap"]:
        found.append(
            {
                "finding": "overfitting",
                "evidence": f"CV {metric} {cv_mean:.4g} is {gap:.1%} better than test "
                f"{test_value:.4g}.",
                "advice": "Regularize more (smaller trees, more min samples per leaf, stronger "
                "penalties), add rows, or remove features that leak the target.",
            }
        )
    dummy = baseline_metrics.get("dummy", {}).get(metric)
    if (
        dummy is not None
        and relative_change(metric, task, test_value, dummy) < thresholds["baseline_margin"]
    ):
        found.append(
            {
                "finding": "underfitting",
                "evidence": f"test {metric} {test_value:.4g} is barely better than the dummy's "
                f"{dummy:.4g}.",
                "advice": "Check that the features carry signal about the target, add features, or "
                "give the search more trials and more flexible algorithms.",
            }
        )
    for name, values in baseline_metrics.items():
        if name != "dummy" and relative_change(metric, task, values[metric], test_value) > 0:
            found.append(
                {
                    "finding": "simple model is as good",
                    "evidence": f"{name} scores {values[metric]:.4g} against the tuned model's "
                    f"{test_value:.4g} on {metric}.",
                    "advice": f"Prefer {name}: as accurate, easier to explain and to serve.",
                }
            )
    if cv_mean and cross_validation["std"] / abs(cv_mean) > thresholds["unstable_cv_std"]:
        found.append(
            {
                "finding": "unstable folds",
                "evidence": f"CV std {cross_validation['std']:.4g} on a mean of {cv_mean:.4g}.",
                "advice": "Use more folds or repeated CV, and check for subgroups or outliers.",
            }
        )
    counts = task.get("class_counts") or {}
    if (
        counts
        and max(counts.values()) / max(min(counts.values()), 1) > thresholds["imbalance_ratio"]
    ):
        found.append(
            {
                "finding": "imbalanced classes",
                "evidence": f"class sizes {counts}.",
                "advice": "Judge by roc_auc, pr_auc or balanced accuracy; try class weights or a "
                "tuned decision threshold.",
            }
        )
    for message in training_info.get("convergence_warnings", []):
        found.append(
            {
                "finding": "convergence warning",
                "evidence": message,
                "advice": "Scale inputs, raise max_iter, or strengthen regularization.",
            }
        )
    return found


def render_html(
    *,
    summary: Mapping[str, Any],
    metrics_table: pd.DataFrame,
    figures: Mapping[str, bytes],
    search_figures: Mapping[str, bytes],
    feature_importance: pd.DataFrame,
    worst_predictions: pd.DataFrame,
    findings: list[dict[str, str]],
    feature_types: Mapping[str, Any],
) -> str:
    """One HTML file with every image inlined: no CDN, readable offline and as an artifact."""
    template = jinja2.Environment(autoescape=True).from_string(
        resources.files("model_trainer").joinpath("templates/report.html").read_text()
    )
    return template.render(
        summary=summary,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        metrics_html=metrics_table.to_html(float_format="{:.4g}".format, border=0),
        figures={name: to_data_uri(f) for name, f in figures.items()},
        search_figures={name: to_data_uri(f) for name, f in search_figures.items()},
        importance_html=feature_importance.head(20).to_html(
            index=False, float_format="{:.4g}".format, border=0
        ),
        worst_html=worst_predictions.to_html(index=False, float_format="{:.4g}".format, border=0),
        findings=findings,
        feature_types=feature_types,
    )
