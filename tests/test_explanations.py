"""SHAP values per raw input column: checked against the shap package's own exact explainer
and against the closed form of a linear model, on real rows with text, categories, missing
values and dates; partial dependence; the figures."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from model_trainer.evaluation.explanations import (
    background,
    card_background,
    explain,
    explanation_metrics,
    partial_dependences,
    plotted_outputs,
    sample_rows,
)
from model_trainer.evaluation.permutation_shap import _Codec
from model_trainer.evaluation.shap_values import Explanation
from tests.conftest import BENCH, require_bench_data

require_bench_data()  # read on import
PENGUINS = pd.read_csv(BENCH / "penguins" / "train.csv")
X = PENGUINS.drop(columns=["species"])
Y = PENGUINS["species"]
TEXT = ["island", "sex"]
NUMBERS = [c for c in X.columns if c not in TEXT]
FEATURE_TYPES = {
    "target": "species",
    "columns": {c: {"type": "categorical" if c in TEXT else "numeric"} for c in X.columns},
}


@functools.cache
def _fitted_classifier() -> Pipeline:
    return _classifier().fit(X, Y)


def _classifier() -> Pipeline:
    encode = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="NA"), OneHotEncoder(handle_unknown="ignore")
    )
    columns = ColumnTransformer([("text", encode, TEXT)], remainder="passthrough")
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0)
    return Pipeline([("columns", columns), ("model", model)])


def _exact_shap(model, rows, background, output):
    """The shap package's ExactExplainer on the same background, with the text columns as
    codes (its maskers compare numbers), as the reference."""
    codec = _Codec(pd.concat([background, rows], ignore_index=True))
    masker = shap.maskers.Independent(codec.encode(background), max_samples=len(background))
    exact = shap.ExactExplainer(lambda a: output(codec.decode(a)), masker)
    return exact(codec.encode(rows)).values


def test_a_linear_models_shap_values_are_its_coefficients_times_the_distance_to_the_mean():
    numbers = X[NUMBERS].fillna(X[NUMBERS].median())
    target = numbers @ np.array([0.5, -2.0, 0.1, 0.003]) + 1.0
    model = LinearRegression().fit(numbers, target)
    rows, background = numbers.iloc[:15], numbers.iloc[100:140]
    explanation = explain(model, rows, background, {"type": "regression"})
    expected = model.coef_ * (rows.to_numpy() - background.to_numpy().mean(axis=0))
    assert np.allclose(explanation.values[:, :, 0], expected)
    assert explanation.outputs == ["prediction"]


@pytest.mark.slow
def test_a_tree_models_values_match_shaps_exact_explainer_and_add_up_to_each_prediction():
    model = _fitted_classifier()
    task = {"type": "classification", "classes": list(model.classes_)}
    rows, background = sample_rows(X, 8, 1), sample_rows(X, 10, 0)
    explanation = explain(model, rows, background, task, seed=0)
    assert explanation.outputs == ["Adelie", "Chinstrap", "Gentoo"]
    reference = _exact_shap(model, rows, background, model.predict_proba)
    # sampled permutations against all of them: close, not equal
    assert np.corrcoef(explanation.values.ravel(), reference.ravel())[0, 1] > 0.98
    assert np.abs(explanation.values - reference).mean() < 0.02
    totals = explanation.base_values + explanation.values.sum(axis=1)
    assert np.allclose(totals, model.predict_proba(rows))
    importance = explanation.importance()
    assert set(importance["feature"]) == set(X.columns)
    assert importance["mean_abs_shap"].is_monotonic_decreasing
    assert {f"mean_abs_shap_{c}" for c in model.classes_} <= set(importance)


@pytest.mark.slow
def test_a_binary_model_is_explained_for_its_positive_class():
    binary = Y.where(Y == "Gentoo", "other")
    model = _classifier().fit(X, binary)
    task = {"type": "classification", "classes": ["Gentoo", "other"], "positive_class": "Gentoo"}
    explanation = explain(model, X.iloc[:5], X.iloc[50:60], task)
    assert explanation.outputs == ["Gentoo"]
    gentoo = list(model.classes_).index("Gentoo")
    totals = explanation.base_values[:, 0] + explanation.values[:, :, 0].sum(axis=1)
    assert np.allclose(totals, model.predict_proba(X.iloc[:5])[:, gentoo])


def test_unattributed_columns_keep_the_rows_values_and_get_no_share():
    model = _fitted_classifier()
    task = {"type": "classification", "classes": list(model.classes_)}
    explanation = explain(model, X.iloc[:4], X.iloc[40:50], task, columns=NUMBERS)
    assert explanation.columns == NUMBERS and explanation.values.shape[1] == len(NUMBERS)
    totals = explanation.base_values + explanation.values.sum(axis=1)
    assert np.allclose(totals, model.predict_proba(X.iloc[:4]))


def test_the_codec_gives_back_text_categories_booleans_dates_and_missing_values():
    table = pd.DataFrame(
        {
            "text": pd.Series(["a", None, "b"], dtype="string"),
            "category": pd.Categorical(["x", "y", None]),
            "flag": [True, False, True],
            "when": pd.to_datetime(["2024-01-01", None, "2024-03-01"]),
            "number": [1.5, np.nan, 3.0],
            "empty": pd.Series([None, None, None], dtype=object),
        }
    )
    codec = _Codec(table)
    decoded = codec.decode(codec.encode(table))
    pd.testing.assert_frame_equal(decoded, table, check_dtype=True)


def test_the_time_bound_stops_between_batches_and_keeps_what_was_explained():
    numbers = X[NUMBERS].fillna(0.0)
    model = LinearRegression().fit(numbers, numbers.sum(axis=1))
    many = pd.concat([numbers] * 20, ignore_index=True)  # more rows than one call takes
    explanation = explain(model, many, numbers.iloc[:20], {"type": "regression"}, max_seconds=0.0)
    assert 0 < len(explanation.rows) < len(many)
    assert len(explanation.values) == len(explanation.rows)


@pytest.mark.slow
def test_partial_dependence_follows_the_feature_and_metrics_are_named_for_mlflow():
    model = _fitted_classifier()
    # integer columns, which scikit-learn's partial dependence refuses, are given as floats
    rows = X.iloc[:100].dropna().astype({"flipper_length_mm": "int64"})
    curves = partial_dependences(
        model, rows, ["flipper_length_mm", "island"], FEATURE_TYPES, ["Gentoo", "Adelie"],
        {"type": "classification", "classes": list(model.classes_)},
    )  # fmt: skip
    flipper, island = curves
    assert not flipper["categorical"] and island["categorical"]
    gentoo, adelie = (np.asarray(a) for a in flipper["average"])
    assert len(gentoo) == len(flipper["grid"])
    assert gentoo[-1] > gentoo[0] and adelie[-1] < adelie[0]  # long flippers: Gentoo
    assert set(island["grid"]) == set(X["island"].dropna())
    # a categorical column with missing values gets its panel: the grid is its values seen
    assert X["sex"].isna().any()
    task = {"type": "classification", "classes": list(model.classes_)}
    (sex,) = partial_dependences(model, X, ["sex"], FEATURE_TYPES, ["Gentoo"], task)
    assert set(sex["grid"]) == set(X["sex"].dropna())
    # scikit-learn's partial dependence on the same grid gives the same curve
    from sklearn.inspection import partial_dependence

    reference = partial_dependence(  # which refuses integer columns: the same rows as floats
        model,
        rows.astype({"flipper_length_mm": float}),
        ["flipper_length_mm"],
        custom_values={"flipper_length_mm": flipper["grid"]},
    )
    gentoo_column = list(model.classes_).index("Gentoo")
    np.testing.assert_allclose(gentoo, reference["average"][gentoo_column])
    importance = pd.DataFrame({"feature": ["bill length (mm)", "x"], "mean_abs_shap": [0.2, 0.1]})
    assert explanation_metrics(importance, 1) == {"bill length _mm_": {"value": 0.2, "step": 0}}


@pytest.mark.slow
@pytest.mark.parametrize("binary", [True, False])
def test_the_summary_and_dependence_figures_are_drawn(binary):
    from model_trainer.reporting.plots import explanation_figures

    y = Y.where(Y == "Gentoo", "other") if binary else Y
    model = _classifier().fit(X, y) if binary else _fitted_classifier()
    classes = list(model.classes_)
    task = {"type": "classification", "classes": classes, "positive_class": classes[0]}
    explanation = explain(model, X.iloc[:30], X.iloc[60:70], task)
    curves = partial_dependences(
        model, explanation.rows, ["bill_length_mm"], FEATURE_TYPES, explanation.outputs, task
    )
    figures = explanation_figures({"explanation": explanation, "partial_dependence": curves})
    assert set(figures) == {"shap_summary.png", "partial_dependence.png"}
    assert "SHAP values (30 test rows)" in figures["shap_summary.png"].axes[0].get_title()
    assert explanation_figures({"reason": "a clustering model"}) == {}


@pytest.mark.slow
def test_the_node_explains_a_classifier_and_says_why_not_for_no_rows_or_a_clustering():
    from model_trainer.pipelines.training.nodes import explain_model

    model = _fitted_classifier()
    split = PENGUINS.dropna()
    task = {"type": "classification", "classes": list(model.classes_)}
    settings = {"rows": 30, "background_rows": 10, "max_seconds": 3, "dependence_features": 2,
                "logged_features": 3, "in_model_card": True, "method": "auto"}  # fmt: skip
    explained, importance, metrics = explain_model(
        model, split, split, task, FEATURE_TYPES, {"seed": 0}, settings
    )
    assert len(explained["explanation"].rows) == 30 and len(explained["partial_dependence"]) == 2
    assert set(importance["feature"]) == set(X.columns) and len(metrics) == 3
    off, empty, none = explain_model(
        model, split, split, task, FEATURE_TYPES, {"seed": 0}, {**settings, "rows": 0}
    )
    assert off == {"reason": "training.explanations.rows is 0"} and empty.empty and none == {}
    clusters, _, _ = explain_model(
        model, split, split, {"type": "clustering"}, FEATURE_TYPES, {"seed": 0}, settings
    )
    assert "clustering" in clusters["reason"]
    empty, _, _ = explain_model(
        model, split, split.iloc[:0], task, FEATURE_TYPES, {"seed": 0}, settings
    )
    assert empty["reason"] == "the test split is empty"


def test_the_model_card_keeps_the_reports_background_rows_and_only_their_features():
    split = PENGUINS.dropna().assign(row_id=lambda t: range(len(t)))  # a column the model ignores
    settings = {"background_rows": 10, "in_model_card": True}
    task = {"type": "classification", "classes": sorted(Y.unique())}
    kept = card_background(split, task, FEATURE_TYPES, settings, 3)
    report = background(split.drop(columns=["species"]), settings, 3)
    assert pd.DataFrame(kept).equals(report[list(X.columns)].reset_index(drop=True))
    assert (
        card_background(split, task, FEATURE_TYPES, {**settings, "in_model_card": False}, 3) is None
    )
    assert card_background(split, {"type": "ranking"}, FEATURE_TYPES, settings, 3) is None


def test_partial_dependence_draws_the_classes_the_features_move_most_when_there_are_many():
    values = np.zeros((4, 2, 8))
    values[:, :, 6] = 0.5  # class g moves most, then c
    values[:, :, 2] = 0.2
    many = Explanation(X.iloc[:4], ["a", "b"], list("abcdefgh"), values, np.zeros((4, 8)))
    assert plotted_outputs(many)[:2] == ["g", "c"] and len(plotted_outputs(many)) == 5
    few = Explanation(X.iloc[:4], ["a", "b"], ["x", "y"], values[:, :, :2], np.zeros((4, 2)))
    assert plotted_outputs(few) == ["x", "y"]
