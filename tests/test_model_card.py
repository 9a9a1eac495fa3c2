"""The model card tells evaluate, deploy and serve what they need without opening the model."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest
import yaml

from model_trainer import training, tuning
from model_trainer.feature_typing import infer_feature_types
from model_trainer.model_card import model_card
from model_trainer.pipelines.model_configuration.nodes import configure_model
from model_trainer.splitting import split_holdout
from model_trainer.task_detection import detect_task

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
DIAMONDS = Path("/work/shared/bench/data/diamonds/train.csv")
with (ROOT / "conf" / "base" / "parameters_model_configuration.yml").open() as handle:
    MODEL = yaml.safe_load(handle)["model"]


def card_for(table: pd.DataFrame, target: str, algorithm: str, declared=None) -> dict:
    """Split, search (one trial), fit, score and describe, as the pipelines do."""
    task = detect_task(table[target], {})
    feature_types = infer_feature_types(table, target, declared=declared)
    train, validation, test = split_holdout(table, target, task, {})
    configuration = configure_model(
        task,
        train,
        validation,
        "auto",
        {**MODEL, "algorithm": algorithm},
        {"folds": 3, "seed": 0},
        {},
        0,
    )
    rows = pd.concat([train, validation], ignore_index=True)
    X, y = rows.drop(columns=[target]), rows[target]
    settings = {"enabled": False}
    study = tuning.run_study(
        X,
        y,
        task=task,
        feature_types=feature_types,
        configuration=configuration,
        settings=settings,
        study_name="card",
    )
    summary = tuning.summarize_study(study, [algorithm], configuration["metric"], settings)
    pipeline, info = training.build_final_pipeline(
        summary,
        task,
        feature_types,
        configuration,
        train,
        validation,
        {},
    )
    model, info["convergence_warnings"] = training.fit_quietly(pipeline, X, y)
    X_test, y_test = test.drop(columns=[target]), test[target]
    baselines = training.baseline_pipelines(task, feature_types, configuration)
    fitted = {name: b.fit(X, y) for name, b in baselines.items()}
    everything = pd.concat([train, validation, test], ignore_index=True)
    card = model_card(
        task=task,
        feature_types=feature_types,
        input_columns=[c for c in everything.columns if c != target],
        configuration=configuration,
        training_info=info,
        test_metrics=training.holdout_metrics({"m": model}, X_test, y_test, task)["m"],
        baseline_metrics=training.holdout_metrics(fitted, X_test, y_test, task),
        cross_validation=summary["cross_validation"],
        data_fingerprint=tuning.data_fingerprint(everything),
        n_rows=len(everything),
        refit_on_all_rows=True,
    )
    return {"card": card, "rows": everything, "feature_types": feature_types, "summary": summary}


@pytest.fixture(scope="module")
def credit() -> dict:
    table = pd.read_csv(CREDIT).sample(800, random_state=0).reset_index(drop=True)
    table.insert(0, "application_id", range(100_000, 100_000 + len(table)))
    return card_for(table, "Status", "logistic_regression")


@pytest.fixture(scope="module")
def diamonds() -> dict:
    table = pd.read_csv(DIAMONDS).sample(1000, random_state=0).reset_index(drop=True)
    return card_for(table, "price", "ridge")


def test_the_card_gives_the_input_schema_including_ignored_columns(credit):
    card = credit["card"]
    assert card["input_columns"] == [c for c in credit["rows"].columns if c != "Status"]
    assert card["input_columns"][0] == "application_id"
    assert "application_id" in card["ignored_columns"]
    assert "application_id" not in card["features"]
    assert card["target"] == "Status"


def test_the_card_gives_the_task_and_its_classes(credit):
    card = credit["card"]
    assert card["task"] == "classification"
    assert card["classes"] == ["bad", "good"]
    assert card["positive_class"] == "bad"
    assert card["metric"] == "roc_auc"


def test_a_regression_card_has_no_classes(diamonds):
    card = diamonds["card"]
    assert card["task"] == "regression"
    assert card["classes"] is None and card["positive_class"] is None
    assert card["metric"] == "rmse"
    assert set(card["test_metrics"]) == {"rmse", "mae", "r2"}


def test_the_card_gives_each_features_type_dtype_and_missing_share(credit):
    features = credit["card"]["features"]
    assert set(features) == set(credit["feature_types"]["columns"])
    assert features["Home"]["type"] == "categorical"
    assert features["Income"]["type"] == "numeric"
    for name, info in features.items():
        assert set(info) == {"type", "dtype", "missing_fraction"}
        assert info["dtype"] == str(credit["rows"][name].dtype)
        assert info["missing_fraction"] == pytest.approx(
            credit["rows"][name].isna().mean(), abs=0.01
        )


def test_the_card_gives_the_metrics_against_the_baselines(credit):
    card = credit["card"]
    assert 0.7 < card["test_metrics"]["roc_auc"] <= 1.0
    assert set(card["baseline_metrics"]) == {"dummy", "logistic_regression"}
    assert card["baseline_metrics"]["dummy"]["roc_auc"] == pytest.approx(0.5)
    assert card["cross_validation"] == credit["summary"]["cross_validation"]
    assert card["cross_validation"]["folds"] == 3
    assert card["algorithm"] == "logistic_regression"
    assert card["params"] == credit["summary"]["best_params"]


def test_the_card_identifies_the_data_it_was_trained_on(credit):
    card = credit["card"]
    assert re.fullmatch(r"[0-9a-f]{16}", card["data_fingerprint"])
    assert card["data_fingerprint"] == tuning.data_fingerprint(credit["rows"])
    assert card["n_rows"] == 800
    assert card["refit_on_all_rows"] is True


def test_the_card_pins_the_libraries_the_model_needs(credit):
    requirements = credit["card"]["requirements"]
    assert f"scikit-learn=={version('scikit-learn')}" in requirements
    assert f"pandas=={version('pandas')}" in requirements
    assert any(r.startswith("lightgbm==") for r in requirements)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^\s]*", r) for r in requirements)
    assert re.fullmatch(r"3\.\d+\.\d+", credit["card"]["python"])


def test_the_card_can_be_saved_as_json(credit, diamonds):
    for card in (credit["card"], diamonds["card"]):
        assert json.loads(json.dumps(card)) == card
