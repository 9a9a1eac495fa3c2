"""The seed agent's task JSON: the results `kedro task` answers and one JSON Schema for the
requests and the results.

An adapter at the edge: it validates and translates, the pipelines do the work. The requests
are in `contract.requests`, their parsing in `contract.parsing`, their runtime parameters in
`contract.runtime_params`; the package exports what the CLI uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from model_trainer.contract.requests import REQUEST, EvaluateRequest, Label


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
