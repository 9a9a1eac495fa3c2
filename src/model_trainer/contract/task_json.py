"""The seed agent's task JSON, typed: requests in, results out, one JSON Schema for both.

An adapter at the edge: it validates and translates, the pipelines do the work. The seed writes
`"task": "train_model"`; the skill's other modes (`tune_model`, `evaluate_model`,
`deploy_model`), `retrain_model`, and the short names (`train`, `tune`, `evaluate`, `deploy`,
`retrain`) are accepted too.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from model_trainer.errors import ConfigurationError
from model_trainer.tasks.detection import detect_task

TRAIN_MODES = ("train_model", "train")
TUNE_MODES = ("tune_model", "tune")
EVALUATE_MODES = ("evaluate_model", "evaluate")
DEPLOY_MODES = ("deploy_model", "deploy")
RETRAIN_MODES = ("retrain_model", "retrain")
MODES = (*TRAIN_MODES, *TUNE_MODES, *EVALUATE_MODES, *DEPLOY_MODES, *RETRAIN_MODES)
MODE_PIPELINES = {
    **dict.fromkeys(TRAIN_MODES, "train"),
    **dict.fromkeys(TUNE_MODES, "tune"),
    **dict.fromkeys(EVALUATE_MODES, "evaluate"),
    **dict.fromkeys(DEPLOY_MODES, "deploy"),
    **dict.fromkeys(RETRAIN_MODES, "retrain"),
}
ModelType = Literal["classification", "regression", "ranking", "clustering", "auto"]
# validationStrategy names -> validation.strategy: the project's own, and scikit-learn's
# splitter names as the seed writes them (stratified_kfold).
VALIDATION_STRATEGIES = {
    **{name: name for name in (
        "kfold", "stratified", "timeseries", "group_timeseries", "group", "repeated_kfold",
        "repeated_stratified", "loo", "auto",
    )},
    "stratified_kfold": "stratified",
    "group_kfold": "group",
    "time_series_split": "timeseries",
    "timeseries_split": "timeseries",
    "repeated_stratified_kfold": "repeated_stratified",
    "leave_one_out": "loo",
}  # fmt: skip
ValidationStrategy = Literal[tuple(VALIDATION_STRATEGIES)]
Label = str | int | float | bool
NonEmpty = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    """Strict types (no "false" for false, no "10" for 10) and no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True)


class HyperparameterSearch(_Strict):
    enabled: bool = True
    nTrials: int | None = Field(None, ge=1, description="Trials in the whole study.")
    timeout: float | None = Field(
        None, gt=0, description="Seconds from the command's start to the end of its final fits."
    )
    sampler: Literal["auto", "tpe", "random", "grid", "cmaes", "nsga2"] | None = None
    pruner: Literal["median", "hyperband", "none"] | None = None


class ExperimentTracking(_Strict):
    enabled: Literal[True] = Field(
        True, description="Runs are always tracked (a local sqlite store by default)."
    )
    experimentName: NonEmpty | None = None
    trackingUri: NonEmpty | None = Field(None, description="sqlite:///… or http(s)://…")


class Validation(_Strict):
    """The seed's object form of validationStrategy."""

    type: ValidationStrategy = "auto"
    folds: int | None = Field(None, ge=2)
    shuffle: bool = Field(True, description="false keeps each fold a contiguous block of rows.")


class Options(_Strict):
    earlyStoppingRounds: int | None = Field(
        None, ge=1, description="Boosting rounds without improvement before a final fit stops."
    )
    verbosity: int | None = Field(
        None, ge=0, le=2, description="0: warnings only, 1: one line per step, 2: debug."
    )


class TrainRequest(_Strict):
    """train_model: the whole pipeline; tune_model: the search only (no model registered)."""

    task: Literal["train_model", "train", "tune_model", "tune"]
    modelType: ModelType = "auto"
    algorithm: NonEmpty | list[NonEmpty] = "auto"
    trainDataPath: NonEmpty
    targetColumn: NonEmpty | None = None
    features: list[NonEmpty] | None = None
    validationStrategy: ValidationStrategy | Validation = "auto"
    hyperparameterSearch: HyperparameterSearch = HyperparameterSearch()
    experimentTracking: ExperimentTracking = ExperimentTracking()
    options: Options = Options()
    metric: NonEmpty | None = Field(None, description="Default: the task's (roc_auc, …).")
    timeColumn: NonEmpty | None = None
    groupColumn: NonEmpty | None = None
    itemColumn: NonEmpty | None = Field(
        None, description="Ranking: the column naming what is ranked; the model then learns "
        "each group's history with each item.",
    )  # fmt: skip
    positiveClass: Label | None = Field(
        None, description="Binary metrics describe this class. Default: the larger of two "
        "numeric labels, true of booleans, else the minority class.",
    )  # fmt: skip
    registeredModelName: NonEmpty | None = Field(
        None, description="Default: experimentName, else data folder, file and target."
    )


class MetricBounds(_Strict):
    min: float | None = None
    max: float | None = None


class EvaluateRequest(_Strict):
    task: Literal["evaluate_model", "evaluate"]
    modelPath: NonEmpty | None = Field(None, description="Default: the latest trained model.")
    modelUri: NonEmpty | None = Field(None, description="models:/name/3, runs:/<id>/model, …")
    testDataPath: NonEmpty
    targetColumn: NonEmpty | None = None
    trustUnverified: bool = Field(
        False,
        description="Load a model file that does not match the SHA-256 recorded at training.",
    )
    experimentTracking: ExperimentTracking = ExperimentTracking()


class DeployRequest(_Strict):
    task: Literal["deploy_model", "deploy"]
    modelPath: NonEmpty | None = None
    modelUri: NonEmpty | None = None
    testDataPath: NonEmpty | None = Field(None, description="Default: the model's test split.")
    thresholds: dict[str, MetricBounds] | None = Field(
        None, description="Per metric, a min and/or max on its held-out value."
    )
    registeredModelName: NonEmpty | None = None
    alias: NonEmpty | None = None
    trustUnverified: bool = Field(
        False,
        description="Load a model file that does not match the SHA-256 recorded at training.",
    )
    experimentTracking: ExperimentTracking = ExperimentTracking()


class RetrainRequest(_Strict):
    """The champion's configuration (or a fresh search) trained on new labelled rows, promoted
    only when it beats the champion by the margin on held-out new rows."""

    task: Literal["retrain_model", "retrain"]
    newDataPath: NonEmpty = Field(description="Labelled CSV or Parquet: the model's columns.")
    modelPath: NonEmpty | None = Field(None, description="The champion. Default: the latest.")
    modelUri: NonEmpty | None = None
    margin: float | None = Field(
        None, ge=0, description="Relative improvement needed to promote (0.01: 1%)."
    )
    search: bool = Field(False, description="A fresh search instead of the champion's setup.")
    hyperparameterSearch: HyperparameterSearch = Field(
        HyperparameterSearch(), description="The fresh search's budget (with search: true)."
    )
    addChampionRows: bool = Field(False, description="Train also on the champion's rows.")
    timeColumn: NonEmpty | None = Field(None, description="Hold out the latest new rows.")
    alias: NonEmpty | None = Field(None, description="A registry alias to move on promotion.")
    trustUnverified: bool = Field(
        False,
        description="Load a model file that does not match the SHA-256 recorded at training.",
    )
    experimentTracking: ExperimentTracking = ExperimentTracking()


Request = TrainRequest | EvaluateRequest | DeployRequest | RetrainRequest
TaskRequest = Annotated[Request, Field(discriminator="task")]
REQUEST = TypeAdapter(TaskRequest)


class ExperimentRun(BaseModel):
    runId: str | None
    experimentId: str | None
    artifactUri: str | None


class CrossValidation(BaseModel):
    metric: str
    mean: float | None
    std: float | None
    folds: int = Field(description="Distinct folds.")
    repeats: int = Field(1, description="Times the folds were drawn anew.")
    note: str | None = None


class TrainResult(BaseModel):
    success: Literal[True]
    modelPath: str
    metrics: dict[str, float | None]
    bestParams: dict[str, Any]
    crossValidation: CrossValidation
    experimentRun: ExperimentRun
    trainingTime: float
    artifacts: list[str]
    positiveClass: Label | None


class TuneResult(BaseModel):
    success: Literal[True]
    bestParams: dict[str, Any]
    crossValidation: CrossValidation
    study: dict[str, Any]
    trials: list[dict[str, Any]]
    experimentRun: ExperimentRun
    trainingTime: float
    artifacts: list[str]


class EvaluateResult(BaseModel):
    success: Literal[True]
    model: dict[str, Any]
    metrics: dict[str, float | None]
    baselineMetrics: dict[str, float | None]
    metricsAtTraining: dict[str, float | None]
    earlierVersions: list[dict[str, Any]]
    reportPath: str | None
    experimentRun: ExperimentRun
    artifacts: list[str]


class DeployResult(BaseModel):
    """deployment.json's keys beside `success` (its `passed`)."""

    model_config = ConfigDict(extra="allow")
    success: bool
    artifacts: list[str]


class RetrainResult(BaseModel):
    """`success` is the run's: a kept champion is a success with `promoted` false."""

    success: Literal[True]
    promoted: bool
    reason: str
    metric: str
    metrics: dict[str, dict[str, float | None]] = Field(
        description="champion, challenger and dummy on the same held-out new rows."
    )
    improvement: float | None = Field(description="null when a score could not be computed.")
    margin: float
    challengerWinShare: float | None
    champion: dict[str, Any]
    challenger: dict[str, Any]
    modelPath: str = Field(description="The challenger's file (served only when promoted).")
    registeredModel: dict[str, Any] | None
    reportPath: str | None
    experimentRun: ExperimentRun
    artifacts: list[str]


class FailureResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    success: Literal[False]
    error: str
    remediation: str
    savedArtifacts: list[str]


RESULT = TypeAdapter(
    TrainResult | TuneResult | EvaluateResult | DeployResult | RetrainResult | FailureResult
)


def json_schema() -> dict[str, Any]:
    """The input and output JSON Schemas (docs/task_schema.json is a copy)."""
    return {"input": REQUEST.json_schema(), "output": RESULT.json_schema()}


def parse_request(spec: Any) -> Request:
    """The typed request, or a ConfigurationError naming each bad key, what it accepts and
    what was given. A missing `task` means train_model."""
    if not isinstance(spec, Mapping):
        raise ConfigurationError(
            f"The task JSON must be an object, got {type(spec).__name__}.",
            'Give {"task": "train_model", "trainDataPath": ..., "targetColumn": ...}.',
        )
    spec = {"task": "train_model", **spec}
    try:
        request = REQUEST.validate_python(spec)
    except ValidationError as exc:
        raise _explained(exc, spec) from None
    if (
        isinstance(request, TrainRequest)
        and not request.targetColumn
        and request.modelType != "clustering"
    ):
        raise ConfigurationError(
            "The task JSON has no targetColumn.",
            "Add targetColumn: the column to predict (only modelType clustering goes without one).",
        )
    if not isinstance(request, TrainRequest) and request.modelPath and request.modelUri:
        raise ConfigurationError(
            "The task JSON gives both modelPath and modelUri.",
            "Give one of them (or neither, for the latest model trained in the project).",
        )
    return request


def check_algorithms(request: TrainRequest, known: Iterable[str]) -> None:
    """Unknown algorithm names are refused before any data is read."""
    names = [request.algorithm] if isinstance(request.algorithm, str) else request.algorithm
    known = sorted(known)
    unknown = [name for name in names if name != "auto" and name not in known]
    if unknown:
        raise ConfigurationError(
            f"algorithm: unknown name(s) {unknown}.",
            f"Use auto, one of these or a list of them: {', '.join(known)}.",
        )


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


def train_output(
    *,
    model_path: str,
    metrics: Mapping[str, float],
    training_metrics: Mapping[str, Any],
    task: Mapping[str, Any],
    registration: Mapping[str, Any],
    training_time: float,
    artifacts: list[str],
) -> dict[str, Any]:
    result = TrainResult(
        success=True,
        modelPath=model_path,
        metrics=_finite(metrics),
        bestParams=shipped_params(training_metrics),
        crossValidation=cross_validation(training_metrics),
        experimentRun=_experiment_run(registration),
        trainingTime=round(training_time, 3),
        artifacts=artifacts,
        positiveClass=positive_class(task),
    )
    return result.model_dump()


def tune_output(
    *,
    study_summary: Mapping[str, Any],
    trials: list[dict[str, Any]],
    registration: Mapping[str, Any],
    training_time: float,
    artifacts: list[str],
) -> dict[str, Any]:
    study_keys = ("study_name", "storage", "metric", "direction", "sampler", "n_trials")
    counts = ("n_complete", "n_pruned", "n_failed", "best_trial", "best_value")
    result = TuneResult(
        success=True,
        bestParams=shipped_params(study_summary),
        crossValidation=cross_validation(study_summary),
        study={_camel(k): study_summary.get(k) for k in (*study_keys, *counts)},
        trials=[{_camel(k): _plain(v) for k, v in row.items()} for row in trials],
        experimentRun=_experiment_run(registration),
        trainingTime=round(training_time, 3),
        artifacts=artifacts,
    )
    return result.model_dump()


def evaluate_output(
    request: EvaluateRequest,
    comparison: Mapping[str, Any],
    registration: Mapping[str, Any],
    artifacts: Mapping[str, str],
) -> dict[str, Any]:
    """Metrics on the given rows beside the no-skill baseline, the model's own figures at
    training and its earlier registered versions."""
    model = comparison["model"]
    if request.targetColumn and request.targetColumn != model.get("target"):
        return failure_output(
            f"targetColumn '{request.targetColumn}' is not the model's target "
            f"'{model.get('target')}'.",
            "Give the model's target as targetColumn (or leave it out), with that column in "
            "the test data.",
            sorted(set(artifacts.values())),
        )
    result = EvaluateResult(
        success=True,
        model={_camel(k): _plain(v) for k, v in model.items()},
        metrics=_finite(comparison["metrics"]),
        baselineMetrics=_finite(comparison["dummy"]),
        metricsAtTraining=_finite(comparison["at_training"]),
        earlierVersions=list(comparison.get("earlier_versions") or []),
        reportPath=artifacts.get("evaluation_report"),
        experimentRun=_experiment_run(registration),
        artifacts=sorted(set(artifacts.values())),
    )
    return result.model_dump()


def deploy_output(deployment: Mapping[str, Any], artifacts: list[str]) -> dict[str, Any]:
    if deployment.get("passed"):
        return DeployResult(success=True, artifacts=artifacts, **deployment).model_dump()
    failed = deployment.get("failed") or []
    return FailureResult(
        success=False,
        error=f"The deployment failed {len(failed)} check(s): {'; '.join(map(str, failed))}.",
        remediation="See deployment.json for every check; retrain, or loosen the thresholds "
        "given in the task JSON (thresholds) or deploy.* in conf.",
        savedArtifacts=artifacts,
        deployment=dict(deployment),
    ).model_dump()


def retrain_output(
    comparison: Mapping[str, Any],
    registration: Mapping[str, Any],
    artifacts: Mapping[str, str],
) -> dict[str, Any]:
    result = RetrainResult(
        success=True,
        promoted=comparison["promoted"],
        reason=comparison["reason"],
        metric=comparison["metric"],
        metrics={name: _finite(values) for name, values in comparison["metrics"].items()},
        improvement=_number(comparison["improvement"]),
        margin=comparison["margin"],
        challengerWinShare=comparison["challenger_win_share"],
        champion={_camel(k): _plain(v) for k, v in comparison["champion"].items()},
        challenger={_camel(k): _plain(v) for k, v in comparison["challenger"].items()},
        modelPath=artifacts["model"],
        registeredModel={
            "name": registration.get("registered_model_name"),
            "version": str(registration["registered_model_version"]),
            "alias": registration.get("alias"),
        }
        if registration.get("registered_model_version")
        else None,
        reportPath=artifacts.get("retrain_report"),
        experimentRun=_experiment_run(registration),
        artifacts=sorted(set(artifacts.values())),
    )
    return result.model_dump()


def failure_output(error: str, remediation: str, saved: list[str]) -> dict[str, Any]:
    return FailureResult(
        success=False, error=error, remediation=remediation, savedArtifacts=saved
    ).model_dump()


def shipped_params(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of the model that ships: an ensemble's members and weights, else the
    family and its parameters. `summary` is training_metrics or a study summary."""
    members = summary.get("ensemble")
    if isinstance(members, Mapping):  # a study summary: {"members": [...], "cv_score": ...}
        members = members.get("members")
    if members:
        return {
            "algorithm": "ensemble",
            "members": [
                {
                    "algorithm": m["algorithm"],
                    "weight": m["weight"],
                    "params": dict(m.get("params") or {}),
                }
                for m in members
            ],
        }
    return {"algorithm": summary["algorithm"], **summary["best_params"]}


def cross_validation(summary: Mapping[str, Any]) -> CrossValidation:
    """Of the model that ships, with its metric; folds counted once, repeats stated apart.
    `summary` is training_metrics (the ensemble's members and fold scores beside) or a study
    summary (inside its `ensemble`)."""
    cv = summary["cross_validation"]
    folds = int(cv.get("distinct_folds") or cv["folds"])
    repeats = max(1, int(cv["folds"]) // folds)
    ensemble = summary.get("ensemble")
    fold_scores = summary.get("ensemble_fold_scores") or (
        ensemble.get("fold_scores") if isinstance(ensemble, Mapping) else None
    )
    if ensemble and fold_scores:
        return CrossValidation(
            metric=cv.get("metric", summary["metric"]),
            mean=_number(np.mean(fold_scores)),
            std=_number(np.std(fold_scores)),
            folds=folds,
            repeats=repeats,
            note="The ensemble's score on each fold with its members chosen on the other folds' "
            "out-of-fold predictions (not on the rows it is scored on).",
        )
    return CrossValidation(
        metric=cv.get("metric", summary["metric"]),
        mean=_number(cv["mean"]),
        std=_number(cv["std"]),
        folds=folds,
        repeats=repeats,
    )


def positive_class(task: Mapping[str, Any]) -> Any:
    """The class binary metrics describe; None unless the task is a binary classification."""
    if task.get("type") != "classification" or len(task.get("classes") or []) != 2:
        return None
    return task.get("positive_class")


def _explained(exc: ValidationError, spec: Mapping[str, Any]) -> ConfigurationError:
    """One sentence per error: the key (dotted), the problem, what was given."""
    mode = spec.get("task")
    problems, remediations = [], []
    for error in _without_other_branches(exc.errors(include_url=False), mode):
        location = error["loc"]
        key = ".".join(location) or "the task JSON"
        kind = error["type"]
        if kind == "union_tag_invalid":
            problems.append(f"task '{mode}' is not a task this project runs.")
            remediations.append(f"Set task to one of: {', '.join(MODES)}.")
        elif kind == "extra_forbidden":
            problems.append(f"Unknown key '{key}'.")
            remediations.append(f"Keys accepted there: {', '.join(_keys_at(mode, location))}.")
        elif kind == "missing":
            problems.append(f"The task JSON has no {key}.")
            remediations.append(f"Add {key}{_hint(key)}.")
        else:
            problems.append(f"{key}: {error['msg']}; got {error.get('input')!r}.")
            remediations.append(f"Fix {key}{_hint(key)}.")
    return ConfigurationError(" ".join(problems), " ".join(dict.fromkeys(remediations)))


TYPE_ERRORS = {"model_type", "dict_type", "list_type", "string_type", "model_attributes_type"}


def _without_other_branches(errors: list[Any], mode: Any) -> list[Any]:
    """A value of a union type (validationStrategy: a name or an object) fails every branch:
    keep the branch of the kind of value given, and drop the branch names from the key."""
    cleaned: dict[tuple[str, ...], list[Any]] = {}
    for error in errors:
        parts = [str(part) for part in error["loc"]]
        if parts and parts[0] == mode:  # the request's tag, not a key
            parts = parts[1:]
        location = tuple(
            p for p in parts if not any(c in p for c in "[-") and p not in BRANCH_NAMES
        )
        cleaned.setdefault(location, []).append({**error, "loc": location})
    kept = []
    for location, same_key in cleaned.items():
        if any(other[: len(location)] == location for other in cleaned if other != location):
            continue  # an object or list was given, and errors inside it say what is wrong
        matching = [e for e in same_key if e["type"] not in TYPE_ERRORS]
        kept.extend(matching or same_key[:1])
    return kept


BRANCH_NAMES = {"str", "int", "float", "bool", "Validation", "MetricBounds"}


HINTS = {
    "trainDataPath": " (the CSV or Parquet file to train on)",
    "testDataPath": " (a labelled CSV or Parquet file with the model's input columns)",
    "newDataPath": " (the new labelled rows: a CSV or Parquet file with the model's columns)",
    "hyperparameterSearch.enabled": " (true or false, not a string)",
    "hyperparameterSearch.nTrials": " (an integer, 1 or more)",
    "hyperparameterSearch.timeout": " (seconds, a number above 0, e.g. 3600 for an hour)",
    "experimentTracking.enabled": " (runs are always tracked in MLflow, in the project's "
    "sqlite:///mlflow.db unless trackingUri names another store: leave it true or out)",
    "validationStrategy": " (a name such as stratified_kfold, or an object "
    '{"type": "stratified_kfold", "folds": 5, "shuffle": true})',
    "algorithm": ' (auto, a name such as "lightgbm", or a list of names)',
    "features": ' (a JSON list of column names, e.g. ["age", "income"], or leave it out)',
}


def _hint(key: str) -> str:
    return HINTS.get(key, "")


def _keys_at(mode: Any, location: list[str]) -> list[str]:
    """The keys the model at `location` (the unknown key's parent) accepts."""
    model: Any = next(
        (m for m in (TrainRequest, EvaluateRequest, DeployRequest, RetrainRequest)
         if mode in m.model_fields["task"].annotation.__args__),
        TrainRequest,
    )  # fmt: skip
    for part in location[:-1]:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type):
            break
        model = field.annotation
    return list(model.model_fields)


def _model_reference(
    request: EvaluateRequest | DeployRequest | RetrainRequest, base_dir: Path
) -> str | None:
    if request.modelPath:
        return _absolute(request.modelPath, base_dir)
    return request.modelUri


def _absolute(path: str, base_dir: Path) -> str:
    given = Path(path).expanduser()
    return str(given if given.is_absolute() else (base_dir / given).resolve())


def _experiment_run(registration: Mapping[str, Any]) -> ExperimentRun:
    return ExperimentRun(
        runId=registration.get("run_id"),
        experimentId=registration.get("experiment_id"),
        artifactUri=registration.get("artifact_uri"),
    )


def _finite(values: Mapping[str, Any]) -> dict[str, float | None]:
    """NaN is not JSON: a metric that cannot be computed is null."""
    return {k: _number(v) for k, v in values.items()}


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
