"""The HTML reports, one self-contained page per pipeline (train, evaluate, inference,
retrain): every image inlined, so a report reads offline and as one MLflow artifact."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jinja2
import pandas as pd


def to_data_uri(png: bytes) -> str:
    """A PNG the HTML report can embed, so it works offline as one file."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def render_html(
    *,
    summary: Mapping[str, Any],
    metrics_table: pd.DataFrame,
    figures: Mapping[str, bytes],
    search_figures: Mapping[str, bytes],
    feature_importance: pd.DataFrame,
    worst_predictions: pd.DataFrame,
    findings: list[dict[str, str]],
    decisions: list[dict[str, str]],
    node_resources: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    cluster_profiles: pd.DataFrame | None = None,
    leaks: list[dict[str, str]] = (),
) -> str:
    """One HTML file with every image inlined: no CDN, readable offline and as an artifact."""
    template = jinja2.Environment(autoescape=True).from_string(
        resources.files("model_trainer.reporting").joinpath("templates/report.html").read_text()
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
        leaks=leaks,
        decisions=decisions,
        time_spent=time_spent(node_resources),
        feature_types=feature_types,
        profiles_html=cluster_profiles.to_html(index=False, float_format="{:.4g}".format, border=0)
        if cluster_profiles is not None and len(cluster_profiles)
        else None,
    )


def time_spent(node_resources: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The nodes that ran before the report, slowest first, each with its share of their time."""
    nodes = node_resources.get("nodes", {})
    total = sum(usage["wall_s"] for usage in nodes.values()) or 1.0
    return [
        {"node": name, **usage, "share": usage["wall_s"] / total}
        for name, usage in sorted(nodes.items(), key=lambda item: -item[1]["wall_s"])
    ]


TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("model_trainer.reporting", "templates"), autoescape=True
)
AT_TRAINING = "this model at training (its test split)"


def comparison_table(comparison: Mapping[str, Any]) -> pd.DataFrame:
    """This model, the dummy and the earlier versions scored on the same rows, then this model's
    score at training for reference; the primary metric first."""
    rows = {"this model": comparison["metrics"], "dummy": comparison["dummy"]}
    for earlier in comparison["earlier_versions"]:
        if "metrics" in earlier:
            rows[earlier["model"]] = earlier["metrics"]
    rows[AT_TRAINING] = comparison["at_training"]
    table = pd.DataFrame(rows).T
    metric = comparison["metric"]
    return table[[metric, *(c for c in table.columns if c != metric)]]


def render_evaluation_html(
    *,
    comparison: Mapping[str, Any],
    breakdown: pd.DataFrame,
    patterns: pd.DataFrame,
    worst_predictions: pd.DataFrame,
    findings: list[dict[str, str]],
    figures: Mapping[str, bytes],
) -> str:
    """The evaluate pipeline's report, one self-contained file like the training report."""
    table = comparison_table(comparison)
    return TEMPLATES.get_template("evaluation_report.html").render(
        comparison=comparison,
        dummy_score=comparison["dummy"][comparison["metric"]],
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        comparison_html=table.to_html(float_format="{:.4g}".format, border=0),
        breakdown_html=_table_html(breakdown),
        patterns_html=_table_html(patterns.head(20)),
        worst_html=_table_html(worst_predictions),
        findings=findings,
        figures={name: to_data_uri(f) for name, f in figures.items()},
    )


def render_drift_html(
    *,
    drift: Mapping[str, Any],
    model: Mapping[str, Any],
    predictions: Mapping[str, Any],
    figures: Mapping[str, bytes],
) -> str:
    """The inference pipeline's report: what was scored, and its drift from the training data."""
    columns = [
        "feature", "type", "psi", "drifted", "test", "statistic", "p_value", "significant",
        "reference_missing", "current_missing",
    ]  # fmt: skip
    features = pd.DataFrame(drift["features"], columns=columns)
    return TEMPLATES.get_template("drift_report.html").render(
        drift=drift,
        model=model,
        predictions=predictions,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        features_html=_table_html(features),
        figures={name: to_data_uri(f) for name, f in figures.items()},
    )


def _table_html(table: pd.DataFrame) -> str:
    return table.to_html(index=False, float_format="{:.4g}".format, border=0, na_rep="")


def render_retrain_html(*, comparison: Mapping[str, Any], registration: Mapping[str, Any]) -> str:
    """The retrain pipeline's report: champion and challenger on the same new rows, and why the
    challenger was or was not promoted."""
    scores = pd.DataFrame(comparison["metrics"]).rename_axis("metric").reset_index()
    return TEMPLATES.get_template("retrain_report.html").render(
        comparison=comparison,
        registration=registration,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        scores_html=_table_html(scores),
    )
