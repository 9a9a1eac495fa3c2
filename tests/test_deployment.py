"""Deployment checks: each names its figure and threshold, fails when it should, and the
promotion reuses the registry version a model already has."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.dummy import DummyClassifier

from model_trainer.errors import ConfigurationError
from model_trainer.models.metrics import evaluate
from model_trainer.serving import deployment
from model_trainer.serving.deployment import Candidate
from model_trainer.serving.integrity import joblib_file
from model_trainer.serving.model_store import StoredModel
from model_trainer.serving.promotion import blocking_failures, promote
from tests.conftest import BENCH, ROOT
from tests.test_onnx_export import fit_as_the_project_does

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

ONNX_SETTINGS = {"enabled": True, "tolerance": {"absolute": 1e-4, "relative": 1e-5}}


@pytest.fixture(scope="module")
def credit_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A logistic regression of the bundled credit data and its held-out rows (with target)."""
    credit = pd.read_csv(ROOT / "data" / "01_raw" / "credit_data.csv")
    model, X = fit_as_the_project_does(credit, "Status", "logistic_regression")
    return model, credit.loc[X.index].reset_index(drop=True)


def card_of(model, rows: pd.DataFrame, **overrides) -> dict:
    """The model card keys deployment reads."""
    return {
        "target": "Status",
        "task": "classification",
        "classes": ["bad", "good"],
        "positive_class": "bad",
        "metric": "roc_auc",
        "algorithm": "logistic_regression",
        "input_columns": [c for c in rows.columns if c != "Status"],
        "test_metrics": {"roc_auc": 0.81},
        "baseline_metrics": {"dummy": {"roc_auc": 0.5}},
        "refit_on_all_rows": True,
        **overrides,
    }


def candidate_of(model, rows: pd.DataFrame, seen: bool = False, **card) -> Candidate:
    stored = StoredModel(model=model, card=card_of(model, rows, **card), source="test")
    return Candidate(stored, rows, "held-out credit rows", seen)


def test_a_model_refit_on_all_rows_is_judged_by_the_figures_of_its_card(credit_split):
    model, rows = credit_split
    candidate = candidate_of(model, rows, seen=True, test_metrics={"roc_auc": 0.61})

    metric, dummy = deployment.metric_checks(candidate, {"roc_auc": {"min": 0.7}}, True)

    assert metric == {
        "name": "metric_roc_auc",
        "status": "failed",
        "value": 0.61,
        "threshold": {"min": 0.7},
        "detail": "the model card: its run's test split, scored before the refit on all rows",
    }
    assert dummy["status"] == "passed" and dummy["threshold"] == {"dummy": 0.5}


def test_new_rows_are_scored_and_the_dummy_is_scored_on_the_same_rows(credit_split):
    model, rows = credit_split
    candidate = candidate_of(model, rows)

    checks = deployment.metric_checks(
        candidate, {"roc_auc": {"min": 0.7, "max": 1.0}, "rmse": {"max": 1.0}}, True
    )

    assert [c["name"] for c in checks] == ["metric_roc_auc", "beats_dummy_baseline"]  # no rmse
    expected = evaluate(model, candidate.X, candidate.y, candidate.task)["roc_auc"]
    assert checks[0]["value"] == pytest.approx(expected) and checks[0]["status"] == "passed"
    assert checks[1]["threshold"] == {"dummy": 0.5}


def test_a_model_no_better_than_the_dummy_fails_that_check(credit_split):
    _, rows = credit_split
    dummy = DummyClassifier().fit(rows.drop(columns="Status"), rows["Status"])

    (check,) = deployment.metric_checks(candidate_of(dummy, rows), {}, True)

    assert check["name"] == "beats_dummy_baseline" and check["status"] == "failed"


def test_a_threshold_on_an_unknown_metric_is_refused(credit_split):
    model, rows = credit_split
    with pytest.raises(ConfigurationError, match="rocauc"):
        deployment.metric_checks(candidate_of(model, rows), {"rocauc": {"min": 0.7}}, False)


def test_a_trained_model_predicts_valid_outputs_even_for_a_row_of_nulls(credit_split):
    model, rows = credit_split

    checks = deployment.prediction_checks(candidate_of(model, rows), 50)

    assert {c["name"]: c["status"] for c in checks} == {
        "sample_predictions": "passed",
        "all_missing_row": "passed",
        "single_row_matches_batch": "passed",
    }


def test_the_row_of_nulls_keeps_every_column_and_holds_only_missing_values(credit_split):
    _, rows = credit_split
    row = deployment.all_missing_row(rows)
    assert list(row.columns) == list(rows.columns) and len(row) == 1
    assert row.isna().all(axis=None)


class WrongOutputs:
    classes_ = np.array(["bad", "good"])

    def __init__(self, proba: np.ndarray, labels: list[str]) -> None:
        self.proba, self.labels = proba, labels

    def predict(self, X):
        return np.asarray(self.labels)

    def predict_proba(self, X):
        return self.proba


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (WrongOutputs(np.array([[0.6, 0.6], [0.5, 0.5]]), ["bad", "good"]), "sum to 1"),
        (WrongOutputs(np.array([[np.nan, 1.0], [0.5, 0.5]]), ["bad", "good"]), "NaN"),
        (WrongOutputs(np.array([[0.5, 0.5], [0.5, 0.5]]), ["bad", "ugly"]), "outside the classes"),
        (WrongOutputs(np.array([[0.5, 0.5]]), ["bad", "good"]), "shape (1, 2)"),
        (DummyClassifier(), "predicting failed: NotFittedError"),
    ],
)
def test_invalid_outputs_are_named(model, problem: str, credit_split):
    _, rows = credit_split
    problems = deployment.output_problems(model, rows.head(2), card_of(model, rows))
    assert any(problem in p for p in problems), problems


def test_size_over_the_limit_fails(credit_split):
    model, _ = credit_split
    within = deployment.size_check(model, 1e9)
    over = deployment.size_check(model, 1000)
    assert within["status"] == "passed" and within["value"] > 1000
    assert over["status"] == "failed" and over["threshold"] == {"max": 1000}


def test_latency_is_reported_as_percentiles_of_timed_calls():
    figures = deployment.latency_ms(lambda _: time.sleep(0.002), pd.DataFrame({"a": [1]}), 5)
    assert figures["rows"] == 1 and figures["repeats"] == 5
    assert 2 <= figures["p50"] <= figures["p99"]


def test_an_agreeing_onnx_export_is_returned_with_its_figures(credit_split):
    model, rows = credit_split

    graph, check = deployment.onnx_check(candidate_of(model, rows), ONNX_SETTINGS, 3)

    assert graph is not None and check["status"] == "passed" and check["value"] < 1e-5
    assert check["onnx"]["inputs"]["Home"] == "category"
    assert check["onnx"]["outputs"] == ["label", "probabilities"]
    assert check["onnx"]["latencySingleRowMs"]["repeats"] == 3


def test_an_export_outside_the_tolerance_fails_and_is_not_kept(credit_split):
    model, rows = credit_split
    exact = {"enabled": True, "tolerance": {"absolute": 0.0, "relative": 0.0}}

    graph, check = deployment.onnx_check(candidate_of(model, rows), exact, 3)

    assert graph is None and check["status"] == "failed"  # float32 is not float64
    assert "outside the tolerance" in check["detail"]


def test_a_model_onnx_cannot_express_is_reported_not_convertible():
    chicago = pd.read_csv(BENCH / "chicago" / "train.csv").head(400)
    model, X = fit_as_the_project_does(chicago, "ridership", "ridge")
    rows = chicago.loc[X.index]
    stored = StoredModel(model, {"input_columns": list(X.columns), "task": "regression"}, "t")

    graph, check = deployment.onnx_check(Candidate(stored, rows, "t", False), ONNX_SETTINGS, 3)

    assert graph is None and check["status"] == "not_convertible"
    assert "parses dates" in check["detail"]
    assert blocking_failures([check], onnx_required=False) == []
    assert blocking_failures([check], onnx_required=True) == [check]


def test_the_held_out_split_is_the_one_of_the_models_version(credit_split, tmp_path: Path):
    model, rows = credit_split
    version = "2026-01-01T00.00.00.000Z"
    models, splits = tmp_path / "06_models", tmp_path / "test_split.parquet"
    for path in (models / "model.joblib" / version, models / "model_card.json" / version):
        path.mkdir(parents=True)
    data, digest = joblib_file(model)  # as the train pipeline writes and digests it
    (models / "model.joblib" / version / "model.joblib").write_bytes(data)
    card = pd.Series(card_of(model, rows, model_sha256=digest)).to_json()
    (models / "model_card.json" / version / "model_card.json").write_text(card)

    with pytest.raises(ConfigurationError, match=r"deploy\.data=PATH") as missing:
        deployment.load_candidate(None, None, models, splits)
    (splits / version).mkdir(parents=True)
    rows.to_parquet(splits / version / "test_split.parquet")
    candidate = deployment.load_candidate(None, None, models, splits)
    unlabelled = tmp_path / "unlabelled.csv"
    rows.drop(columns="Status").to_csv(unlabelled, index=False)

    assert version in missing.value.message
    assert candidate.rows.equals(rows[[*candidate.card["input_columns"], "Status"]])
    assert candidate.rows_seen_in_training  # the card says it was refit on all rows
    assert candidate.stored.save_version == version
    with pytest.raises(ConfigurationError, match="Status"):
        deployment.load_candidate(None, str(unlabelled), models, splits)


@pytest.mark.slow
def test_promotion_registers_an_unregistered_model_once_then_reuses_its_version(
    credit_split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    model, rows = credit_split
    monkeypatch.chdir(tmp_path)  # artifacts land beside the store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    candidate = candidate_of(model, rows)

    with mlflow.start_run():
        first = promote(candidate, "credit", "champion")
        first_run = mlflow.active_run().info.run_id
    candidate.stored.run_id = MlflowClient().get_model_version("credit", "1").run_id
    with mlflow.start_run():
        again = promote(candidate, "credit", "champion")
    client = MlflowClient()

    assert first == {
        "name": "credit",
        "version": "1",
        "alias": "champion",
        "loggedByDeployment": True,
    }
    assert again["version"] == "1" and not again["loggedByDeployment"]
    assert len(client.search_model_versions("name = 'credit'")) == 1
    assert str(client.get_model_version_by_alias("credit", "champion").version) == "1"
    assert client.get_model_version("credit", "1").tags["deployment_run_id"] != first_run
