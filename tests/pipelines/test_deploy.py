"""`kedro run --pipeline=deploy` on the trained project: a passing model is exported to ONNX and
promoted; a failing one is recorded in deployment.json, not promoted, and the run fails with a
readable error."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from model_trainer.errors import ModelTrainerError
from model_trainer.pipelines.deploy.nodes import stop_if_failed
from tests.conftest import query, run_kedro

ALIASES = "SELECT name, alias, version FROM registered_model_aliases ORDER BY name, alias"


def deployment_of(project: Path) -> dict:
    return json.loads((project / "data" / "08_reporting" / "deployment.json").read_text())


@pytest.mark.e2e
def test_a_model_that_passes_is_exported_and_promoted(trained_project: Path):
    result = run_kedro(
        trained_project,
        "run",
        "--pipeline=deploy",
        "--env=test",
        "--params=deploy.latency.single_row.repeats=20",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = deployment_of(trained_project)

    assert report["passed"] is True and report["failed"] == []
    assert {c["status"] for c in report["checks"]} == {"passed"}
    assert report["registeredModel"] == {
        "name": "01_raw_credit_data_Status",
        "version": "1",
        "alias": "champion",
        "loggedByDeployment": False,  # the version the train run registered
    }
    assert ("01_raw_credit_data_Status", "champion", 1) in query(
        trained_project / "mlflow.db", ALIASES
    )
    version = report["model"]["saveVersion"]
    assert report["onnxPath"] == str(
        trained_project / "data" / "06_models" / "model.onnx" / version / "model.onnx"
    )
    assert onnx.load(report["onnxPath"]).graph.output[1].name == "probabilities"
    assert report["onnxMaxAbsDiff"] < 1e-4
    assert 0 < report["latencyMs"]["p50"] <= report["latencyMs"]["p99"]
    assert report["latencyMs"]["batch"]["rows"] == 1000
    assert report["sizeBytes"] > 0
    assert report["data"]["path"].endswith(f"test_split.parquet/{version}/test_split.parquet")


@pytest.mark.e2e
def test_a_failed_check_is_recorded_and_promotes_nothing(trained_project: Path):
    aliases = query(trained_project / "mlflow.db", ALIASES)

    result = run_kedro(
        trained_project,
        "run",
        "--pipeline=deploy",
        "--env=test",
        "--params=deploy.metric_thresholds.roc_auc.min=1.01,deploy.onnx.enabled=false,"
        "deploy.latency.single_row.repeats=5",
    )
    report = deployment_of(trained_project)

    assert result.returncode == 1
    assert "Error: The deployment failed its checks" in result.stderr
    assert "metric_roc_auc" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr
    assert report["passed"] is False and report["registeredModel"] is None
    assert len(report["failed"]) == 1 and "min 1.01" in report["failed"][0]
    assert query(trained_project / "mlflow.db", ALIASES) == aliases


def test_a_failed_deployment_fails_the_run_only_when_configured_to():
    report = {"passed": False, "failed": ["metric_roc_auc = 0.85 (threshold: min 1.01)"]}
    stop_if_failed(report, {"fail_on_check_failure": False})
    with pytest.raises(ModelTrainerError, match=r"min 1\.01"):
        stop_if_failed(report, {"fail_on_check_failure": True})
