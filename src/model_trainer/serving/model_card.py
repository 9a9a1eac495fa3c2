"""The model card: what evaluate, deploy, serve and inference need to know about a saved model
without opening it (its input schema, task, classes, metrics, data and library versions)."""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Mapping
from typing import Any

from model_trainer.serving.integrity import CARD_KEY
from model_trainer.tracking.runs import pinned_requirements

# What scoring a ranking needs besides the rows: the groups, the grades, k and what is relevant.
RANKING_KEYS = ("group_column", "k", "relevant_from", "relevance_values")


def model_card(
    *,
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    input_columns: list[str],
    configuration: Mapping[str, Any],
    training_info: Mapping[str, Any],
    test_metrics: Mapping[str, float],
    baseline_metrics: Mapping[str, Mapping[str, float]],
    cross_validation: Mapping[str, Any],
    data_fingerprint: str,
    n_rows: int,
    refit_on_all_rows: bool,
    registered_model_name: str | None,
    model_sha256: str,
    explanation_background: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    columns = feature_types["columns"]
    return {
        "target": feature_types["target"],
        "task": task["type"],
        "classes": task.get("classes"),
        "positive_class": task.get("positive_class"),
        "ranking": {key: task[key] for key in RANKING_KEYS} if task["type"] == "ranking" else None,
        "metric": configuration["metric"],
        "algorithm": training_info["algorithm"],
        "params": training_info["params"],
        "ensemble": training_info.get("ensemble"),
        "decision_threshold": training_info.get("decision_threshold"),
        "input_columns": input_columns,
        "features": {
            name: {k: info[k] for k in ("type", "dtype", "missing_fraction")}
            for name, info in columns.items()
        },
        "ignored_columns": feature_types["dropped"],
        "test_metrics": dict(test_metrics),
        "baseline_metrics": dict(baseline_metrics),
        "cross_validation": dict(cross_validation),
        "data_fingerprint": data_fingerprint,
        "n_rows": n_rows,
        "refit_on_all_rows": refit_on_all_rows,
        "registered_model_name": registered_model_name,
        CARD_KEY: model_sha256,
        # training rows SHAP values are computed against (POST /explain)
        "explanation_background": explanation_background,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "requirements": pinned_requirements(),
    }
