"""The model card tells evaluate, deploy and serve what they need without opening the model."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from model_trainer.evaluation.held_out import holdout_metrics
from model_trainer.search import tuning
from model_trainer.serving.integrity import joblib_file
from model_trainer.serving.model_card import model_card, model_card_markdown
from tests.conftest import BENCH
from tests.trained import train_as_the_pipelines_do

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bench_data_is_beside_the_project")]

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
DIAMONDS = BENCH / "diamonds" / "train.csv"


def card_for(table: pd.DataFrame, target: str, algorithm: str, declared=None) -> dict:
    """Train as the pipelines do, then describe the model."""
    trained = train_as_the_pipelines_do(table, target, algorithm, declared)
    everything = pd.concat([trained.train, trained.validation, trained.test], ignore_index=True)
    test_metrics = holdout_metrics(
        {"m": trained.model}, trained.X_test, trained.y_test, trained.task
    )["m"]
    card = model_card(
        task=trained.task,
        feature_types=trained.feature_types,
        input_columns=[c for c in everything.columns if c != target],
        configuration=trained.configuration,
        training_info=trained.info,
        test_metrics=test_metrics,
        baseline_metrics=holdout_metrics(
            trained.baselines, trained.X_test, trained.y_test, trained.task
        ),
        cross_validation=trained.summary["cross_validation"],
        data_fingerprint=tuning.data_fingerprint(everything),
        n_rows=len(everything),
        refit_on_all_rows=True,
        registered_model_name="credit_data_Status",
        model_sha256=joblib_file(trained.model)[1],
    )
    return {
        "card": card,
        "rows": everything,
        "feature_types": trained.feature_types,
        "summary": trained.summary,
    }


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
    assert card["registered_model_name"] == "credit_data_Status"
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


def test_the_markdown_card_tells_people_what_the_json_card_holds(credit, diamonds):
    card = credit["card"]
    text = model_card_markdown(card)

    assert text.startswith("# Model card: classification of `Status`")
    assert f"- **Model**: {card['algorithm']}" in text
    assert "- **Classes**: bad, good" in text and "(binary metrics): bad" in text
    assert f"{card['n_rows']} rows (data fingerprint `{card['data_fingerprint']}`)" in text
    header, rule, first, *_ = text.split("## Held-out scores\n\n")[1].splitlines()
    assert header == "| metric | model | dummy | logistic_regression |" and rule == "|---" * 4 + "|"
    model_score = card["test_metrics"]["roc_auc"]
    dummy_score = card["baseline_metrics"]["dummy"]["roc_auc"]
    assert first.startswith(f"| roc_auc | {model_score:.4g} | {dummy_score:.4g} |")  # its metric
    assert "| application_id |" not in text and "Ignored columns: application_id" in text
    income = card["features"]["Income"]
    assert f"| Income | numeric | float64 | {income['missing_fraction']:.1%} |" in text
    assert card["model_sha256"] in text

    regression = model_card_markdown(diamonds["card"])
    assert "# Model card: regression of `price`" in regression and "Classes" not in regression
    assert "| rmse |" in regression.split("## Held-out scores")[1].splitlines()[4]
