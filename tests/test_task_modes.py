"""The seed skill's other modes through `kedro task`: tune_model (a search, no model), and
evaluate_model and deploy_model on the shared trained project, each answering its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BENCH, query, run_kedro

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("bench_data_is_beside_the_project")]


def task(project: Path, spec: dict, *options: str) -> tuple[int, dict]:
    (project / "mode.json").write_text(json.dumps(spec))
    result = run_kedro(project, "task", "mode.json", "--output", "mode_out.json", *options)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads((project / "mode_out.json").read_text())


def test_tune_model_fills_the_study_and_registers_no_model(project: Path):
    spec = {
        "task": "tune_model",
        "trainDataPath": str(BENCH / "penguins" / "train.csv"),
        "targetColumn": "species",
        "hyperparameterSearch": {"nTrials": 3, "timeout": 60},
    }
    code, answer = task(project, spec, "--env=test")
    assert code == 0, answer
    assert answer["success"] is True
    assert answer["study"]["nTrials"] == 3 and answer["study"]["metric"] == "log_loss"
    assert [trial["number"] for trial in answer["trials"]] == [0, 1, 2]
    assert answer["bestParams"]["algorithm"]
    assert answer["crossValidation"]["metric"] == "log_loss"
    assert "modelPath" not in answer
    assert not list((project / "data" / "06_models").glob("model.joblib"))
    assert query(project / "mlflow.db", "select count(*) from model_versions") == [(0,)]


def test_evaluate_model_answers_metrics_baseline_and_report(trained_project: Path, tmp_path):
    rows = trained_project / "data" / "01_raw" / "credit_data.csv"
    [model] = sorted((trained_project / "data" / "06_models" / "model.joblib").rglob("*.joblib"))[
        :1
    ]
    spec = {
        "task": "evaluate_model",
        "modelPath": str(model),
        "testDataPath": str(rows),
        "targetColumn": "Status",
    }
    code, answer = task(trained_project, spec)
    assert code == 0, answer
    assert answer["success"] is True
    assert 0.5 < answer["metrics"]["roc_auc"] <= 1
    assert answer["baselineMetrics"]["roc_auc"] == 0.5
    assert answer["model"]["source"] == str(model)
    assert Path(answer["reportPath"]).is_file()

    code, refused = task(trained_project, {**spec, "targetColumn": "Income"})
    assert code == 1 and refused["success"] is False
    assert "'Income' is not the model's target 'Status'" in refused["error"]


def test_deploy_model_answers_the_deployment_checks(trained_project: Path):
    spec = {"task": "deploy_model", "thresholds": {"roc_auc": {"min": 0.99}}}
    code, answer = task(trained_project, spec, "--env=test")
    assert code == 1, "a roc_auc of 0.99 is out of this model's reach"
    assert answer["success"] is False
    assert "metric_roc_auc" in answer["error"]
    assert answer["deployment"]["passed"] is False
    assert any(check["name"] == "metric_roc_auc" for check in answer["deployment"]["checks"])
