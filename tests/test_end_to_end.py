"""`kedro run --pipeline=train` and `kedro task` for real: real data, a real MLflow store,
a real Optuna study, tiny budgets (conf/test)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import joblib
import pandas as pd
import pytest

from tests.conftest import BENCH, query, run_kedro

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("bench_data_is_beside_the_project")]

CONTRACT_KEYS = {
    "success", "modelPath", "metrics", "bestParams", "crossValidation", "experimentRun",
    "trainingTime", "artifacts", "positiveClass",
}  # fmt: skip


def test_train_pipeline_logs_runs_registers_and_saves_a_model_that_predicts(project: Path):
    result = run_kedro(project, "run", "--pipeline=train", "--env=test")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    # MLflow's yellow warning about kedro-mlflow's KedroPipelineModel, a class not used here
    assert "Add type hints" not in result.stderr
    assert "registered 01_raw_credit_data_Status v1." in result.stdout
    assert "Report: file://" in result.stdout and "kedro mlflow ui" in result.stdout

    database = project / "mlflow.db"
    parents = query(
        database,
        "select run_uuid, status from runs where run_uuid not in "
        "(select run_uuid from tags where key = 'mlflow.parentRunId')",
    )
    assert len(parents) == 1 and parents[0][1] == "FINISHED"
    parent_id = parents[0][0]
    trials = query(
        database,
        f"select run_uuid from tags where key = 'mlflow.parentRunId' and value = '{parent_id}'",
    )
    assert len(trials) == 3
    logged = {
        k for (k,) in query(database, f"select key from params where run_uuid = '{parent_id}'")
    }
    assert {"dataset.target", "tuning.n_trials", "model.algorithm"} <= logged
    fold_metrics = query(database, "select count(*) from metrics where key = 'fold_roc_auc'")
    assert fold_metrics[0][0] >= 3 * 3  # three trials, three folds each
    assert query(database, "select name, version from model_versions") == [
        ("01_raw_credit_data_Status", 1)
    ]
    artifacts = list((project / "mlruns").rglob("report.html")) + list(
        (project / "mlartifacts").rglob("report.html")
    )
    assert artifacts, "the HTML report is logged to MLflow"

    model_files = list((project / "data" / "06_models" / "model.joblib").rglob("model.joblib"))
    assert len(model_files) == 1
    model = joblib.load(model_files[0])
    raw = pd.read_csv(project / "data" / "01_raw" / "credit_data.csv").drop(columns=["Status"])
    assert set(model.predict(raw.head(50))) <= {"good", "bad"}
    assert list(model.classes_) == ["bad", "good"]
    assert model.predict_proba(raw.head(5)).shape == (5, 2)

    card_files = list((project / "data" / "06_models" / "model_card.json").rglob("*.json"))
    assert [c.parent.name for c in card_files] == [m.parent.name for m in model_files]
    card = json.loads(card_files[0].read_text())
    assert card["input_columns"] == list(raw.columns)
    assert card["classes"] == ["bad", "good"] and card["task"] == "classification"
    assert card["features"]["Home"]["type"] == "categorical"
    card_for_people = card_files[0].parents[2] / "model_card.md" / card_files[0].parent.name
    assert (card_for_people / "model_card.md").read_text().startswith("# Model card:")

    decisions = json.loads((project / "data" / "08_reporting" / "decisions.json").read_text())
    assert {d["decision"] for d in decisions} >= {"task type", "imputation", "final model"}
    [smoke_run] = [d for d in decisions if d["decision"] == "smoke run before the search"]
    assert smoke_run["choice"].startswith("passed: lightgbm, logistic_regression fit 500 rows")
    training_info = json.loads((project / "data" / "06_models" / "training_info.json").read_text())
    members = training_info.get("ensemble") or [training_info]
    if "lightgbm" in {m["algorithm"] for m in members}:
        [curve] = training_info["learning_curves"]
        steps = query(
            database,
            f"select count(*) from metrics where key = 'curve.{curve['model']}.validation_auc' "
            f"and run_uuid = '{parent_id}'",
        )
        assert steps[0][0] == len(curve["validation"]["values"]) > 1, "one metric per round"
    assert list((project / "mlruns").rglob("decisions.json")), "the decisions are in MLflow"
    metrics = json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())
    assert 0.6 < metrics["roc_auc"] <= 1.0
    report = (project / "data" / "08_reporting" / "report.html").read_text()
    assert "Test roc_auc" in report and "data:image/png;base64," in report
    assert "http" not in report.split("<body>")[1].split("MLflow run")[0]

    again = run_kedro(project, "run", "--pipeline=train", "--env=test")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming study" in again.stderr
    trial_runs = query(database, "select count(*) from tags where key = 'mlflow.parentRunId'")
    assert trial_runs[0][0] == 3, "the resumed study reached its budget: no new trial"


def test_task_json_returns_the_contract_for_a_multiclass_table(project: Path, tmp_path: Path):
    request = {
        "task": "train",
        "modelType": "classification",
        "algorithm": "auto",
        "trainDataPath": str(BENCH / "penguins" / "train.csv"),
        "targetColumn": "species",
        "validationStrategy": "stratified",
        "hyperparameterSearch": {"enabled": True, "nTrials": 3, "timeout": 60},
        "experimentTracking": {"experimentName": "penguins_test"},
    }
    (tmp_path / "input.json").write_text(json.dumps(request))
    output = tmp_path / "result.json"
    result = run_kedro(
        project, "task", str(tmp_path / "input.json"), "--output", str(output), "--env=test"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(output.read_text())
    assert set(answer) == CONTRACT_KEYS
    assert answer["success"] is True
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"} <= set(
        answer["metrics"]
    )
    # three trials of `auto`: the first portfolio configuration of the first three families,
    # one of them or an ensemble of them
    shipped = answer["bestParams"]
    members = shipped["members"] if shipped["algorithm"] == "ensemble" else [shipped]
    assert {m["algorithm"] for m in members} <= {
        "lightgbm",
        "hist_gradient_boosting",
        "random_forest",
    }
    assert (answer["crossValidation"]["folds"], answer["crossValidation"]["repeats"]) == (3, 1)
    assert answer["crossValidation"]["metric"] == "log_loss"
    assert answer["positiveClass"] is None
    assert answer["experimentRun"]["runId"]
    assert Path(answer["modelPath"]).is_file() and answer["modelPath"] in answer["artifacts"]
    model = joblib.load(answer["modelPath"])
    rows = pd.read_csv(BENCH / "penguins" / "train.csv").drop(columns=["species"]).head(3)
    assert set(model.predict(rows)) <= {"Adelie", "Chinstrap", "Gentoo"}
    experiments = query(project / "mlflow.db", "select name from experiments")
    assert ("penguins_test",) in experiments


def test_task_json_failure_names_the_column_and_exits_non_zero(project: Path, tmp_path: Path):
    request = {
        "trainDataPath": str(project / "data" / "01_raw" / "credit_data.csv"),
        "targetColumn": "NoSuchColumn",
    }
    (tmp_path / "input.json").write_text(json.dumps(request))
    result = run_kedro(project, "task", str(tmp_path / "input.json"), "--env=test")
    assert result.returncode != 0
    answer = json.loads(result.stdout)
    assert answer["success"] is False
    assert "NoSuchColumn" in answer["error"] and "Status" in answer["error"]
    assert answer["remediation"]
    assert isinstance(answer["savedArtifacts"], list)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("dataset.target=Nope", "Error: Target column 'Nope' is not in"),
        ("dataset.path=data/01_raw/missing.csv", "data/01_raw/missing.csv' does not exist."),
        ("model.algorithm=gradient_magic", "Error: Unknown algorithm 'gradient_magic'."),
    ],
)
def test_kedro_run_reports_bad_input_without_a_traceback(project: Path, params, message):
    result = run_kedro(project, "run", "--pipeline=train", "--env=test", f"--params={params}")
    assert result.returncode == 1
    assert message in result.stderr
    assert "Fix:" in result.stderr
    assert "Traceback" not in result.stderr


def test_same_seed_and_trial_budget_give_identical_predictions(project: Path, trained_project):
    """A second run in a fresh copy, with the conf and data of the shared trained project."""
    result = run_kedro(project, "run", "--pipeline=train", "--env=test")
    assert result.returncode == 0, result.stderr[-3000:]
    models = [
        joblib.load(next((p / "data" / "06_models" / "model.joblib").rglob("model.joblib")))
        for p in (trained_project, project)
    ]
    rows = pd.read_csv(project / "data" / "01_raw" / "credit_data.csv").drop(columns=["Status"])
    first, second = (m.predict_proba(rows) for m in models)
    assert first.tolist() == second.tolist()
    resources = json.loads((project / "data" / "08_reporting" / "node_resources.json").read_text())
    assert resources["nodes"]["optimize_hyperparameters_node"]["wall_s"] > 0
    assert resources["pipeline_wall_s"] >= sum(n["wall_s"] for n in resources["nodes"].values())


def test_an_unreachable_tracking_server_is_a_clear_error_within_seconds(project: Path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = run_kedro(
        project,
        "run",
        "--pipeline=train",
        "--env=test",
        f"--params=tracking_uri=http://127.0.0.1:{port}",
    )
    assert result.returncode == 1
    assert (
        f"Error: Cannot reach the MLflow tracking server at http://127.0.0.1:{port}"
        in result.stderr
    )
    assert "Fix: Start it" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
    assert not (project / "data" / "05_model_input" / "task.json").exists(), "no work was done"
