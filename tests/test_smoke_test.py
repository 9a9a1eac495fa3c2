"""The smoke run before the search: every candidate family fits a small sample in seconds, and a
broken configuration stops the run there, with the family named and a fix."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from model_trainer.errors import ModelTrainerError
from model_trainer.pipelines.model_configuration.nodes import configure_model
from model_trainer.search.smoke_test import run_smoke_test, smoke_configuration
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.table.splitting import split_holdout
from model_trainer.tasks.detection import detect_task
from tests.conftest import run_kedro

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
with (ROOT / "conf" / "base" / "parameters_model_configuration.yml").open() as handle:
    PARAMETERS = yaml.safe_load(handle)
MODEL, SMOKE_TEST = PARAMETERS["model"], PARAMETERS["smoke_test"]
FAMILIES = ["lightgbm", "xgboost", "neural_network", "random_forest", "svm"]


@pytest.fixture(scope="module")
def credit() -> dict:
    table = pd.read_csv(CREDIT)
    task = detect_task(table["Status"], {})
    feature_types = infer_feature_types(table, "Status")
    train, validation, _ = split_holdout(table, "Status", task, {})
    configuration = configure_model(
        task, train, validation, "auto", {**MODEL, "algorithm": FAMILIES}, {"folds": 3}, {}, 0
    )
    return {
        "train": train,
        "validation": validation,
        "task": task,
        "feature_types": feature_types,
        "configuration": configuration,
    }


def smoke(credit: dict, configuration: dict | None = None, settings: dict | None = None) -> dict:
    return run_smoke_test(
        credit["train"],
        credit["validation"],
        credit["task"],
        credit["feature_types"],
        configuration or credit["configuration"],
        SMOKE_TEST if settings is None else settings,
    )


@pytest.mark.slow
def test_every_family_and_the_simple_baseline_pass(credit):
    """How long it takes is for benchmarks/overhead.py to measure, not a timed test."""
    result = smoke(credit)
    assert result["passed"] and result["rows"] == SMOKE_TEST["rows"] == 500
    assert list(result["seconds_by_family"]) == [*FAMILIES, "logistic_regression"]
    assert result["predicted_rows"] == SMOKE_TEST["predict_rows"]


def test_the_smoke_configuration_is_the_first_portfolio_entry_with_its_rounds_capped():
    entry = MODEL["algorithms"]["xgboost"]
    params = smoke_configuration(entry, max_rounds=50)
    assert params == {**entry["portfolio"][0], "n_estimators": 50}
    assert smoke_configuration(MODEL["algorithms"]["svm"], 50) == {"C": 1.0, "gamma": "scale"}
    assert smoke_configuration({"classification": "x"}, 50) == {}


def test_a_family_that_cannot_fit_fails_the_run_naming_it_and_the_fix(credit):
    broken = copy.deepcopy(credit["configuration"])
    broken["registry"]["xgboost"]["defaults"]["max_bin"] = -3
    with pytest.raises(ModelTrainerError) as caught:
        smoke(credit, broken)
    message = str(caught.value)
    assert message.startswith("Smoke run: 'xgboost' failed to fit 500 rows")
    assert "max_bin" in message
    assert "model.algorithms.xgboost" in caught.value.remediation
    assert "smoke_test.enabled: false" in caught.value.remediation


def test_disabled_it_fits_nothing(credit):
    broken = copy.deepcopy(credit["configuration"])
    broken["registry"]["xgboost"]["defaults"]["max_bin"] = -3
    assert smoke(credit, broken, {**SMOKE_TEST, "enabled": False}) == {"enabled": False}


@pytest.mark.e2e
def test_a_broken_family_stops_kedro_run_before_the_search(project: Path):
    start = time.perf_counter()
    result = run_kedro(
        project,
        "run",
        "--pipeline=train",
        "--env=test",
        "--params=model.algorithms.lightgbm.defaults.max_bin=1",
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 1
    assert "Error: Smoke run: 'lightgbm' failed to fit 500 rows" in result.stderr
    assert "max_bin" in result.stderr and "Fix: Fix model.algorithms.lightgbm" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "data" / "06_models" / "study_summary.json").exists()
    assert seconds < 60, "a broken configuration fails in seconds, not after the search"
