"""A typed request translated to the Kedro run's parameters: the pipelines do the work.

The task JSON's camelCase keys and relative paths become the project's parameters (dataset,
validation, tuning, evaluation, deploy, retrain) with absolute paths.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from model_trainer.contract.requests import (
    VALIDATION_STRATEGIES,
    DeployRequest,
    EvaluateRequest,
    HyperparameterSearch,
    Request,
    RetrainRequest,
    TrainRequest,
    Validation,
)
from model_trainer.tasks.detection import detect_task


def runtime_params(request: Request, base_dir: Path, ml_task: str = "auto") -> dict[str, Any]:
    """The run's parameters. Relative paths start at `base_dir` (the task JSON's folder);
    `ml_task` (classification, …) names the default experiment."""
    if isinstance(request, EvaluateRequest):
        params: dict[str, Any] = {
            "evaluation": {
                "model": _model_reference(request, base_dir),
                "data": _absolute(request.testDataPath, base_dir),
                "trust_unverified": request.trustUnverified,
            }
        }
    elif isinstance(request, DeployRequest):
        deploy: dict[str, Any] = {
            "model": _model_reference(request, base_dir),
            "fail_on_check_failure": False,  # the result says success: false instead
            "trust_unverified": request.trustUnverified,
        }
        if request.testDataPath:
            deploy["data"] = _absolute(request.testDataPath, base_dir)
        if request.thresholds is not None:
            deploy["metric_thresholds"] = {
                metric: bounds.model_dump(exclude_none=True)
                for metric, bounds in request.thresholds.items()
            }
        if request.registeredModelName:
            deploy["registered_model_name"] = request.registeredModelName
        if request.alias:
            deploy["alias"] = request.alias
        params = {"deploy": deploy}
    elif isinstance(request, RetrainRequest):
        params = {"retrain": _retrain_params(request, base_dir)}
        if request.search:  # the fresh search's budget
            params["tuning"] = _tuning_params(request.hyperparameterSearch)
    else:
        params = _train_params(request, base_dir, ml_task)
    tracking = request.experimentTracking
    if tracking.experimentName:
        params["experiment_name"] = tracking.experimentName
    if tracking.trackingUri:
        params["tracking_uri"] = tracking.trackingUri
    return params


def _tuning_params(search: HyperparameterSearch) -> dict[str, Any]:
    tuning: dict[str, Any] = {"enabled": search.enabled}
    for key, value in (
        ("n_trials", search.nTrials),
        ("timeout", search.timeout),
        ("sampler", search.sampler),
        ("pruner", search.pruner),
    ):
        if value is not None:
            tuning[key] = value
    return tuning


def _retrain_params(request: RetrainRequest, base_dir: Path) -> dict[str, Any]:
    retrain: dict[str, Any] = {
        "champion": _model_reference(request, base_dir),
        "data": _absolute(request.newDataPath, base_dir),
        "search": request.search,
        "add_champion_rows": request.addChampionRows,
        "trust_unverified": request.trustUnverified,
    }
    optional = {"margin": request.margin, "time_column": request.timeColumn, "alias": request.alias}
    return {**retrain, **{key: value for key, value in optional.items() if value is not None}}


def _train_params(request: TrainRequest, base_dir: Path, ml_task: str) -> dict[str, Any]:
    search = request.hyperparameterSearch
    algorithm = request.algorithm
    algorithm_name = algorithm if isinstance(algorithm, str) else "+".join(algorithm)
    task: dict[str, Any] = {"type": request.modelType}
    if request.positiveClass is not None:
        task["positive_class"] = request.positiveClass
    tuning = _tuning_params(search)
    given = request.validationStrategy
    validation = Validation(type=given) if isinstance(given, str) else given
    validation_params: dict[str, Any] = {"strategy": VALIDATION_STRATEGIES[validation.type]}
    if validation.folds is not None:
        validation_params["folds"] = validation.folds
    if not validation.shuffle:
        validation_params["shuffle"] = False
    params: dict[str, Any] = {
        "dataset": {
            "path": _absolute(request.trainDataPath, base_dir),
            "target": request.targetColumn,
            "features": request.features or None,
            "time_column": request.timeColumn,
            "group_column": request.groupColumn,
            "item_column": request.itemColumn,
        },
        "task": task,
        "model": {"algorithm": algorithm},
        "validation": validation_params,
        "tuning": tuning,
        "experiment_name": f"{ml_task}_{algorithm_name}_{dt.date.today().isoformat()}",
        "training": {
            "registered_model_name": request.registeredModelName
            or request.experimentTracking.experimentName
            or "auto"
        },
    }
    if request.metric:
        params["metric"] = request.metric
    if request.options.earlyStoppingRounds is not None:
        params["training"]["early_stopping"] = {"patience": request.options.earlyStoppingRounds}
    return params


def ml_task_of(request: Request, base_dir: Path) -> str:
    """classification, regression, …: modelType, else detected from the target column alone
    (read by itself, cheaply), for the default experiment name. `auto` when it cannot be read:
    the pipeline then says why."""
    if not isinstance(request, TrainRequest):
        return "auto"
    if request.modelType != "auto":
        return request.modelType
    if request.experimentTracking.experimentName or not request.targetColumn:
        return "auto"
    path = Path(_absolute(request.trainDataPath, base_dir))
    try:
        if path.suffix.lower() == ".csv":
            target = pd.read_csv(path, usecols=[request.targetColumn])[request.targetColumn]
        else:
            target = pd.read_parquet(path, columns=[request.targetColumn])[request.targetColumn]
        return detect_task(target, {"type": "auto"})["type"]
    except Exception:  # the pipeline reads the file again and explains what is wrong
        return "auto"


def _model_reference(
    request: EvaluateRequest | DeployRequest | RetrainRequest, base_dir: Path
) -> str | None:
    if request.modelPath:
        return _absolute(request.modelPath, base_dir)
    return request.modelUri


def _absolute(path: str, base_dir: Path) -> str:
    given = Path(path).expanduser()
    return str(given if given.is_absolute() else (base_dir / given).resolve())
