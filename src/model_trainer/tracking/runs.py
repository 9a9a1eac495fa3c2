"""MLflow beyond what kedro-mlflow logs itself: the model with its signature, and the registry."""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model_trainer.reporting.report import diagnosis_tags
from model_trainer.serving.integrity import MLFLOW_TAG, file_sha256

logger = logging.getLogger(__name__)

MLFLOW_BATCH_METRICS = 1000  # the most MLflow's log_batch takes in one call

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


def build_package_map() -> None:
    """Build the module-to-package map MLflow's log_model checks the model's requirements
    against (importlib_metadata.packages_distributions over every installed distribution: 0.3 s
    the first time in a process), so it is ready before log_model. The map is MLflow's private
    cache: if it moves, this does nothing and log_model builds it itself."""
    from mlflow.utils import requirements_utils

    build = getattr(requirements_utils, "_init_packages_to_modules_map", None)
    if build is not None:
        build()


def registry_name(setting: str | None, dataset: Mapping[str, Any]) -> str | None:
    """The registered model's name: `setting` as given, None (log, do not register), or for
    `auto` one name per data set and target (the data file's folder, its stem and the target),
    so unrelated models never become versions of one another and two train.csv files in
    different folders do not collide."""
    if setting != "auto":
        return setting or None
    path = Path(str(dataset["path"]))
    parts = [path.parent.name, path.stem, dataset.get("target") or "clusters"]
    return "_".join(re.sub(r"[^0-9A-Za-z_.-]+", "-", part).strip("-_") for part in parts)


def log_model(
    model: Any,
    card: dict[str, Any],
    input_example: pd.DataFrame,
    registered_model_name: str | None,
) -> dict[str, Any]:
    """Log the fitted Pipeline to the active run (and register it); the package travels with it
    so custom transformers load anywhere."""
    import mlflow
    from mlflow.models import Model, infer_signature

    from model_trainer.tracking import served_model

    run = mlflow.active_run()
    if run is None:
        return {"logged": False, "reason": "no active MLflow run"}
    example = input_example.head(5)
    info = Model.log(
        artifact_path=None,  # deprecated in favour of name, yet positional
        name="model",
        flavor=served_model,  # sklearn's flavor; its pyfunc answers probabilities too
        sk_model=model,
        serialization_format="cloudpickle",
        signature=infer_signature(example, served_model.served_output(model, example)),
        input_example=example,
        pip_requirements=pinned_requirements(),
        code_paths=[str(Path(__file__).parents[1])],  # the whole model_trainer package
        registered_model_name=registered_model_name or None,
    )
    mlflow.log_dict(card, "model_card.json")
    _record_pickle_digest(info, registered_model_name)
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


def _record_pickle_digest(info: Any, registered_model_name: str | None) -> None:
    """The SHA-256 of the model.pkl MLflow wrote (its own serialisation, not model.joblib), as
    a tag of the run and of the registered version, where loaders check it before unpickling."""
    import mlflow
    from mlflow.models import Model

    stored_at = mlflow.get_logged_model(info.model_id).artifact_location
    with tempfile.TemporaryDirectory() as folder:
        described = mlflow.artifacts.download_artifacts(f"{stored_at}/MLmodel", dst_path=folder)
        pickled = Model.load(described).flavors["sklearn"]["pickled_model"]
        local = mlflow.artifacts.download_artifacts(f"{stored_at}/{pickled}", dst_path=folder)
        digest = file_sha256(Path(local))
    mlflow.set_tag(MLFLOW_TAG, digest)
    version = getattr(info, "registered_model_version", None)
    if registered_model_name and version is not None:
        mlflow.MlflowClient().set_model_version_tag(
            registered_model_name, str(version), MLFLOW_TAG, digest
        )


def log_learning_curves(curves: list[dict[str, Any]]) -> None:
    """Each curve as step metrics (`curve.<model>.<train|validation>_<metric>`) on the active
    MLflow run, in batches: one log_metric per step costs tens of ms on SQLite."""
    import mlflow
    from mlflow.entities import Metric

    run = mlflow.active_run()
    if run is None or not curves:
        return
    now = int(time.time() * 1000)
    metrics = [
        Metric(
            f"curve.{curve['model']}.{split}_{curve[split]['metric'].replace('@', '_at_')}",
            value,
            now,
            step,
        )
        for curve in curves
        for split in ("train", "validation")
        for step, value in enumerate(curve[split]["values"], start=1)
        if np.isfinite(value)
    ]
    client = mlflow.MlflowClient()
    for start in range(0, len(metrics), MLFLOW_BATCH_METRICS):
        client.log_batch(run.info.run_id, metrics=metrics[start : start + MLFLOW_BATCH_METRICS])


def log_leak_tags(findings: list[Mapping[str, Any]]) -> None:
    """Each kind of leak found as a tag naming what it found (`leak.single_feature`:
    `expenditure, share`), so runs can be searched by it."""
    import mlflow

    tags: dict[str, list[str]] = {}
    for finding in findings:
        tags.setdefault(f"leak.{finding['check']}", []).append(str(finding["subject"]))
    if tags and mlflow.active_run() is not None:
        mlflow.set_tags({name: ", ".join(subjects)[:5000] for name, subjects in tags.items()})


def log_diagnosis_tags(findings: list[Mapping[str, str]]) -> None:
    """Each finding as a `diagnosis.<finding>=true` tag, so runs can be searched by it."""
    import mlflow

    if findings and mlflow.active_run() is not None:
        mlflow.set_tags(diagnosis_tags(findings))


def log_drift_tag(drift: Mapping[str, Any]) -> None:
    """`drift.detected`: true, false, or skipped (no reference data), so a scheduler or a search
    of runs finds the batches that call for retraining."""
    import mlflow

    if mlflow.active_run() is not None:
        detected = "skipped" if drift["skipped"] else str(bool(drift["drifted"])).lower()
        mlflow.set_tags(
            {"drift.detected": detected, "drift.features": ", ".join(drift["drifted_features"])}
        )


def log_retraining(
    model: Any,
    card: dict[str, Any],
    input_example: pd.DataFrame,
    comparison: Mapping[str, Any],
    alias: str | None,
) -> dict[str, Any]:
    """The challenger logged to the active run, registered under the champion's name (and
    `alias` moved to it) only when promoted; tags `retrain.promoted` and `retrain.champion`
    for schedulers and searches."""
    import mlflow

    if mlflow.active_run() is None:
        return {"logged": False, "reason": "no active MLflow run", "promoted": False}
    promoted = bool(comparison["promoted"])
    name = card.get("registered_model_name") if promoted else None
    mlflow.set_tags(
        {
            "retrain.promoted": str(promoted).lower(),
            "retrain.champion": str(comparison["champion"]["source"])[:5000],
        }
    )
    logged = log_model(model, card, input_example, name)
    version = logged.get("registered_model_version")
    if name and alias and version is not None:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, str(version))
        logger.info("Moved alias '%s' of %s to version %s.", alias, name, version)
    return {**logged, "promoted": promoted, "alias": alias if name and version else None}
