"""The final model: the best configuration refit with early stopping, quiet fits that keep their
convergence warnings, baselines, permutation importance and the held-out predictions."""

from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_info

from model_trainer.evaluation.held_out import (
    MIN_PERMUTATION_ROWS,
    feature_importance,
    holdout_metrics,
    predictions_table,
)
from model_trainer.models.estimators import LabelEncodedClassifier, make_pipeline
from model_trainer.models.metrics import evaluate
from model_trainer.models.preprocessing import build_preprocessor
from model_trainer.pipelines.model_configuration.nodes import configure_model
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.table.splitting import split_holdout
from model_trainer.tasks.detection import detect_task
from model_trainer.tracking.runs import log_learning_curves
from model_trainer.training import final_fit as training
from model_trainer.training.baselines import baseline_pipelines
from model_trainer.training.fitting import fit_quietly
from model_trainer.training.learning_curves import epoch_curves
from tests.conftest import BENCH

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
DIAMONDS = BENCH / "diamonds" / "train.csv"
with (ROOT / "conf" / "base" / "parameters_model_configuration.yml").open() as handle:
    MODEL = yaml.safe_load(handle)["model"]
# One thread per booster: OpenMP threads slow to a crawl when the CPUs are shared.
MODEL["algorithms"]["lightgbm"]["defaults"]["n_jobs"] = 1
MODEL["algorithms"]["xgboost"]["defaults"]["n_jobs"] = 1
STOPPING = {"early_stopping": {"enabled": True, "patience": 10}}


class Case:
    """A real table, split and configured as the pipelines do it."""

    def __init__(self, table: pd.DataFrame, target: str, algorithms: list[str]) -> None:
        self.table, self.target = table, target
        self.task = detect_task(table[target], {})
        self.feature_types = infer_feature_types(table, target)
        self.train, self.validation, self.test = split_holdout(
            table, target, self.task, {"validation_fraction": 0.2, "test_fraction": 0.2}
        )
        self.configuration = configure_model(
            self.task,
            self.train,
            self.validation,
            "auto",
            {**MODEL, "algorithm": algorithms},
            {"folds": 3, "seed": 0},
            {},
            0,
        )
        self.rows = pd.concat([self.train, self.validation], ignore_index=True)
        self.X, self.y = self.rows.drop(columns=[target]), self.rows[target]
        self.X_test, self.y_test = self.test.drop(columns=[target]), self.test[target]

    @property
    def metric(self) -> str:
        return self.configuration["metric"]

    def pipeline(self, algorithm: str, params: dict | None = None) -> Pipeline:
        return make_pipeline(
            self.configuration["registry"],
            algorithm,
            self.task["type"],
            params or {},
            self.feature_types,
            self.configuration["encoding"],
            0,
        )

    def final(self, algorithm: str, params: dict, settings: dict) -> tuple[Pipeline, dict]:
        best = {"algorithm": algorithm, "best_params": params}
        return training.build_final_pipeline(
            best,
            self.task,
            self.feature_types,
            self.configuration,
            self.train,
            self.validation,
            settings,
        )


def with_noise(table: pd.DataFrame) -> pd.DataFrame:
    """The table plus a column of random numbers that carries no signal."""
    noisy = table.copy()
    noisy.insert(0, "noise", np.random.default_rng(0).normal(size=len(table)))
    return noisy


CREDIT_TABLE = pd.read_csv(CREDIT).sample(1200, random_state=0).reset_index(drop=True)
DIAMONDS_TABLE = pd.read_csv(DIAMONDS).sample(1500, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def credit() -> Case:
    algorithms = ["lightgbm", "xgboost", "neural_network", "logistic_regression"]
    return Case(with_noise(CREDIT_TABLE), "Status", algorithms)


@pytest.fixture(scope="module")
def diamonds() -> Case:
    return Case(with_noise(DIAMONDS_TABLE), "price", ["lightgbm", "ridge"])


@pytest.fixture(scope="module")
def fitted_classifier(credit) -> Pipeline:
    return credit.pipeline("logistic_regression").fit(credit.X, credit.y)


@pytest.fixture(scope="module")
def fitted_regressor(diamonds) -> Pipeline:
    return diamonds.pipeline("ridge").fit(diamonds.X, diamonds.y)


# --- early stopping -----------------------------------------------------------------------------


def test_lightgbm_early_stopping_replaces_a_large_n_estimators(diamonds):
    params = {"n_estimators": 2000, "learning_rate": 0.5}
    pipeline, info = diamonds.final("lightgbm", params, STOPPING)
    rounds = pipeline.named_steps["model"].get_params()["n_estimators"]
    assert 1 <= rounds < 2000
    assert info["early_stopping"] == {"n_estimators": rounds, "patience": 10}
    assert info["params"] == {"n_estimators": rounds, "learning_rate": 0.5}
    assert info["algorithm"] == "lightgbm"
    assert params["n_estimators"] == 2000, "the study's best parameters are not modified"


def noise_target_case() -> tuple[Pipeline, pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """Real credit rows, a seeded random 0/1 target, and an applicant column of 1,550 levels
    that the preprocessing target-encodes: whatever scores above chance learned a leak."""
    table = pd.read_csv(BENCH / "credit_data" / "train.csv").drop(columns=["Status"])
    table["applicant"] = table["Age"].astype(str) + "/" + table["Amount"].astype(str)
    y = pd.Series(np.random.default_rng(0).integers(0, 2, len(table)), name="noise")
    feature_types = infer_feature_types(table.assign(noise=y), "noise")
    preprocess = build_preprocessor(
        feature_types, scale=False, impute=True, encoding={"high_cardinality": "target"}
    )
    model = lightgbm.LGBMClassifier(n_estimators=30, n_jobs=1, verbose=-1, random_state=0)
    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])
    return pipeline, table.iloc[:2400], y.iloc[:2400], table.iloc[2400:], y.iloc[2400:]


def chance_level_auc(matrix: np.ndarray, y: pd.Series) -> float:
    """Cross-validated AUC of a booster on the matrix a model was trained on."""
    booster = lightgbm.LGBMClassifier(n_estimators=50, n_jobs=1, verbose=-1, random_state=0)
    return float(cross_val_score(booster, matrix, y, cv=5, scoring="roc_auc").mean())


def test_early_stopping_trains_on_the_matrix_pipeline_fit_makes_without_target_leakage(
    monkeypatch,
):
    pipeline, X_train, y_train, X_validation, y_validation = noise_target_case()
    seen: list[np.ndarray] = []
    original = lightgbm.LGBMClassifier.fit

    def recording_fit(self, X, y, *args, **kwargs):
        seen.append(X)
        return original(self, X, y, *args, **kwargs)

    monkeypatch.setattr(lightgbm.LGBMClassifier, "fit", recording_fit)
    training.validation_fit(
        pipeline, "lightgbm", X_train, y_train, X_validation, y_validation, 10, "roc_auc"
    )
    monkeypatch.undo()
    expected = clone(pipeline.named_steps["preprocess"]).fit_transform(X_train, y_train)
    np.testing.assert_array_equal(seen[0], expected)
    # fit then transform encoded each row with its own label: CV AUC 0.89 on a noise target
    assert chance_level_auc(seen[0], y_train) < 0.57


def test_xgboost_early_stopping_works_with_string_class_labels(credit):
    assert set(credit.y) == {"bad", "good"}
    pipeline, info = credit.final("xgboost", {"n_estimators": 2000, "learning_rate": 0.5}, STOPPING)
    model = pipeline.named_steps["model"]
    assert isinstance(model, LabelEncodedClassifier)
    rounds = model.estimator.get_params()["n_estimators"]
    assert 1 <= rounds < 2000
    assert info["early_stopping"] == {"n_estimators": rounds, "patience": 10}
    assert model.estimator.get_params()["early_stopping_rounds"] is None, (
        "the final model trains its rounds without a validation set"
    )
    pipeline.fit(credit.X, credit.y)
    assert set(pipeline.predict(credit.X_test)) <= {"bad", "good"}


@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost"])
def test_early_stopping_watches_the_tuned_metric_not_the_boosters_loss(credit, algorithm):
    assert credit.metric == "roc_auc"
    params = {"n_estimators": 400, "learning_rate": 0.3}
    _, info = credit.final(algorithm, params, STOPPING)
    (curve,) = info["learning_curves"]
    assert curve["validation"]["metric"] == "auc" and curve["validation"]["greater_is_better"]
    auc = curve["validation"]["values"]
    rounds = info["early_stopping"]["n_estimators"]
    # the kept round is the validation AUC's best, and patience more rounds were tried after it
    assert rounds == curve["best_step"] == int(np.argmax(auc)) + 1
    assert len(auc) == min(400, rounds + 10)


@pytest.mark.slow
def test_without_early_stopping_the_configured_n_estimators_is_kept(credit):
    disabled = {"early_stopping": {"enabled": False, "patience": 10}}
    pipeline, info = credit.final("lightgbm", {"n_estimators": 2000}, disabled)
    assert pipeline.named_steps["model"].get_params()["n_estimators"] == 2000
    assert info["early_stopping"] is None


def test_families_without_early_stopping_are_built_as_configured(credit):
    pipeline, info = credit.final("logistic_regression", {"C": 0.3}, STOPPING)
    assert pipeline.named_steps["model"].get_params()["C"] == 0.3
    assert info == {
        "algorithm": "logistic_regression",
        "params": {"C": 0.3},
        "early_stopping": None,
        "learning_curves": [],
        "bagging": None,
        "calibration": None,
    }


def test_without_a_validation_split_there_is_no_early_stopping(credit):
    empty = copy.copy(credit)
    empty.validation = credit.validation.iloc[:0]
    pipeline, info = empty.final("lightgbm", {"n_estimators": 2000}, STOPPING)
    assert pipeline.named_steps["model"].get_params()["n_estimators"] == 2000
    assert info["early_stopping"] is None


def test_early_stopping_uses_the_default_patience_when_none_is_configured(diamonds):
    _, info = diamonds.final(
        "lightgbm", {"n_estimators": 2000, "learning_rate": 0.5}, {"early_stopping": {}}
    )
    assert info["early_stopping"]["patience"] == 50


# --- learning curves ----------------------------------------------------------------------------


def test_an_early_stopped_fit_keeps_its_train_and_validation_curves(diamonds):
    _, info = diamonds.final("lightgbm", {"n_estimators": 2000, "learning_rate": 0.5}, STOPPING)
    rounds = info["early_stopping"]["n_estimators"]
    [curve] = info["learning_curves"]
    assert curve["model"] == "lightgbm" and curve["unit"] == "boosting round"
    assert curve["train"]["metric"] == curve["validation"]["metric"] == "rmse"  # the tuned one
    assert len(curve["train"]["values"]) == len(curve["validation"]["values"]) == rounds + 10, (
        "the fit runs `patience` rounds past the best one"
    )
    assert curve["best_step"] == curve["final_step"] == rounds
    train = curve["train"]["values"]
    assert train[-1] < train[0], "the training error falls"


def test_without_early_stopping_the_curve_covers_every_round(credit):
    too_few = {"early_stopping": {"patience": 10, "min_validation_rows": 10**6}}
    _, info = credit.final("xgboost", {"n_estimators": 40}, too_few)
    assert info["early_stopping"] is None
    [curve] = info["learning_curves"]
    assert curve["train"]["metric"] == "auc"  # roc_auc, the tuned metric
    assert len(curve["validation"]["values"]) == curve["final_step"] == 40
    _, info = credit.final("xgboost", {"n_estimators": 40}, {**too_few, "learning_curves": False})
    assert info["learning_curves"] == []


@pytest.mark.slow
def test_a_neural_network_reports_its_loss_and_validation_score_per_epoch(credit):
    model, _ = fit_quietly(credit.pipeline("neural_network", {"max_iter": 30}), credit.X, credit.y)
    [curve] = epoch_curves(model)
    assert curve["model"] == "MLPClassifier" and curve["unit"] == "epoch"
    assert curve["train"]["metric"] == "loss" and curve["validation"]["metric"] == "accuracy"
    assert len(curve["train"]["values"]) == len(curve["validation"]["values"]) <= 30
    assert epoch_curves(credit.pipeline("logistic_regression").fit(credit.X, credit.y)) == []


@pytest.mark.slow
def test_learning_curves_are_logged_as_step_metrics_on_the_active_run(diamonds, tmp_path):
    import mlflow

    _, info = diamonds.final("lightgbm", {"n_estimators": 30, "learning_rate": 0.5}, {})
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            log_learning_curves(info["learning_curves"])
        client = mlflow.MlflowClient()
        history = client.get_metric_history(run.info.run_id, "curve.lightgbm.train_rmse")
    finally:
        mlflow.set_tracking_uri(previous)
    assert [m.step for m in history] == list(range(1, 31))
    assert [m.value for m in history] == pytest.approx(
        info["learning_curves"][0]["train"]["values"]
    )


# --- quiet fits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "params"),
    [("logistic_regression", {"max_iter": 1}), ("neural_network", {"max_iter": 1})],
)
def test_fit_quietly_returns_convergence_warnings_instead_of_emitting_them(
    credit, algorithm, params
):
    pipeline = credit.pipeline(algorithm, params)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        model, messages = fit_quietly(pipeline, credit.X, credit.y)
    assert model is pipeline
    assert hasattr(model, "classes_"), "the model is fitted"
    assert messages, "the convergence warning is returned"
    assert all(isinstance(m, str) and m for m in messages)
    assert any("iter" in m for m in messages)
    assert not [w for w in escaped if issubclass(w.category, ConvergenceWarning)]


def test_a_converging_fit_returns_no_warnings(credit):
    _, messages = fit_quietly(credit.pipeline("logistic_regression"), credit.X, credit.y)
    assert messages == []


# --- baselines ----------------------------------------------------------------------------------


def test_the_baselines_are_a_dummy_and_the_simple_model_with_defaults(credit):
    baselines = baseline_pipelines(credit.task, credit.feature_types, credit.configuration)
    assert list(baselines) == ["dummy", "logistic_regression"]
    assert isinstance(baselines["dummy"], DummyClassifier)
    simple = baselines["logistic_regression"].named_steps["model"]
    assert type(simple).__name__ == "LogisticRegression"
    assert simple.get_params()["C"] == 1.0
    fitted = {name: model.fit(credit.X, credit.y) for name, model in baselines.items()}
    scores = holdout_metrics(fitted, credit.X_test, credit.y_test, credit.task)
    assert scores["dummy"]["roc_auc"] == pytest.approx(0.5)
    assert scores["logistic_regression"]["roc_auc"] > 0.7


def test_the_regression_baselines_are_a_mean_predictor_and_ridge(diamonds):
    baselines = baseline_pipelines(
        diamonds.task,
        diamonds.feature_types,
        diamonds.configuration,
    )
    assert list(baselines) == ["dummy", "ridge"]
    assert isinstance(baselines["dummy"], DummyRegressor)
    dummy = baselines["dummy"].fit(diamonds.X, diamonds.y)
    assert np.allclose(dummy.predict(diamonds.X_test), diamonds.y.mean())


# --- permutation importance ---------------------------------------------------------------------


def check_importance_table(table: pd.DataFrame, X: pd.DataFrame) -> None:
    assert list(table.columns) == ["feature", "importance", "importance_std"]
    assert sorted(table["feature"]) == sorted(X.columns), "one row per raw input column"
    assert table["importance"].is_monotonic_decreasing


def test_importance_for_roc_auc_is_a_positive_drop_for_useful_features(credit, fitted_classifier):
    table = feature_importance(
        fitted_classifier, credit.X_test, credit.y_test, "roc_auc", credit.task, 3, 0
    )
    check_importance_table(table, credit.X_test)
    by_feature = table.set_index("feature")["importance"]
    assert table["importance"].iloc[0] > 0.02
    assert abs(by_feature["noise"]) < 0.02
    assert by_feature.max() < 0.5, "a drop in roc_auc, which is at most 0.5 from chance"


def test_importance_for_rmse_is_a_positive_increase_in_error_for_useful_features(
    diamonds, fitted_regressor
):
    table = feature_importance(
        fitted_regressor, diamonds.X_test, diamonds.y_test, "rmse", diamonds.task, 3, 0
    )
    check_importance_table(table, diamonds.X_test)
    by_feature = table.set_index("feature")["importance"]
    assert table["feature"].iloc[0] in {"carat", "x", "y", "z"}
    assert table["importance"].iloc[0] > 500, "in price units: the rmse grows by dollars"
    assert abs(by_feature["noise"]) < 0.01 * table["importance"].iloc[0]


def test_importance_of_a_slow_model_shuffles_fewer_rows_of_every_class(
    credit, fitted_classifier, caplog
):
    """With no time to re-predict every held-out row per shuffle, fewer rows, each class kept."""
    assert len(credit.X_test) > MIN_PERMUTATION_ROWS + 20
    with caplog.at_level(logging.INFO, logger="model_trainer.evaluation.held_out"):
        table = feature_importance(
            fitted_classifier, credit.X_test, credit.y_test, "roc_auc", credit.task, 2, 0,
            max_seconds=1e-6,
        )  # fmt: skip
    check_importance_table(table, credit.X_test)
    rows = [r.getMessage() for r in caplog.records if "permutation_max_seconds" in r.getMessage()]
    assert rows and f"of {len(credit.X_test)} held-out rows" in rows[0], rows
    kept = int(rows[0].split()[3])  # "Permutation importance on N of ..."
    assert abs(kept - MIN_PERMUTATION_ROWS) <= len(credit.task["classes"])
    assert table["importance"].iloc[0] > 0.0  # both classes kept: roc_auc is defined
    caplog.clear()
    feature_importance(
        fitted_classifier, credit.X_test, credit.y_test, "roc_auc", credit.task, 2, 0,
        max_seconds=3600,
    )  # fmt: skip
    assert not [r for r in caplog.records if "permutation_max_seconds" in r.getMessage()]


def test_importance_past_its_time_bound_starts_no_further_repeat(credit, fitted_classifier, caplog):
    """The bound holds when copying the shuffled tables, not predicting, takes the time: a
    batch of shuffles once every column has one is the last; each column keeps as many."""
    with caplog.at_level(logging.INFO, logger="model_trainer.evaluation.held_out"):
        table = feature_importance(
            fitted_classifier, credit.X_test, credit.y_test, "roc_auc", credit.task, 50, 0,
            max_seconds=1e-6,
        )  # fmt: skip
    check_importance_table(table, credit.X_test)
    stopped = [r.getMessage() for r in caplog.records if "repeats" in r.getMessage()]
    assert stopped, "20,000 rows a batch: 50 repeats of every column take several batches"
    done = int(stopped[0].split("after ")[1].split()[0])
    assert 1 <= done < 50 and "of 50 repeats" in stopped[0]


def test_importance_of_a_column_the_model_ignores_is_zero(diamonds):
    feature_types = infer_feature_types(
        diamonds.table, "price", declared={"noise": "drop", "depth": "drop"}
    )
    model = make_pipeline(
        diamonds.configuration["registry"],
        "ridge",
        "regression",
        {},
        feature_types,
        diamonds.configuration["encoding"],
        0,
    ).fit(diamonds.X, diamonds.y)
    table = feature_importance(model, diamonds.X_test, diamonds.y_test, "rmse", diamonds.task, 2, 0)
    check_importance_table(table, diamonds.X_test)
    ignored = table[table["feature"].isin(["noise", "depth"])]
    assert (ignored["importance"] == 0).all()
    assert (ignored["importance_std"] == 0).all()


# --- held-out predictions -----------------------------------------------------------------------


def test_classifier_predictions_are_sorted_worst_first_with_class_probabilities(
    credit, fitted_classifier
):
    table = predictions_table(fitted_classifier, credit.X_test, credit.y_test, credit.task)
    assert len(table) == len(credit.X_test)
    features = list(credit.X_test.columns)
    outcome = ["actual", "predicted", "error", "probability_of_actual", "proba_bad", "proba_good"]
    assert list(table.columns) == [*outcome, *features]  # what a reader looks at first
    assert table["error"].is_monotonic_decreasing
    assert np.allclose(table["proba_bad"] + table["proba_good"], 1.0)
    expected = np.where(table["proba_bad"] > table["proba_good"], "bad", "good")
    assert (table["predicted"] == expected).all()
    own = np.where(table["actual"] == "bad", table["proba_bad"], table["proba_good"])
    assert np.allclose(table["error"], 1.0 - own)
    assert table["error"].iloc[0] > 0.5 and table["predicted"].iloc[0] != table["actual"].iloc[0]


def test_regression_predictions_are_sorted_by_absolute_error(diamonds, fitted_regressor):
    table = predictions_table(fitted_regressor, diamonds.X_test, diamonds.y_test, diamonds.task)
    assert len(table) == len(diamonds.X_test)
    assert list(table.columns) == ["actual", "predicted", "error", *diamonds.X_test.columns]
    assert table["error"].is_monotonic_decreasing
    assert np.allclose(table["error"], (table["predicted"] - table["actual"]).abs())
    assert sorted(table["actual"]) == sorted(diamonds.y_test)


def test_holdout_metrics_score_every_model_with_the_task_metrics(credit, fitted_classifier):
    scores = holdout_metrics(
        {"model": fitted_classifier}, credit.X_test, credit.y_test, credit.task
    )
    assert scores["model"] == evaluate(fitted_classifier, credit.X_test, credit.y_test, credit.task)
    assert {"roc_auc", "accuracy", "log_loss"} <= set(scores["model"])


def test_an_ensemble_summary_builds_a_weighted_ensemble_of_early_stopped_members(credit):
    summary = {
        "algorithm": "lightgbm",
        "best_params": {"n_estimators": 2000, "learning_rate": 0.3},
        "ensemble": {
            "members": [
                {
                    "algorithm": "lightgbm",
                    "params": {"n_estimators": 2000, "learning_rate": 0.3},
                    "weight": 0.6,
                },
                {"algorithm": "logistic_regression", "params": {"C": 1.0}, "weight": 0.2},
                {
                    "algorithm": "lightgbm",
                    "params": {"n_estimators": 2000, "learning_rate": 0.5},
                    "weight": 0.2,
                },
            ],
            "cv_score": 0.85,
        },
    }
    pipeline, info = training.build_final_pipeline(
        summary, credit.task, credit.feature_types, credit.configuration,
        credit.train, credit.validation, STOPPING,
    )  # fmt: skip
    assert [m["weight"] for m in info["ensemble"]] == [0.6, 0.2, 0.2]
    assert info["ensemble"][0]["early_stopping"]["n_estimators"] < 2000
    # each boosted member's curve under its own family and place (MLflow names stay distinct)
    assert [c["model"] for c in info["learning_curves"]] == [
        "lightgbm member 1",
        "lightgbm member 3",
    ]
    assert not any("learning_curves" in member for member in info["ensemble"])
    model = pipeline.fit(credit.X, credit.y)
    assert list(model.classes_) == ["bad", "good"]
    assert evaluate(model, credit.X_test, credit.y_test, credit.task)["roc_auc"] > 0.75


@pytest.mark.slow
def test_too_small_a_validation_split_keeps_the_rounds_tuned_by_cv(credit):
    settings = {"early_stopping": {"enabled": True, "patience": 10, "min_validation_rows": 10**6}}
    _, info = credit.final("lightgbm", {"n_estimators": 2000, "learning_rate": 0.3}, settings)
    assert info["early_stopping"] is None
    assert info["params"]["n_estimators"] == 2000


class OpenMPThreadsSeen(DummyRegressor):
    """A regressor that notes how many OpenMP threads its fit may use."""

    def fit(self, X, y, sample_weight=None):
        self.openmp_threads_ = {
            pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"
        }
        return super().fit(X, y, sample_weight)


def test_final_fits_run_openmp_on_one_thread_as_the_other_families_run_theirs(diamonds):
    diamonds.pipeline("lightgbm").fit(diamonds.X, diamonds.y)  # loads an OpenMP runtime
    unlimited = OpenMPThreadsSeen().fit(diamonds.X, diamonds.y).openmp_threads_
    model, _ = fit_quietly(OpenMPThreadsSeen(), diamonds.X, diamonds.y)
    assert model.openmp_threads_ == {1}
    assert unlimited == {os.cpu_count()}, "outside fit_quietly, every core"
