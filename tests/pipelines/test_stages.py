"""Each stage pipeline runs on its own (`kedro run --pipeline=<stage>`), reading what the
stage before it saved, and leaves the outputs the next stage needs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_kedro

pytestmark = pytest.mark.e2e


def latest(folder: Path) -> Path:
    """The newest version of a versioned dataset."""
    return sorted(folder.iterdir())[-1] / folder.name


def test_stages_run_one_after_another(project: Path):
    data = project / "data"

    result = run_kedro(project, "run", "--pipeline=data_preparation", "--env=test")
    assert result.returncode == 0, result.stderr[-3000:]
    splits = {
        name: pd.read_parquet(latest(data / "05_model_input" / f"{name}_split.parquet"))
        for name in ("train", "validation", "test")
    }
    total = sum(len(s) for s in splits.values())
    assert total == 3563
    assert abs(len(splits["test"]) / total - 0.1) < 0.01
    assert abs(len(splits["validation"]) / total - 0.1) < 0.01
    shares = {name: (s["Status"] == "bad").mean() for name, s in splits.items()}
    assert max(shares.values()) - min(shares.values()) < 0.02, "stratified by class"
    feature_types = json.loads((data / "04_feature" / "feature_types.json").read_text())
    assert feature_types["columns"]["Home"]["type"] == "categorical"
    assert feature_types["columns"]["Income"]["type"] == "numeric"
    task = json.loads((data / "05_model_input" / "task.json").read_text())
    assert task["type"] == "classification" and task["positive_class"] == "bad"

    result = run_kedro(project, "run", "--pipeline=model_configuration", "--env=test")
    assert result.returncode == 0, result.stderr[-3000:]
    configuration = json.loads((data / "05_model_input" / "model_configuration.json").read_text())
    assert configuration["metric"] == "roc_auc"
    assert configuration["algorithms"] == ["lightgbm", "logistic_regression"]
    assert configuration["cv"]["strategy"] == "stratified" and configuration["cv"]["folds"] == 3
    smoke_test = configuration["smoke_test"]
    assert smoke_test["passed"] and smoke_test["rows"] == 500, "the smoke run came first"
    assert set(smoke_test["seconds_by_family"]) == {"lightgbm", "logistic_regression"}

    result = run_kedro(project, "run", "--pipeline=hyperparameter_optimization", "--env=test")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((data / "06_models" / "study_summary.json").read_text())
    assert summary["n_trials"] == 3 and summary["n_complete"] >= 1
    assert summary["cross_validation"]["folds"] == 3
    assert len(list((data / "08_reporting" / "search_plots").glob("*.png"))) >= 1

    result = run_kedro(project, "run", "--pipeline=training", "--env=test")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (data / "06_models" / "model_registration.json").is_file()
    importance = json.loads((data / "08_reporting" / "feature_importance.json").read_text())
    assert {row["feature"] for row in importance} == set(splits["train"].columns) - {"Status"}

    result = run_kedro(project, "run", "--pipeline=reporting", "--env=test")
    assert result.returncode == 0, result.stderr[-3000:]
    plots = {p.name for p in (data / "08_reporting" / "evaluation_plots").glob("*.png")}
    assert {"confusion_matrix.png", "roc_curve.png", "pr_curve.png"} <= plots
    training_info = json.loads((data / "06_models" / "training_info.json").read_text())
    members = training_info.get("ensemble") or [training_info]
    boosted = [
        "lightgbm" + (f" member {number}" if len(members) > 1 else "")
        for number, member in enumerate(members, start=1)
        if member["algorithm"] == "lightgbm"
    ]
    assert [c["model"] for c in training_info["learning_curves"]] == boosted
    assert ("learning_curves.png" in plots) == bool(boosted)
    recommendations = json.loads((data / "08_reporting" / "recommendations.json").read_text())
    assert isinstance(recommendations, list)
    assert "Worst predictions" in (data / "08_reporting" / "report.html").read_text()
