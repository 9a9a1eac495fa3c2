"""The decision threshold of a binary classifier, tuned on the validation split."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from model_trainer.errors import ConfigurationError
from model_trainer.models.ensemble import predict_output
from model_trainer.models.estimators import with_decision_threshold
from model_trainer.models.metrics import classification_metrics
from model_trainer.training.fitting import fit_quietly

logger = logging.getLogger(__name__)

THRESHOLD_OBJECTIVES = ("none", "f1", "balanced_accuracy")
THRESHOLD_CANDIDATES = 101  # quantiles of the validation scores tried as cut-offs


def apply_decision_threshold(
    pipeline: Pipeline,
    task: Mapping[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    target: str,
    objective: str,
) -> tuple[Pipeline, dict[str, Any] | None]:
    """For a binary task, the positive-class probability cut-off that maximises `objective`
    (f1 or balanced_accuracy) on the validation split, for a model fit on the train split: the
    test split never takes part. The returned pipeline predicts with it; none keeps argmax."""
    if objective not in THRESHOLD_OBJECTIVES:
        raise ConfigurationError(
            f"Unknown training.decision_threshold '{objective}'.",
            f"Use one of: {', '.join(THRESHOLD_OBJECTIVES)}.",
        )
    if objective == "none":
        return pipeline, None
    if task["type"] != "classification" or len(task["classes"]) != 2:
        logger.info("No decision threshold: it applies to binary classification only.")
        return pipeline, None
    if validation.empty:
        raise ConfigurationError(
            "training.decision_threshold is tuned on the validation split, which is empty.",
            "Set split.validation_fraction above 0, or training.decision_threshold to none.",
        )
    model, _ = fit_quietly(clone(pipeline), train.drop(columns=[target]), train[target])
    y = validation[target]
    classes, positive = list(task["classes"]), task["positive_class"]
    negative = classes[1 - classes.index(positive)]
    scores = predict_output(model, validation.drop(columns=[target]), task)[
        :, classes.index(positive)
    ]
    candidates = np.unique(np.quantile(scores, np.linspace(0, 1, THRESHOLD_CANDIDATES)))

    def value_at(threshold: float) -> float:
        predicted = np.where(scores >= threshold, positive, negative)
        return classification_metrics(y, predicted, None, classes, task, (objective,))[objective]

    values = [value_at(threshold) for threshold in candidates]
    best = int(np.argmax(values))
    chosen = {
        "threshold": float(candidates[best]),
        "objective": objective,
        "positive_class": positive,
        "validation_score": float(values[best]),
        "validation_score_at_0.5": value_at(0.5),
        "validation_rows": len(validation),
    }
    logger.info(
        "Decision threshold %.4g for '%s' maximises validation %s: %.4g (%.4g at 0.5).",
        chosen["threshold"], positive, objective, values[best], chosen["validation_score_at_0.5"],
    )  # fmt: skip
    return with_decision_threshold(pipeline, chosen["threshold"], positive), chosen
