"""A trained model -> checks, an ONNX export, its promotion in the registry when every check
passes, and deployment.json (written before a failed deployment stops the run)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.io.core import generate_timestamp

from model_trainer.errors import ModelTrainerError
from model_trainer.serving import deployment
from model_trainer.serving.model_store import versioned_file
from model_trainer.serving.onnx_export import ONNX_FILE
from model_trainer.serving.promotion import (
    blocking_failures,
    deployment_report,
    describe_failure,
    promote,
    registry_name_of,
)

logger = logging.getLogger(__name__)


def load_candidate(settings: dict[str, Any]) -> deployment.Candidate:
    return deployment.load_candidate(
        settings.get("model"),
        settings.get("data"),
        Path(settings["models_dir"]),
        Path(settings["splits_dir"]) / "test_split.parquet",
        trust_unverified=bool(settings.get("trust_unverified", False)),
    )


def check_model(candidate: deployment.Candidate, settings: dict[str, Any]) -> list[dict[str, Any]]:
    checks = [
        *deployment.metric_checks(
            candidate, settings["metric_thresholds"], bool(settings["must_beat_dummy"])
        ),
        *deployment.prediction_checks(candidate, int(settings["sample_rows"])),
        deployment.size_check(candidate.stored.model, _megabytes(settings["max_size_mb"])),
        *deployment.latency_checks(candidate, settings["latency"]),
    ]
    for check in checks:
        logger.info("Check %s: %s (%s).", check["name"], check["status"], check["detail"])
    return checks


def export_onnx(
    candidate: deployment.Candidate, settings: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ONNX graph is saved beside the model's own version (model.onnx/<version>/), none
    when the model cannot be converted or the export disagrees with it."""
    graph, check = deployment.onnx_check(
        candidate, settings["onnx"], int(settings["latency"]["single_row"]["repeats"])
    )
    logger.info("Check %s: %s (%s).", check["name"], check["status"], check["detail"])
    if graph is None:
        return {}, check
    version = candidate.stored.save_version or generate_timestamp()
    path = versioned_file(Path(settings["models_dir"]) / ONNX_FILE, version)
    check["onnx"]["path"] = str(path.resolve())
    return {f"{version}/{Path(ONNX_FILE).stem}": graph}, check


def promote_if_passed(
    candidate: deployment.Candidate,
    checks: list[dict[str, Any]],
    onnx_check: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    failures = blocking_failures([*checks, onnx_check], bool(settings["onnx"]["required"]))
    if failures:
        logger.warning("Not promoted: %s.", "; ".join(map(describe_failure, failures)))
        return {"promoted": False}
    registration = promote(candidate, registry_name_of(candidate, settings), settings.get("alias"))
    return {"promoted": registration is not None, "registeredModel": registration}


def summarize_deployment(
    candidate: deployment.Candidate,
    checks: list[dict[str, Any]],
    onnx_check: dict[str, Any],
    registration: dict[str, Any],
    settings: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """deployment.json, and its figures as MLflow metrics of the deploy run."""
    failures = blocking_failures([*checks, onnx_check], bool(settings["onnx"]["required"]))
    report = deployment_report(
        candidate, checks, failures, onnx_check, registration.get("registeredModel")
    )
    figures = {
        "passed": float(report["passed"]),
        "latency_p50_ms": report["latencyMs"]["p50"],
        "latency_p99_ms": report["latencyMs"]["p99"],
        "batch_latency_p99_ms": report["latencyMs"]["batch"]["p99"],
        "size_bytes": report["sizeBytes"],
        "onnx_max_abs_diff": report["onnxMaxAbsDiff"],
    }
    metrics = {k: {"value": float(v), "step": 0} for k, v in figures.items() if v is not None}
    return report, metrics


def stop_if_failed(report: dict[str, Any], settings: dict[str, Any]) -> None:
    """Runs after deployment.json is saved, so a failed deployment is recorded, then fails the
    run (for CI) unless deploy.fail_on_check_failure is false."""
    if report["passed"]:
        logger.info("Deployment passed every check.")
        return
    summary = "; ".join(report["failed"])
    if not settings["fail_on_check_failure"]:
        logger.warning("Deployment failed its checks (%s); not promoted.", summary)
        return
    raise ModelTrainerError(
        f"The deployment failed its checks, so the model was not promoted: {summary}.",
        "See data/08_reporting/deployment.json for every check and its figures; retrain, or "
        "change the thresholds under deploy in conf (fail_on_check_failure: false records a "
        "failed deployment without failing the run).",
    )


def _megabytes(value: float | None) -> float | None:
    return None if value is None else float(value) * 1e6
