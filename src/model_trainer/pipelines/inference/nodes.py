"""A model and a file named at run time -> versioned predictions, and how far the file's
features have drifted from the data the model was trained on (JSON, MLflow metrics, report)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from model_trainer.datasets.figure_dataset import SavableFigure
from model_trainer.evaluation import drift
from model_trainer.evaluation import holdout as evaluation
from model_trainer.evaluation.compare import describe_model
from model_trainer.reporting.pages import render_drift_html
from model_trainer.serving.model_store import StoredModel, load_stored_model
from model_trainer.tracking.runs import log_drift_tag

logger = logging.getLogger(__name__)


def load_model_for_inference(settings: dict[str, Any]) -> StoredModel:
    """Runs first, so a missing data path is reported (naming inference.data) before the
    catalog tries to read it."""
    evaluation.require_data_path(settings.get("data"), "inference.data", "inference")
    stored = load_stored_model(
        settings.get("model"),
        Path(settings["models_dir"]),
        trust_unverified=bool(settings.get("trust_unverified", False)),
    )
    logger.info("Scoring %s with the model %s.", settings["data"], stored.source)
    return stored


def predict_batch(
    inference_stored_model: StoredModel, inference_table: pd.DataFrame, settings: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The predictions beside each row's keys, and the checked features (for the drift check)."""
    card = inference_stored_model.card
    source = f"the scored data '{settings['data']}'"
    features = evaluation.check_model_inputs(inference_table, card, source)
    keys = inference_table[evaluation.key_columns(inference_table, card, settings["key_columns"])]
    predictions = evaluation.predict_rows(
        inference_stored_model.model, features, evaluation.model_task(card), keys
    )
    logger.info("Predicted %d rows.", len(predictions))
    return predictions, features


def measure_drift(
    inference_stored_model: StoredModel,
    inference_features: pd.DataFrame,
    inference_predictions: pd.DataFrame,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Against the training split saved with the model; skipped, with a warning, when that split
    is not on this machine. The MLflow tag drift.detected, and with inference.drift.exit_code
    the process's exit code, tell a scheduler to retrain."""
    card = inference_stored_model.card
    reference, reference_source = drift.load_split(
        Path(settings["splits_dir"]), "train", inference_stored_model.save_version
    )
    outputs = None
    if reference is not None:
        task = evaluation.model_task(card)
        reference_features = reference[card["input_columns"]]
        on_reference = evaluation.predict_rows(
            inference_stored_model.model, reference_features, task
        )
        outputs = (on_reference["predicted"], inference_predictions["predicted"])
    report = drift.drift_report(
        reference,
        reference_source,
        inference_features,
        card["features"],
        outputs,
        card["task"],
        settings["drift"],
    )
    log_drift_tag(report)
    exit_code = int(settings["drift"].get("exit_code", 0)) if report["drifted"] else 0
    return {**report, "exit_code": exit_code}


def track_inference(
    inference_predictions: pd.DataFrame,
    inference_drift: dict[str, Any],
    inference_stored_model: StoredModel,
) -> dict[str, dict[str, float]]:
    """Rows scored, what was predicted, and drift: the largest PSI, how many features passed
    the threshold, and each feature's PSI."""
    task = evaluation.model_task(inference_stored_model.card)
    tracked: dict[str, float] = {
        "n_rows": len(inference_predictions),
        **evaluation.prediction_summary(inference_predictions, task),
    }
    if not inference_drift["skipped"]:
        tracked["drift_max_psi"] = inference_drift["max_psi"]
        tracked["drift_n_features"] = len(inference_drift["drifted_features"])
        for result in inference_drift["features"]:
            tracked[f"psi_{result['feature']}"] = result["psi"]
        if inference_drift["prediction"]:
            tracked["psi_prediction"] = inference_drift["prediction"]["psi"]
    return {
        mlflow_name(name): {"value": float(value), "step": 0} for name, value in tracked.items()
    }


def mlflow_name(name: str) -> str:
    """MLflow metric names allow letters, digits, _ - . and spaces (and / as a path)."""
    return re.sub(r"[^\w\-. ]", "_", name)


def plot_drift(
    inference_drift: dict[str, Any], settings: dict[str, Any]
) -> dict[str, SavableFigure]:
    from model_trainer.reporting.plots import drift_figures  # matplotlib loads with the first plot

    return drift_figures(inference_drift, int(settings["drift"]["plots"]))


def render_inference_report(
    inference_drift: dict[str, Any],
    inference_drift_plots: dict[str, bytes],
    inference_predictions: pd.DataFrame,
    inference_stored_model: StoredModel,
    settings: dict[str, Any],
) -> str:
    task = evaluation.model_task(inference_stored_model.card)
    return render_drift_html(
        drift=inference_drift,
        model=describe_model(inference_stored_model),
        predictions={
            "data": settings["data"],
            "rows": len(inference_predictions),
            "summary": evaluation.prediction_summary(inference_predictions, task),
        },
        figures=inference_drift_plots,
    )
