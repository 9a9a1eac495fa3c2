"""The seed agent's task JSON maps onto the train pipeline's parameters, and back to output."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from model_trainer.errors import ConfigurationError
from model_trainer.task_contract import failure_output, runtime_params, success_output

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {"trainDataPath": "data/01_raw/credit_data.csv", "targetColumn": "Status"}


def test_maps_a_full_seed_style_input_onto_nested_params():
    spec = {
        "task": "train",
        "modelType": "classification",
        "algorithm": "lightgbm",
        "trainDataPath": "data/01_raw/credit_data.csv",
        "targetColumn": "Status",
        "features": ["Age", "Income", "Records"],
        "validationStrategy": "stratified",
        "hyperparameterSearch": {"enabled": True, "nTrials": 25, "timeout": 120},
        "experimentTracking": {"experimentName": "credit-lgbm", "trackingUri": "sqlite:///x.db"},
        "metric": "roc_auc",
        "timeColumn": None,
        "groupColumn": None,
    }
    assert runtime_params(spec, ROOT) == {
        "dataset": {
            "path": str(ROOT / "data" / "01_raw" / "credit_data.csv"),
            "target": "Status",
            "features": ["Age", "Income", "Records"],
            "time_column": None,
            "group_column": None,
        },
        "task": {"type": "classification"},
        "model": {"algorithm": "lightgbm"},
        "validation": {"strategy": "stratified"},
        "tuning": {"enabled": True, "n_trials": 25, "timeout": 120},
        "experiment_name": "credit-lgbm",
        "tracking_uri": "sqlite:///x.db",
        "metric": "roc_auc",
    }


def test_makes_a_relative_data_path_absolute_from_the_base_dir(tmp_path):
    params = runtime_params({**MINIMAL, "trainDataPath": "../in/train.csv"}, tmp_path / "proj")
    assert params["dataset"]["path"] == str((tmp_path / "in" / "train.csv").resolve())
    assert Path(params["dataset"]["path"]).is_absolute()


def test_keeps_an_absolute_data_path(tmp_path):
    path = tmp_path / "train.parquet"
    params = runtime_params({**MINIMAL, "trainDataPath": str(path)}, ROOT)
    assert params["dataset"]["path"] == str(path)


def test_defaults_a_minimal_input_to_auto_everything_with_tuning_on():
    params = runtime_params(MINIMAL, ROOT)
    assert params["task"] == {"type": "auto"}
    assert params["model"] == {"algorithm": "auto"}
    assert params["validation"] == {"strategy": "auto"}
    assert params["tuning"] == {"enabled": True}
    assert params["dataset"]["features"] is None
    assert "metric" not in params and "tracking_uri" not in params


def test_names_the_experiment_task_algorithm_and_date_by_default():
    today = dt.date.today().isoformat()
    assert runtime_params(MINIMAL, ROOT)["experiment_name"] == f"train_auto_{today}"
    tune = runtime_params({**MINIMAL, "task": "tune", "algorithm": "xgboost"}, ROOT)
    assert tune["experiment_name"] == f"tune_xgboost_{today}"
    several = runtime_params({**MINIMAL, "algorithm": ["lightgbm", "ridge"]}, ROOT)
    assert several["experiment_name"] == f"train_lightgbm+ridge_{today}"
    assert several["model"] == {"algorithm": ["lightgbm", "ridge"]}


def test_turns_tuning_off_when_search_is_disabled():
    params = runtime_params({**MINIMAL, "hyperparameterSearch": {"enabled": False}}, ROOT)
    assert params["tuning"] == {"enabled": False}


def test_refuses_an_unknown_top_level_key_naming_it():
    with pytest.raises(ConfigurationError) as caught:
        runtime_params({**MINIMAL, "learningRate": 0.1}, ROOT)
    assert "Unknown keys in the task JSON: ['learningRate']" in caught.value.message
    assert "trainDataPath" in caught.value.remediation
    assert "targetColumn" in caught.value.remediation


def test_refuses_an_unknown_search_key_naming_it():
    with pytest.raises(ConfigurationError) as caught:
        runtime_params({**MINIMAL, "hyperparameterSearch": {"trials": 5}}, ROOT)
    assert "Unknown keys in hyperparameterSearch: ['trials']" in caught.value.message
    assert "nTrials" in caught.value.remediation


def test_refuses_an_unknown_tracking_key_naming_it():
    with pytest.raises(ConfigurationError) as caught:
        runtime_params({**MINIMAL, "experimentTracking": {"runName": "x"}}, ROOT)
    assert "['runName']" in caught.value.message
    assert "experimentName" in caught.value.remediation


def test_refuses_an_input_without_train_data_path():
    with pytest.raises(ConfigurationError) as caught:
        runtime_params({"targetColumn": "Status"}, ROOT)
    assert caught.value.message == "The task JSON has no trainDataPath."
    assert "CSV or Parquet" in caught.value.remediation


def test_refuses_an_input_without_target_column():
    with pytest.raises(ConfigurationError) as caught:
        runtime_params({"trainDataPath": "data/01_raw/credit_data.csv", "targetColumn": ""}, ROOT)
    assert caught.value.message == "The task JSON has no targetColumn."
    assert "column to predict" in caught.value.remediation


def test_refuses_an_input_that_is_not_an_object():
    with pytest.raises(ConfigurationError) as caught:
        runtime_params(["trainDataPath"], ROOT)
    assert "must be an object" in caught.value.message
    assert "trainDataPath" in caught.value.remediation


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("task", "deploy", "train or tune"),
        ("modelType", "forecasting", "auto, classification, clustering, ranking, regression"),
        (
            "validationStrategy",
            "bootstrap",
            "auto, group, kfold, loo, repeated_kfold, repeated_stratified, stratified, timeseries",
        ),
    ],
)
def test_refuses_an_unsupported_value_naming_it_and_the_allowed_ones(key, value, allowed):
    with pytest.raises(ConfigurationError) as caught:
        runtime_params({**MINIMAL, key: value}, ROOT)
    assert f"'{value}'" in caught.value.message
    assert allowed in caught.value.remediation


@pytest.mark.parametrize("n_trials", [0, -3, 2.5, "10", True])
def test_refuses_a_number_of_trials_that_is_not_a_positive_integer(n_trials):
    with pytest.raises(ConfigurationError) as caught:
        runtime_params({**MINIMAL, "hyperparameterSearch": {"nTrials": n_trials}}, ROOT)
    assert f"hyperparameterSearch.nTrials must be a positive integer, got {n_trials!r}" in (
        caught.value.message
    )
    assert "1 or more" in caught.value.remediation


def test_refuses_features_given_as_a_string():
    with pytest.raises(ConfigurationError) as caught:
        runtime_params({**MINIMAL, "features": "Age"}, ROOT)
    assert "features" in caught.value.message


TRAINING_METRICS = {
    "algorithm": "lightgbm",
    "best_params": {"learning_rate": 0.05, "num_leaves": 31},
    "cross_validation": {"mean": 0.83, "std": 0.012, "folds": [0.82, 0.84, 0.83], "extra": 1},
}
REGISTRATION = {"run_id": "abc", "experiment_id": "7", "artifact_uri": "file:///m", "other": 1}


def test_success_output_has_exactly_the_contract_keys():
    output = success_output(
        model_path="/work/main/data/06_models/model.pkl",
        metrics={"roc_auc": 0.84, "accuracy": 0.8},
        training_metrics=TRAINING_METRICS,
        registration=REGISTRATION,
        training_time=12.34567,
        artifacts=["report.html"],
    )
    assert list(output) == [
        "success", "modelPath", "metrics", "bestParams", "crossValidation",
        "experimentRun", "trainingTime", "artifacts",
    ]  # fmt: skip
    assert output["success"] is True
    assert output["bestParams"] == {
        "algorithm": "lightgbm",
        "learning_rate": 0.05,
        "num_leaves": 31,
    }
    assert output["crossValidation"] == {"mean": 0.83, "std": 0.012, "folds": [0.82, 0.84, 0.83]}
    assert output["experimentRun"] == {
        "runId": "abc", "experimentId": "7", "artifactUri": "file:///m",
    }  # fmt: skip
    assert output["trainingTime"] == 12.346
    assert json.loads(json.dumps(output)) == output


def test_success_output_without_a_tracked_run_has_null_run_fields():
    output = success_output(
        model_path="m.pkl",
        metrics={},
        training_metrics=TRAINING_METRICS,
        registration={},
        training_time=1.0,
        artifacts=[],
    )
    assert output["experimentRun"] == {"runId": None, "experimentId": None, "artifactUri": None}


def test_failure_output_carries_the_error_and_its_remediation():
    assert failure_output("Target column 'x' is missing.", "Set targetColumn.", ["log.txt"]) == {
        "success": False,
        "error": "Target column 'x' is missing.",
        "remediation": "Set targetColumn.",
        "savedArtifacts": ["log.txt"],
    }
