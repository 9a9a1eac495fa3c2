"""Imbalanced classes and few rows, end to end: the choice is made, used, and shows in the
decision record, the model card and the MLflow run (tiny budgets of conf/test)."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pandas as pd
import pytest

from tests.conftest import BENCH, query, run_kedro

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("bench_data_is_beside_the_project")]


def decisions(project: Path) -> dict[str, dict[str, str]]:
    record = json.loads((project / "data" / "08_reporting" / "decisions.json").read_text())
    return {entry["decision"]: entry for entry in record}


def logged_configuration(project: Path) -> dict:
    files = [*project.glob("mlruns/**/model_configuration.json")]
    files += [*project.glob("mlartifacts/**/model_configuration.json")]
    assert len(files) == 1, "model_configuration is logged to the MLflow run"
    return json.loads(files[0].read_text())


def test_imbalanced_churn_is_weighted_and_its_tuned_threshold_ships_in_the_model(project: Path):
    churn = pd.read_csv(BENCH / "mlc_churn" / "train.csv").sample(1000, random_state=0)
    churn.to_csv(project / "data" / "01_raw" / "churn.csv", index=False)
    params = (
        "dataset.path=data/01_raw/churn.csv,dataset.target=churn,training.decision_threshold=f1"
    )
    result = run_kedro(project, "run", "--pipeline=train", "--env=test", f"--params={params}")
    assert result.returncode == 0, result.stderr[-3000:]

    record = decisions(project)
    imbalance = record["class imbalance"]["choice"]
    assert imbalance == (
        "lightgbm: class_weight (searched: on or off), "
        "logistic_regression: class_weight (searched: on or off)"
    )
    assert "above 3" in record["class imbalance"]["why"]
    assert record["decision threshold"]["override"] == "training.decision_threshold"
    configuration = logged_configuration(project)
    assert configuration["imbalance"]["by_algorithm"]["lightgbm"] == "class_weight"
    assert configuration["search_space"]["lightgbm"]["class_weight"]["choices"] == [
        None,
        "balanced",
    ]
    params_logged = dict(query(project / "mlflow.db", "select key, value from params"))
    assert params_logged["model.imbalance.strategy"] == "auto"
    assert params_logged["training.decision_threshold"] == "f1"

    card_file = next((project / "data" / "06_models" / "model_card.json").rglob("*.json"))
    card = json.loads(card_file.read_text())
    threshold = card["decision_threshold"]
    assert threshold["positive_class"] == "yes" and 0 < threshold["threshold"] < 1
    model = joblib.load(next((project / "data" / "06_models" / "model.joblib").rglob("*.joblib")))
    rows = churn.drop(columns=["churn"])
    yes = list(model.classes_).index("yes")
    expected = model.predict_proba(rows)[:, yes] >= threshold["threshold"]
    assert list(model.predict(rows) == "yes") == list(expected)
    metrics = json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())
    assert {"pr_auc", "balanced_accuracy", "roc_auc", "f1"} <= set(metrics)


def test_few_rows_get_repeated_folds_through_the_task_json(project: Path, tmp_path: Path):
    request = {
        "trainDataPath": str(BENCH / "penguins" / "train.csv"),
        "targetColumn": "species",
        "hyperparameterSearch": {"enabled": True, "nTrials": 2, "timeout": 60},
        "experimentTracking": {"experimentName": "penguins_small"},
    }
    (tmp_path / "input.json").write_text(json.dumps(request))
    output = tmp_path / "result.json"
    result = run_kedro(
        project, "task", str(tmp_path / "input.json"), "--output", str(output), "--env=test"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(output.read_text())
    cv = answer["crossValidation"]  # conf/test: 3 folds, repeated 3 times
    assert (cv["folds"], cv["repeats"]) == (3, 3)
    cv = decisions(project)["cross-validation"]
    assert cv["choice"] == "3-fold repeated_stratified"
    assert "repeated 3 times" in cv["why"]
    assert logged_configuration(project)["cv"]["repeats"] == 3
    assert decisions(project)["class imbalance"]["choice"] == "none"
