"""Learning curves of a fitted model (train and validation values per boosting round or
epoch), for the report and MLflow."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from model_trainer.models.ensemble import WeightedEnsemble


def learning_curve(
    unit: str,
    train: tuple[str, list[float], bool],
    validation: tuple[str, list[float], bool],
    final_step: int | None,
    source: str,
) -> dict[str, Any]:
    """Train and validation values per step (1-based), each as (metric, values, greater is
    better); `final_step` is the step the kept model ends at (None: the validation best),
    `best_step` the validation best."""
    name, values, greater = validation
    best = int(np.argmax(values) if greater else np.argmin(values)) + 1
    return {
        "unit": unit,
        "source": source,
        "train": {"metric": train[0], "values": train[1], "greater_is_better": train[2]},
        "validation": {"metric": name, "values": values, "greater_is_better": greater},
        "best_step": best,
        "final_step": final_step or best,
    }


def epoch_curves(model: Any) -> list[dict[str, Any]]:
    """Per-epoch curves of the neural networks inside a fitted model: training loss, and the
    score on the share of rows the network held out for its own early stopping."""
    curves = []
    for name, estimator in _fitted_estimators(model):
        scores = getattr(estimator, "validation_scores_", None)
        if not hasattr(estimator, "loss_curve_") or not scores:
            continue
        score = "accuracy" if hasattr(estimator, "classes_") else "r2"
        curve = learning_curve(
            "epoch",
            ("loss", list(map(float, estimator.loss_curve_)), False),
            (score, list(map(float, scores)), True),
            final_step=None,  # early stopping restores the best epoch's weights
            source="fit on the train and validation splits, scored on the share it held out "
            f"(validation_fraction {estimator.validation_fraction})",
        )
        curves.append({"model": name, **curve})
    return curves


def _fitted_estimators(model: Any) -> list[tuple[str, Any]]:
    """(family step name, fitted estimator) of a saved model: a Pipeline, a threshold wrapper
    around one, or an ensemble of them."""
    if isinstance(model, Pipeline):
        return [e for _, step in model.steps for e in _fitted_estimators(step)]
    if isinstance(model, WeightedEnsemble):
        return [e for member in model.estimators_ for e in _fitted_estimators(member)]
    if hasattr(model, "estimator_"):  # FixedThresholdClassifier, LabelEncodedClassifier
        return _fitted_estimators(model.estimator_)
    return [(type(model).__name__, model)]
