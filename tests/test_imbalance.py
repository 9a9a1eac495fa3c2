"""Imbalanced classes are met by class weights or SMOTE inside the pipeline, and a binary
model's decision threshold can be tuned on the validation split."""

from __future__ import annotations

import io
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from model_trainer.errors import ConfigurationError
from model_trainer.models.estimators import choose_imbalance, pipeline_from_configuration
from model_trainer.models.metrics import evaluate
from model_trainer.pipelines.data_preparation import nodes as preparation
from model_trainer.pipelines.model_configuration.nodes import configure_model
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.table.splitting import split_holdout
from model_trainer.tasks.detection import detect_task
from model_trainer.training import final_fit as training
from model_trainer.training.threshold import apply_decision_threshold
from tests.conftest import BENCH, require_bench_data

ROOT = Path(__file__).resolve().parents[1]
with (ROOT / "conf" / "base" / "parameters_model_configuration.yml").open() as handle:
    MODEL = yaml.safe_load(handle)["model"]
require_bench_data()  # read on import
CHURN = pd.read_csv(BENCH / "mlc_churn" / "train.csv").sample(1200, random_state=0)
TARGET = "churn"
FAMILIES = ["lightgbm", "xgboost", "logistic_regression", "knn"]


def configured(table: pd.DataFrame, target: str, imbalance: dict, algorithms: list[str]):
    task = detect_task(table[target], {})
    train, validation, test = split_holdout(table, target, task, {})
    model = {**MODEL, "algorithm": algorithms, "imbalance": imbalance}
    configuration = configure_model(
        task, train, validation, "auto", model, {"folds": 3, "seed": 0}, {}, 0
    )
    return task, infer_feature_types(table, target), configuration, train, validation, test


@pytest.fixture(scope="module")
def churn():
    return configured(CHURN, TARGET, {"strategy": "auto"}, FAMILIES)


def fitted(task, feature_types, configuration, rows, algorithm, params=None):
    pipeline = pipeline_from_configuration(
        configuration, algorithm, params or {}, task["type"], feature_types
    )
    return pipeline.fit(rows.drop(columns=[TARGET]), rows[TARGET])


def test_auto_weights_families_that_take_weights_and_oversamples_the_others(churn):
    task, feature_types, configuration, *_ = churn
    imbalance = configuration["imbalance"]
    assert imbalance["by_algorithm"] == {
        "lightgbm": "class_weight",
        "xgboost": "scale_pos_weight",
        "logistic_regression": "class_weight",
        "knn": "smote",
    }
    counts = task["class_counts"]
    assert imbalance["scale_pos_weight"] == pytest.approx(counts["no"] / counts["yes"])
    assert "above 3" in imbalance["reason"]

    def build(name: str) -> Pipeline:
        return pipeline_from_configuration(configuration, name, {}, "classification", feature_types)

    assert build("lightgbm").named_steps["model"].class_weight == "balanced"
    xgboost = build("xgboost").named_steps["model"].estimator
    assert xgboost.scale_pos_weight == pytest.approx(imbalance["scale_pos_weight"])
    assert "balance" in build("knn").named_steps


def test_auto_lets_the_search_turn_weights_on_or_off_and_keeps_a_family_own_space(churn):
    _, _, configuration, *_ = churn
    spaces = configuration["search_space"]
    assert spaces["lightgbm"]["class_weight"]["choices"] == [None, "balanced"]
    ratio = configuration["imbalance"]["scale_pos_weight"]
    assert spaces["xgboost"]["scale_pos_weight"]["choices"] == [1.0, ratio]
    assert "class_weight" not in spaces["knn"]  # SMOTE instead
    assert (
        spaces["logistic_regression"]["class_weight"]
        == MODEL["algorithms"]["logistic_regression"]["search_space"]["class_weight"]
    )


def test_a_declared_strategy_is_applied_not_searched():
    _, _, configuration, *_ = configured(CHURN, TARGET, {"strategy": "class_weight"}, ["lightgbm"])
    assert "class_weight" not in configuration["search_space"]["lightgbm"]
    assert configuration["imbalance"]["by_algorithm"] == {
        "lightgbm": "class_weight",
        "logistic_regression": "class_weight",
    }


def test_a_searched_class_weight_wins_over_the_strategy(churn):
    _, feature_types, configuration, *_ = churn
    pipeline = pipeline_from_configuration(
        configuration, "logistic_regression", {"class_weight": None}, "classification",
        feature_types,
    )  # fmt: skip
    assert pipeline.named_steps["model"].class_weight is None


def test_classes_within_the_ratio_and_regression_are_left_alone():
    credit = pd.read_csv(ROOT / "data" / "01_raw" / "credit_data.csv").sample(600, random_state=0)
    _, _, configuration, *_ = configured(credit, "Status", {"strategy": "auto"}, ["lightgbm"])
    assert configuration["imbalance"]["strategy"] == "none"
    assert "balanced enough" in configuration["imbalance"]["reason"]
    regression = choose_imbalance({"type": "regression"}, {"strategy": "smote"}, {}, [], 5)
    assert regression["strategy"] == "none"


def test_smote_everywhere_when_asked_even_for_balanced_classes():
    credit = pd.read_csv(ROOT / "data" / "01_raw" / "credit_data.csv").sample(600, random_state=0)
    _, _, configuration, *_ = configured(credit, "Status", {"strategy": "smote"}, ["lightgbm"])
    assert configuration["imbalance"]["by_algorithm"]["lightgbm"] == "smote"
    assert configuration["imbalance"]["reason"] == "set by model.imbalance.strategy"


def test_smote_gives_lightgbm_codes_not_categories_it_could_not_interpolate():
    """mlc_churn's `state` (51 levels) reaches LightGBM as a category, unless SMOTE makes
    synthetic rows between neighbours: then as the codes it interpolates."""
    for strategy, categories in (("none", True), ("smote", False)):
        task, feature_types, configuration, train, _, test = configured(
            CHURN, TARGET, {"strategy": strategy}, ["lightgbm"]
        )
        model = fitted(task, feature_types, configuration, train, "lightgbm")
        preprocess = model.named_steps["preprocess"]
        assert isinstance(preprocess, Pipeline) == categories
        assert len(model.predict(test.drop(columns=[TARGET]))) == len(test)


def test_refuses_an_unknown_strategy_listing_the_allowed_ones():
    with pytest.raises(ConfigurationError) as caught:
        configured(CHURN, TARGET, {"strategy": "undersample"}, ["knn"])
    assert "'undersample'" in caught.value.message
    assert "auto, none, class_weight, smote" in caught.value.remediation


def test_refuses_smote_when_the_smallest_class_is_too_small_for_neighbours():
    task = {"type": "classification", "classes": ["a", "b"], "class_counts": {"a": 500, "b": 2}}
    registry = {"knn": MODEL["algorithms"]["knn"]}
    with pytest.raises(ConfigurationError) as caught:
        choose_imbalance(task, {"strategy": "smote"}, registry, ["knn"], 5)
    assert "SMOTE needs at least 2 rows of the smallest class" in caught.value.message
    assert "2 rows in the train split" in caught.value.message
    assert "class_weight or none" in caught.value.remediation


def test_smote_oversamples_the_training_rows_only_and_the_model_takes_raw_columns(churn):
    task, feature_types, configuration, train, _, test = churn
    model = fitted(task, feature_types, configuration, train, "knn")
    assert isinstance(model, Pipeline)
    assert model.named_steps["model"].n_samples_fit_ > len(train)  # synthetic minority rows
    X_test = test.drop(columns=[TARGET])
    assert len(model.predict(X_test)) == len(X_test)  # no sampling at predict time
    assert model.predict_proba(X_test).shape == (len(X_test), 2)
    assert list(model.classes_) == ["no", "yes"]
    stored = io.BytesIO()
    joblib.dump(model, stored)
    stored.seek(0)
    np.testing.assert_allclose(
        joblib.load(stored).predict_proba(X_test), model.predict_proba(X_test)
    )


def test_early_stopping_sees_the_oversampled_training_rows(churn):
    task, feature_types, configuration, train, validation, _ = churn
    smote = {**configuration["imbalance"], "by_algorithm": {"lightgbm": "smote"}}
    smote["smote_k_neighbors"] = 5
    pipeline, info = training.member_pipeline(
        "lightgbm", {"n_estimators": 400, "learning_rate": 0.3}, task, feature_types,
        {**configuration, "imbalance": smote}, train, validation,
        {"early_stopping": {"enabled": True, "patience": 5}},
    )  # fmt: skip
    assert "balance" in pipeline.named_steps
    assert 0 < info["early_stopping"]["n_estimators"] < 400


@pytest.mark.slow
def test_a_tuned_threshold_is_kept_in_the_model_and_used_by_predict_and_metrics(churn):
    task, feature_types, configuration, train, validation, test = churn
    pipeline = pipeline_from_configuration(
        configuration, "logistic_regression", {}, "classification", feature_types
    )
    thresholded, chosen = apply_decision_threshold(pipeline, task, train, validation, TARGET, "f1")
    assert chosen["objective"] == "f1"
    assert chosen["validation_score"] >= chosen["validation_score_at_0.5"]
    rows = pd.concat([train, validation])
    model = clone(thresholded).fit(rows.drop(columns=[TARGET]), rows[TARGET])
    plain = clone(pipeline).fit(rows.drop(columns=[TARGET]), rows[TARGET])
    X_test, y_test = test.drop(columns=[TARGET]), test[TARGET]
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba, plain.predict_proba(X_test))
    expected = np.where(proba[:, 1] >= chosen["threshold"], "yes", "no")
    assert list(model.predict(X_test)) == list(expected)
    assert list(model.classes_) == ["no", "yes"]
    stored = io.BytesIO()
    joblib.dump(model, stored)
    stored.seek(0)
    assert list(joblib.load(stored).predict(X_test)) == list(expected)
    f1 = evaluate(model, X_test, y_test, task)["f1"]
    assert f1 == pytest.approx(evaluate(model, X_test, y_test, task, names=("f1",))["f1"])
    assert f1 != pytest.approx(evaluate(plain, X_test, y_test, task)["f1"])


def test_no_threshold_unless_asked_or_for_more_than_two_classes(churn):
    task, feature_types, configuration, train, validation, _ = churn
    pipeline = pipeline_from_configuration(
        configuration, "logistic_regression", {}, "classification", feature_types
    )
    assert apply_decision_threshold(pipeline, task, train, validation, TARGET, "none") == (
        pipeline,
        None,
    )
    three = {**task, "classes": ["a", "b", "c"]}
    assert apply_decision_threshold(pipeline, three, train, validation, TARGET, "f1")[1] is None


def test_refuses_an_unknown_threshold_objective_or_an_empty_validation_split(churn):
    task, feature_types, configuration, train, validation, _ = churn
    pipeline = pipeline_from_configuration(
        configuration, "logistic_regression", {}, "classification", feature_types
    )
    with pytest.raises(ConfigurationError) as caught:
        apply_decision_threshold(pipeline, task, train, validation, TARGET, "recall")
    assert "none, f1, balanced_accuracy" in caught.value.remediation
    with pytest.raises(ConfigurationError) as caught:
        apply_decision_threshold(pipeline, task, train, validation[:0], TARGET, "f1")
    assert "split.validation_fraction" in caught.value.remediation


def test_the_imbalance_is_judged_on_the_train_split_alone():
    """Rows in file order, the last fifth all 'bad': the whole table is balanced enough
    (700 good, 412 bad) but the train split is not (700 good, 190 bad). Its counts decide."""
    credit = pd.read_csv(ROOT / "data" / "01_raw" / "credit_data.csv")
    head = pd.concat(
        [
            credit[credit["Status"] == "good"].head(700),
            credit[credit["Status"] == "bad"].head(190),
        ]
    ).sample(frac=1, random_state=0)
    tail = credit[credit["Status"] == "bad"].iloc[190:412]
    table = pd.concat([head, tail], ignore_index=True)
    dataset = {"path": "credit", "target": "Status"}
    validation = {"strategy": "timeseries", "folds": 3}
    detected = preparation.detect_task_type(table, dataset, {})
    assert "class_counts" not in detected, "nothing is counted on the whole table"
    feature_types = infer_feature_types(table, "Status")
    train, validation_split, _ = preparation.split_table(
        table, detected, feature_types, dataset, {}, validation
    )
    task = preparation.count_classes(detected, train, dataset, {})
    assert task["class_counts"] == {"bad": 190, "good": 700}
    assert task["class_counts_from"] == "the train split"
    assert task["positive_class"] == "bad"
    model = {**MODEL, "algorithm": ["xgboost"], "imbalance": {"strategy": "auto"}}
    configuration = configure_model(
        task, train, validation_split, "auto", model, validation, dataset, 0
    )
    imbalance = configuration["imbalance"]
    assert imbalance["searched"] and "3.68 times the smallest" in imbalance["reason"]
    assert "21.3% of the train split" in imbalance["reason"]
    assert imbalance["scale_pos_weight"] == pytest.approx(190 / 700)
    whole = {**task, "class_counts": {"bad": 412, "good": 700}}
    assert (
        choose_imbalance(whole, {"strategy": "auto"}, MODEL["algorithms"], ["xgboost"], 3)[
            "strategy"
        ]
        == "none"
    ), "the whole table's counts would have said otherwise"
