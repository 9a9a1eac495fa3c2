"""Report figures: the evaluation plots each task gets, and the search plots a study allows."""

from __future__ import annotations

import base64
import copy
import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from model_trainer.evaluation.held_out import feature_importance, predictions_table
from model_trainer.models.estimators import make_pipeline
from model_trainer.models.metrics import score
from model_trainer.pipelines.model_configuration.nodes import configure_model
from model_trainer.reporting.pages import to_data_uri
from model_trainer.reporting.plots import evaluation_figures
from model_trainer.reporting.search_plots import search_figures
from model_trainer.search import tuning
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.table.splitting import split_holdout
from model_trainer.tasks.detection import detect_task
from model_trainer.training.learning_curves import learning_curve
from tests.conftest import BENCH

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
DIAMONDS = BENCH / "diamonds" / "train.csv"
with (ROOT / "conf" / "base" / "parameters_model_configuration.yml").open() as handle:
    MODEL = yaml.safe_load(handle)["model"]
SEARCH_PLOTS = {
    "optimization_history.png",
    "param_importances.png",
    "parallel_coordinate.png",
    "scores_by_family.png",
}


def held_out(table: pd.DataFrame, target: str, algorithm: str, metric: str) -> dict:
    """A model fitted on train, and its test predictions and importance, as training makes them."""
    task = detect_task(table[target], {})
    feature_types = infer_feature_types(table, target)
    train, _, test = split_holdout(table, target, task, {"validation_fraction": 0.1})
    model = make_pipeline(
        MODEL["algorithms"], algorithm, task["type"], {}, feature_types, MODEL["encoding"], 0
    ).fit(train.drop(columns=[target]), train[target])
    X_test, y_test = test.drop(columns=[target]), test[target]
    return {
        "task": task,
        "predictions": predictions_table(model, X_test, y_test, task),
        "importance": feature_importance(model, X_test, y_test, metric, task, 2, 0),
        "score": score(model, X_test, y_test, metric, task),
    }


@pytest.fixture(scope="module")
def classification() -> dict:
    table = pd.read_csv(CREDIT).sample(1000, random_state=0).reset_index(drop=True)
    return held_out(table, "Status", "logistic_regression", "roc_auc")


@pytest.fixture(scope="module")
def regression() -> dict:
    table = pd.read_csv(DIAMONDS).sample(1500, random_state=0).reset_index(drop=True)
    return held_out(table, "price", "ridge", "rmse")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def legend(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]


@pytest.mark.slow
def test_binary_classification_gets_confusion_matrix_roc_pr_reliability_and_importance(
    classification,
):
    figures = evaluation_figures(
        classification["predictions"], classification["importance"], classification["task"]
    )
    assert set(figures) == {
        "confusion_matrix.png",
        "roc_curve.png",
        "pr_curve.png",
        "calibration.png",
        "feature_importance.png",
    }
    for figure in figures.values():
        assert isinstance(figure, Figure)
        assert png(figure).startswith(b"\x89PNG")


def test_the_roc_curve_is_for_the_positive_class_and_shows_its_auc(classification):
    assert classification["task"]["positive_class"] == "bad"
    figures = evaluation_figures(
        classification["predictions"], classification["importance"], classification["task"]
    )
    assert legend(figures["roc_curve.png"]) == [f"class bad (AUC = {classification['score']:.2f})"]
    assert legend(figures["pr_curve.png"])[0].startswith("class bad (AP = ")


def test_the_confusion_matrix_counts_every_test_row(classification):
    figures = evaluation_figures(
        classification["predictions"], classification["importance"], classification["task"]
    )
    axes = figures["confusion_matrix.png"].axes[0]
    counts = [int(text.get_text()) for text in axes.texts]
    assert len(counts) == 4
    assert sum(counts) == len(classification["predictions"])


def test_regression_gets_residuals_and_importance(regression):
    figures = evaluation_figures(
        regression["predictions"], regression["importance"], regression["task"]
    )
    assert set(figures) == {"residuals.png", "feature_importance.png"}
    predicted_vs_actual, residuals = figures["residuals.png"].axes
    points = residuals.collections[0].get_offsets()
    assert len(points) == len(regression["predictions"])
    expected = regression["predictions"]["actual"] - regression["predictions"]["predicted"]
    assert np.allclose(np.sort(points[:, 1]), np.sort(expected))
    assert predicted_vs_actual.get_xlabel() == "predicted"


def test_the_importance_plot_shows_the_most_important_feature_on_top(regression):
    figures = evaluation_figures(
        regression["predictions"], regression["importance"], regression["task"]
    )
    axes = figures["feature_importance.png"].axes[0]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels == list(regression["importance"]["feature"])[::-1]
    assert len(axes.patches) == len(regression["importance"])


def test_a_task_without_a_positive_class_gets_no_roc_curve(classification):
    predictions = classification["predictions"].copy()
    task = copy.deepcopy(classification["task"])
    task.update(classes=["bad", "good", "unknown"], positive_class=None)
    figures = evaluation_figures(predictions, classification["importance"], task)
    assert set(figures) == {"confusion_matrix.png", "feature_importance.png"}


@pytest.mark.slow
def test_a_tiny_study_gets_the_search_plots_it_can_make():
    table = pd.read_csv(CREDIT).sample(300, random_state=0).reset_index(drop=True)
    task = detect_task(table["Status"], {})
    configuration = configure_model(
        task,
        table,
        table.iloc[:0],
        "auto",
        {**MODEL, "algorithm": "logistic_regression"},
        {"folds": 3, "seed": 0},
        {},
        0,
    )
    study = tuning.run_study(
        table.drop(columns=["Status"]),
        table["Status"],
        task=task,
        feature_types=infer_feature_types(table, "Status"),
        configuration=configuration,
        settings={"n_trials": 2, "pruner": "none"},
        study_name="tiny",
    )
    figures = search_figures(study)
    assert figures, "the optimization history can always be drawn"
    assert set(figures) <= SEARCH_PLOTS
    assert "optimization_history.png" in figures
    for figure in figures.values():
        assert isinstance(figure, Figure)
        assert png(figure).startswith(b"\x89PNG")


def test_a_study_whose_trials_all_failed_gives_plots_without_raising():
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1) * float("nan"), n_trials=2)
    assert all(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    figures = search_figures(study)
    assert set(figures) <= SEARCH_PLOTS


def two_family_study(direction: str) -> optuna.Study:
    """A conditional search as tuning builds one: the family first, then its own parameters;
    ridge scores about 0.7, the forest about 0.9."""

    def objective(trial: optuna.Trial) -> float:
        family = trial.suggest_categorical("algorithm", ["ridge", "random_forest"])
        if family == "ridge":
            return 0.7 + 0.01 * trial.suggest_float("ridge__alpha", 0, 1)
        return 0.9 - 0.01 * trial.suggest_int("random_forest__max_depth", 1, 5)

    study = optuna.create_study(direction=direction, sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=20)
    return study


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_several_families_are_compared_by_score_with_the_best_family_first(direction):
    study = two_family_study(direction)
    figures = search_figures(study, ["roc_auc"])
    assert "parallel_coordinate.png" not in figures, "unreadable across families"
    axes = figures["scores_by_family.png"].axes[0]
    counts = {
        name: sum(t.params["algorithm"] == name for t in study.trials)
        for name in ("ridge", "random_forest")
    }
    best_first = ["random_forest", "ridge"]
    if direction == "minimize":
        best_first.reverse()
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels == [f"{name} ({counts[name]})" for name in best_first]
    plotted = np.concatenate([c.get_offsets()[:, 0] for c in axes.collections[::2]])
    assert sorted(plotted) == sorted(t.value for t in study.trials)
    assert ("higher" if direction == "maximize" else "lower") in axes.get_xlabel()


def test_a_png_becomes_a_data_uri_that_decodes_back_to_it():
    data = png(plt.figure(figsize=(1, 1)))
    uri = to_data_uri(data)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.removeprefix("data:image/png;base64,")) == data


@pytest.mark.slow
def test_learning_curves_show_train_and_validation_per_model_and_the_kept_step(classification):
    boosted = learning_curve(
        "boosting round",
        ("logloss", [0.6, 0.5, 0.4, 0.3], False),
        ("logloss", [0.62, 0.55, 0.56, 0.6], False),
        final_step=2,
        source="test",
    )
    network = learning_curve(
        "epoch", ("loss", [0.7, 0.5, 0.4], False), ("accuracy", [0.6, 0.7, 0.72], True), 3, "test"
    )
    curves = [{"model": "xgboost", **boosted}, {"model": "MLPClassifier", **network}]
    figures = evaluation_figures(
        classification["predictions"], classification["importance"], classification["task"], curves
    )
    figure = figures["learning_curves.png"]
    assert png(figure).startswith(b"\x89PNG")
    assert legend(figure) == ["train logloss", "validation logloss", "kept model"]
    first = figure.axes[0]
    assert first.get_title() == "xgboost" and first.get_xlabel() == "boosting round"
    assert [line.get_xdata()[0] for line in first.get_lines()][-1] == 2, "dashed at the kept step"
    assert {a.get_ylabel() for a in figure.axes} >= {"loss", "accuracy"}, "a second axis"
    assert "learning_curves.png" not in evaluation_figures(
        classification["predictions"], classification["importance"], classification["task"]
    )
