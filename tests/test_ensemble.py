"""Greedy ensemble selection and the ensemble model: real models on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from model_trainer.models.ensemble import (
    FoldBag,
    OutOfFoldPredictions,
    WeightedEnsemble,
    held_out_choice,
    predict_output,
    score_output,
    select_ensemble,
)
from model_trainer.tasks.detection import detect_task
from tests.conftest import BENCH, require_bench_data

require_bench_data()  # read on import
PENGUINS = pd.read_csv(BENCH / "penguins" / "train.csv").dropna()
X = PENGUINS[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]]
Y = PENGUINS["species"]
TASK = detect_task(Y, {"type": "auto"})


def test_keeps_only_the_best_trials_out_of_fold_predictions():
    store = OutOfFoldPredictions(keep=2, greater_is_better=False)
    for number, value in enumerate([0.5, 0.2, 0.9, 0.1]):
        store.add(number, value, np.full((3, 1), value))
    assert sorted(store.outputs) == [1, 3]


def test_selection_mixes_complementary_predictions_and_weights_sum_to_one():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=400)
    y = pd.Series(truth)
    noise_a, noise_b = rng.normal(size=400), rng.normal(size=400)
    store = OutOfFoldPredictions(keep=5, greater_is_better=False, covered=np.arange(400))
    store.add(0, 1.0, truth + noise_a)
    store.add(1, 1.0, truth + noise_b)
    task = {"type": "regression"}
    selection = select_ensemble(store, y, "rmse", task, max_size=10)
    assert set(selection["weights"]) == {0, 1}
    assert sum(selection["weights"].values()) == pytest.approx(1.0)
    single = score_output(truth + noise_a, y, "rmse", task)
    assert selection["score"] < 0.8 * single  # averaging two independent errors: about 0.71


def test_selection_keeps_one_trial_when_nothing_helps():
    y = pd.Series(np.arange(100, dtype=float))
    store = OutOfFoldPredictions(keep=5, greater_is_better=False, covered=np.arange(100))
    store.add(0, 0.0, y.to_numpy())
    store.add(1, 50.0, y.to_numpy() + 50)
    selection = select_ensemble(store, y, "rmse", {"type": "regression"}, max_size=10)
    assert selection["weights"] == {0: 1.0}
    assert selection["score"] == pytest.approx(0.0)


def _five_folds(n: int) -> list[np.ndarray]:
    return list(np.array_split(np.random.default_rng(1).permutation(n), 5))


@pytest.mark.slow
def test_on_pure_noise_the_held_out_choice_scores_chance_where_the_in_sample_one_flatters():
    """20 trials whose predictions ignore the target: weights selected on all rows score well
    above AUC 0.5 on those rows; chosen on four folds and scored on the fifth, neither the
    ensemble nor the best single trial does."""
    rng = np.random.default_rng(0)
    n = 600
    y = pd.Series(rng.choice(["no", "yes"], size=n))
    task = {"type": "classification", "classes": ["no", "yes"], "positive_class": "yes"}
    store = OutOfFoldPredictions(keep=20, greater_is_better=True, covered=np.arange(n))
    for number in range(20):
        p = rng.random(n)
        store.add(number, 0.5, np.column_stack([1 - p, p]))
    in_sample = select_ensemble(store, y, "roc_auc", task, max_size=25)["score"]
    held_out = held_out_choice(store, y, "roc_auc", task, 25, _five_folds(n))
    assert in_sample > 0.53
    assert abs(np.mean(held_out["ensemble"]) - 0.5) < in_sample - 0.5
    assert abs(np.mean(held_out["single_trial"]) - 0.5) < 0.04
    assert len(held_out["ensemble"]) == len(held_out["single_trial"]) == 5


def test_complementary_trials_make_an_ensemble_that_wins_out_of_sample_too():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=500)
    store = OutOfFoldPredictions(keep=5, greater_is_better=False, covered=np.arange(500))
    store.add(0, 1.0, truth + rng.normal(size=500))
    store.add(1, 1.0, truth + rng.normal(size=500))
    y = pd.Series(truth)
    held_out = held_out_choice(store, y, "rmse", {"type": "regression"}, 10, _five_folds(500))
    assert np.mean(held_out["ensemble"]) < 0.8 * np.mean(held_out["single_trial"])


@pytest.mark.slow
def test_the_ensemble_is_a_classifier_with_the_users_labels():
    members = [
        Pipeline([("model", LogisticRegression(max_iter=2000))]),
        Pipeline([("model", DummyClassifier(strategy="prior"))]),
    ]
    model = Pipeline([("ensemble", WeightedEnsemble(members, [0.75, 0.25]))]).fit(X, Y)
    assert list(model.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    proba = model.predict_proba(X.head(10))
    assert np.allclose(proba.sum(axis=1), 1.0)
    logistic = model.named_steps["ensemble"].estimators_[0].predict_proba(X.head(10))
    prior = model.named_steps["ensemble"].estimators_[1].predict_proba(X.head(10))
    assert np.allclose(proba, 0.75 * logistic + 0.25 * prior)
    assert set(model.predict(X)) <= set(model.classes_)


def test_a_regression_ensemble_has_no_predict_proba():
    """The model contract: predict_proba and classes_ for classifiers only (callers, such as
    serving, tell the kinds apart by it)."""
    members = [
        Pipeline([("model", LinearRegression())]),
        Pipeline([("model", DummyRegressor())]),
    ]
    numeric = X.select_dtypes("number").fillna(0)
    model = Pipeline([("ensemble", WeightedEnsemble(members, [0.5, 0.5]))])
    model.fit(numeric, numeric["body_mass_g"] * 2)
    assert not hasattr(model, "predict_proba") and not hasattr(model, "classes_")
    first, second = (member.predict(numeric) for member in model[-1].estimators_)
    assert np.allclose(model.predict(numeric), 0.5 * first + 0.5 * second)


def test_probabilities_are_aligned_to_the_tasks_classes_when_a_fold_lacked_one():
    two_classes = Y != "Chinstrap"
    model = LogisticRegression(max_iter=2000).fit(X[two_classes], Y[two_classes])
    output = predict_output(model, X.head(5), TASK)
    assert output.shape == (5, 3)
    assert np.all(output[:, TASK["classes"].index("Chinstrap")] == 0)
    assert np.allclose(output.sum(axis=1), 1.0)


def test_a_bag_averages_k_fits_each_without_a_different_kth_of_the_rows():
    logistic = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    bag = FoldBag(logistic, folds=4, seed=0)
    model = Pipeline([("bag", bag)]).fit(X, Y)
    members = bag.estimators_
    assert len(members) == 4 and list(model.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    proba = model.predict_proba(X.head(20))
    assert np.allclose(proba, np.mean([m.predict_proba(X.head(20)) for m in members], axis=0))
    coefficients = [m.named_steps["model"].coef_ for m in members]
    assert not np.allclose(coefficients[0], coefficients[1]), "each fit saw other rows"
    assert set(model.predict(X)) <= set(model.classes_)
    refit = clone(model).fit(X, Y)  # the refit on all rows clones the evaluation model
    assert np.allclose(refit.predict_proba(X.head(5)), proba[:5])


def test_a_regression_bag_predicts_the_mean_of_its_fits_side_by_side():
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    target = pd.Series(2 * features["a"] - features["b"] + rng.normal(size=300))
    bag = FoldBag(Pipeline([("model", LinearRegression())]), folds=5, seed=1, jobs=2)
    bag.fit(features, target)
    assert not hasattr(bag, "predict_proba") and not hasattr(bag, "classes_")
    expected = np.mean([m.predict(features) for m in bag.estimators_], axis=0)
    assert np.allclose(bag.predict(features), expected)
