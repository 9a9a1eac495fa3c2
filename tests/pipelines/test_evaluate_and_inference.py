"""`kedro run --pipeline=evaluate` and `--pipeline=inference` as a user runs them, on the
session's trained project: a model and a file named at run time, results in data/ and in the
run's MLflow record, and errors as one message with a fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_trainer.serving.model_store import latest_version, versioned_file
from tests.conftest import query, run_kedro

pytestmark = pytest.mark.e2e


def newest(dataset_dir: Path) -> Path:
    return versioned_file(dataset_dir, latest_version(dataset_dir))


def last_run(project: Path, name: str) -> tuple[dict[str, float], dict[str, str], Path]:
    """Metrics, params and artifact folder of the newest MLflow run with this name."""
    database = project / "mlflow.db"
    [(run_id, artifacts)] = query(
        database,
        f"select run_uuid, artifact_uri from runs where name = '{name}' "
        "order by start_time desc limit 1",
    )
    metrics = dict(query(database, f"select key, value from metrics where run_uuid = '{run_id}'"))
    params = dict(query(database, f"select key, value from params where run_uuid = '{run_id}'"))
    return metrics, params, Path(artifacts.removeprefix("file://"))


def assert_self_contained(html: str) -> None:
    assert "data:image/png;base64," in html
    assert "<script" not in html and 'src="http' not in html and "<link" not in html


def test_evaluate_scores_the_latest_model_and_logs_what_it_found(trained_project: Path):
    project = trained_project
    test_split = newest(project / "data" / "05_model_input" / "test_split.parquet")
    data = test_split.relative_to(project)
    result = run_kedro(
        project, "run", "--pipeline=evaluate", "--env=test", f"--params=evaluation.data={data}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    reporting = project / "data" / "08_reporting"
    comparison = json.loads((reporting / "evaluation_comparison.json").read_text())
    card_file = newest(project / "data" / "06_models" / "model_card.json")
    assert comparison["model"]["save_version"] == card_file.parent.name
    assert comparison["model"]["registered_name"] == "01_raw_credit_data_Status"
    assert comparison["model"]["registered_version"] == "1"
    assert comparison["data"] == {"path": str(data), "rows": len(pd.read_parquet(test_split))}
    assert comparison["metric"] == "roc_auc"
    assert comparison["metrics"]["roc_auc"] > 0.7 and comparison["dummy"]["roc_auc"] == 0.5
    assert comparison["at_training"] == json.loads(card_file.read_text())["test_metrics"]
    assert "first registered version" in comparison["earlier_versions_note"]
    assert comparison["training_overlap"] == 1.0, "the shipped model was refit on the test split"
    findings = json.loads((reporting / "evaluation_recommendations.json").read_text())
    assert "evaluated on training rows" in [f["finding"] for f in findings]

    breakdown = pd.read_csv(reporting / "evaluation_breakdown.csv")
    assert breakdown["class"].tolist() == ["bad", "good"]
    assert breakdown["rows"].sum() == comparison["data"]["rows"]
    patterns = pd.read_csv(reporting / "evaluation_error_patterns.csv")
    assert not patterns.empty and patterns["lift"].is_monotonic_decreasing
    worst = pd.read_csv(reporting / "evaluation_worst_predictions.csv")
    assert len(worst) == 20 and worst["error"].is_monotonic_decreasing
    assert {"Income", "Home", "actual", "predicted", "proba_bad"} <= set(worst.columns)
    outputs = project / "data" / "07_model_output"
    predictions = pd.read_parquet(newest(outputs / "evaluation_predictions.parquet"))
    assert len(predictions) == comparison["data"]["rows"]
    charts = {p.name for p in (reporting / "evaluation_charts").glob("*.png")}
    assert {"confusion_matrix.png", "error_distribution.png", "error_patterns.png"} <= charts

    report = (reporting / "evaluation_report.html").read_text()
    assert_self_contained(report)
    assert "Worst predictions" in report and "evaluated on training rows" in report

    metrics, params, artifacts = last_run(project, "evaluate")
    assert metrics["evaluation.roc_auc"] == comparison["metrics"]["roc_auc"]
    assert metrics["evaluation.dummy_roc_auc"] == 0.5
    assert params["evaluation.data"] == str(data)
    assert (artifacts / "evaluation_report.html").is_file()
    assert (artifacts / "evaluation_charts" / "confusion_matrix.png").is_file()


def test_evaluate_a_registered_version_by_its_registry_uri(trained_project: Path):
    result = run_kedro(
        trained_project,
        "run",
        "--pipeline=evaluate",
        "--env=test",
        "--params=evaluation.model=models:/01_raw_credit_data_Status/1,"
        "evaluation.data=data/01_raw/credit_data.csv",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reporting = trained_project / "data" / "08_reporting"
    comparison = json.loads((reporting / "evaluation_comparison.json").read_text())
    assert comparison["model"]["source"] == "models:/01_raw_credit_data_Status/1"
    assert comparison["model"]["registered_version"] == "1"
    assert comparison["model"]["run_id"] is not None
    assert comparison["data"]["rows"] == 3563
    metrics, params, _ = last_run(trained_project, "evaluate")
    assert params["evaluation.model"] == "models:/01_raw_credit_data_Status/1"
    assert metrics["evaluation.n_rows"] == 3563


def test_evaluate_with_a_missing_data_file_says_what_to_fix(trained_project: Path):
    result = run_kedro(
        trained_project,
        "run",
        "--pipeline=evaluate",
        "--env=test",
        "--params=evaluation.data=data/01_raw/nope.csv",
    )
    assert result.returncode == 1
    assert "Error: Data file 'data/01_raw/nope.csv' (evaluation.data) does not exist." in (
        result.stderr
    )
    assert "Fix: Check evaluation.data" in result.stderr
    assert "Traceback" not in result.stderr


def test_inference_writes_predictions_and_reports_drift(trained_project: Path, tmp_path: Path):
    """Older applicants only: the scored file has drifted in Age from the training data."""
    credit = pd.read_csv(trained_project / "data" / "01_raw" / "credit_data.csv")
    older = credit[credit["Age"] > 45].drop(columns=["Status"]).reset_index(drop=True)
    older.insert(0, "customer", [f"c{i}" for i in range(len(older))])
    data = tmp_path / "older.csv"
    older.to_csv(data, index=False)

    result = run_kedro(
        trained_project,
        "run",
        "--pipeline=inference",
        "--env=test",
        f"--params=inference.data={data},inference.key_columns=[customer]",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Data drift" in result.stderr and "Age" in result.stderr

    outputs = trained_project / "data" / "07_model_output"
    predictions = pd.read_parquet(newest(outputs / "inference_predictions.parquet"))
    assert list(predictions.columns) == ["row", "customer", "predicted", "proba_bad", "proba_good"]
    assert predictions["customer"].tolist() == older["customer"].tolist()
    assert set(predictions["predicted"]) <= {"bad", "good"}
    assert np.allclose(predictions["proba_bad"] + predictions["proba_good"], 1.0)

    reporting = trained_project / "data" / "08_reporting"
    drift = json.loads((reporting / "inference_drift.json").read_text())
    save_version = newest(trained_project / "data" / "06_models" / "model.joblib").parent.name
    assert drift["drifted"] and drift["features"][0]["feature"] == "Age"
    assert save_version in drift["reference"] and "train_split" in drift["reference"]
    assert drift["n_current_rows"] == len(older)
    report = (reporting / "inference_report.html").read_text()
    assert_self_contained(report)
    assert "Drift:" in report and "Age" in report

    metrics, _, artifacts = last_run(trained_project, "inference")
    assert metrics["inference.n_rows"] == len(older)
    assert metrics["inference.drift_max_psi"] == drift["max_psi"] > 1
    assert metrics["inference.drift_n_features"] == len(drift["drifted_features"])
    assert (artifacts / "inference_report.html").is_file()
    assert (artifacts / "inference_drift.json").is_file()
