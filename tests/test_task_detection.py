"""Classification or regression, decided from the target unless task.type says which."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.task_detection import detect_task
from tests.conftest import BENCH

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
    assert task["positive_class"] == 3
