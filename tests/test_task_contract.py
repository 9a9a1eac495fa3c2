"""The seed agent's task JSON: typed requests -> run parameters, run results -> output JSON."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from model_trainer.contract.parsing import check_algorithms, parse_request
from model_trainer.contract.requests import DeployRequest, EvaluateRequest, TrainRequest
from model_trainer.contract.runtime_params import ml_task_of, runtime_params
from model_trainer.contract.task_json import failure_output, json_schema, train_output
from model_trainer.errors import ConfigurationError
from model_trainer.tracking.runs import registry_name

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {"trainDataPath": "data/01_raw/credit_data.csv", "targetColumn": "Status"}
# The seed's "Input Specification", verbatim (model-trainer agent, babysitter's ML specialisation).
SEED_EXAMPLE = {
    "task": "train_model",
    "modelType": "classification",
    "algorithm": "random_forest",
    "trainDataPath": "/data/train.csv",
    "targetColumn": "target",
    "features": ["age", "income", "category"],
    "validationStrategy": {"type": "stratified_kfold", "folds": 5, "shuffle": True},
    "hyperparameterSearch": {
        "enabled": True,
        "nTrials": 100,
        "timeout": 3600,
        "sampler": "tpe",
        "pruner": "median",
    },
    "experimentTracking": {
        "enabled": True,
        "experimentName": "customer-churn",
        "trackingUri": "http://localhost:5000",
    },
    "options": {"earlyStoppingRounds": 10, "verbosity": 1},
}


def params_of(spec: dict, base_dir: Path = ROOT, ml_task: str = "auto") -> dict:
    return runtime_params(parse_request(spec), base_dir, ml_task)


def message_of(spec: object) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        parse_request(spec)
    return caught.value


def test_maps_the_seeds_literal_example_onto_nested_params():
    assert params_of(SEED_EXAMPLE, ml_task="classification") == {
        "dataset": {
            "path": "/data/train.csv",
            "target": "target",
            "features": ["age", "income", "category"],
            "time_column": None,
            "group_column": None,
            "item_column": None,
        },
        "task": {"type": "classification"},
        "model": {"algorithm": "random_forest"},
        "validation": {"strategy": "stratified", "folds": 5},
        "tuning": {
            "enabled": True,
            "n_trials": 100,
            "timeout": 3600.0,
            "sampler": "tpe",
            "pruner": "median",
        },
        "experiment_name": "customer-churn",
        "tracking_uri": "http://localhost:5000",
        "training": {
            "registered_model_name": "customer-churn",
            "early_stopping": {"patience": 10},
        },
    }


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("train_model", TrainRequest),
        ("train", TrainRequest),
        ("tune_model", TrainRequest),
        ("tune", TrainRequest),
        ("evaluate_model", EvaluateRequest),
        ("deploy_model", DeployRequest),
    ],
)
def test_accepts_every_mode_of_the_seeds_skill(mode, kind):
    spec = {"task": mode, **(MINIMAL if kind is TrainRequest else {"testDataPath": "t.csv"})}
    assert isinstance(parse_request(spec), kind)


def test_a_missing_task_means_train_model():
    assert parse_request(MINIMAL).task == "train_model"


def test_maps_a_positive_class_a_metric_and_the_time_and_group_columns():
    params = params_of(
        {**MINIMAL, "positiveClass": 1, "metric": "f1", "timeColumn": "t", "groupColumn": "g"}
    )
    assert params["task"] == {"type": "auto", "positive_class": 1}
    assert params["metric"] == "f1"
    assert (params["dataset"]["time_column"], params["dataset"]["group_column"]) == ("t", "g")


def test_a_validation_strategy_without_shuffling_reaches_the_validation_params():
    spec = {**MINIMAL, "validationStrategy": {"type": "kfold", "shuffle": False}}
    assert params_of(spec)["validation"] == {"strategy": "kfold", "shuffle": False}
    assert params_of({**MINIMAL, "validationStrategy": "group_kfold"})["validation"] == {
        "strategy": "group"
    }


def test_makes_a_relative_data_path_absolute_from_the_base_dir(tmp_path):
    params = params_of({**MINIMAL, "trainDataPath": "../in/train.csv"}, tmp_path / "proj")
    assert params["dataset"]["path"] == str((tmp_path / "in" / "train.csv").resolve())


def test_evaluate_and_deploy_requests_map_onto_their_pipelines_params(tmp_path):
    evaluate = params_of(
        {"task": "evaluate_model", "modelPath": "m/model.joblib", "testDataPath": "t.csv"},
        tmp_path,
    )
    assert evaluate == {
        "evaluation": {
            "model": str(tmp_path / "m" / "model.joblib"),
            "data": str(tmp_path / "t.csv"),
            "trust_unverified": False,
        }
    }
    deploy = params_of(
        {
            "task": "deploy",
            "modelUri": "models:/churn/3",
            "thresholds": {"roc_auc": {"min": 0.8}},
            "alias": "prod",
            "trustUnverified": True,
        },
        tmp_path,
    )
    assert deploy == {
        "deploy": {
            "model": "models:/churn/3",
            "fail_on_check_failure": False,
            "trust_unverified": True,
            "metric_thresholds": {"roc_auc": {"min": 0.8}},
            "alias": "prod",
        }
    }


def test_a_retrain_request_maps_onto_the_retrain_pipelines_params(tmp_path):
    minimal = params_of({"task": "retrain_model", "newDataPath": "new.csv"}, tmp_path)
    assert minimal == {
        "retrain": {
            "champion": None,
            "data": str(tmp_path / "new.csv"),
            "search": False,
            "add_champion_rows": False,
            "trust_unverified": False,
        }
    }
    full = params_of(
        {
            "task": "retrain",
            "newDataPath": "new.csv",
            "modelUri": "models:/churn@champion",
            "margin": 0.02,
            "search": True,
            "addChampionRows": True,
            "timeColumn": "month",
            "alias": "live",
        },
        tmp_path,
    )["retrain"]
    assert full["champion"] == "models:/churn@champion" and full["margin"] == 0.02
    assert full["search"] and full["add_champion_rows"]
    assert (full["time_column"], full["alias"]) == ("month", "live")


def test_a_retrain_request_is_checked_like_the_others():
    with pytest.raises(ConfigurationError, match="The task JSON has no newDataPath"):
        parse_request({"task": "retrain_model"})
    with pytest.raises(ConfigurationError, match="margin") as caught:
        parse_request({"task": "retrain_model", "newDataPath": "n.csv", "margin": -0.1})
    assert "-0.1" in str(caught.value)
    with pytest.raises(ConfigurationError, match="both modelPath and modelUri"):
        parse_request(
            {"task": "retrain", "newDataPath": "n.csv", "modelPath": "m", "modelUri": "models:/m/1"}
        )
    with pytest.raises(ConfigurationError, match="Unknown key 'testDataPath'") as caught:
        parse_request({"task": "retrain", "newDataPath": "n.csv", "testDataPath": "t.csv"})
    assert "newDataPath" in caught.value.remediation


def test_names_the_experiment_after_the_ml_task_algorithm_and_date_by_default():
    today = dt.date.today().isoformat()
    assert params_of(MINIMAL, ml_task="classification")["experiment_name"] == (
        f"classification_auto_{today}"
    )
    several = params_of({**MINIMAL, "algorithm": ["lightgbm", "ridge"]}, ml_task="regression")
    assert several["experiment_name"] == f"regression_lightgbm+ridge_{today}"


def test_detects_the_ml_task_from_the_target_column_alone():
    assert ml_task_of(parse_request(MINIMAL), ROOT) == "classification"
    declared = parse_request({**MINIMAL, "modelType": "regression"})
    assert ml_task_of(declared, ROOT) == "regression"
    unreadable = parse_request({**MINIMAL, "trainDataPath": "missing.csv"})
    assert ml_task_of(unreadable, ROOT) == "auto"


def test_registers_under_the_experiment_name_or_the_one_given():
    assert params_of(MINIMAL)["training"] == {"registered_model_name": "auto"}
    named = {**MINIMAL, "experimentTracking": {"experimentName": "churn"}}
    assert params_of(named)["training"] == {"registered_model_name": "churn"}
    given = {**named, "registeredModelName": "churn-model"}
    assert params_of(given)["training"] == {"registered_model_name": "churn-model"}


def test_the_default_registry_name_is_one_per_data_folder_file_and_target():
    credit = registry_name("auto", {"path": "/x/bench/credit/train.csv", "target": "Status"})
    ames = registry_name("auto", {"path": "/x/bench/ames/train.csv", "target": "Sale Price"})
    assert credit == "credit_train_Status"
    assert ames == "ames_train_Sale-Price"
    assert registry_name(None, {"path": "a.csv", "target": "y"}) is None
    assert registry_name("mine", {"path": "a.csv", "target": "y"}) == "mine"


@pytest.mark.parametrize(
    ("spec", "message", "remediation"),
    [
        ({**MINIMAL, "task": "predict"}, "task 'predict' is not a task", "train_model, train"),
        ({**MINIMAL, "learningRate": 0.1}, "Unknown key 'learningRate'", "trainDataPath"),
        (
            {**MINIMAL, "hyperparameterSearch": {"trials": 5}},
            "Unknown key 'hyperparameterSearch.trials'",
            "nTrials",
        ),
        ({"targetColumn": "Status"}, "The task JSON has no trainDataPath.", "CSV or Parquet"),
        ({**MINIMAL, "targetColumn": None}, "no targetColumn", "column to predict"),
        (
            {**MINIMAL, "hyperparameterSearch": {"enabled": "false"}},
            "hyperparameterSearch.enabled: Input should be a valid boolean; got 'false'",
            "not a string",
        ),
        (
            {**MINIMAL, "hyperparameterSearch": {"timeout": -5}},
            "hyperparameterSearch.timeout: Input should be greater than 0; got -5",
            "seconds",
        ),
        (
            {**MINIMAL, "hyperparameterSearch": {"timeout": "1h"}},
            "hyperparameterSearch.timeout: Input should be a valid number; got '1h'",
            "3600",
        ),
        (
            {**MINIMAL, "modelType": "forecasting"},
            "modelType: Input should be 'classification'",
            "modelType",
        ),
        ({**MINIMAL, "validationStrategy": "bootstrap"}, "got 'bootstrap'", "stratified_kfold"),
        (
            {**MINIMAL, "validationStrategy": {"type": "kfold", "folds": 1}},
            "validationStrategy.folds: Input should be greater than or equal to 2; got 1",
            "validationStrategy.folds",
        ),
        ({**MINIMAL, "features": "Age"}, "features: Input should be a valid list", "JSON list"),
        (
            {**MINIMAL, "experimentTracking": {"enabled": False}},
            "experimentTracking.enabled",
            "always tracked",
        ),
        (
            {"task": "evaluate", "testDataPath": "t.csv", "modelPath": "m", "modelUri": "u"},
            "both modelPath and modelUri",
            "one of them",
        ),
        (["trainDataPath"], "must be an object, got list", "trainDataPath"),
    ],
)
def test_refuses_bad_input_naming_the_key_what_is_accepted_and_what_was_given(
    spec, message, remediation
):
    error = message_of(spec)
    assert message in error.message
    assert remediation in error.remediation


@pytest.mark.parametrize("n_trials", [0, -3, 2.5, "10", True])
def test_refuses_a_number_of_trials_that_is_not_a_positive_integer(n_trials):
    error = message_of({**MINIMAL, "hyperparameterSearch": {"nTrials": n_trials}})
    assert error.message.startswith("hyperparameterSearch.nTrials: ")
    assert f"got {n_trials!r}" in error.message


def test_refuses_unknown_algorithm_names_before_reading_any_data():
    request = parse_request({**MINIMAL, "algorithm": ["lightgbm", "catboost"]})
    with pytest.raises(ConfigurationError) as caught:
        check_algorithms(request, ["lightgbm", "xgboost"])
    assert "['catboost']" in caught.value.message
    assert "lightgbm, xgboost" in caught.value.remediation
    check_algorithms(parse_request(MINIMAL), ["lightgbm"])  # auto needs no name


def test_the_json_schema_describes_input_and_output_and_its_copy_is_current():
    schema = json_schema()
    request_names = {ref.rsplit("/", 1)[-1] for ref in schema["input"]["discriminator"]["mapping"]}
    assert request_names >= {"train_model", "evaluate_model", "deploy_model", "tune_model"}
    committed = json.loads((ROOT / "docs" / "task_schema.json").read_text())
    assert committed == schema, "regenerate docs/task_schema.json: kedro task --schema"


TRAINING_METRICS = {
    "metric": "roc_auc",
    "algorithm": "lightgbm",
    "best_params": {"learning_rate": 0.05, "num_leaves": 31},
    "cross_validation": {
        "mean": 0.83,
        "std": 0.012,
        "folds": 15,
        "distinct_folds": 5,
        "repeats": 3,
        "fold_scores": [0.83] * 15,
    },
}
REGISTRATION = {"run_id": "abc", "experiment_id": "7", "artifact_uri": "file:///m", "other": 1}
BINARY = {"type": "classification", "classes": [0, 1], "positive_class": 1}


def train_result(training_metrics=TRAINING_METRICS, registration=REGISTRATION) -> dict:
    return train_output(
        model_path="/work/main/data/06_models/model.joblib",
        metrics={"roc_auc": 0.84, "accuracy": 0.8, "pr_auc": float("nan")},
        training_metrics=training_metrics,
        task=BINARY,
        registration=registration,
        training_time=12.34567,
        artifacts=["report.html"],
    )


def test_train_output_has_exactly_the_contract_keys_and_counts_distinct_folds():
    output = train_result()
    assert list(output) == [
        "success", "modelPath", "metrics", "bestParams", "crossValidation",
        "experimentRun", "trainingTime", "artifacts", "positiveClass",
    ]  # fmt: skip
    assert output["bestParams"] == {
        "algorithm": "lightgbm",
        "learning_rate": 0.05,
        "num_leaves": 31,
    }
    assert output["crossValidation"] == {
        "metric": "roc_auc", "mean": 0.83, "std": 0.012, "folds": 5, "repeats": 3, "note": None,
    }  # fmt: skip
    assert output["metrics"]["pr_auc"] is None, "NaN is not JSON"
    assert output["experimentRun"] == {
        "runId": "abc",
        "experimentId": "7",
        "artifactUri": "file:///m",
    }
    assert output["trainingTime"] == 12.346
    assert output["positiveClass"] == 1
    assert json.loads(json.dumps(output, allow_nan=False)) == output


def test_an_ensemble_is_described_by_its_members_weights_and_its_own_score():
    members = [
        {"algorithm": "lightgbm", "params": {"num_leaves": 15}, "weight": 0.75, "trial": 3},
        {"algorithm": "logistic_regression", "params": {"C": 1.0}, "weight": 0.25, "trial": 0},
    ]
    output = train_result(
        {**TRAINING_METRICS, "ensemble": members, "ensemble_fold_scores": [0.84, 0.85, 0.86]}
    )
    assert output["bestParams"] == {
        "algorithm": "ensemble",
        "members": [
            {"algorithm": "lightgbm", "weight": 0.75, "params": {"num_leaves": 15}},
            {"algorithm": "logistic_regression", "weight": 0.25, "params": {"C": 1.0}},
        ],
    }
    cv = output["crossValidation"]
    assert cv["mean"] == pytest.approx(0.85) and cv["std"] == pytest.approx(0.00816, abs=1e-5)
    assert cv["folds"] == 5
    assert "chosen on the other folds" in cv["note"]


def test_train_output_without_a_tracked_run_has_null_run_fields():
    output = train_result(registration={})
    assert output["experimentRun"] == {"runId": None, "experimentId": None, "artifactUri": None}


def test_failure_output_carries_the_error_and_its_remediation():
    assert failure_output("Target column 'x' is missing.", "Set targetColumn.", ["log.txt"]) == {
        "success": False,
        "error": "Target column 'x' is missing.",
        "remediation": "Set targetColumn.",
        "savedArtifacts": ["log.txt"],
    }
