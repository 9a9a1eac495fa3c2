"""POST /explain: each posted record's SHAP values, per input column, against the training rows
the model card keeps as the background (`training.explanations.background_rows`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from model_trainer.evaluation.explanations import explain, explainable

# Records per request: each costs about 500 model evaluations on every background row (0.25 s
# a record for one boosted model on 100 columns; a bag or an ensemble takes k times longer).
MAX_EXPLAINED_RECORDS = 20


class RowExplanation(BaseModel):
    base_value: dict[str, float] = Field(
        description="Per output, the mean output over the background rows."
    )
    contributions: dict[str, dict[str, float]] = Field(
        description="Per output, each input column's contribution; with base_value they add up "
        "to the record's output."
    )


class Explanations(BaseModel):
    outputs: list[str] = Field(
        description="What is explained: the positive class's probability (two classes), each "
        "class's (more), or 'prediction' (regression)."
    )
    explanations: list[RowExplanation]
    method: str = Field(
        description="How the values were computed: 'tree' (exact, interventional Tree SHAP) or "
        "'permutation' (estimated by sampling permutations)."
    )
    method_reason: str = Field(
        description="Why the values are estimated rather than exact; empty for 'tree'."
    )
    model_version: str


def explainer(
    model: Any, card: dict[str, Any], to_frame: Callable[[list[dict[str, Any]]], pd.DataFrame]
) -> tuple[Callable[[pd.DataFrame], dict[str, Any]] | None, tuple[str, str] | None]:
    """The function explaining a checked frame of records, or why this model cannot be
    explained here (its task, or a card without background rows) and what to do."""
    task = {key: card.get(key) for key in ("classes", "positive_class")}
    task["type"] = card["task"]
    reason = explainable(task)
    if reason:
        return None, (reason, "Use /predict; the training report describes the model.")
    if not card.get("explanation_background"):
        return None, (
            "the model card keeps no background rows to explain against (a model trained "
            "before /explain, or with training.explanations.in_model_card false)",
            "Retrain the model with training.explanations.in_model_card true.",
        )
    background = to_frame(card["explanation_background"])
    columns = list(card["features"])

    def explained(frame: pd.DataFrame) -> dict[str, Any]:
        explanation = explain(model, frame, background, task, columns=columns)
        return {
            "outputs": explanation.outputs,
            "explanations": explanation.per_row(),
            "method": explanation.method,
            "method_reason": explanation.method_reason,
        }

    return explained, None
