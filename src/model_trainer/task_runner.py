"""A task JSON run: the request parsed, its pipeline run in a Kedro session in the project, and
the result JSON (a failure's too). `kedro task`, `model-trainer task` and the Python API all
run tasks through here."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import yaml
from kedro.framework.project import LOGGING
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.runner import SequentialRunner

from model_trainer import contract as task_contract
from model_trainer.errors import find_model_trainer_error
from model_trainer.hooks import ARTIFACT_RECORDER

SHOWN_ARTIFACTS = (
    "model",
    "model_card",
    "report",
    "metrics",
    "training_metrics",
    "feature_importance",
    "decisions",
    "evaluation_report",
    "evaluation_predictions",
    "inference_predictions",
    "inference_report",
    "deployment",
    "retrain_report",
)
# MLflow draws a progress bar for every artifact download (loading a registered model): noise.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def command_start() -> float:
    """When this task began (epoch seconds), for a budget that is the command's wall time: the
    process's start when the process was started to run it (start-up counts), else now (a call
    from a notebook or a test)."""
    if sys.argv[1:2] == ["task"]:
        import psutil

        return psutil.Process().create_time()
    return time.time()


def run_task_json(input_json: Path, output: str | None, env: str | None, project: Path) -> None:
    """Validate the JSON, run the task's pipeline in `project`, write the result (and exit
    non-zero on failure). Relative paths in the JSON start at the JSON's folder."""
    input_json = input_json.expanduser().resolve()
    output_path = Path(output).expanduser().resolve() if output else None
    try:
        spec = json.loads(input_json.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        _finish(
            task_contract.failure_output(
                f"Cannot read the task JSON '{input_json}': {exc}",
                "Give the path of a readable file holding one JSON object.",
                [],
            ),
            output_path,
        )
        return
    _finish(run_task(spec, input_json.parent, env, project), output_path)


def run_task(spec: Any, base: Path, env: str | None, project: Path) -> dict[str, Any]:
    """The task JSON `spec` run in `project` (its working directory from then on: conf's
    relative paths are the project's), relative paths in it starting at `base`: the result
    JSON, a failure's too (`success` false, the error, how to fix it, what was kept)."""
    started = time.perf_counter()
    os.chdir(project)
    _log_into(project)
    try:
        request = task_contract.parse_request(spec)
        params = task_contract.runtime_params(
            request, base, task_contract.ml_task_of(request, base)
        )
        if "tuning" in params:  # a search's budget counts from the command's start
            params["tuning"]["started_at"] = command_start()
        pipeline = task_contract.MODE_PIPELINES[request.task]
        bootstrap_project(project)
        _set_verbosity(getattr(getattr(request, "options", None), "verbosity", None))
        with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
            if isinstance(request, task_contract.TrainRequest):
                from model_trainer.tasks.clustering import CLUSTERING_ALGORITHMS

                known = session.load_context().params["model"]["algorithms"]
                task_contract.check_algorithms(request, [*known, *CLUSTERING_ALGORITHMS])
            session.run(pipeline_names=[pipeline], runner=SequentialRunner())
        return _task_result(request, time.perf_counter() - started)
    except Exception as exc:
        user_error = find_model_trainer_error(exc)
        message = user_error.message if user_error else f"{type(exc).__name__}: {exc}"
        remediation = (
            user_error.remediation
            if user_error
            else "See info.log and the failed MLflow run for details, fix the cause and rerun: "
            "the study and the saved splits are reused."
        )
        return task_contract.failure_output(message, remediation, saved_files())


def _log_into(project: Path) -> None:
    """Kedro set logging up where the command started (info.log there): the project's own
    logging.yml, relative to the project, instead."""
    config = project / "conf" / "logging.yml"
    if config.is_file():
        LOGGING.configure(yaml.safe_load(config.read_text()))


def _set_verbosity(verbosity: int | None) -> None:
    """options.verbosity: 0 warnings only, 1 a line per step (the default), 2 debug."""
    if verbosity is not None:
        level = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}[verbosity]
        for name in ("model_trainer", "kedro"):
            logging.getLogger(name).setLevel(level)


def _task_result(request: Any, elapsed: float) -> dict[str, Any]:
    pipeline = task_contract.MODE_PIPELINES[request.task]
    results, saved = ARTIFACT_RECORDER.results, ARTIFACT_RECORDER.saved
    artifacts = [saved[name] for name in SHOWN_ARTIFACTS if name in saved]
    registration = results.get("model_registration") or _active_run_ids()
    if pipeline == "evaluate":
        return task_contract.evaluate_output(
            request,
            results["evaluation_comparison"],
            registration,
            {name: saved[name] for name in SHOWN_ARTIFACTS if name in saved},
        )
    if pipeline == "deploy":
        return task_contract.deploy_output(results["deployment"], artifacts)
    if pipeline == "retrain":
        return task_contract.retrain_output(
            results["retrain_comparison"],
            results.get("retrain_registration") or _active_run_ids(),
            {name: saved[name] for name in SHOWN_ARTIFACTS if name in saved},
        )
    if pipeline == "tune":
        return task_contract.tune_output(
            study_summary=results["study_summary"],
            trials=results["trials"].to_dict(orient="records"),
            registration=registration,
            training_time=elapsed,
            artifacts=[saved[name] for name in ("study_summary", "trials") if name in saved],
        )
    return task_contract.train_output(
        model_path=saved["model"],
        metrics=results["metrics"],
        training_metrics=results["training_metrics"],
        task=results["task"],
        registration=registration,
        training_time=elapsed,
        artifacts=artifacts,
    )


def _active_run_ids() -> dict[str, Any]:
    """The last run's ids when no model was logged (a search only)."""
    import mlflow

    run = mlflow.last_active_run()
    if run is None:
        return {}
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "artifact_uri": run.info.artifact_uri,
    }


def saved_files() -> list[str]:
    return sorted(set(ARTIFACT_RECORDER.saved.values()))


def _finish(result: dict[str, Any], output: Path | None) -> None:
    text = json.dumps(result, indent=2, default=str)
    if output:
        output.write_text(text + "\n")
    click.echo(text)
    if not result["success"]:
        sys.exit(1)
