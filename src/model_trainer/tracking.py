"""MLflow beyond what kedro-mlflow logs itself: the model with its signature, and the registry."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

MODEL_REQUIREMENTS = (
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "lightgbm",
    "xgboost-cpu",
    "cloudpickle",
)


def pinned_requirements() -> list[str]:
    """Given explicitly: inferring them reloads the model in a subprocess, seconds per log."""
    pins = []
    for package in MODEL_REQUIREMENTS:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins


def log_model(
    model: Any,
    card: dict[str, Any],
    input_example: pd.DataFrame,
    registered_model_name: str | None,
) -> dict[str, Any]:
    """Log the fitted Pipeline to the active run (and register it); the package travels with it
    so custom transformers load anywhere."""
    import mlflow
    from mlflow.models import infer_signature

    run = mlflow.active_run()
    if run is None:
        return {"logged": False, "reason": "no active MLflow run"}
    example = input_example.head(5)
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        serialization_format="cloudpickle",
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        pip_requirements=pinned_requirements(),
        code_paths=[str(Path(__file__).parent)],
        registered_model_name=registered_model_name or None,
    )
    mlflow.log_dict(card, "model_card.json")
    result = {
        "logged": True,
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "artifact_uri": run.info.artifact_uri,
        "model_uri": info.model_uri,
        "registered_model_name": registered_model_name,
        "registered_model_version": getattr(info, "registered_model_version", None),
    }
    logger.info("Logged the model to MLflow as %s.", info.model_uri)
    return result
