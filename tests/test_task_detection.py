"""Classification or regression, decided from the target unless task.type says which."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.tasks.detection import count_training_classes, detect_task, numpy_target
from tests.conftest import BENCH

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"


@pytest.fixture(scope="module")
def status() -> pd.Series:
    return pd.read_csv(CREDIT)["Status"]


@pytest.fixture(scope="module")
def species() -> pd.Series:
    return pd.read_csv(BENCH / "penguins" / "train.csv")["species"]


@pytest.fixture(scope="module")
def price() -> pd.Series:
    return pd.read_csv(BENCH / "diamonds" / "train.csv", nrows=2000)["price"]


def test_a_string_target_with_two_values_is_binary_classification_for_the_minority(status):
    task = detect_task(status, {"type": "auto"})
    assert task["type"] == "classification"
    assert task["classes"] == ["bad", "good"]
    assert task["class_counts"] == {"good": 2560, "bad": 1003}
    assert task["positive_class"] == "bad"
    assert task["n_rows"] == 3563
    assert "'Status' is not numeric" in task["reason"]


def test_a_string_target_with_three_values_is_multiclass_without_a_positive_class(species):
    task = detect_task(species, {})
    assert task["type"] == "classification"
    assert task["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert task["positive_class"] is None


def test_a_numeric_target_with_many_values_is_regression(price):
    task = detect_task(price, {"type": "auto"})
    assert task == {
        "type": "regression",
        "reason": f"target 'price' is numeric with {price.nunique()} values",
        "n_rows": 2000,
    }


def test_a_target_of_few_integers_is_classification():
    target = pd.Series([0, 1, 2, 1, 0, 2, 2], name="grade")
    task = detect_task(target, {"classification_max_classes": 10})
    assert task["type"] == "classification"
    assert task["classes"] == [0, 1, 2]
    assert "3 integer values (<= 10)" in task["reason"]


def test_a_target_of_more_integers_than_the_class_limit_is_regression():
    target = pd.Series(np.arange(12) % 11, name="count")
    assert detect_task(target, {"classification_max_classes": 10})["type"] == "regression"


def test_a_float_target_of_few_non_integer_values_is_regression():
    target = pd.Series([0.5, 1.5, 0.5, 1.5], name="rate")
    assert detect_task(target, {})["type"] == "regression"


def test_a_declared_task_type_wins(price):
    target = pd.Series([0, 1, 2, 1, 0, 2], name="grade")
    task = detect_task(target, {"type": "regression"})
    assert task["type"] == "regression"
    assert task["reason"] == "set by task.type"
    assert detect_task(price, {"type": "classification"})["type"] == "classification"


def test_refuses_regression_on_a_string_target_naming_it(status):
    with pytest.raises(DataValidationError) as caught:
        detect_task(status, {"type": "regression"})
    assert "Target 'Status' is not numeric" in caught.value.message
    assert "task.type" in caught.value.remediation


def test_refuses_an_unknown_task_type_listing_the_allowed_ones(status):
    with pytest.raises(ConfigurationError) as caught:
        detect_task(status, {"type": "forecasting"})
    assert "'forecasting'" in caught.value.message
    assert "auto, classification, regression, ranking, clustering" in caught.value.remediation


def test_uses_the_declared_positive_class(status):
    assert detect_task(status, {"positive_class": "good"})["positive_class"] == "good"


def test_matches_a_positive_class_given_as_text_to_integer_labels():
    target = pd.Series([0, 1, 1, 0, 1], name="churn")
    task = detect_task(target, {"positive_class": "0"})
    assert task["positive_class"] == 0
    assert isinstance(task["positive_class"], int)


def test_refuses_a_positive_class_that_is_not_a_class(status):
    with pytest.raises(ConfigurationError) as caught:
        detect_task(status, {"positive_class": "default"})
    assert "'default' is not a class of 'Status'" in caught.value.message
    assert "['bad', 'good']" in caught.value.message
    assert "task.positive_class" in caught.value.remediation


def test_the_task_is_json_serialisable_for_integer_labels():
    target = pd.Series(np.array([3, 7, 7, 3, 7], dtype=np.int64), name="label")
    task = detect_task(target, {})
    assert json.loads(json.dumps(task))["classes"] == [3, 7]
    assert task["positive_class"] == 7 and isinstance(task["positive_class"], int)


def encodings(status: pd.Series) -> dict[str, tuple[pd.Series, object]]:
    """The credit target ('good' the majority) in each encoding, with the default positive
    class the rule gives it."""
    good = status == "good"
    return {
        "0/1 ints": (good.astype(int), 1),
        "-1/1 ints": (good.map({True: 1, False: -1}), 1),
        "1/2 ints": (good.astype(int) + 1, 2),
        "0.0/1.0 floats": (good.astype(float), 1.0),
        "booleans": (good, True),
        "nullable Int64": (good.astype("Int64"), 1),
        "text": (status, "bad"),
        "category": (status.astype("category"), "bad"),
    }


def test_the_default_positive_class_is_the_larger_number_true_or_else_the_minority(status):
    for name, (target, expected) in encodings(status).items():
        task = detect_task(target.rename("Status"), {})
        assert task["type"] == "classification", name
        assert task["positive_class"] == expected, name
        assert type(task["positive_class"]) is type(expected), name
        assert json.loads(json.dumps(task))["positive_class"] == expected, name
        reason = task["positive_class_reason"]
        if isinstance(expected, bool):
            assert reason == "True of a boolean target", name
        elif isinstance(expected, str):
            assert reason.startswith("the minority class: 1003 of 3563 rows"), name
        else:
            assert reason.startswith("the larger of the two numeric labels"), name


def test_a_minority_tie_goes_to_the_second_class_in_sorted_order():
    target = pd.Series(["yes", "no", "yes", "no"], name="answer")
    assert detect_task(target, {})["positive_class"] == "yes"


def test_a_declared_positive_class_matches_by_value_or_text(status):
    cases = {
        "0/1 ints": [("0", 0), (0, 0), ("1", 1)],
        "0.0/1.0 floats": [("0", 0.0), (0, 0.0), ("1.0", 1.0)],
        "booleans": [("false", False), ("False", False), (False, False), ("true", True)],
        "category": [("good", "good")],
        "-1/1 ints": [("-1", -1)],
    }
    for name, given in cases.items():
        target = encodings(status)[name][0].rename("Status")
        for declared, expected in given:
            task = detect_task(target, {"positive_class": declared})
            assert task["positive_class"] == expected, (name, declared)
            assert type(task["positive_class"]) is type(expected), (name, declared)
            assert task["positive_class_reason"] == "set by task.positive_class"


def test_refuses_a_positive_class_of_the_wrong_kind(status):
    booleans = encodings(status)["booleans"][0].rename("Status")
    with pytest.raises(ConfigurationError) as caught:
        detect_task(booleans, {"positive_class": 1})
    assert "'1' is not a class of 'Status': [False, True]" in caught.value.message
    assert "positiveClass" in caught.value.remediation


def test_without_counting_the_task_has_the_labels_but_nothing_counted(status):
    task = detect_task(status, {}, count=False)
    assert task["classes"] == ["bad", "good"]
    assert not {"class_counts", "positive_class"} & set(task)
    with pytest.raises(ConfigurationError):
        detect_task(status, {"positive_class": "default"}, count=False)


def test_class_counts_and_the_minority_come_from_the_rows_counted(status):
    task = detect_task(status, {}, count=False)
    # train rows where 'good' is the rarer class: the minority rule must follow them
    train = pd.concat([status[status == "good"].head(100), status[status == "bad"].head(300)])
    counted = count_training_classes(task, train, {}, "the train split")
    assert counted["class_counts"] == {"bad": 300, "good": 100}
    assert counted["class_counts_from"] == "the train split"
    assert counted["positive_class"] == "good"
    assert counted["positive_class_reason"] == (
        "the minority class: 100 of 400 rows in the train split"
    )
    only_bad = count_training_classes(task, status[status == "bad"], {}, "the train split")
    assert only_bad["class_counts"] == {"bad": 1003, "good": 0}, "a class absent counts 0"


def test_a_nullable_target_without_gaps_becomes_its_numpy_dtype():
    ints = numpy_target(pd.Series([1, 0, 1], dtype="Int64", name="churn"))
    assert ints.dtype == np.int64 and ints.name == "churn"
    assert numpy_target(pd.Series([True, False], dtype="boolean")).dtype == np.bool_
    gaps = pd.Series([1, None, 0], dtype="Int64")
    assert numpy_target(gaps) is gaps, "a gap stays a gap (the caller drops those rows first)"
    text = pd.Series(["a", "b"], dtype="category")
    assert numpy_target(text) is text
