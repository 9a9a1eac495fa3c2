"""What each column is, and which columns are dropped (with why) before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_trainer.errors import ConfigurationError
from model_trainer.table.feature_types import columns_of_type, infer_feature_types

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
N = 60


@pytest.fixture(scope="module")
def credit_types() -> dict:
    return infer_feature_types(pd.read_csv(CREDIT), "Status")


@pytest.fixture
def mixed() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    words = ["late", "payment", "again", "customer", "called", "about", "the", "invoice"]
    return pd.DataFrame(
        {
            "amount": rng.normal(100, 20, N).round(2),
            "colour": rng.choice(["red", "green", "blue"], N),
            "opted_in": rng.choice(["Yes", "no"], N),
            "signup": pd.date_range("2021-03-01", periods=N, freq="5D").strftime("%Y-%m-%d"),
            "note": [" ".join(rng.choice(words, 6)) for _ in range(N)],
            "customer_id": np.arange(5000, 5000 + N),
            "row": np.arange(N),
            "order_code": [f"ORD-{i:06d}" for i in rng.permutation(N)],
            "country": ["NL"] * N,
            "empty": [np.nan] * N,
            "y": rng.choice(["a", "b"], N),
        }
    )


def test_types_the_credit_table_numeric_categorical_and_boolean(credit_types):
    columns = credit_types["columns"]
    assert credit_types["target"] == "Status"
    assert "Status" not in columns
    assert credit_types["dropped"] == {}
    assert columns_of_type(credit_types, "numeric") == [
        "Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price",
    ]  # fmt: skip
    assert columns_of_type(credit_types, "categorical") == ["Home", "Marital", "Job"]
    assert columns_of_type(credit_types, "boolean") == ["Records"]


def test_records_missing_fraction_and_cardinality(credit_types):
    income = credit_types["columns"]["Income"]
    assert income["missing_fraction"] == round(292 / 3563, 4)
    assert income["dtype"] == "float64"
    assert credit_types["columns"]["Marital"]["n_unique"] == 5


def test_types_yes_no_strings_as_boolean_whatever_their_case(mixed):
    assert infer_feature_types(mixed, "y")["columns"]["opted_in"]["type"] == "boolean"


def test_types_a_bool_dtype_column_as_boolean(mixed):
    table = mixed.assign(flag=np.arange(N) % 3 == 0)
    assert infer_feature_types(table, "y")["columns"]["flag"]["type"] == "boolean"


def test_types_date_strings_as_datetime(mixed):
    assert infer_feature_types(mixed, "y")["columns"]["signup"]["type"] == "datetime"


def test_types_free_text_as_text(mixed):
    assert infer_feature_types(mixed, "y")["columns"]["note"]["type"] == "text"


def test_types_few_distinct_strings_as_categorical(mixed):
    colour = infer_feature_types(mixed, "y")["columns"]["colour"]
    assert colour == {"type": "categorical", "n_unique": 3, "missing_fraction": 0.0, "dtype": "str"}


def test_drops_an_id_named_integer_column_with_a_reason(mixed):
    result = infer_feature_types(mixed, "y")
    assert "customer_id" not in result["columns"]
    assert result["dropped"]["customer_id"] == "id-like name with mostly unique integer values"


def test_drops_a_consecutive_row_number_with_a_reason(mixed):
    result = infer_feature_types(mixed, "y")
    assert result["dropped"]["row"] == "id-like: a unique, consecutive integer per row"


def test_drops_unique_string_codes_as_id_like(mixed):
    result = infer_feature_types(mixed, "y")
    assert result["dropped"]["order_code"] == "id-like: 100% of values are unique"


def test_drops_a_constant_column_with_its_value(mixed):
    result = infer_feature_types(mixed, "y")
    assert "country" not in result["columns"]
    assert result["dropped"]["country"] == "constant (only 'NL')"


def test_drops_an_all_missing_column(mixed):
    assert infer_feature_types(mixed, "y")["dropped"]["empty"] == "every value is missing"


def test_keeps_a_unique_numeric_measurement(mixed):
    result = infer_feature_types(mixed, "y")
    assert result["columns"]["amount"]["type"] == "numeric"


def test_a_declared_type_wins_over_inference(mixed):
    declared = {"customer_id": "categorical", "note": "drop", "colour": "text"}
    result = infer_feature_types(mixed, "y", declared=declared)
    assert result["columns"]["customer_id"]["type"] == "categorical"
    assert "customer_id" not in result["dropped"]
    assert result["dropped"]["note"] == "declared drop in dataset.feature_types"
    assert result["columns"]["colour"]["type"] == "text"


def test_rules_override_the_defaults(mixed):
    result = infer_feature_types(
        mixed, "y", rules={"text_min_mean_words": 10, "id_unique_fraction": 1.01}
    )
    assert result["columns"]["note"]["type"] == "categorical"


def test_refuses_an_unknown_declared_type_naming_it(mixed):
    with pytest.raises(ConfigurationError) as caught:
        infer_feature_types(mixed, "y", declared={"amount": "numerical"})
    assert "numerical" in caught.value.message
    assert "amount" in caught.value.message
    assert "numeric" in caught.value.remediation


def test_refuses_a_declared_type_for_a_column_that_does_not_exist(mixed):
    with pytest.raises(ConfigurationError) as caught:
        infer_feature_types(mixed, "y", declared={"ammount": "numeric"})
    assert "ammount" in caught.value.message
    assert "dataset.feature_types" in caught.value.remediation
