"""The ONNX export predicts what the saved Pipeline predicts, on real held-out rows with
categories and missing values, or says why it cannot be made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from kedro_datasets.pickle import PickleDataset
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from model_trainer.models.ensemble import FoldBag, WeightedEnsemble
from model_trainer.models.estimators import make_pipeline, with_decision_threshold
from model_trainer.models.preprocessing import NativeCategories
from model_trainer.serving.onnx_export import (
    CATEGORY,
    NUMBER,
    NotConvertible,
    OnnxPredictor,
    agreement,
    input_kinds,
    onnx_inputs,
    to_onnx,
)
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.tasks.detection import detect_task
from tests.conftest import BENCH, ROOT
from tests.trained import MODEL

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

TOLERANCE = {"absolute": 1e-4, "relative": 1e-5}


def fit_as_the_project_does(
    table: pd.DataFrame, target: str, algorithm: str, imputation: str = "median"
) -> tuple[Pipeline, pd.DataFrame]:
    """The Pipeline the training pipeline builds (registry defaults), fit on 90% of the table,
    and the other 10% (without the target) as held-out rows."""
    task = detect_task(table[target], {})
    feature_types = infer_feature_types(table, target)
    encoding = {**MODEL["encoding"], "imputation": imputation}
    model = make_pipeline(
        MODEL["algorithms"], algorithm, task["type"], {}, feature_types, encoding, 0
    )
    train, test = train_test_split(table, test_size=0.1, random_state=0)
    model.fit(train.drop(columns=[target]), train[target])
    return model, test.drop(columns=[target])


def exported(model: Pipeline) -> OnnxPredictor:
    kinds = input_kinds(model)
    return OnnxPredictor(to_onnx(model, kinds), kinds)


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    return pd.read_csv(ROOT / "data" / "01_raw" / "credit_data.csv")


def test_held_out_credit_rows_have_categories_and_gaps(credit: pd.DataFrame):
    """What the agreement tests below stand on."""
    model, X = fit_as_the_project_does(credit, "Status", "lightgbm")
    kinds = input_kinds(model)
    assert {"Home", "Marital", "Job", "Records"} <= {c for c, k in kinds.items() if k == CATEGORY}
    assert X[[c for c, k in kinds.items() if k == NUMBER]].isna().any(axis=1).sum() >= 10
    assert X[[c for c, k in kinds.items() if k == CATEGORY]].isna().any(axis=1).sum() >= 1


def test_lightgbm_export_gives_the_models_probabilities(credit: pd.DataFrame):
    model, X = fit_as_the_project_does(credit, "Status", "lightgbm")
    figures = agreement(model, exported(model), X, True, **TOLERANCE)
    assert figures["rows"] == len(X) and figures["rows_outside_tolerance"] == 0
    assert figures["max_abs_diff"] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("imputation", ["median", "iterative"])
def test_logistic_regression_export_imputes_encodes_and_scales_as_the_model(
    credit: pd.DataFrame, imputation: str
):
    model, X = fit_as_the_project_does(credit, "Status", "logistic_regression", imputation)
    preprocess = model.named_steps["preprocess"]
    steps = preprocess.named_steps.values() if isinstance(preprocess, Pipeline) else []
    assert any(isinstance(s, IterativeImputer) for s in steps) == (imputation == "iterative")

    figures = agreement(model, exported(model), X, True, **TOLERANCE)
    assert figures["rows_outside_tolerance"] == 0 and figures["max_abs_diff"] < 1e-5


@pytest.mark.slow
def test_an_ensemble_of_xgboost_hist_gradient_boosting_and_linear_keeps_labels_and_weights(
    credit: pd.DataFrame,
):
    fitted = [
        fit_as_the_project_does(credit, "Status", algorithm)
        for algorithm in ("xgboost", "hist_gradient_boosting", "logistic_regression")
    ]
    members, X = [model for model, _ in fitted], fitted[0][1]  # the same held-out rows
    ensemble = WeightedEnsemble(members, [0.5, 0.3, 0.2])
    ensemble.estimators_, ensemble.classes_ = members, members[0].classes_
    model = Pipeline([("ensemble", ensemble)])
    predictor = exported(model)

    figures = agreement(model, predictor, X, True, **TOLERANCE)
    labels = predictor.session.run(["label"], onnx_inputs(X, predictor.kinds))[0]

    assert figures["rows_outside_tolerance"] == 0 and figures["max_abs_diff"] < 1e-5
    assert labels.tolist() == model.predict(X).tolist()  # "bad"/"good", not 0/1


@pytest.mark.slow
def test_a_regression_ensemble_agrees_within_the_tolerance_relative_to_its_scale():
    """Prices in the thousands: float32 is off by thousandths, within 1e-5 of the scale, also
    on rows whose linear prediction is a difference of large terms."""
    diamonds = pd.read_csv(BENCH / "diamonds" / "train.csv").head(3000)
    fitted = [
        fit_as_the_project_does(diamonds, "price", algorithm)
        for algorithm in ("lightgbm", "xgboost", "ridge")
    ]
    members, X = [model for model, _ in fitted], fitted[0][1]
    ensemble = WeightedEnsemble(members, [0.4, 0.4, 0.2])
    ensemble.estimators_ = members
    model = Pipeline([("ensemble", ensemble)])

    figures = agreement(model, exported(model), X, False, **TOLERANCE)

    assert figures["rows_outside_tolerance"] == 0
    assert 0 < figures["max_abs_diff"] < 1e-5 * np.abs(model.predict(X)).max()


def test_a_text_column_is_vectorized_alike_and_the_graph_runs_without_en_us_locale():
    """No data set here has free text, so reviews are composed from a few phrases; gaps in
    the text are empty strings for the model and for the graph."""
    phrases = ["fast delivery and good service", "broken on arrival", "average quality item"]
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(phrases), (400, 2))
    table = pd.DataFrame({"review": [f"{phrases[a]}, {phrases[b]}" for a, b in picks]})
    table.loc[::13, "review"] = None
    table["price"] = rng.normal(50, 10, len(table)).round(2)
    table["liked"] = np.where(table["review"].str.contains("good").fillna(False), "yes", "no")
    model, X = fit_as_the_project_does(table, "liked", "logistic_regression")
    assert input_kinds(model)["review"] == "text"

    figures = agreement(model, exported(model), X, True, **TOLERANCE)

    assert figures["rows_outside_tolerance"] == 0 and figures["max_abs_diff"] < 1e-5


def test_a_model_that_parses_dates_is_not_convertible_and_says_why():
    chicago = pd.read_csv(BENCH / "chicago" / "train.csv").head(400)
    model, _ = fit_as_the_project_does(chicago, "ridership", "ridge")
    with pytest.raises(NotConvertible, match="parses dates"):
        input_kinds(model)


def test_a_disagreeing_or_missing_output_counts_against_the_tolerance(credit: pd.DataFrame):
    model, X = fit_as_the_project_does(credit, "Status", "logistic_regression")
    X = X.head(10)
    shifted = model.predict_proba(X) + np.where(np.arange(len(X)) < 3, 1e-3, 0.0)[:, None]
    shifted[3, 0] = np.nan

    figures = agreement(model, lambda _: shifted, X, True, **TOLERANCE)

    assert figures["rows_outside_tolerance"] == 4
    assert figures["max_abs_diff"] is None  # not a number that hides the NaN


def test_the_catalog_saves_a_plain_onnx_file(credit: pd.DataFrame, tmp_path: Path):
    model, X = fit_as_the_project_does(credit, "Status", "lightgbm")
    kinds = input_kinds(model)
    dataset = PickleDataset(
        filepath=str(tmp_path / "model.onnx"), backend="model_trainer.serving.onnx_export"
    )
    dataset.save(to_onnx(model, kinds))

    reloaded = onnx.load(tmp_path / "model.onnx")  # no pickle around it
    assert [i.name for i in reloaded.graph.input] == list(kinds)
    probabilities = OnnxPredictor(dataset.load(), kinds)(X)
    assert np.allclose(probabilities, model.predict_proba(X), atol=1e-5)


@pytest.mark.slow
def test_a_smote_model_exports_without_its_sampler_and_a_tuned_threshold_is_refused(
    credit: pd.DataFrame,
):
    """SMOTE acts on training rows only, so the graph is the model's; a decision threshold is a
    labelling rule skl2onnx's classifiers cannot carry."""
    task = detect_task(credit["Status"], {})
    feature_types = infer_feature_types(credit, "Status")
    imbalance = {"by_algorithm": {"logistic_regression": "smote"}, "smote_k_neighbors": 5}
    model = make_pipeline(
        MODEL["algorithms"], "logistic_regression", task["type"], {}, feature_types,
        MODEL["encoding"], 0, imbalance,
    )  # fmt: skip
    train, test = train_test_split(credit, test_size=0.1, random_state=0)
    model.fit(train.drop(columns=["Status"]), train["Status"])
    assert "balance" in model.named_steps
    X = test.drop(columns=["Status"])
    figures = agreement(model, exported(model), X, True, **TOLERANCE)
    assert figures["rows_outside_tolerance"] == 0

    thresholded = with_decision_threshold(model, 0.3, "bad").fit(
        train.drop(columns=["Status"]), train["Status"]
    )
    with pytest.raises(NotConvertible, match=r"probability 0\.3 "):
        exported(thresholded)


@pytest.mark.slow
def test_a_bag_of_an_ensemble_converts_with_its_labels_and_probabilities(credit: pd.DataFrame):
    """k-fold bagging wraps the whole model, an ensemble included: a vote of votes in ONNX."""
    task = detect_task(credit["Status"], {})
    feature_types = infer_feature_types(credit, "Status")
    encoding = MODEL["encoding"]
    members = [
        make_pipeline(MODEL["algorithms"], name, task["type"], {}, feature_types, encoding, 0)
        for name in ("lightgbm", "logistic_regression")
    ]
    inner = Pipeline([("ensemble", WeightedEnsemble(members, [0.7, 0.3]))])
    model = Pipeline([("bag", FoldBag(inner, folds=3, seed=0, jobs=2))])
    train, test = train_test_split(credit, test_size=0.1, random_state=0)
    model.fit(train.drop(columns=["Status"]), train["Status"])
    X = test.drop(columns=["Status"])
    predictor = exported(model)

    figures = agreement(model, predictor, X, True, **TOLERANCE)
    labels = predictor.session.run(["label"], onnx_inputs(X, predictor.kinds))[0]

    assert figures["rows_outside_tolerance"] == 0
    assert labels.tolist() == model.predict(X).tolist()


@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost"])
def test_many_level_categories_export_as_the_boosting_model_splits_on_them(algorithm: str):
    """mlc_churn's `state` (51 levels) reaches LightGBM and XGBoost as a category; the graph
    tests the same level sets on its codes, an unseen level included."""
    churn = pd.read_csv(BENCH / "mlc_churn" / "train.csv")
    model, X = fit_as_the_project_does(churn, "churn", algorithm)
    assert isinstance(model.named_steps["preprocess"].named_steps["categories"], NativeCategories)
    X = X.assign(state=X["state"].where(np.arange(len(X)) % 7 != 0, "Atlantis"))
    figures = agreement(model, exported(model), X, True, **TOLERANCE)
    assert figures["rows"] == len(X) and figures["rows_outside_tolerance"] == 0


def test_hist_gradient_boosting_on_many_level_categories_is_not_convertible_and_says_why():
    churn = pd.read_csv(BENCH / "mlc_churn" / "train.csv")
    model, _ = fit_as_the_project_does(churn, "churn", "hist_gradient_boosting")
    with pytest.raises(NotConvertible, match="high_cardinality: ordinal"):
        exported(model)
