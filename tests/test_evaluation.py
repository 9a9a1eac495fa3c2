"""Judging a trained model on data given after training: the checks against its card, metrics
beside a dummy and earlier registered versions, the breakdown per class or target range, where
the errors concentrate, and batch predictions. Real data; a real MLflow registry."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import f1_score

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.evaluation import holdout as evaluation
from model_trainer.evaluation.compare import (
    compare_models,
    earlier_versions,
    no_skill_metrics,
    previous_version,
    registered_as,
    score_earlier_versions,
)
from model_trainer.evaluation.error_analysis import breakdown, error_patterns
from model_trainer.evaluation.held_out import predictions_table
from model_trainer.reporting import report as reporting
from model_trainer.reporting.pages import AT_TRAINING, render_evaluation_html
from model_trainer.serving.model_store import StoredModel, load_stored_model
from tests.conftest import BENCH
from tests.trained import stored_model

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
CONF = ROOT / "conf" / "base"
PATTERNS = {"bins": 5, "max_categories": 10, "min_rows": 20}
REGISTERED = "01_raw_credit_data_Status"  # the trained project's model: one per data set, target


@pytest.fixture(scope="module")
def credit() -> tuple[StoredModel, pd.DataFrame]:
    table = pd.read_csv(CREDIT).sample(1500, random_state=0).reset_index(drop=True)
    table.insert(0, "application_id", range(100_000, 100_000 + len(table)))
    return stored_model(table, "Status", "logistic_regression")


@pytest.fixture(scope="module")
def diamonds() -> tuple[StoredModel, pd.DataFrame]:
    table = pd.read_csv(BENCH / "diamonds" / "train.csv").sample(3000, random_state=0)
    return stored_model(table.reset_index(drop=True), "price", "ridge")


@pytest.fixture(scope="module")
def penguins() -> tuple[StoredModel, pd.DataFrame]:
    return stored_model(
        pd.read_csv(BENCH / "penguins" / "train.csv"), "species", "logistic_regression"
    )


def predictions_of(stored: StoredModel, rows: pd.DataFrame) -> pd.DataFrame:
    card = stored.card
    return predictions_table(
        stored.model,
        rows[card["input_columns"]],
        rows[card["target"]],
        evaluation.model_task(card),
    )


# --- the data, checked against the model card ---------------------------------------------------


def test_no_data_path_or_a_wrong_one_names_the_parameter_and_the_fix(tmp_path):
    with pytest.raises(ConfigurationError, match=r"evaluation\.data is empty") as empty:
        evaluation.require_data_path(None, "evaluation.data", "evaluate")
    assert (
        'kedro run --pipelines=evaluate --params="evaluation.data=PATH"' in empty.value.remediation
    )
    with pytest.raises(DataValidationError, match=r"\(inference.data\) does not exist"):
        evaluation.require_data_path(str(tmp_path / "nope.csv"), "inference.data", "inference")
    with pytest.raises(DataValidationError, match=r"unsupported file type '\.xlsx'"):
        evaluation.require_data_path("rows.xlsx", "evaluation.data", "evaluate")
    (tmp_path / "rows.parquet").touch()
    assert evaluation.require_data_path(str(tmp_path / "rows.parquet"), "x", "y").is_file()


@pytest.mark.slow
def test_a_missing_input_column_is_named(credit):
    stored, test = credit
    with pytest.raises(DataValidationError, match=r"lacks the model's input columns \['Income'\]"):
        evaluation.check_model_inputs(test.drop(columns=["Income"]), stored.card, "the data")


def test_text_where_the_model_learned_numbers_is_named(credit):
    stored, test = credit
    broken = test.astype({"Age": str})
    broken.loc[0, "Age"] = "forty"
    with pytest.raises(DataValidationError, match=r"\['Age'\].*hold text"):
        evaluation.check_model_inputs(broken, stored.card, "the data")


def test_the_inputs_come_in_the_models_order_and_other_columns_are_ignored(credit):
    stored, test = credit
    shuffled = test[test.columns[::-1]].assign(comment="extra")
    features = evaluation.check_model_inputs(shuffled, stored.card, "the data")
    assert list(features.columns) == stored.card["input_columns"]


def test_labelled_rows_need_the_target_and_known_classes(credit, caplog):
    stored, test = credit
    with pytest.raises(DataValidationError, match="no target column 'Status'") as unlabelled:
        evaluation.check_labelled_rows(test.drop(columns=["Status"]), stored.card, "the data")
    assert "--pipelines=inference" in unlabelled.value.remediation
    relabelled = test.assign(Status=test["Status"].replace({"bad": "default"}))
    with pytest.raises(DataValidationError, match=r"never learned: \['default'\]"):
        evaluation.check_labelled_rows(relabelled, stored.card, "the data")
    partly = test.reset_index(drop=True).astype({"Status": object})
    partly.loc[:9, "Status"] = None
    with caplog.at_level(logging.WARNING, logger="model_trainer.evaluation.holdout"):
        rows = evaluation.check_labelled_rows(partly, stored.card, "the data")
    assert len(rows) == len(test) - 10 and "Left out 10 rows" in caplog.text
    assert "application_id" in rows, "every column is kept for earlier versions"


@pytest.fixture(scope="module")
def credit_as_ints() -> tuple[StoredModel, pd.DataFrame]:
    """The credit model with its target recoded 1 = good, 0 = bad."""
    table = pd.read_csv(CREDIT).sample(1500, random_state=0).reset_index(drop=True)
    table["Status"] = (table["Status"] == "good").astype(int)
    return stored_model(table, "Status", "logistic_regression")


@pytest.mark.slow
def test_a_model_trained_on_integer_labels_is_judged_for_the_class_1(credit_as_ints, tmp_path):
    stored, test = credit_as_ints
    assert stored.card["classes"] == [0, 1] and stored.card["positive_class"] == 1
    # a file whose target column came as text: its labels are the model's classes by text
    as_text = test.assign(Status=test["Status"].astype(str))
    rows = evaluation.check_labelled_rows(as_text, stored.card, "the data")
    assert rows["Status"].tolist() == test["Status"].tolist()
    assert pd.api.types.is_integer_dtype(rows["Status"])
    comparison = compare_models(stored, rows, tmp_path, tmp_path, 3)
    predicted = stored.model.predict(test[stored.card["input_columns"]])
    assert comparison["metrics"]["f1"] == pytest.approx(f1_score(test["Status"], predicted))
    assert comparison["metrics"]["recall"] > 0.8, "the recall of 1 (good), the majority"
    assert comparison["dummy"]["accuracy"] == pytest.approx((test["Status"] == 1).mean())
    table = breakdown(predictions_of(stored, rows), evaluation.model_task(stored.card), 5)
    assert table["class"].tolist() == ["0", "1"]
    assert table["rows"].tolist() == [(test["Status"] == 0).sum(), (test["Status"] == 1).sum()]
    assert table["predicted_rows"].tolist() == [(predicted == 0).sum(), (predicted == 1).sum()]
    assert table["f1"].iloc[1] == pytest.approx(f1_score(test["Status"], predicted))
    with pytest.raises(DataValidationError, match=r"never learned: \['2'\]"):
        evaluation.check_labelled_rows(
            as_text.assign(Status=as_text["Status"].replace({"1": "2"})), stored.card, "the data"
        )


# --- metrics and comparisons --------------------------------------------------------------------


def test_a_regression_is_scored_against_a_dummy_that_predicts_the_mean(diamonds, tmp_path):
    stored, test = diamonds
    comparison = compare_models(stored, test, tmp_path, tmp_path, 3)
    assert set(comparison["metrics"]) == {"rmse", "mae", "r2"}
    assert comparison["metric"] == "rmse"
    assert comparison["metrics"]["rmse"] < 0.5 * comparison["dummy"]["rmse"]
    assert comparison["dummy"]["r2"] == pytest.approx(0.0, abs=1e-9)
    assert comparison["at_training"] == stored.card["test_metrics"]
    assert comparison["earlier_versions"] == []
    assert comparison["earlier_versions_note"] == "the model is not registered in MLflow"
    assert comparison["training_overlap"] is None
    assert "no save version" in comparison["training_overlap_note"]


def test_a_multiclass_model_is_scored_on_every_class(penguins, tmp_path):
    stored, test = penguins
    comparison = compare_models(stored, test, tmp_path, tmp_path, 3)
    assert comparison["metric"] == "log_loss"
    assert comparison["metrics"]["log_loss"] < comparison["dummy"]["log_loss"]
    assert comparison["metrics"]["accuracy"] > 0.9


def test_a_dummy_is_scored_even_when_the_data_lacks_a_class(penguins):
    stored, test = penguins
    two_species = test[test["species"] != "Chinstrap"]
    card = stored.card
    task = evaluation.model_task(card)
    dummy = no_skill_metrics(two_species[card["input_columns"]], two_species["species"], task)
    assert np.isfinite(dummy["log_loss"]) and dummy["accuracy"] > 0.4


# --- where the errors are -----------------------------------------------------------------------


def test_the_breakdown_per_class_adds_up_to_the_rows(penguins):
    stored, test = penguins
    table = breakdown(predictions_of(stored, test), evaluation.model_task(stored.card), 5)
    assert table["class"].tolist() == ["Adelie", "Chinstrap", "Gentoo"]
    assert table["rows"].sum() == len(test) == table["predicted_rows"].sum()
    assert table["recall"].between(0, 1).all() and table["mean_error"].notna().all()


def test_the_breakdown_per_target_range_shows_the_bias(diamonds):
    stored, test = diamonds
    predictions = predictions_of(stored, test)
    table = breakdown(predictions, evaluation.model_task(stored.card), 5)
    assert len(table) == 5 and table["rows"].sum() == len(test)
    lowest, highest = table.iloc[0], table.iloc[-1]
    assert lowest["actual_range"].startswith("<=") and highest["actual_range"].startswith(">")
    assert highest["bias"] < 0, "a linear model under-prices the dearest diamonds"
    assert highest["mae"] == table["mae"].max()


def test_error_patterns_of_a_regression_point_at_the_largest_stones(diamonds):
    stored, test = diamonds
    patterns = error_patterns(predictions_of(stored, test), stored.card["features"], PATTERNS)
    top = patterns.iloc[0]
    assert top["feature"] in {"carat", "x", "y", "z"} and top["segment"].startswith(">")
    assert top["lift"] > 1.5


def test_error_patterns_find_the_segment_whose_labels_are_wrong(credit):
    """Flip the label of every renter: the errors must concentrate where Home is rent."""
    stored, test = credit
    flipped = test.copy()
    renters = flipped["Home"] == "rent"
    flipped.loc[renters, "Status"] = flipped.loc[renters, "Status"].map(
        {"bad": "good", "good": "bad"}
    )
    patterns = error_patterns(predictions_of(stored, flipped), stored.card["features"], PATTERNS)
    top = patterns.iloc[0]
    assert (top["feature"], top["segment"]) == ("Home", "rent")
    assert top["lift"] > 1.5 and top["rows"] == renters.sum()
    assert patterns["rows"].min() >= PATTERNS["min_rows"]
    assert patterns["lift"].is_monotonic_decreasing
    assert "application_id" not in set(patterns["feature"]), "ignored columns are not features"


def test_recommendations_name_what_went_wrong_with_the_evidence(credit, tmp_path):
    """Renters relabelled and half the incomes lost: worse than at training, errors where Home
    is rent, more missing values; and an earlier version that scores better."""
    stored, test = credit
    damaged = test.copy()
    renters = damaged["Home"] == "rent"
    damaged.loc[renters, "Status"] = damaged.loc[renters, "Status"].map(
        {"bad": "good", "good": "bad"}
    )
    damaged.loc[damaged.index[::2], "Income"] = np.nan
    comparison = compare_models(stored, damaged, tmp_path, tmp_path, 3)
    better = {**comparison["metrics"], "roc_auc": comparison["metrics"]["roc_auc"] + 0.05}
    comparison["earlier_versions"] = [{"model": "models:/credit/1", "metrics": better}]
    predictions = predictions_of(stored, damaged)
    task = evaluation.model_task(stored.card)
    thresholds = yaml.safe_load((CONF / "parameters_evaluation.yml").read_text())["evaluation"][
        "recommendations"
    ]
    findings = reporting.evaluation_recommendations(
        comparison,
        breakdown(predictions, task, 5),
        error_patterns(predictions, stored.card["features"], PATTERNS),
        {name: float(damaged[name].isna().mean()) for name in stored.card["features"]},
        stored.card,
        thresholds,
    )
    found = {f["finding"]: f for f in findings}
    assert {
        "worse than at training",
        "an earlier version is better",
        "errors concentrate",
        "more missing values than at training",
    } <= set(found)
    assert "Home is rent" in found["errors concentrate"]["evidence"]
    assert "Income" in found["more missing values than at training"]["evidence"]
    assert "models:/credit/1" in found["an earlier version is better"]["advice"]
    assert "evaluated on training rows" not in found, "overlap unknown: no rule fires"


def test_the_report_holds_the_comparison_and_its_images(diamonds, tmp_path):
    stored, test = diamonds
    comparison = compare_models(stored, test, tmp_path, tmp_path, 3)
    comparison["data"] = {"path": "diamonds.csv", "rows": len(test)}
    predictions = predictions_of(stored, test)
    html = render_evaluation_html(
        comparison=comparison,
        breakdown=breakdown(predictions, evaluation.model_task(stored.card), 5),
        patterns=error_patterns(predictions, stored.card["features"], PATTERNS),
        worst_predictions=predictions.head(5),
        findings=[],
        figures={"residuals.png": b"png bytes"},
    )
    assert "rmse = <b>" in html and "Per range of the target" in html
    assert "data:image/png;base64,cG5nIGJ5dGVz" in html
    assert AT_TRAINING in html and "the model is not registered in MLflow" in html


# --- batch predictions --------------------------------------------------------------------------


def test_batch_predictions_carry_the_keys_and_a_probability_per_class(penguins):
    stored, test = penguins
    card, task = stored.card, evaluation.model_task(stored.card)
    keys = pd.DataFrame({"penguin": [f"p{i}" for i in range(len(test))]})
    table = evaluation.predict_rows(stored.model, test[card["input_columns"]], task, keys)
    assert list(table.columns) == [
        "row", "penguin", "predicted", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo",
    ]  # fmt: skip
    assert table["row"].tolist() == list(range(len(test)))
    assert np.allclose(table.filter(like="proba_").sum(axis=1), 1.0)
    assert (table["predicted"] == stored.model.predict(test[card["input_columns"]])).all()
    summary = evaluation.prediction_summary(table, task)
    assert sum(summary.values()) == pytest.approx(1.0)


def test_regression_batch_predictions_are_values(diamonds):
    stored, test = diamonds
    task = evaluation.model_task(stored.card)
    table = evaluation.predict_rows(stored.model, test[stored.card["input_columns"]], task)
    assert list(table.columns) == ["row", "predicted"]
    summary = evaluation.prediction_summary(table, task)
    assert summary["predicted_min"] < summary["predicted_mean"] < summary["predicted_max"]


def test_the_key_columns_are_those_declared_or_the_ignored_ids(credit):
    stored, test = credit
    assert evaluation.key_columns(test, stored.card, []) == ["application_id"]
    assert evaluation.key_columns(test, stored.card, ["Home"]) == ["Home"]
    with pytest.raises(DataValidationError, match=r"\['customer'\]"):
        evaluation.key_columns(test, stored.card, ["customer"])


# --- the registry and the training data of a pipeline-trained model ------------------------------


@pytest.fixture
def registry_with_two_versions(trained_project: Path, tmp_path: Path, monkeypatch):
    """A copy of the trained project's MLflow store with a version 2 of the same model."""
    database = tmp_path / "mlflow.db"
    shutil.copy(trained_project / "mlflow.db", database)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    monkeypatch.chdir(trained_project)
    client = mlflow.MlflowClient()
    first = client.get_model_version(REGISTERED, "1")
    client.create_model_version(REGISTERED, first.source, run_id=first.run_id)
    return trained_project


@pytest.mark.e2e
def test_a_version_is_compared_with_the_earlier_one_on_the_same_rows(registry_with_two_versions):
    project = registry_with_two_versions
    models, splits = project / "data" / "06_models", project / "data" / "05_model_input"
    second = load_stored_model("models:/01_raw_credit_data_Status/2", models)
    rows = pd.read_csv(project / "data" / "01_raw" / "credit_data.csv").head(400)
    comparison = compare_models(second, rows, models, splits, 3)
    [earlier] = comparison["earlier_versions"]
    assert earlier["model"] == "models:/01_raw_credit_data_Status/1"
    assert earlier["metrics"] == pytest.approx(comparison["metrics"]), "the same model"
    assert comparison["model"]["registered_version"] == "2"
    assert comparison["training_overlap"] == 1.0, "the shipped model is refit on every row"


@pytest.mark.e2e
def test_a_model_loaded_from_a_path_is_found_in_the_registry(registry_with_two_versions):
    models = registry_with_two_versions / "data" / "06_models"
    latest = load_stored_model(None, models)
    assert latest.registered_name is None
    assert registered_as(latest) == (REGISTERED, "2")
    assert earlier_versions("01_raw_credit_data_Status", "2", 3) == [
        "models:/01_raw_credit_data_Status/1"
    ]
    assert earlier_versions(REGISTERED, "1", 3) == []


@pytest.mark.e2e
def test_an_earlier_version_that_predicts_another_target_is_skipped(registry_with_two_versions):
    models = registry_with_two_versions / "data" / "06_models"
    rows = pd.read_csv(registry_with_two_versions / "data" / "01_raw" / "credit_data.csv")
    card = {**load_stored_model(None, models).card, "target": "Home"}
    [result] = score_earlier_versions(["models:/01_raw_credit_data_Status/1"], rows, card, models)
    assert "target" in result["skipped"] and "metrics" not in result


@pytest.mark.e2e
def test_the_train_report_scores_the_previous_version_on_its_test_split(registry_with_two_versions):
    project = registry_with_two_versions
    models, splits = project / "data" / "06_models", project / "data" / "05_model_input"
    card = load_stored_model(None, models).card
    test_split = pd.read_parquet(next(splits.glob("test_split.parquet/*/test_split.parquet")))
    registered = {"registered_model_name": REGISTERED, "registered_model_version": 2}

    compared = previous_version(registered, card, test_split, models, splits)

    assert compared["model"] == "models:/01_raw_credit_data_Status/1"
    assert compared["metrics"]["roc_auc"] == pytest.approx(card["test_metrics"]["roc_auc"], abs=0.1)
    assert compared["trained_on_share"] == 1.0, "version 1 was refit on every row, these too"
    first = {**registered, "registered_model_version": 1}
    assert (
        "first registered version"
        in previous_version(first, card, test_split, models, splits)["note"]
    )
    assert previous_version({}, card, test_split, models, splits) == {
        "note": "the model is not registered in MLflow"
    }
