"""The final model: refit the best configuration, with early stopping where the family has it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from model_trainer.models.calibration import calibrated, calibrator_from
from model_trainer.models.early_stopping import fit_stopping_early, watched_curve, watched_metric
from model_trainer.models.ensemble import (
    FoldBag,
    WeightedEnsemble,
)
from model_trainer.models.estimators import (
    pipeline_from_configuration,
)
from model_trainer.tasks.ranking import RankingPipeline, by_group
from model_trainer.training.fitting import fit_quietly
from model_trainer.training.learning_curves import epoch_curves, learning_curve
from model_trainer.training.threshold import apply_decision_threshold

logger = logging.getLogger(__name__)


def validation_fit(
    pipeline: Pipeline,
    style: str,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_validation: pd.DataFrame,
    y_validation: pd.Series,
    patience: int | None,
    metric: str | None = None,
    k: int = 10,
) -> tuple[int | None, dict[str, Any]]:
    """Fit on the train split, scored at each boosting round on itself and the validation split
    (the preprocessor is fit on train only). With `patience`, rounds stop early on the validation
    score of `metric` (the tuned one, where the library has it: BOOSTING_METRICS; NDCG@k per
    group for a ranker) and the chosen count is returned. The curve is what the report plots and
    MLflow logs."""
    fit_args: dict[str, Any] = {}
    if isinstance(pipeline, RankingPipeline):
        group, levels = pipeline.group_column, pipeline.relevance_values
        X_train, y_train, train_codes = by_group(X_train, y_train, group, levels)
        X_validation, y_validation, validation_codes = by_group(
            X_validation, y_validation, group, levels
        )
        if style == "lightgbm":
            sizes = [np.bincount(train_codes), np.bincount(validation_codes)]
            fit_args = {"group": sizes[0], "eval_group": sizes, "eval_at": [k]}
        else:
            fit_args = {"qid": train_codes, "eval_qid": [train_codes, validation_codes]}
    watched = watched_metric(style, metric, y_train)
    if fit_args:  # a ranker: NDCG at the task's k (LightGBM names it from eval_at)
        watched = f"ndcg@{k}"
    _, rounds, history = fit_stopping_early(
        pipeline,
        style,
        X_train,
        y_train,
        [(X_validation, y_validation)],
        patience,
        None if fit_args and style == "lightgbm" else watched,
        fit_args,
        train_first=True,
    )
    name, train_values, greater = watched_curve(history[0], style, watched)
    validation_values = watched_curve(history[1], style, watched)[1]
    curve = learning_curve(
        "boosting round",
        (name, train_values, greater),
        (name, validation_values, greater),
        final_step=rounds or len(validation_values),
        source="fit on the train split, scored on the validation split",
    )
    return rounds, curve


def build_final_pipeline(
    best: Mapping[str, Any],
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    settings: Mapping[str, Any],
) -> tuple[Pipeline, dict[str, Any]]:
    """The best trial's configuration, or the ensemble of trials when it scored better in CV,
    its probabilities calibrated when the search chose so (`calibration`). `info` names
    the (heaviest) family and its parameters, and the members with their weights."""
    members = (best.get("ensemble") or {}).get("members") or [
        {"algorithm": best["algorithm"], "params": best["best_params"], "weight": 1.0}
    ]
    built = [
        member_pipeline(
            m["algorithm"], m["params"], task, feature_types, configuration, train, validation,
            settings,
        )
        for m in members
    ]  # fmt: skip
    curves = [member_info.pop("learning_curve") for _, member_info in built]
    if len(built) > 1:  # each member's curve under its own family, numbered as in the ensemble
        curves = [
            curve and {**curve, "model": f"{curve['model']} member {number}"}
            for number, curve in enumerate(curves, start=1)
        ]
    pipeline, first = built[0]
    # a copy: the members' own entries below must not carry the whole ensemble's curves
    info = {**first, "learning_curves": [curve for curve in curves if curve]}
    if len(built) > 1:
        weights = [m["weight"] for m in members]
        ensemble = WeightedEnsemble([p for p, _ in built], weights)
        pipeline = Pipeline([("ensemble", ensemble)])
        info["ensemble"] = [
            {**member_info, "weight": weight}
            for (_, member_info), weight in zip(built, weights, strict=True)
        ]
    bagging = best.get("bagging") or {}
    info["bagging"] = bagging or None
    if int(bagging.get("folds", 1)) > 1:
        bag = FoldBag(pipeline, bagging["folds"], int(configuration["seed"]), bagging["jobs"])
        pipeline = Pipeline([("bag", bag)])
    calibration = best.get("calibration") or {}
    info["calibration"] = calibration or None
    calibrator = calibrator_from(calibration)
    if calibrator is not None:
        pipeline = calibrated(pipeline, calibrator)
    return pipeline, info


def fit_chosen_configuration(
    best: Mapping[str, Any],
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    settings: Mapping[str, Any],
) -> tuple[Any, dict[str, Any]]:
    """The search's choice built (`build_final_pipeline`), its decision threshold tuned on the
    validation rows when training.decision_threshold asks for one, and fit on train +
    validation: the model a test split judges. `info` adds the threshold, the convergence
    warnings, the rows and the learning curves."""
    target = feature_types["target"]
    pipeline, info = build_final_pipeline(
        best, task, feature_types, configuration, train, validation, settings
    )
    pipeline, info["decision_threshold"] = apply_decision_threshold(
        pipeline, task, train, validation, target, settings.get("decision_threshold", "none")
    )
    rows = pd.concat([train, validation], ignore_index=True)
    model, info["convergence_warnings"] = fit_quietly(
        pipeline, rows.drop(columns=[target]), rows[target], settings.get("checkpoints")
    )
    info["n_training_rows"] = len(rows)
    info["learning_curves"] += epoch_curves(model)
    return model, info


def member_pipeline(
    algorithm: str,
    params: Mapping[str, Any],
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    settings: Mapping[str, Any],
) -> tuple[Pipeline, dict[str, Any]]:
    """One configuration, its boosting rounds set by early stopping when enabled, and the
    learning curve of that fit (also without early stopping, unless training.learning_curves
    is false: it costs one more fit of the train split)."""
    target = feature_types["target"]
    params = dict(params)
    pipeline = pipeline_from_configuration(
        configuration, algorithm, params, task["type"], feature_types
    )
    info: dict[str, Any] = {
        "algorithm": algorithm,
        "params": params,
        "early_stopping": None,
        "learning_curve": None,
    }
    style = configuration["registry"][algorithm].get("early_stopping")
    if not style or not len(validation):
        return pipeline, info
    stopping = settings.get("early_stopping", {})
    patience = int(stopping.get("patience", 50))
    min_rows = int(stopping.get("min_validation_rows", 0))
    ranker = task["type"] == "ranking"
    stops = stopping.get("enabled", True) and len(validation) >= min_rows and not ranker
    if stopping.get("enabled", True) and ranker:
        # NDCG@k moves in steps as rows swap places: its best round on one validation split is
        # mostly luck (a ranker of 300 CV-tuned rounds once stopped at 3)
        logger.info(
            "Kept the %d boosting rounds of %s tuned by CV: a ranking metric is too uneven "
            "from round to round to stop early on.",
            params.get("n_estimators", 0), algorithm,
        )  # fmt: skip
    elif stopping.get("enabled", True) and not stops:
        logger.info(
            "Kept the %d boosting rounds of %s tuned by CV: %d validation rows are too few to "
            "stop early on (training.early_stopping.min_validation_rows = %d).",
            params.get("n_estimators", 0), algorithm, len(validation), min_rows,
        )  # fmt: skip
    if not stops and not settings.get("learning_curves", True):
        return pipeline, info
    rounds, curve = validation_fit(
        pipeline,
        style,
        train.drop(columns=[target]),
        train[target],
        validation.drop(columns=[target]),
        validation[target],
        patience if stops else None,
        configuration["metric"],
        int(task.get("k", 10)),
    )
    info["learning_curve"] = {"model": algorithm, **curve}
    if rounds:
        params["n_estimators"] = rounds
        pipeline = pipeline_from_configuration(
            configuration, algorithm, params, task["type"], feature_types
        )
        info["early_stopping"] = {"n_estimators": rounds, "patience": patience}
        logger.info(
            "Early stopping of %s on the validation split chose %d rounds.", algorithm, rounds
        )
    return pipeline, info
