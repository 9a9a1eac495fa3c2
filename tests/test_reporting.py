"""What the numbers mean: rule-based recommendations, relative changes with the metric's
direction, and the self-contained HTML report."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from model_trainer.datasets import FigureDataset
from model_trainer.evaluation.explanations import explain
from model_trainer.evaluation.held_out import feature_importance, holdout_metrics, predictions_table
from model_trainer.pipelines.reporting.nodes import render_report
from model_trainer.reporting import report as reporting
from model_trainer.reporting.decisions import decision_record
from model_trainer.reporting.plots import evaluation_figures
from model_trainer.reporting.search_plots import search_figures
from model_trainer.tasks.detection import detect_task
from model_trainer.tracking.runs import log_diagnosis_tags
from model_trainer.training.learning_curves import learning_curve
from tests.conftest import BENCH, require_bench_data
from tests.trained import train_as_the_pipelines_do

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
DIAMONDS = BENCH / "diamonds" / "train.csv"
require_bench_data()  # read on import
with (ROOT / "conf" / "base" / "parameters_reporting.yml").open() as handle:
    REPORTING = yaml.safe_load(handle)["reporting"]
THRESHOLDS = REPORTING["recommendations"]

CREDIT_TABLE = pd.read_csv(CREDIT)
CREDIT_TASK = detect_task(CREDIT_TABLE["Status"], {})  # about 2.5 good per bad: balanced enough
# 1000 good and 100 bad applicants: a 10:1 imbalance.
IMBALANCED = pd.concat(
    [
        CREDIT_TABLE[CREDIT_TABLE["Status"] == "good"].head(1000),
        CREDIT_TABLE[CREDIT_TABLE["Status"] == "bad"].head(100),
    ]
)
IMBALANCED_TASK = detect_task(IMBALANCED["Status"], {})
DIAMONDS_TASK = detect_task(pd.read_csv(DIAMONDS, usecols=["price"])["price"], {})

# A healthy binary classifier: CV agrees with test, clearly above both baselines, stable folds.
FINE = {
    "test_metrics": {"roc_auc": 0.84},
    "baseline_metrics": {"dummy": {"roc_auc": 0.5}, "logistic_regression": {"roc_auc": 0.81}},
    "cross_validation": {"mean": 0.845, "std": 0.012},
    "training_info": {"convergence_warnings": []},
}


def findings(metric="roc_auc", task=CREDIT_TASK, **changes) -> list[str]:
    inputs = {**FINE, **changes}
    found = reporting.recommendations(
        metric,
        task,
        inputs["test_metrics"],
        inputs["baseline_metrics"],
        inputs["cross_validation"],
        inputs["training_info"],
        THRESHOLDS,
    )
    for finding in found:
        assert set(finding) == {"finding", "evidence", "advice"}
        assert finding["evidence"] and finding["advice"]
    return [f["finding"] for f in found]


# --- relative change ----------------------------------------------------------------------------


def test_a_lower_rmse_is_a_positive_change():
    assert reporting.relative_change("rmse", DIAMONDS_TASK, 900.0, 1000.0) == pytest.approx(0.1)
    assert reporting.relative_change("rmse", DIAMONDS_TASK, 1100.0, 1000.0) == pytest.approx(-0.1)


def test_a_higher_roc_auc_is_a_positive_change():
    assert reporting.relative_change("roc_auc", CREDIT_TASK, 0.88, 0.8) == pytest.approx(0.1)
    assert reporting.relative_change("roc_auc", CREDIT_TASK, 0.72, 0.8) == pytest.approx(-0.1)


def test_a_change_from_zero_is_the_plain_difference():
    """No fraction of 0 can be taken; a champion whose f1 is 0 must still be beatable."""
    assert reporting.relative_change("rmse", DIAMONDS_TASK, 0.5, 0.0) == -0.5
    assert reporting.relative_change("f1", CREDIT_TASK, 0.6, 0.0) == pytest.approx(0.6)


def test_r2_changes_are_plain_differences_on_its_fixed_scale():
    assert reporting.relative_change("r2", DIAMONDS_TASK, 0.5, 0.0) == 0.5


# --- recommendations ----------------------------------------------------------------------------


def test_a_healthy_model_gets_no_recommendation():
    assert findings() == []


def test_cv_much_better_than_test_is_overfitting():
    assert findings(cross_validation={"mean": 0.95, "std": 0.01}) == ["overfitting"]


def test_cv_rmse_much_lower_than_test_rmse_is_overfitting():
    regression = {
        "metric": "rmse",
        "task": DIAMONDS_TASK,
        "baseline_metrics": {"dummy": {"rmse": 4000.0}, "ridge": {"rmse": 1400.0}},
        "training_info": {"convergence_warnings": []},
    }
    assert findings(
        **regression, test_metrics={"rmse": 800.0}, cross_validation={"mean": 600.0, "std": 20.0}
    ) == ["overfitting"]
    # a CV rmse higher than the test rmse is no sign of overfitting
    assert (
        findings(
            **regression,
            test_metrics={"rmse": 600.0},
            cross_validation={"mean": 800.0, "std": 20.0},
        )
        == []
    )


def test_a_model_barely_better_than_the_dummy_is_underfitting():
    found = findings(
        test_metrics={"roc_auc": 0.505},
        cross_validation={"mean": 0.51, "std": 0.01},
        baseline_metrics={"dummy": {"roc_auc": 0.5}, "logistic_regression": {"roc_auc": 0.49}},
    )
    assert found == ["underfitting"]


def test_a_simple_model_that_scores_better_is_recommended_by_name():
    found = reporting.recommendations(
        "roc_auc",
        CREDIT_TASK,
        FINE["test_metrics"],
        {"dummy": {"roc_auc": 0.5}, "logistic_regression": {"roc_auc": 0.86}},
        FINE["cross_validation"],
        FINE["training_info"],
        THRESHOLDS,
    )
    assert [f["finding"] for f in found] == ["simple model is as good"]
    assert "logistic_regression" in found[0]["evidence"]
    assert "Prefer logistic_regression" in found[0]["advice"]


def test_folds_that_disagree_are_unstable():
    assert findings(cross_validation={"mean": 0.84, "std": 0.08}) == ["unstable folds"]


def test_a_fold_far_below_the_mean_is_a_weak_fold():
    cv = {"mean": 0.82, "std": 0.04, "fold_scores": [0.86, 0.87, 0.73]}
    assert findings(cross_validation=cv) == ["weak fold"]
    close = {"mean": 0.845, "std": 0.01, "fold_scores": [0.85, 0.855, 0.83]}
    assert findings(cross_validation=close) == []
    one_row_folds = {"mean": 0.8, "std": 0.4, "fold_scores": [1.0] * 8 + [0.0] * 2}
    assert "weak fold" not in findings(cross_validation={**one_row_folds, "strategy": "loo"})


def test_for_rmse_the_weak_fold_is_the_highest_error():
    cv = {"mean": 100.0, "std": 5.0, "fold_scores": [80.0, 90.0, 130.0]}
    found = findings(
        "rmse",
        DIAMONDS_TASK,
        test_metrics={"rmse": 100.0},
        baseline_metrics={"dummy": {"rmse": 400.0}, "ridge": {"rmse": 150.0}},
        cross_validation=cv,
    )
    assert found == ["weak fold"]


def boosted_curve(validation: list[float], final_step: int) -> dict:
    train = [0.6 - 0.05 * step for step in range(len(validation))]
    curve = learning_curve(
        "boosting round", ("logloss", train, False), ("logloss", validation, False), final_step, ""
    )
    return {"model": "lightgbm", **curve}


def test_a_validation_loss_rising_past_its_best_while_training_improves_is_overfitting():
    rising = boosted_curve([0.6, 0.5, 0.45, 0.5, 0.55, 0.6], final_step=6)
    info = {"convergence_warnings": [], "learning_curves": [rising]}
    found = reporting.recommendations(
        "roc_auc", CREDIT_TASK, **{**FINE, "training_info": info}, thresholds=THRESHOLDS
    )
    assert [f["finding"] for f in found] == ["overfitting"]
    assert "lightgbm: validation logloss 0.6 at boosting round 6" in found[0]["evidence"]
    assert "best 0.45 at boosting round 3" in found[0]["evidence"]


def test_a_model_stopped_at_its_best_round_is_not_overfitting():
    stopped = boosted_curve([0.6, 0.5, 0.45, 0.5, 0.55, 0.6], final_step=3)
    still_falling = boosted_curve([0.6, 0.5, 0.45, 0.44, 0.43, 0.42], final_step=6)
    info = {"convergence_warnings": [], "learning_curves": [stopped, still_falling]}
    assert findings(training_info=info) == []


@pytest.mark.slow
def test_each_kind_of_finding_becomes_one_mlflow_tag(tmp_path, monkeypatch):
    import mlflow

    found = [
        {"finding": "overfitting", "evidence": "", "advice": ""},
        {"finding": "overfitting", "evidence": "", "advice": ""},
        {"finding": "simple model is as good", "evidence": "", "advice": ""},
    ]
    assert reporting.diagnosis_tags(found) == {
        "diagnosis.overfitting": "true",
        "diagnosis.simple_model_is_as_good": "true",
    }
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run() as run:
        log_diagnosis_tags(found)
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["diagnosis.overfitting"] == "true"
    assert tags["diagnosis.simple_model_is_as_good"] == "true"


def test_imbalanced_classes_are_flagged_with_their_sizes():
    assert IMBALANCED_TASK["class_counts"] == {"good": 1000, "bad": 100}
    found = reporting.recommendations(
        "roc_auc",
        IMBALANCED_TASK,
        FINE["test_metrics"],
        FINE["baseline_metrics"],
        FINE["cross_validation"],
        FINE["training_info"],
        THRESHOLDS,
    )
    assert [f["finding"] for f in found] == ["imbalanced classes"]
    assert "1000" in found[0]["evidence"] and "100" in found[0]["evidence"]
    assert "try class weights" in found[0]["advice"]
    handled = reporting.recommendations(
        "roc_auc", IMBALANCED_TASK, FINE["test_metrics"], FINE["baseline_metrics"],
        FINE["cross_validation"], FINE["training_info"], THRESHOLDS, "auto",
    )  # fmt: skip
    assert "Already handled by model.imbalance.strategy 'auto'" in handled[0]["advice"]
    assert "try class weights" not in handled[0]["advice"]


def test_regression_has_no_class_imbalance_finding():
    regression = {
        "test_metrics": {"rmse": 700.0},
        "baseline_metrics": {"dummy": {"rmse": 4000.0}, "ridge": {"rmse": 1400.0}},
        "cross_validation": {"mean": 690.0, "std": 15.0},
    }
    assert findings("rmse", DIAMONDS_TASK, **regression) == []


def test_each_convergence_warning_becomes_a_finding_with_its_message():
    messages = ["lbfgs failed to converge after 1 iteration(s)", "Maximum iterations (1) reached"]
    found = reporting.recommendations(
        "roc_auc",
        CREDIT_TASK,
        FINE["test_metrics"],
        FINE["baseline_metrics"],
        FINE["cross_validation"],
        {"convergence_warnings": messages},
        THRESHOLDS,
    )
    assert [f["finding"] for f in found] == ["convergence warning"] * 2
    assert [f["evidence"] for f in found] == messages


def test_an_r2_barely_above_the_dummys_is_underfitting():
    found = findings(
        "r2",
        DIAMONDS_TASK,
        test_metrics={"r2": 0.01},
        baseline_metrics={"dummy": {"r2": -0.002}, "ridge": {"r2": 0.005}},
        cross_validation={"mean": 0.01, "std": 0.0001},
    )
    assert "underfitting" in found


# --- the HTML report ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_inputs(tmp_path_factory) -> dict:
    """Every input of the report node, made by the real functions on a small credit sample."""
    table = CREDIT_TABLE.sample(800, random_state=0).reset_index(drop=True)
    trained = train_as_the_pipelines_do(table, "Status", "logistic_regression")
    task, model, study = trained.task, trained.model, trained.study
    X_test, y_test = trained.X_test, trained.y_test
    predictions = predictions_table(model, X_test, y_test, task)
    importance = feature_importance(model, X_test, y_test, "roc_auc", task, 2, 0)
    explanation = explain(model, X_test.head(12), X_test.tail(10), task, columns=list(X_test))
    evaluation = FigureDataset(str(tmp_path_factory.mktemp("evaluation")))
    evaluation.save(evaluation_figures(predictions, importance, task))
    searched = FigureDataset(str(tmp_path_factory.mktemp("search")))
    searched.save(search_figures(study))
    return {
        "test_metrics": holdout_metrics({"m": model}, X_test, y_test, task)["m"],
        "baseline_metrics": holdout_metrics(trained.baselines, X_test, y_test, task),
        "study_summary": trained.summary,
        "model_configuration": trained.configuration,
        "task": task,
        "feature_types": trained.feature_types,
        "evaluation_plots": evaluation.load(),
        "search_plots": searched.load(),
        "feature_importance": importance,
        "shap_importance": explanation.importance(),
        "worst_predictions": predictions.head(REPORTING["worst_predictions"]),
        "recommendations": [],
        "decisions": decision_record(
            task=task,
            feature_types=trained.feature_types,
            configuration=trained.configuration,
            study_summary=trained.summary,
            training_info=trained.info,
            tuning={"enabled": False},
            metric_setting="auto",
        ),
        "node_resources": {
            "pipeline_wall_s": 3.0,
            "nodes": {
                "split_table_node": {"wall_s": 0.5, "cpu_s": 0.4, "peak_rss_mb": 300.0},
                "optimize_hyperparameters_node": {"wall_s": 2.0, "cpu_s": 3.5, "peak_rss_mb": 410},
            },
        },
        "model_registration": {"run_id": "0123abcd"},
        "dataset": {"path": str(CREDIT)},
        "cluster_profiles": pd.DataFrame({"cluster": []}),  # a classification has none
        "previous_version": {"note": "model_trainer version 1 is the first registered version"},
    }


@pytest.mark.slow
def test_the_report_is_one_page_with_no_outside_resources(report_inputs):
    html = render_report(**report_inputs)
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert html.rstrip().endswith("</html>")
    linked = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert linked == []
    assert "<script" not in html.lower() and "<link" not in html.lower()


@pytest.mark.slow
def test_the_report_embeds_every_plot_as_a_png(report_inputs):
    html = render_report(**report_inputs)
    plots = {**report_inputs["evaluation_plots"], **report_inputs["search_plots"]}
    assert {"confusion_matrix.png", "roc_curve.png", "optimization_history.png"} <= set(plots)
    sources = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    assert len(sources) == len(plots)
    for name, encoded in sources:
        assert base64.b64decode(encoded) == plots[name]
        assert base64.b64decode(encoded).startswith(b"\x89PNG")


@pytest.mark.slow
def test_the_headline_gives_the_test_metric_against_the_baselines(report_inputs):
    html = render_report(**report_inputs)
    headline = re.search(r'<p class="headline" id="headline">(.*?)</p>', html, re.DOTALL)
    assert headline
    text = headline.group(1)
    test_score = report_inputs["test_metrics"]["roc_auc"]
    dummy_score = report_inputs["baseline_metrics"]["dummy"]["roc_auc"]
    simple_score = report_inputs["baseline_metrics"]["logistic_regression"]["roc_auc"]
    assert f"Test roc_auc = <b>{test_score:.4g}</b>" in text
    assert f"{dummy_score:.4g} for the dummy baseline" in text
    assert f"{simple_score:.4g} for logistic_regression" in text
    assert "over 3 folds" in text


@pytest.mark.slow
def test_the_report_lists_the_recommendations_or_says_there_are_none(report_inputs):
    assert "No issue found by the rules" in render_report(**report_inputs)
    finding = {
        "finding": "imbalanced classes",
        "evidence": "class sizes {'<b>good</b>': 1000, 'bad': 100}.",
        "advice": "Judge by roc_auc.",
    }
    html = render_report(**{**report_inputs, "recommendations": [finding]})
    assert "No issue found by the rules" not in html
    assert "<b>imbalanced classes</b>" in html
    assert "&lt;b&gt;good&lt;/b&gt;" in html, "text from the data is escaped"


@pytest.mark.slow
def test_the_report_describes_every_feature_and_the_worst_predictions(report_inputs):
    html = render_report(**report_inputs)
    for name in report_inputs["feature_types"]["columns"]:
        assert f"<td>{name}</td>" in html
    worst = report_inputs["worst_predictions"]
    assert len(worst) == REPORTING["worst_predictions"]
    assert "Worst predictions (test split)" in html
    assert html.count("proba_bad") == 1  # the column header of the worst predictions table
    # the importance table gives each feature's mean |SHAP| beside its permutation importance
    assert "<th>mean_abs_shap</th>" in html
    top = report_inputs["shap_importance"].iloc[0]
    assert f"{top.mean_abs_shap:.4g}" in html


@pytest.mark.slow
def test_the_report_shows_each_decision_with_its_conf_key(report_inputs):
    html = render_report(**report_inputs)
    decisions = {d["decision"]: d for d in report_inputs["decisions"]}
    assert {"task type", "imputation", "cross-validation", "final model"} <= set(decisions)
    assert decisions["task type"]["choice"] == "classification (2 classes)"
    assert decisions["final model"]["choice"] == "logistic_regression"
    assert decisions["search strategy"]["choice"].startswith("no search")
    for decision in decisions.values():
        assert f"<code>{decision['override']}</code>" in html


@pytest.mark.slow
def test_the_report_shows_where_the_time_went_slowest_node_first(report_inputs):
    html = render_report(**report_inputs)
    section = html.split('id="time"')[1].split("</section>")[0]
    assert section.index("optimize_hyperparameters_node") < section.index("split_table_node")
    assert "<td>80%</td>" in section and "<td>3.50</td>" in section


def test_a_clustering_is_judged_on_structure_stability_and_plain_kmeans():
    findings = reporting.recommendations(
        "silhouette",
        {"type": "clustering"},
        {"silhouette": 0.18, "noise_share": 0.3, "ari": 0.05},
        {"dummy": {"silhouette": 0.0}, "kmeans": {"silhouette": 0.2}},
        {"mean": 0.6, "std": 0.2, "folds": 5},
        {},
        {},
    )
    assert [f["finding"] for f in findings] == [
        "weak structure",
        "unstable clusters",
        "many rows left as noise",
        "simple model is as good",
        "clusters ignore the reference column",
    ]
    steady = reporting.recommendations(
        "silhouette",
        {"type": "clustering"},
        {"silhouette": 0.6, "noise_share": 0.0},
        {"kmeans": {"silhouette": 0.5}},
        {"mean": 0.95, "std": 0.02, "folds": 5},
        {},
        {},
    )
    assert steady == []


@pytest.mark.slow
def test_the_previous_version_is_a_row_of_the_metrics_table(report_inputs):
    previous = {
        "model": "models:/01_raw_credit_data_Status/4",
        "metrics": {"roc_auc": 0.8123, "accuracy": 0.7},
        "trained_on_share": 1.0,
    }
    html = render_report(**{**report_inputs, "previous_version": previous})
    assert (
        "previous version (models:/01_raw_credit_data_Status/4, trained on 100% of these rows)"
        in html
    )
    assert "0.8123" in html
