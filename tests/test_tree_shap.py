"""Exact SHAP values of tree models (grouped_tree_shap): for each family they are used for,
they are the Shapley values computed over every coalition; they add up to every prediction,
sum a bag's or an ensemble's members, give one-hot columns back to their source, and leave every
other model to the permutation estimate with the reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, TargetEncoder
from xgboost import XGBRegressor

from model_trainer.errors import ConfigurationError
from model_trainer.evaluation.explanations import explain
from model_trainer.evaluation.permutation_shap import explain_by_permutations
from model_trainer.evaluation.tree_shap import (
    TREE_MODELS,
    NotTreeExplainable,
    check_additivity,
    tree_members,
)
from model_trainer.models.calibration import Temperature, calibrated
from model_trainer.models.ensemble import FoldBag, WeightedEnsemble
from model_trainer.models.estimators import LabelEncodedClassifier
from tests.conftest import BENCH, require_bench_data
from tests.test_explanations import _exact_shap

require_bench_data()  # read on import
PENGUINS = pd.read_csv(BENCH / "penguins" / "train.csv").dropna().reset_index(drop=True)
X = PENGUINS.drop(columns=["species"])
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
GENTOO = {"type": "classification", "positive_class": "Gentoo"}
ROWS, BACKGROUND = X.iloc[:12], X.iloc[100:116]
GENTOO_OR_NOT = PENGUINS["species"].where(PENGUINS["species"] == "Gentoo", "other")


def _one_hot_then(model) -> Pipeline:
    encode = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder())
    columns = ColumnTransformer([("text", encode, ["island", "sex"])], remainder="passthrough")
    return Pipeline([("preprocess", columns), ("model", model)])


def _target_encoded(model, target_type: str = "binary") -> Pipeline:
    """Each text column as one number (its target encoding): one input per raw column."""
    encoder = TargetEncoder(target_type=target_type, random_state=0)
    encode = make_pipeline(SimpleImputer(strategy="most_frequent"), encoder)
    columns = ColumnTransformer([("text", encode, ["island", "sex"])], remainder="passthrough")
    return Pipeline([("preprocess", columns), ("model", model)])


def _binary(model) -> Pipeline:
    return _one_hot_then(model).fit(X, GENTOO_OR_NOT)


def _added_up(explanation, outputs) -> bool:
    totals = explanation.base_values + explanation.values.sum(axis=1)
    return np.allclose(totals, outputs, atol=1e-6)


def test_a_binary_models_values_are_exact_and_add_up_to_its_probabilities():
    model = _target_encoded(ExtraTreesClassifier(30, max_depth=6, random_state=0))
    model.fit(X, GENTOO_OR_NOT)
    explanation = explain(model, ROWS, BACKGROUND, GENTOO)
    assert explanation.method == "tree" and explanation.columns == list(X.columns)
    gentoo = list(model.classes_).index("Gentoo")
    assert _added_up(explanation, model.predict_proba(ROWS)[:, [gentoo]])
    background_mean = model.predict_proba(BACKGROUND)[:, gentoo].mean()
    assert np.allclose(explanation.base_values, background_mean)
    exact = _exact_shap(model, ROWS, BACKGROUND, lambda t: model.predict_proba(t)[:, [gentoo]])
    assert np.allclose(explanation.values, exact.reshape(explanation.values.shape), atol=1e-9)


FAMILIES = {
    "LGBMRegressor": LGBMRegressor(n_estimators=40, verbose=-1, random_state=0),
    "XGBRegressor": XGBRegressor(n_estimators=40, max_depth=6, random_state=0),
    "HistGradientBoostingRegressor": HistGradientBoostingRegressor(max_iter=40),
    "RandomForestRegressor": RandomForestRegressor(20, random_state=0),
    "ExtraTreesRegressor": ExtraTreesRegressor(20, random_state=0),
    "RandomForestClassifier": RandomForestClassifier(20, random_state=0),
    "ExtraTreesClassifier": ExtraTreesClassifier(20, random_state=0),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_gets_the_exact_shapley_value_of_each_raw_column(family):
    """Text columns one-hot encoded and numbers with missing-value indicators: each raw column
    reaches the model as several inputs, and is one player. shap's exact explainer (every
    coalition of the raw columns) is the reference, which the permutation estimate only
    approaches."""
    assert {name for _, name in TREE_MODELS} == set(FAMILIES)
    classifier = family.endswith("Classifier")
    inputs = X if classifier else X.drop(columns=["body_mass_g"])
    inputs = inputs.assign(bill_depth_mm=inputs["bill_depth_mm"].mask(inputs.index % 7 == 0))
    numbers = [c for c in inputs.columns if c not in ("island", "sex")]
    encode = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder())
    columns = ColumnTransformer(
        [
            ("text", encode, ["island", "sex"]),
            ("numbers", SimpleImputer(add_indicator=True), numbers),
        ]
    )
    model = Pipeline([("preprocess", columns), ("model", FAMILIES[family])]).fit(
        inputs, PENGUINS["species"] if classifier else PENGUINS["body_mass_g"]
    )
    rows, background = inputs.iloc[:8], inputs.iloc[100:116]
    task = {"type": "classification" if classifier else "regression"}
    explanation = explain(model, rows, background, task)
    assert explanation.method == "tree", explanation.method_reason
    output = model.predict_proba if classifier else (lambda t: model.predict(t)[:, None])
    exact = _exact_shap(model, rows, background, output).reshape(explanation.values.shape)
    assert np.allclose(explanation.values, exact, rtol=1e-5, atol=1e-6 * np.abs(exact).max())


def test_shaps_probabilities_of_a_boosted_classifier_are_not_its_shapley_values():
    """Why LightGBM and XGBoost classifiers keep the permutation estimate: their probability is
    no sum over trees, and shap's "probability" values add up but are far from its Shapley
    values."""
    import shap

    model = Pipeline([("impute", SimpleImputer()), ("model", LGBMClassifier(verbose=-1))])
    model.fit(X[NUMBERS], PENGUINS["species"] == "Gentoo")
    encoded = model[:-1].transform
    tree = shap.TreeExplainer(
        model[-1],
        data=encoded(BACKGROUND[NUMBERS]),
        feature_perturbation="interventional",
        model_output="probability",
    ).shap_values(encoded(ROWS[NUMBERS]))
    exact = _exact_shap(
        model, ROWS[NUMBERS], BACKGROUND[NUMBERS], lambda t: model.predict_proba(t)[:, 1]
    )
    assert np.abs(tree - exact).max() > 0.1 * np.abs(exact).mean()
    explanation = explain(model, ROWS[NUMBERS], BACKGROUND[NUMBERS], {"type": "classification"})
    assert explanation.method == "permutation"
    assert "LGBMClassifier is not one of the tree models" in explanation.method_reason


def test_a_bag_and_an_ensemble_of_trees_are_their_members_weighted_sums():
    member = _target_encoded(
        LGBMRegressor(n_estimators=20, num_leaves=8, verbose=-1), target_type="continuous"
    )
    y = PENGUINS["body_mass_g"]
    inputs = X.drop(columns=["body_mass_g"])
    bag = FoldBag(member, folds=3).fit(inputs, y)
    regression = {"type": "regression"}
    rows, background = inputs.iloc[:12], inputs.iloc[100:116]
    bagged = explain(bag, rows, background, regression)
    assert bagged.method == "tree" and _added_up(bagged, bag.predict(rows)[:, None])
    ensemble = WeightedEnsemble(bag.estimators_[:2], [0.25, 0.75]).with_fitted(bag.estimators_[:2])
    weighted = explain(ensemble, rows, background, regression)
    alone = [explain(m, rows, background, regression).values for m in bag.estimators_[:2]]
    assert np.allclose(weighted.values, 0.25 * alone[0] + 0.75 * alone[1])


def test_a_decision_threshold_and_label_encoding_are_seen_through():
    model = _target_encoded(LabelEncodedClassifier(ExtraTreesClassifier(10, random_state=0)))
    thresholded = Pipeline(
        [("threshold", FixedThresholdClassifier(model, threshold=0.3, pos_label="Gentoo"))]
    ).fit(X, GENTOO_OR_NOT)
    assert len(tree_members(thresholded)) == 1
    assert explain(thresholded, ROWS, BACKGROUND, GENTOO).method == "tree"


def test_other_models_get_the_permutation_estimate_and_the_reason():
    linear = _binary(LogisticRegression(max_iter=500))
    assert (
        "LogisticRegression is not one of the tree models"
        in explain(linear, ROWS, BACKGROUND, GENTOO).method_reason
    )
    trees = _one_hot_then(ExtraTreesClassifier(10, random_state=0))
    scaled = calibrated(trees, Temperature(2.0)).fit(X, GENTOO_OR_NOT)
    sampled = explain(scaled, ROWS, BACKGROUND, GENTOO)
    assert sampled.method == "permutation" and "calibrated" in sampled.method_reason
    assert _added_up(
        sampled, scaled.predict_proba(ROWS)[:, [list(scaled.classes_).index("Gentoo")]]
    )


def test_a_feature_made_from_two_columns_is_not_given_to_either():
    ratio = FunctionTransformer(lambda t: t.assign(ratio=t["bill_length_mm"] / t["bill_depth_mm"]))
    model = Pipeline([("ratio", ratio), ("model", ExtraTreesClassifier(10, random_state=0))]).fit(
        X[NUMBERS], PENGUINS["species"] == "Gentoo"
    )
    explanation = explain(model, ROWS[NUMBERS], BACKGROUND[NUMBERS], {"type": "classification"})
    assert explanation.method == "permutation"
    assert "a feature made from 'bill_length_mm' and 'bill_depth_mm'" in explanation.method_reason


def test_values_that_miss_the_models_outputs_are_refused():
    values = np.full((2, 3, 1), 0.1)
    check_additivity(values, np.array([0.5]), np.array([[0.8], [0.80001]]))
    with pytest.raises(NotTreeExplainable, match=r"miss the model's outputs by up to 0\.001"):
        check_additivity(values, np.array([0.5]), np.array([[0.8], [0.801]]))
    check_additivity(values * 1e4, np.array([5e3]), np.array([[8e3], [8e3 + 0.5]]))


def test_the_time_bound_keeps_the_first_rows_and_an_unknown_method_is_named():
    """Exact values for all rows in time; when the trees cannot be read (or too few rows
    explained) in time, the estimate of as many rows as fit, and why."""
    model = _target_encoded(ExtraTreesClassifier(10, random_state=0)).fit(X, GENTOO_OR_NOT)
    many = pd.concat([X] * 5, ignore_index=True)
    explanation = explain(model, many.iloc[:40], BACKGROUND, GENTOO, max_seconds=30.0)
    assert explanation.method == "tree" and len(explanation.rows) == 40
    explanation = explain(model, many, BACKGROUND, GENTOO, max_seconds=0.0)
    assert explanation.method == "permutation" and "max_seconds" in explanation.method_reason
    assert 0 < len(explanation.rows) < len(many)
    with pytest.raises(ConfigurationError, match=r"training\.explanations\.method is 'exact'"):
        explain(model, ROWS, BACKGROUND, GENTOO, method="exact")
    assert explain_by_permutations(model, ROWS, BACKGROUND, GENTOO).method == "permutation"


def test_categorical_splits_are_refused_and_trees_of_any_depth_are_explained():
    """The trees are followed by their thresholds (a split on a set of categories is not
    read); depth is no limit (shap's own interventional algorithm crashes the process from 32
    levels, shap issue #3486)."""
    species = X.assign(island=X["island"].astype("category"))[["island", *NUMBERS]]
    native = LGBMRegressor(n_estimators=10, min_child_samples=5, verbose=-1)
    native.fit(species, PENGUINS["body_mass_g"] + 100 * (species["island"] == "Dream"))
    estimated = explain(native, species.iloc[:4], species.iloc[100:110], {"type": "regression"})
    assert estimated.method == "permutation" and "splits on categories" in estimated.method_reason

    rng = np.random.default_rng(0)
    numbers = pd.DataFrame(rng.normal(size=(20_000, 3)), columns=["a", "b", "c"])
    deep = ExtraTreesRegressor(2, random_state=0).fit(
        numbers, numbers["a"] + rng.normal(size=20_000)
    )
    assert max(tree.tree_.max_depth for tree in deep.estimators_) >= 32
    rows, background = numbers.iloc[:3], numbers.iloc[100:110]
    explanation = explain(deep, rows, background, {"type": "regression"})
    assert explanation.method == "tree"
    exact = _exact_shap(deep, rows, background, lambda t: deep.predict(t)[:, None])
    assert np.allclose(explanation.values, exact.reshape(explanation.values.shape))


def test_trees_that_are_a_single_leaf_are_explained():
    """Boosting rounds that found no split worth making (XGBoost's gamma) are one leaf: the
    same output for every row, so nothing to share."""
    inputs = X[NUMBERS[:3]]
    model = XGBRegressor(n_estimators=20, max_depth=3, gamma=5e5, random_state=0)
    model.fit(inputs, PENGUINS["body_mass_g"])
    rows, background = inputs.iloc[:6], inputs.iloc[100:110]
    explanation = explain(model, rows, background, {"type": "regression"})
    assert explanation.method == "tree", explanation.method_reason
    exact = _exact_shap(model, rows, background, lambda t: model.predict(t)[:, None])
    assert np.allclose(explanation.values, exact.reshape(explanation.values.shape), atol=1e-3)


def test_trees_too_large_and_native_categories_of_histgb_are_estimated(monkeypatch):
    from model_trainer.evaluation import grouped_tree_shap, tree_shap

    forest = ExtraTreesRegressor(5, random_state=0).fit(X[NUMBERS[:3]], PENGUINS["body_mass_g"])
    monkeypatch.setattr(tree_shap, "MAX_PATH_CELLS", 100)
    regression = {"type": "regression"}
    estimated = explain(forest, X[NUMBERS[:3]].iloc[:4], X[NUMBERS[:3]].iloc[100:110], regression)
    assert estimated.method == "permutation" and "too large" in estimated.method_reason
    boosted = LGBMRegressor(n_estimators=5, verbose=-1).fit(X[NUMBERS[:3]], PENGUINS["body_mass_g"])
    monkeypatch.setattr(grouped_tree_shap, "MAX_PATH_CELLS", 10)
    estimated = explain(boosted, X[NUMBERS[:3]].iloc[:4], X[NUMBERS[:3]].iloc[100:110], regression)
    assert estimated.method == "permutation" and "too large" in estimated.method_reason

    islands = X.assign(island=X["island"].astype("category"))[["island", *NUMBERS[:3]]]
    native = HistGradientBoostingRegressor(max_iter=10, categorical_features="from_dtype")
    native.fit(islands, PENGUINS["body_mass_g"])
    estimated = explain(native, islands.iloc[:4], islands.iloc[100:110], regression)
    assert estimated.method == "permutation" and "splits on categories" in estimated.method_reason


def test_a_failure_of_the_exact_path_is_logged_and_the_values_estimated(monkeypatch, caplog):
    from model_trainer.evaluation import explanations

    def broken(*args, **kwargs):
        raise IndexError("a defect")

    monkeypatch.setattr(explanations, "explain_trees", broken)
    model = _target_encoded(ExtraTreesClassifier(5, random_state=0)).fit(X, GENTOO_OR_NOT)
    with caplog.at_level("WARNING", logger="model_trainer.evaluation.explanations"):
        explanation = explain(model, ROWS, BACKGROUND, GENTOO)
    assert explanation.method == "permutation"
    assert explanation.method_reason == "the exact values failed (IndexError: a defect)"
    assert "a defect" in caplog.text


def test_an_unknown_method_is_refused_before_the_search():
    from model_trainer.pipelines.hyperparameter_optimization.nodes import optimize_hyperparameters

    empty = pd.DataFrame()
    with pytest.raises(ConfigurationError, match=r"training\.explanations\.method is 'tree'"):
        optimize_hyperparameters(empty, empty, {}, {}, {}, {}, "none", {}, {"method": "tree"})
