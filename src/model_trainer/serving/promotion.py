"""What follows the deployment checks: whether they block the promotion, the promotion itself
(a registry alias on the model's version), and deployment.json."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from model_trainer.errors import ConfigurationError
from model_trainer.serving.deployment import FAILED, NOT_CONVERTIBLE, Candidate
from model_trainer.serving.model_store import StoredModel
from model_trainer.tracking.runs import log_model

logger = logging.getLogger(__name__)


def blocking_failures(checks: list[dict[str, Any]], onnx_required: bool) -> list[dict[str, Any]]:
    """The checks that stop a promotion: failed ones, and an unconvertible model when ONNX is
    required."""
    blocking = {FAILED, NOT_CONVERTIBLE} if onnx_required else {FAILED}
    return [c for c in checks if c["status"] in blocking]


def describe_failure(check: Mapping[str, Any]) -> str:
    """One line: the check, its figure and the threshold it missed (or why it failed)."""
    if check["status"] == NOT_CONVERTIBLE or not check["threshold"]:
        return f"{check['name']}: {check['detail']}"
    limits = ", ".join(f"{k} {_short(v)}" for k, v in check["threshold"].items())
    return f"{check['name']} = {_short(check['value'])} (threshold: {limits})"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping) and "p99" in value:
        return f"p99 {value['p99']:.4g} ms"
    return str(value)


def registered_version(stored: StoredModel, name: str) -> str | None:
    """The registry version of `name` that holds this model: the one it was loaded as, or the
    one its run registered (found by run id, or by the Kedro run whose save version it has)."""
    from mlflow import MlflowClient

    if stored.registered_name == name and stored.registered_version:
        return str(stored.registered_version)
    client = MlflowClient()
    run_ids = [stored.run_id] if stored.run_id else []
    if not run_ids and stored.save_version:  # kedro-mlflow tags a run with Kedro's run id
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(experiments, f"tags.run_id = '{stored.save_version}'")
        run_ids = [run.info.run_id for run in runs]
    versions = [
        int(v.version)
        for run_id in run_ids
        for v in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    ]
    return str(max(versions)) if versions else None


def registry_name_of(candidate: Candidate, settings: Mapping[str, Any]) -> str:
    """deploy.registered_model_name, else the name the model was loaded as or registered under
    at training: an alias then never moves across unrelated models."""
    name = (
        settings.get("registered_model_name")
        or candidate.stored.registered_name
        or candidate.card.get("registered_model_name")
    )
    if not name:
        raise ConfigurationError(
            f"The model {candidate.stored.source} was not registered at training, so there is "
            "no registry name to promote it under.",
            "Set deploy.registered_model_name (registeredModelName in the task JSON).",
        )
    return name


def promote(candidate: Candidate, name: str, alias: str | None) -> dict[str, Any] | None:
    """Point `alias` at the model's registry version. A model its run registered keeps that
    version (same artifact, same lineage); one never registered is logged here first (MLflow's
    sklearn flavour, a pyfunc, with pinned requirements) and registered. None without an active
    MLflow run."""
    import mlflow
    from mlflow import MlflowClient

    run = mlflow.active_run()
    if run is None:
        logger.warning("No active MLflow run: the model is not registered or promoted.")
        return None
    stored = candidate.stored
    version = registered_version(stored, name)
    logged_here = version is None
    if logged_here:
        logged = log_model(stored.model, stored.card, candidate.X, name)
        version = str(logged["registered_model_version"])
    client = MlflowClient()
    client.set_model_version_tag(name, version, "deployment_run_id", run.info.run_id)
    if alias:
        client.set_registered_model_alias(name, alias, version)
        logger.info("Promoted %s version %s to alias '%s'.", name, version, alias)
    return {"name": name, "version": version, "alias": alias, "loggedByDeployment": logged_here}


def deployment_report(
    candidate: Candidate,
    checks: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    onnx: Mapping[str, Any],
    registration: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """deployment.json: the verdict, every check, and the figures a serving team asks for."""
    by_name = {c["name"]: c for c in checks}
    single = by_name["latency_single_row_ms"]["value"] or {}
    batch = by_name["latency_batch_ms"]["value"] or {}
    stored = candidate.stored
    return {
        "passed": not failures,
        "failed": [describe_failure(c) for c in failures],
        "model": {
            "source": stored.source,
            "saveVersion": stored.save_version,
            "runId": stored.run_id,
            "task": candidate.card["task"],
            "algorithm": candidate.card.get("algorithm"),
            "metric": candidate.card["metric"],
        },
        "data": {"path": candidate.rows_source, "rows": len(candidate.rows)},
        "checks": [*checks, dict(onnx)],
        "onnxPath": onnx.get("onnx", {}).get("path"),
        "onnxMaxAbsDiff": onnx["value"],
        "onnxStatus": onnx["status"],
        "latencyMs": {
            "p50": single.get("p50"),
            "p99": single.get("p99"),
            "batch": {k: batch.get(k) for k in ("p50", "p99", "rows")},
        },
        "sizeBytes": by_name["size_bytes"]["value"],
        "registeredModel": dict(registration) if registration else None,
    }
