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
RANKING_KEYS = ("group_column", "item_column", "k", "relevant_from", "relevance_values")


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
    time_column: str | None = None,
    training_setup: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    columns = feature_types["columns"]
    return {
        "target": feature_types["target"],
        "task": task["type"],
        "classes": task.get("classes"),
        "positive_class": task.get("positive_class"),
        "ranking": {key: task.get(key) for key in RANKING_KEYS}
        if task["type"] == "ranking"
        else None,
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
        "time_column": time_column,  # the splits were ordered by it (so is a retrain's)
        # the task, feature types and configuration it was searched with: a retrain's fresh
        # search (retrain.search) searches the same space with the same metric and folds
        "training_setup": dict(training_setup) if training_setup else None,
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


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """The card for people (model_card.md beside model_card.json): what the model predicts, how
    well against its baselines, from which inputs, trained on what, and how to check the file."""
    metric = card["metric"]
    lines = [
        f"# Model card: {card['task']} of `{card['target']}`",
        "",
        f"- **Model**: {_family(card)}",
        f"- **Chosen by**: {metric}"
        + (f" (cross-validated {_number(card['cross_validation'].get('mean'))})"
           if card.get("cross_validation", {}).get("mean") is not None else ""),
        f"- **Trained on**: {card['n_rows']} rows (data fingerprint `{card['data_fingerprint']}`)"
        + ("; refit on every row after the test split judged it" if card["refit_on_all_rows"]
           else ""),
        f"- **Created**: {card['created']} with Python {card['python']}",
    ]  # fmt: skip
    if card.get("classes"):
        lines.append(f"- **Classes**: {', '.join(map(str, card['classes']))}")
    if card.get("positive_class") is not None:
        lines.append(f"- **Positive class** (binary metrics): {card['positive_class']}")
    if card.get("decision_threshold"):
        lines.append(f"- **Decision threshold**: {card['decision_threshold']}")
    if card.get("registered_model_name"):
        lines.append(f"- **MLflow registered model**: `{card['registered_model_name']}`")
    retraining = card.get("retraining")
    if retraining:
        outcome = "promoted" if retraining["promoted"] else "not promoted (the champion was kept)"
        lines.append(f"- **Retrained** from `{retraining['champion']}`: {outcome}.")
    lines += ["", "## Held-out scores", "", *_scores_table(card), ""]
    lines += ["## Inputs", "", "| column | type | dtype | missing |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {info['type']} | {info['dtype']} | {info['missing_fraction']:.1%} |"
        for name, info in card["features"].items()
    ]
    ignored = card.get("ignored_columns") or {}
    if ignored:
        lines += ["", "Ignored columns: " + "; ".join(f"{k} ({v})" for k, v in ignored.items())]
    lines += [
        "",
        "## Checking the file",
        "",
        f"`model.joblib` has SHA-256 `{card.get(CARD_KEY)}`; evaluate, deploy, inference and "
        "serve refuse a file that does not match before unpickling it.",
        "",
    ]
    return "\n".join(lines)


def _family(card: Mapping[str, Any]) -> str:
    members = card.get("ensemble") or []
    if len(members) > 1:
        parts = [f"{m['algorithm']} ({m['weight']:.0%})" for m in members]
        return "weighted ensemble of " + ", ".join(parts)
    params = ", ".join(f"{k}={v}" for k, v in (card.get("params") or {}).items())
    return f"{card['algorithm']}" + (f" ({params})" if params else "")


def _scores_table(card: Mapping[str, Any]) -> list[str]:
    """The test metrics beside each baseline's, the model's own metric first."""
    scored = {"model": card["test_metrics"], **(card.get("baseline_metrics") or {})}
    names = list(card["test_metrics"])
    names.sort(key=lambda name: name != card["metric"])
    return [
        "| metric | " + " | ".join(scored) + " |",
        "|---" * (len(scored) + 1) + "|",
        *(
            f"| {name} | " + " | ".join(_number(m.get(name)) for m in scored.values()) + " |"
            for name in names
        ),
    ]


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, int | float) else str(value)
