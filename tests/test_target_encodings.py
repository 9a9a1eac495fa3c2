"""A classification target trains, tunes on a label metric (f1) and is evaluated whatever its
encoding: text, 0/1, -1/1 and 1/2 integers, booleans, 0.0/1.0 floats, a category, nullable
Int64. The positive class is the larger number, True, or else the minority of the train split,
and every binary metric describes it.

`kedro task` + `kedro run --pipeline=evaluate` run for a representative subset (each pair takes
about 30 s); every encoding runs in-process through the same node and domain functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import f1_score, precision_score, recall_score

from model_trainer.evaluation import holdout as evaluation
from model_trainer.evaluation.compare import model_metrics, no_skill_metrics
from model_trainer.evaluation.error_analysis import breakdown
from model_trainer.evaluation.held_out import predictions_table
from model_trainer.models import metrics
from model_trainer.pipelines.data_preparation import nodes as preparation
from model_trainer.pipelines.model_configuration.nodes import configure_model
from model_trainer.serving.model_store import latest_version, versioned_file
from tests.conftest import BENCH, copy_project, require_bench_data, run_kedro
from tests.trained import search_and_fit

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "base"
MODEL = yaml.safe_load((CONF / "parameters_model_configuration.yml").read_text())["model"]
FEATURE_TYPING = yaml.safe_load((CONF / "parameters_data_preparation.yml").read_text())[
    "feature_typing"
]
require_bench_data()  # read on import
CREDIT = pd.read_csv(BENCH / "credit_data" / "train.csv").sample(1500, random_state=0)
CREDIT = CREDIT.reset_index(drop=True)
GOOD = CREDIT["Status"] == "good"  # the majority: 'bad', the minority, is the text default

# name: (the Status column recoded, the default positive class, the file it is saved as)
ENCODINGS: dict[str, tuple[Callable[[], pd.Series], object, str]] = {
    "text": (lambda: CREDIT["Status"], "bad", "csv"),
    "0/1 ints": (lambda: GOOD.astype(int), 1, "csv"),
    "-1/1 ints": (lambda: GOOD.map({True: 1, False: -1}), 1, "csv"),
    "1/2 ints": (lambda: GOOD.astype(int) + 1, 2, "csv"),
    "booleans": (lambda: GOOD, True, "csv"),
    "0.0/1.0 floats": (lambda: GOOD.astype(float), 1.0, "csv"),
    "category": (lambda: CREDIT["Status"].astype("category"), "bad", "parquet"),
    "nullable Int64": (lambda: GOOD.astype("Int64"), 1, "parquet"),
}
THROUGH_KEDRO = ["0/1 ints", "booleans", "category", "-1/1 ints"]
REPORTED = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")


def newest(dataset_dir: Path) -> Path:
    return versioned_file(dataset_dir, latest_version(dataset_dir))


def label_scores(actual: pd.Series, predicted: pd.Series, positive: object) -> dict[str, float]:
    """sklearn's own binary scores for `positive`, on the labels as stored."""
    arguments = {"y_true": actual, "y_pred": predicted, "pos_label": positive}
    return {
        "precision": precision_score(**arguments, zero_division=0),
        "recall": recall_score(**arguments, zero_division=0),
        "f1": f1_score(**arguments, zero_division=0),
    }


@pytest.mark.e2e
@pytest.mark.parametrize("encoding", THROUGH_KEDRO)
def test_kedro_task_tunes_f1_and_evaluate_scores_the_model(encoding: str, tmp_path: Path):
    recode, positive, suffix = ENCODINGS[encoding]
    table = CREDIT.assign(Status=recode())
    data = tmp_path / f"credit.{suffix}"
    table.to_csv(data, index=False) if suffix == "csv" else table.to_parquet(data)
    project = copy_project(tmp_path / "project")
    spec = {
        "task": "train",
        "modelType": "classification",
        "algorithm": ["lightgbm", "logistic_regression"],
        "trainDataPath": str(data),
        "targetColumn": "Status",
        "metric": "f1",
        "hyperparameterSearch": {"enabled": True, "nTrials": 3, "timeout": 60},
    }
    (project / "task.json").write_text(json.dumps(spec))
    result = run_kedro(project, "task", "task.json", "--output", "out.json", "--env=test")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = json.loads((project / "out.json").read_text())
    assert output["success"], output
    assert 0 < output["crossValidation"]["mean"] <= 1, "every trial scored f1"

    data_dir = project / "data"
    task = json.loads((data_dir / "05_model_input" / "task.json").read_text())
    assert task["positive_class"] == positive and type(task["positive_class"]) is type(positive)
    train = pd.read_parquet(newest(data_dir / "05_model_input" / "train_split.parquet"))
    counts = train["Status"].value_counts()
    assert task["class_counts"] == {str(c): int(counts[c]) for c in task["classes"]}
    assert task["class_counts_from"] == "the train split"
    decisions = json.loads((data_dir / "08_reporting" / "decisions.json").read_text())
    [decision] = [d for d in decisions if d["decision"] == "positive class"]
    assert decision["choice"] == repr(positive)
    assert decision["why"].startswith(task["positive_class_reason"])

    # the reported test metrics describe the positive class of the saved test predictions
    test = pd.read_parquet(newest(data_dir / "07_model_output" / "test_predictions.parquet"))
    expected = label_scores(test["actual"], test["predicted"], positive)
    assert {k: output["metrics"][k] for k in expected} == pytest.approx(expected)
    assert output["metrics"]["f1"] > 0.4

    result = run_kedro(
        project, "run", "--pipeline=evaluate", "--env=test", f"--params=evaluation.data={data}"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    comparison = json.loads((data_dir / "08_reporting" / "evaluation_comparison.json").read_text())
    scored = pd.read_parquet(
        newest(data_dir / "07_model_output" / "evaluation_predictions.parquet")
    )
    assert len(scored) == len(table)
    expected = label_scores(scored["actual"], scored["predicted"], positive)
    assert {k: comparison["metrics"][k] for k in expected} == pytest.approx(expected)
    breakdown = pd.read_csv(data_dir / "08_reporting" / "evaluation_breakdown.csv")
    assert breakdown["class"].astype(str).tolist() == [str(c) for c in task["classes"]]
    assert breakdown["rows"].sum() == len(table) == breakdown["predicted_rows"].sum()


def prepared(target: pd.Series, task_settings: dict) -> dict:
    """The data preparation and model configuration nodes, a one-trial search for f1 and the
    final fit, on the credit table with `target` as its Status."""
    dataset = {"path": "credit", "target": "Status"}
    validated = preparation.validate_raw_table(CREDIT.assign(Status=target), dataset)
    detected = preparation.detect_task_type(validated, dataset, task_settings)
    feature_types = preparation.type_features(validated, dataset, FEATURE_TYPING)
    train, validation, test = preparation.split_table(
        validated, detected, feature_types, dataset, {}, {"folds": 3}
    )
    task = preparation.count_classes(detected, train, dataset, task_settings)
    model = {**MODEL, "algorithm": ["logistic_regression"]}
    configuration = configure_model(task, train, validation, "f1", model, {"folds": 3}, dataset, 0)
    _, summary, _, fitted = search_and_fit(train, validation, task, feature_types, configuration)
    return {"task": task, "summary": summary, "model": fitted, "test": test}


@pytest.fixture(scope="module")
def as_text() -> dict[str, dict]:
    """The text-label run twice: with its default positive class ('bad') and with 'good', the
    class the numeric and boolean encodings call positive."""
    return {
        positive: prepared(CREDIT["Status"], {"positive_class": positive})
        for positive in ("bad", "good")
    }


@pytest.mark.slow
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_every_encoding_scores_like_text_labels_with_the_positive_class_mapped(
    encoding: str, as_text: dict[str, dict]
):
    recode, positive, _ = ENCODINGS[encoding]
    run = prepared(recode(), {})
    task = run["task"]
    assert task["positive_class"] == positive and type(task["positive_class"]) is type(positive)
    fitted = [c.item() if hasattr(c, "item") else c for c in run["model"].classes_]
    assert fitted == task["classes"] and {type(c) for c in fitted} == {type(positive)}, (
        "the model's classes are the task's, of the same type (Int64 fits as int64, not float)"
    )
    reference = as_text["bad" if isinstance(positive, str) else "good"]
    cv, expected_cv = run["summary"]["cross_validation"], reference["summary"]["cross_validation"]
    assert cv["mean"] == pytest.approx(expected_cv["mean"]), "the search scored f1 alike"

    test = run["test"]
    X, y = test.drop(columns=["Status"]), test["Status"]
    scores = metrics.evaluate(run["model"], X, y, task, REPORTED)
    reference_test = reference["test"]
    expected = metrics.evaluate(
        reference["model"],
        reference_test.drop(columns=["Status"]),
        reference_test["Status"],
        reference["task"],
        REPORTED,
    )
    assert scores == pytest.approx(expected)
    predicted = run["model"].predict(X)
    assert scores["f1"] == pytest.approx(f1_score(y, predicted, pos_label=positive))

    # evaluation reads the task back from the model card, a JSON file
    card = json.loads(json.dumps({"task": "classification", **task}))
    card_task = evaluation.model_task(card)
    assert model_metrics(run["model"], X, y, card_task) == pytest.approx(
        metrics.evaluate(run["model"], X, y, task)
    )
    dummy = no_skill_metrics(X, y, card_task)  # always the class most frequent
    majority = np.full(len(y), y.value_counts().idxmax())
    assert dummy["f1"] == pytest.approx(f1_score(y, majority, pos_label=positive))
    predictions = predictions_table(run["model"], X, y, card_task)
    per_class = breakdown(predictions, card_task, 5)
    assert per_class["rows"].sum() == len(y) == per_class["predicted_rows"].sum()
    at_positive = per_class.set_index("class").loc[str(positive)]
    assert at_positive["f1"] == pytest.approx(scores["f1"])
