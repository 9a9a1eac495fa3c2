"""Project commands: `kedro run` with readable errors, `kedro task` (the task JSON contract) and
`kedro serve` (a model over HTTP)."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.cli.utils import env_option
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project

from model_trainer import contract as task_contract
from model_trainer.console import nearest_project, project_path
from model_trainer.errors import find_model_trainer_error
from model_trainer.hooks import ARTIFACT_RECORDER
from model_trainer.serving.model_store import MLFLOW_SCHEMES
from model_trainer.task_runner import SHOWN_ARTIFACTS, run_task_json, saved_files

logger = logging.getLogger(__name__)


@click.group(name="model_trainer")
def cli() -> None:
    """model-trainer project commands."""


@cli.command(name="run", params=list(kedro_run.params), help=kedro_run.help)
@click.pass_context
def run(ctx: click.Context, **kwargs: Any) -> None:
    """Kedro's run, with a user's error as one message and a fix, not a traceback."""
    try:
        with warnings.catch_warnings():
            # DESIGN keeps `--pipeline=train` working; Kedro 1.7 prefers `--pipelines`.
            warnings.filterwarnings("ignore", message="Option '--pipeline' is deprecated")
            ctx.invoke(kedro_run, **kwargs)
    except Exception as exc:
        _explain_failure(exc)
        sys.exit(1)
    _print_where_things_went()
    code = _outcome_exit_code()
    if code:
        sys.exit(code)


def _outcome_exit_code() -> int:
    """A run that succeeded can still tell a scheduler what came out: the retrain pipeline
    exits with retrain.exit_code_when_kept when it kept the champion, the inference pipeline
    with inference.drift.exit_code when features drifted (both 0 unless set)."""
    results = ARTIFACT_RECORDER.results
    comparison, drift = results.get("retrain_comparison"), results.get("inference_drift")
    if comparison:
        verdict = "Promoted the challenger" if comparison["promoted"] else "Kept the champion"
        click.echo(f"{verdict}: {comparison['reason']}")
        return int(comparison.get("exit_code") or 0)
    if drift and drift.get("drifted"):
        click.echo(f"Drift in {', '.join(drift['drifted_features'])}: consider retraining.")
        return int(drift.get("exit_code") or 0)
    return 0


@cli.command(name="task")
@click.argument("input_json", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Where to write the result JSON."
)
@click.option("--schema", is_flag=True, help="Print the task JSON's JSON Schema and exit.")
@env_option
def task(input_json: str | None, output: str | None, schema: bool, env: str | None) -> None:
    """Run the seed agent's task JSON (train_model, tune_model, evaluate_model, deploy_model)
    and write the result JSON."""
    if schema:
        click.echo(json.dumps(task_contract.json_schema(), indent=2))
        return
    if input_json is None:
        raise click.UsageError("Give the task JSON's path (or --schema).")
    run_task_json(Path(input_json), output, env, nearest_project())


@cli.command(name="serve")
@click.option(
    "--model",
    "model_reference",
    default=None,
    help="A model.joblib path or an MLflow URI (models:/model_trainer/3, models:/name@alias, "
    "runs:/<id>/model). Default: the latest model under data/06_models.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--unknown-columns",
    type=click.Choice(["ignore", "refuse"]),
    default="ignore",
    show_default=True,
    help="Request columns the model was not trained on: dropped, or a 422.",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=1_048_576,
    show_default=True,
    help="A larger request body gets a 413.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    default="data/09_serving/predictions.jsonl",
    show_default=True,
    help="One JSON line per prediction request (predictions, latency); relative to the project.",
)
@click.option(
    "--api-key-env",
    metavar="NAME",
    default=None,
    help="Require the API key held in the environment variable NAME on every route but "
    "/health, sent as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
)
@click.option(
    "--trust-unverified",
    is_flag=True,
    help="Load a model file that does not match the SHA-256 recorded when it was trained (or "
    "has none). Unpickling runs any code the file holds: only for a file you know.",
)
@click.option(
    "--onnx",
    "serve_onnx",
    is_flag=True,
    help="Serve the model's ONNX export (saved by the deploy pipeline when it agrees with the "
    "model) with onnxruntime: no pickle is loaded. --model names the model by its path.",
)
@env_option
def serve(
    model_reference: str | None,
    host: str,
    port: int,
    unknown_columns: str,
    max_body_bytes: int,
    log_file: str,
    api_key_env: str | None,
    trust_unverified: bool,
    serve_onnx: bool,
    env: str | None,
) -> None:
    """Serve a trained model: POST /predict, GET /health, GET /metadata, docs at /docs."""
    import uvicorn

    from model_trainer.serving import app as serving
    from model_trainer.serving.model_store import load_stored_model

    api_key = read_api_key(api_key_env) if api_key_env else None
    if api_key is None:
        warn_if_reachable_by_others(host, port)
    project_path = nearest_project()
    if serve_onnx and model_reference and not model_reference.startswith(MLFLOW_SCHEMES):
        model_reference = str(Path(model_reference).expanduser().resolve())  # from here
    os.chdir(project_path)  # MLflow's SQLite store and artifact paths are relative to it
    try:
        models_dir = project_path / "data" / "06_models"
        if serve_onnx:
            from model_trainer.serving.onnx_model import load_onnx_model

            stored = load_onnx_model(model_reference, models_dir)
        else:
            if model_reference and model_reference.strip().startswith(MLFLOW_SCHEMES):
                os.environ.setdefault("MLFLOW_TRACKING_URI", _configured_tracking_uri(env))
            stored = load_stored_model(model_reference, models_dir, trust_unverified)
        app = serving.build_app(
            stored,
            unknown_columns=unknown_columns,
            max_body_bytes=max_body_bytes,
            prediction_log=Path(log_file),
            api_key=api_key,
        )
    except Exception as exc:
        _explain_failure(exc)
        sys.exit(1)
    click.echo(
        f"Serving {stored.source} (version {serving.model_version(stored)}) on "
        f"http://{host}:{port}: POST /predict, GET /metadata, docs at /docs."
        + (f" Every route but /health needs the key in ${api_key_env}." if api_key else "")
    )
    uvicorn.run(app, host=host, port=port)


def read_api_key(variable: str) -> str:
    """The key comes from the environment, not the command line, where `ps` and the shell's
    history would show it. Stripped: HTTP strips a header value's ends, so a key ending in a
    newline could never match."""
    key = os.environ.get(variable, "").strip()
    if not key:
        click.secho(
            f"Error: --api-key-env {variable}: the environment variable {variable} is unset or "
            "empty; export the API key in it.",
            fg="red",
            err=True,
        )
        sys.exit(1)
    return key


def warn_if_reachable_by_others(host: str, port: int) -> None:
    """Without a key, a server bound beyond this machine answers anyone on the network."""
    if not is_loopback(host):
        logger.warning(
            "Serving on %s:%s without an API key: anyone who can reach the port can call the "
            "model. Add one: export MODEL_API_KEY=<a long random secret> and add "
            "--api-key-env MODEL_API_KEY.",
            host,
            port,
        )


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1: only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any address
        return False


commands = cli


@click.group(name="model-trainer")
def main() -> None:
    """model-trainer from any directory: `model-trainer task IN.json --output OUT.json`."""


@main.command(name="task")
@click.argument("input_json", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Where to write the result JSON."
)
@click.option("--schema", is_flag=True, help="Print the task JSON's JSON Schema and exit.")
@click.option(
    "--project",
    type=click.Path(file_okay=False, exists=True),
    envvar="MODEL_TRAINER_PROJECT",
    help="The Kedro project whose conf, data/ and MLflow store the task uses. Default: "
    "$MODEL_TRAINER_PROJECT, else the project this package is installed from.",
)
@env_option
def standalone_task(
    input_json: str | None, output: str | None, schema: bool, project: str | None, env: str | None
) -> None:
    """Run a task JSON from any directory; relative paths in it start at its own folder."""
    if schema:
        click.echo(json.dumps(task_contract.json_schema(), indent=2))
        return
    if input_json is None:
        raise click.UsageError("Give the task JSON's path (or --schema).")
    run_task_json(
        Path(input_json), output, env, Path(project).resolve() if project else project_path([])
    )


def _configured_tracking_uri(env: str | None) -> str:
    """The tracking URI kedro-mlflow would use (mlflow.yml of base and `env`), so a models:/ URI
    resolves against the project's store without extra flags."""
    bootstrap_project(Path.cwd())
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path.cwd() / settings.CONF_SOURCE), env=env, **settings.CONFIG_LOADER_ARGS
    )
    loader.config_patterns.setdefault("mlflow", ["mlflow*", "mlflow*/**"])
    return loader["mlflow"]["server"]["mlflow_tracking_uri"]


def _explain_failure(exc: BaseException) -> None:
    user_error = find_model_trainer_error(exc)
    if user_error is not None:
        click.secho(f"Error: {user_error.message}", fg="red", err=True)
        if user_error.remediation:
            click.secho(f"Fix: {user_error.remediation}", fg="yellow", err=True)
    else:
        click.secho(f"Error: {type(exc).__name__}: {exc}", fg="red", err=True)
        click.echo("Details are in info.log; MODEL_TRAINER_DEBUG=1 shows the traceback.", err=True)
        if os.environ.get("MODEL_TRAINER_DEBUG"):
            raise exc
    saved = saved_files()
    if saved:
        click.echo("Kept from this run: " + ", ".join(saved), err=True)


def _print_where_things_went() -> None:
    saved = ARTIFACT_RECORDER.saved
    lines = [f"  {name}: {saved[name]}" for name in SHOWN_ARTIFACTS if name in saved]
    if lines:
        click.echo("Artifacts:\n" + "\n".join(lines))
        registration = ARTIFACT_RECORDER.results.get("model_registration") or {}
        if registration.get("logged"):
            registered = (
                f"; registered {registration['registered_model_name']} "
                f"v{registration['registered_model_version']}"
                if registration.get("registered_model_version")
                else ""
            )
            click.echo(
                f"MLflow: run {registration['run_id']} in experiment "
                f"{registration['experiment_id']}{registered}."
            )
        if "report" in saved:
            click.echo(f"Report: {Path(saved['report']).as_uri()}")
        click.echo("Browse runs with `kedro mlflow ui`, the pipeline with `kedro viz run`.")
