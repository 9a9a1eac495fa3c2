"""What a study says about itself: the per-trial log line, the MLflow child runs, the
study's description, its summary, its trials table and its parameter importances."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from mlflow.exceptions import MlflowException
from optuna.study import StudyDirection
from optuna.trial import TrialState

from model_trainer.errors import TrackingServerLost
from model_trainer.search.budget import SearchBudget
from model_trainer.search.samplers import objectives_of
from model_trainer.search.space import split_params
from model_trainer.search.storage import redact
from model_trainer.tracking.failures import LOST_SERVER

logger = logging.getLogger(__name__)


COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def chosen_trial(study: optuna.Study, tolerance: float) -> optuna.trial.FrozenTrial:
    """The trial the final model is built from. One objective: the best trial. Several: on the
    Pareto front, the trials whose metric is within `tolerance` (relative, e.g. 0.01 = 1%) of the
    front's best metric, and of those the one lowest in the other objectives (in their order),
    then the earliest."""
    if len(study.directions) == 1:
        return study.best_trial
    front = study.best_trials
    sign = 1.0 if study.directions[0] == StudyDirection.MAXIMIZE else -1.0
    best = max(sign * t.values[0] for t in front)
    close = [t for t in front if sign * t.values[0] >= best - tolerance * abs(best)]
    return min(close, key=lambda t: (*t.values[1:], t.number))


class TrialLogger:
    """One line per trial, and each trial as a nested MLflow run of the kedro-mlflow run."""

    def __init__(
        self,
        metric: str,
        n_trials: int,
        mlflow_parent: Any | None,
        objectives: Sequence[str] = (),
        budget: SearchBudget | None = None,
    ) -> None:
        self.metric = metric
        self.n_trials = n_trials
        self.parent = mlflow_parent
        self.objectives = list(objectives) or [metric]
        self.budget = budget
        self.started = time.monotonic()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counted = len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
        algorithm = trial.params.get("algorithm") or trial.user_attrs.get("algorithm", "")
        duration = trial.duration.total_seconds() if trial.duration else 0.0
        if trial.state == TrialState.COMPLETE and len(self.objectives) > 1:
            others = " ".join(
                f"{name}={value:.4g}"
                for name, value in zip(self.objectives[1:], trial.values[1:], strict=True)
            )
            outcome = (
                f"{self.metric}={trial.values[0]:.5g} {others} "
                f"(Pareto front: {len(study.best_trials)} trials)"
            )
        elif trial.state == TrialState.COMPLETE:
            best = study.best_trial
            outcome = (
                f"{self.metric}={trial.value:.5g} (best {best.value:.5g}, trial {best.number})"
            )
        elif trial.state == TrialState.PRUNED:
            outcome = "pruned"
        else:
            outcome = f"failed: {trial.user_attrs.get('error', 'see MLflow')}"
        logger.info(
            "Trial %d [%d/%d] %s %s in %.1fs; %s",
            trial.number,
            counted,
            self.n_trials,
            algorithm,
            outcome,
            duration,
            self._clock(),
        )
        if self.parent is not None:
            try:
                log_trial_run(self.parent, trial, self.objectives)
            except MlflowException as exc:
                if not LOST_SERVER.search(exc.message):
                    raise  # the store answered: its own error says what is wrong
                raise lost_server(study, exc) from exc

    def _clock(self) -> str:
        """How far the search is: its elapsed time, and what is left of tuning.timeout."""
        now = time.monotonic()
        elapsed = f"{now - self.started:.0f} s elapsed"
        if self.budget is None or self.budget.end is None:
            return elapsed
        return f"{elapsed}, {max(self.budget.end - now, 0.0):.0f} s of the budget left"


def lost_server(study: optuna.Study, error: MlflowException) -> TrackingServerLost:
    """The search stops at the first trial it cannot log: one error naming the server, and
    what the study (which the server does not hold) keeps for the next run."""
    import mlflow

    completed = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    reason = re.search(r"\[Errno -?\d+\] ([^\"')]+)", error.message)
    return TrackingServerLost(
        f"The MLflow tracking server at {mlflow.get_tracking_uri()} stopped answering during "
        f"the search ({reason.group(1) if reason else error.message[:200]}).",
        f"Start the server again and rerun the same command: the study '{study.study_name}' "
        f"keeps its {completed} completed trials and the search resumes from them.",
    )


def describe_study(
    study: optuna.Study,
    objectives: Sequence[str],
    X: pd.DataFrame,
    y: pd.Series,
    task: Mapping[str, Any],
    configuration: Mapping[str, Any],
) -> None:
    """What the study optimises and what it was run on, where optuna-dashboard (which reads
    the same storage) and a later reader of the study find them: its metric names and user
    attributes for the target, task, rows, features and folds."""
    study.set_metric_names(list(objectives))
    for key, value in {
        "target": str(y.name),
        "task": task["type"],
        "metric": configuration["metric"],
        "rows": len(X),
        "features": [str(c) for c in X.columns][:200],
        "cv": f"{configuration['cv']['folds']}-fold {configuration['cv']['strategy']}",
    }.items():
        study.set_user_attr(key, value)


def log_trial_run(parent: Any, trial: optuna.trial.FrozenTrial, objectives: Sequence[str]) -> None:
    """A child run with params, fold scores, duration and the objectives' values (the metric as
    `cv_<metric>`), written in one batch."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient()
    run = client.create_run(
        parent.info.experiment_id,
        run_name=f"trial_{trial.number}",
        tags={"mlflow.parentRunId": parent.info.run_id, "optuna.trial": str(trial.number)},
    )
    now = int(time.time() * 1000)
    metric, *others = objectives
    values = {
        f"fold_{metric}": trial.user_attrs.get("fold_scores", []),
        "duration_s": [trial.duration.total_seconds() if trial.duration else 0.0],
    }
    if trial.values is not None:
        values[f"cv_{metric}"] = [trial.values[0]]
        values.update({name: [value] for name, value in zip(others, trial.values[1:], strict=True)})
    metrics = [
        Metric(name, float(value), now, step)
        for name, series in values.items()
        for step, value in enumerate(series)
        if value is not None and math.isfinite(value)
    ]
    params = [Param(k, str(v)[:6000]) for k, v in trial.params.items()]
    tags = [RunTag("optuna.state", trial.state.name)]
    if "worker" in trial.user_attrs:
        tags.append(RunTag("optuna.worker", trial.user_attrs["worker"]))
    client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
    status = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}.get(
        trial.state, "FAILED"
    )
    client.set_terminated(run.info.run_id, status=status)


def summarize_study(
    study: optuna.Study, configuration: Mapping[str, Any], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The chosen trial (`chosen_trial`: the best one, or the Pareto rule's) as `best_*`. Its
    cross-validation counts `folds` fold scores: `distinct_folds` drawn `repeats` times."""
    algorithms, metric = configuration["algorithms"], configuration["metric"]
    objectives = objectives_of(settings, metric)
    best = chosen_trial(study, float(settings.get("pareto_tolerance", 0.01)))
    algorithm, params = split_params(best.params, algorithms)
    states = [t.state for t in study.trials]
    fold_scores = best.user_attrs.get("fold_scores", [])
    return {
        "study_name": study.study_name,
        "storage": redact(settings["storage"])
        if settings.get("storage") and settings.get("enabled", True)
        else "in-memory",
        "metric": metric,
        "direction": study.directions[0].name.lower(),
        "sampler": study.user_attrs.get("sampler", settings.get("sampler", "auto")),
        "objectives": objectives,
        "objective_values": dict(zip(objectives, best.values, strict=True)),
        "pareto_front": sorted(t.number for t in study.best_trials),
        "n_trials": len(states),
        "n_complete": states.count(TrialState.COMPLETE),
        "n_pruned": states.count(TrialState.PRUNED),
        "n_failed": states.count(TrialState.FAIL),
        "best_trial": best.number,
        "best_value": best.values[0],
        "algorithm": algorithm,
        "best_params": params,
        "cross_validation": {
            "mean": float(np.mean(fold_scores)),
            "std": float(np.std(fold_scores)),
            "folds": len(fold_scores),
            "distinct_folds": int(configuration["cv"]["folds"]),
            "repeats": int(configuration["cv"].get("repeats", 1)),
            "fold_scores": fold_scores,
        },
        "algorithms_tried": sorted(
            {
                t.params.get("algorithm") or t.user_attrs.get("algorithm", "")
                for t in study.get_trials(deepcopy=False, states=(*COUNTED_STATES, TrialState.FAIL))
            }
        ),
    }


def trials_table(study: optuna.Study, objectives: Sequence[str] = ()) -> pd.DataFrame:
    """One row per trial: `value` is the metric, then a column per other objective. Optuna
    names the value columns by the study's metric names when it has them (`value_roc_auc`,
    `values_latency`), else by position (`values_1`)."""
    table = study.trials_dataframe(attrs=("number", "value", "state", "duration", "params"))
    names = list(study.metric_names or objectives)
    renames = {"values_0": "value"}
    if names:
        renames |= {f"value_{names[0]}": "value", f"values_{names[0]}": "value"}
        renames |= {f"values_{name}": name for name in names[1:]}
    renames |= {f"values_{i}": name for i, name in enumerate(objectives[1:], start=1)}
    table = table.rename(columns=renames)
    table["algorithm"] = [
        t.params.get("algorithm") or t.user_attrs.get("algorithm") for t in study.trials
    ]
    table["duration"] = table["duration"].dt.total_seconds()
    return table


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Empty when too few trials completed to say anything."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3:
        return {}
    # With several objectives, the importance for the metric (the first).
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    try:
        return {
            k: float(v)
            for k, v in optuna.importance.get_param_importances(study, target=target).items()
        }
    except (ValueError, RuntimeError) as exc:
        logger.info("Parameter importance not computed: %s", exc)
        return {}
