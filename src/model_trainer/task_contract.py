"""The seed agent's task JSON: input keys -> run parameters, run results -> output JSON.

An adapter at the edge: it translates, the train pipeline does the work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from model_trainer.errors import ConfigurationError

INPUT_KEYS = {
    "task",
    "modelType",
    "algorithm",
    "trainDataPath",
    "targetColumn",
    "features",
    "validationStrategy",
    "hyperparameterSearch",
    "experimentTracking",
    "metric",
    "timeColumn",
    "groupColumn",
}
SEARCH_KEYS = {"enabled", "nTrials", "timeout"}
TRACKING_KEYS = {"experimentName", "trackingUri"}
TASK_MODES = {"train", "tune"}
MODEL_TYPES = {"classification", "regression", "ranking", "clustering", "auto"}
VALIDATION_STRATEGIES = {
    "kfold", "stratified", "timeseries", "group", "repeated_kfold", "repeated_stratified", "loo",
    "auto",
}  # fmt: skip


def runtime_params(spec: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """Validate the input JSON and map it onto the parameters of the train pipeline."""
    if not isinstance(spec, Mapping):
        raise ConfigurationError(
            "The task JSON must be an object.", 'Give {"trainDataPath": ..., "targetColumn": ...}.'
        )
    _check_keys(spec, INPUT_KEYS, "the task JSON")
    mode = spec.get("task", "train")
    if mode not in TASK_MODES:
        raise ConfigurationError(
            f"task '{mode}' is not supported by `kedro task` yet.",
            f"Use task {' or '.join(sorted(TASK_MODES))}; evaluate and deploy are Kedro pipelines "
            "of their own.",
        )
    model_type = spec.get("modelType", "auto")
    if model_type not in MODEL_TYPES:
        raise ConfigurationError(
            f"modelType '{model_type}' is not supported.",
            f"Use one of: {', '.join(sorted(MODEL_TYPES))}.",
        )
    if not spec.get("trainDataPath"):
        raise ConfigurationError(
            "The task JSON has no trainDataPath.", "Add trainDataPath: the CSV or Parquet file."
        )
    if not spec.get("targetColumn") and model_type != "clustering":
        raise ConfigurationError(
            "The task JSON has no targetColumn.",
            "Add targetColumn: the column to predict (only clustering goes without one).",
        )
    strategy = spec.get("validationStrategy", "auto")
    if strategy not in VALIDATION_STRATEGIES:
        raise ConfigurationError(
            f"validationStrategy '{strategy}' is not supported.",
            f"Use one of: {', '.join(sorted(VALIDATION_STRATEGIES))}.",
        )
    search = spec.get("hyperparameterSearch") or {}
    tracking = spec.get("experimentTracking") or {}
    _check_keys(search, SEARCH_KEYS, "hyperparameterSearch")
    _check_keys(tracking, TRACKING_KEYS, "experimentTracking")
    features = spec.get("features")
    if features is not None and (
        not isinstance(features, list) or not all(isinstance(f, str) for f in features)
    ):
        raise ConfigurationError(
            f"features must be a list of column names, got {features!r}.",
            'Give features as a JSON list, e.g. ["age", "income"], or leave it out.',
        )
    algorithm = spec.get("algorithm", "auto")
    path = Path(spec["trainDataPath"])
    params: dict[str, Any] = {
        "dataset": {
            "path": str(path if path.is_absolute() else (base_dir / path).resolve()),
            "target": spec.get("targetColumn"),
            "features": features or None,
            "time_column": spec.get("timeColumn"),
            "group_column": spec.get("groupColumn"),
        },
        "task": {"type": model_type},
        "model": {"algorithm": algorithm},
        "validation": {"strategy": strategy},
        "tuning": {"enabled": bool(search.get("enabled", True))},
        "experiment_name": tracking.get("experimentName")
        or f"{mode}_{algorithm if isinstance(algorithm, str) else '+'.join(algorithm)}"
        f"_{dt.date.today().isoformat()}",
    }
    if "nTrials" in search:
        params["tuning"]["n_trials"] = _positive_int(
            search["nTrials"], "hyperparameterSearch.nTrials"
        )
    if "timeout" in search:
        params["tuning"]["timeout"] = search["timeout"]
    if tracking.get("trackingUri"):
        params["tracking_uri"] = tracking["trackingUri"]
    if spec.get("metric"):
        params["metric"] = spec["metric"]
    return params


def success_output(
    *,
    model_path: str,
    metrics: Mapping[str, float],
    training_metrics: Mapping[str, Any],
    registration: Mapping[str, Any],
    training_time: float,
    artifacts: list[str],
) -> dict[str, Any]:
    cv = training_metrics["cross_validation"]
    return {
        "success": True,
        "modelPath": model_path,
        "metrics": dict(metrics),
        "bestParams": {
            "algorithm": training_metrics["algorithm"],
            **training_metrics["best_params"],
        },
        "crossValidation": {"mean": cv["mean"], "std": cv["std"], "folds": cv["folds"]},
        "experimentRun": {
            "runId": registration.get("run_id"),
            "experimentId": registration.get("experiment_id"),
            "artifactUri": registration.get("artifact_uri"),
        },
        "trainingTime": round(training_time, 3),
        "artifacts": artifacts,
    }


def failure_output(error: str, remediation: str, saved: list[str]) -> dict[str, Any]:
    return {"success": False, "error": error, "remediation": remediation, "savedArtifacts": saved}


def _check_keys(spec: Mapping[str, Any], allowed: set[str], where: str) -> None:
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"{where} must be an object.", "Give it as {key: value, ...}.")
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigurationError(
            f"Unknown keys in {where}: {unknown}.", f"Allowed keys: {', '.join(sorted(allowed))}."
        )


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{key} must be a positive integer, got {value!r}.", f"Set {key} to 1 or more."
        )
    return value
