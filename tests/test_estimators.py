"""Every algorithm in the conf registry builds, fits and predicts for the tasks it supports."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from model_trainer.errors import ConfigurationError
from model_trainer.models.estimators import (
    LabelEncodedClassifier,
    choose_algorithms,
    make_estimator,
    make_pipeline,
    supports,
)
from model_trainer.table.feature_types import infer_feature_types
from tests.conftest import BENCH, require_bench_data

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
with (ROOT / "conf" / "base" / "parameters_model_configuration.yml").open() as handle:
    MODEL = yaml.safe_load(handle)["model"]
REGISTRY = MODEL["algorithms"]
ENCODING = MODEL["encoding"]
# Small models keep the whole file fast; only size parameters are changed.
SMALL = {
    "random_forest": {"n_estimators": 20},
    "extra_trees": {"n_estimators": 20},
    "hist_gradient_boosting": {"max_iter": 20},
    "lightgbm": {"n_estimators": 20},
    "xgboost": {"n_estimators": 20},
    "neural_network": {"max_iter": 50},
}
# Ranking models are fit with their groups: tests/test_ranking.py covers them.
CASES = [
    (name, task)
    for name in REGISTRY
    for task in ("classification", "regression")
    if REGISTRY[name].get(task)
]


def _sample(path: Path, target: str) -> tuple[pd.DataFrame, pd.Series, dict]:
    table = pd.read_csv(path).sample(300, random_state=0).reset_index(drop=True)
    return table.drop(columns=[target]), table[target], infer_feature_types(table, target)


require_bench_data()  # read on import
DATA = {
    "classification": _sample(CREDIT, "Status"),
    "regression": _sample(BENCH / "diamonds" / "train.csv", "price"),
}


def test_the_registry_covers_both_tasks_with_the_expected_algorithms():
    assert {name for name, task in CASES if task == "classification"} == {
        "logistic_regression", "random_forest", "extra_trees", "hist_gradient_boosting",
        "lightgbm", "xgboost", "neural_network", "knn", "svm",
    }  # fmt: skip
    assert {name for name, task in CASES if task == "regression"} == {
        "ridge", "lasso", "elastic_net", "random_forest", "extra_trees",
        "hist_gradient_boosting", "lightgbm", "xgboost", "neural_network", "knn", "svm",
    }  # fmt: skip


@pytest.mark.parametrize(("name", "task"), CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_every_registered_algorithm_fits_and_predicts(name, task):
    X, y, feature_types = DATA[task]
    pipeline = make_pipeline(REGISTRY, name, task, SMALL.get(name, {}), feature_types, ENCODING, 0)
    assert isinstance(pipeline, Pipeline)
    assert [step for step, _ in pipeline.steps] == ["preprocess", "model"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes from tiny models
        pipeline.fit(X, y)
        predicted = pipeline.predict(X.head(50))
        proba = pipeline.predict_proba(X.head(50)) if task == "classification" else None
    assert len(predicted) == 50
    if task == "regression":
        assert np.isfinite(predicted.astype(float)).all()
        assert predicted.std() > 0
        return
    assert list(pipeline.classes_) == ["bad", "good"]
    assert set(predicted) <= {"bad", "good"}
    assert proba.shape == (50, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_xgboost_keeps_the_original_multiclass_labels():
    table = pd.read_csv(BENCH / "penguins" / "train.csv")
    X, y = table.drop(columns=["species"]), table["species"]
    feature_types = infer_feature_types(table, "species")
    pipeline = make_pipeline(
        REGISTRY, "xgboost", "classification", SMALL["xgboost"], feature_types, ENCODING, 0
    )
    assert isinstance(pipeline.named_steps["model"], LabelEncodedClassifier)
    pipeline.fit(X, y)
    assert list(pipeline.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    assert set(pipeline.predict(X)) == {"Adelie", "Chinstrap", "Gentoo"}
    assert (pipeline.predict(X) == y).mean() > 0.9
    assert pipeline.predict_proba(X).shape == (len(X), 3)


def test_label_encoding_applies_to_the_early_stopping_eval_set_and_survives_clone():
    table = pd.read_csv(BENCH / "penguins" / "train.csv")
    X = table[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]]
    y = table["species"]
    model = make_estimator(
        REGISTRY, "xgboost", "classification", {"n_estimators": 200, "early_stopping_rounds": 5}, 0
    )
    fitted = clone(model).fit(X[:200], y[:200], eval_set=[(X[200:], y[200:])], verbose=False)
    assert list(fitted.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    assert 0 <= fitted.estimator_.best_iteration < 199
    assert set(fitted.predict(X[200:])) <= set(fitted.classes_)


def test_xgboost_is_not_label_encoded_for_regression():
    estimator = make_estimator(REGISTRY, "xgboost", "regression", {}, 0)
    assert type(estimator).__name__ == "XGBRegressor"


def test_defaults_params_and_seed_reach_the_estimator():
    estimator = make_estimator(REGISTRY, "lightgbm", "classification", {"num_leaves": 7}, 123)
    params = estimator.get_params()
    assert params["num_leaves"] == 7
    assert params["subsample_freq"] == 1  # from the registry defaults
    assert params["random_state"] == 123


def test_task_specific_defaults_apply_to_their_task_only():
    assert make_estimator(REGISTRY, "svm", "classification", {}, 0).get_params()["probability"]
    assert "probability" not in make_estimator(REGISTRY, "svm", "regression", {}, 0).get_params()


def test_refuses_parameters_the_estimator_does_not_take_naming_them():
    with pytest.raises(ConfigurationError) as caught:
        make_estimator(REGISTRY, "ridge", "regression", {"n_estimators": 10}, 0)
    assert "n_estimators" in caught.value.message
    assert "sklearn.linear_model.Ridge" in caught.value.message
    assert "model.algorithms.ridge" in caught.value.remediation


def test_refuses_an_unknown_algorithm_listing_the_available_ones():
    with pytest.raises(ConfigurationError) as caught:
        make_estimator(REGISTRY, "catboost", "classification", {}, 0)
    assert caught.value.message == "Unknown algorithm 'catboost'."
    assert "auto" in caught.value.remediation
    for name in REGISTRY:
        assert name in caught.value.remediation


def test_refuses_an_algorithm_for_a_task_it_does_not_support():
    with pytest.raises(ConfigurationError) as caught:
        make_pipeline(REGISTRY, "ridge", "classification", {}, DATA["regression"][2], ENCODING, 0)
    message = "'ridge' does not support classification (only regression, ranking)"
    assert message in caught.value.message
    assert "another algorithm" in caught.value.remediation


def test_refuses_an_estimator_class_that_cannot_be_imported():
    registry = {"mystery": {"classification": "sklearn.ensemble.MysteryForest"}}
    with pytest.raises(ConfigurationError) as caught:
        make_estimator(registry, "mystery", "classification", {}, 0)
    assert "'sklearn.ensemble.MysteryForest'" in caught.value.message
    assert "model.algorithms" in caught.value.remediation


def test_supports_reads_the_registry():
    assert supports(REGISTRY, "logistic_regression", "classification")
    assert not supports(REGISTRY, "logistic_regression", "regression")
    assert not supports(REGISTRY, "catboost", "regression")


def test_auto_rules_filter_the_candidates_by_task():
    rules = MODEL["auto_rules"]
    classifiers, reason = choose_algorithms(REGISTRY, "auto", rules, "classification", 1500)
    assert classifiers == [
        "lightgbm", "hist_gradient_boosting", "random_forest", "extra_trees",
        "logistic_regression", "svm",
    ]  # fmt: skip
    assert reason == "auto rule for classification with 1500 rows (<= 2000 rows)"
    regressors, _ = choose_algorithms(REGISTRY, "auto", rules, "regression", 1500)
    assert regressors == [
        "lightgbm", "hist_gradient_boosting", "random_forest", "extra_trees", "ridge", "svm",
    ]  # fmt: skip


def test_auto_rules_pick_the_rule_for_the_data_size():
    rules = MODEL["auto_rules"]
    medium, _ = choose_algorithms(REGISTRY, "auto", rules, "regression", 50_000)
    assert medium == ["lightgbm", "xgboost", "hist_gradient_boosting", "random_forest", "ridge"]
    large, reason = choose_algorithms(REGISTRY, "auto", rules, "classification", 10**6)
    assert large == ["lightgbm", "xgboost", "hist_gradient_boosting"]
    assert "(any size)" in reason


def test_named_algorithms_are_used_as_given():
    names, reason = choose_algorithms(
        REGISTRY, ["knn", "lasso"], MODEL["auto_rules"], "regression", 100
    )
    assert names == ["knn", "lasso"]
    assert reason == "set by model.algorithm"


def test_refuses_an_unknown_requested_algorithm_listing_the_available_ones():
    with pytest.raises(ConfigurationError) as caught:
        choose_algorithms(REGISTRY, ["lightgbm", "catboost"], MODEL["auto_rules"], "regression", 9)
    assert "'catboost'" in caught.value.message
    assert "lightgbm" in caught.value.remediation and "xgboost" in caught.value.remediation


def test_refuses_auto_rules_that_do_not_cover_the_data_size():
    rules = [{"max_rows": 1000, "algorithms": ["ridge"]}]
    with pytest.raises(ConfigurationError) as caught:
        choose_algorithms(REGISTRY, "auto", rules, "regression", 5000)
    assert "No model.auto_rules entry covers 5000 rows" in caught.value.message
    assert "max_rows is null" in caught.value.remediation
