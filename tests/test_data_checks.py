"""Reading the input table and refusing, with a reason and a fix, what cannot be trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_trainer.errors import DataValidationError
from model_trainer.pipelines.data_preparation.nodes import STRUCTURE_KEYS, validate_raw_table
from model_trainer.table.checks import (
    check_class_sizes,
    check_usable_features,
    read_table,
    validate_table,
)
from tests.conftest import BENCH

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
PENGUINS = BENCH / "penguins" / "train.csv"


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    return read_table(CREDIT)


def test_reads_the_bundled_credit_csv_with_its_missing_values(credit):
    assert credit.shape == (3563, 14)
    assert credit.columns[0] == "Status"
    assert credit["Income"].isna().sum() == 292


def test_reads_parquet_by_suffix(tmp_path, credit):
    path = tmp_path / "credit.parquet"
    credit.to_parquet(path)
    table = read_table(path)
    assert list(table.columns) == list(credit.columns)
    assert len(table) == len(credit)


def test_refuses_a_missing_file_naming_it_and_the_setting_to_fix(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(DataValidationError) as caught:
        read_table(path)
    assert str(path) in caught.value.message
    assert "does not exist" in caught.value.message
    assert "dataset.path" in caught.value.remediation


def test_refuses_a_corrupt_parquet_file_naming_it(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not a parquet file \x00\x01\x02" * 10)
    with pytest.raises(DataValidationError) as caught:
        read_table(path)
    assert str(path) in caught.value.message
    assert "Cannot read data file" in caught.value.message
    assert "Parquet" in caught.value.remediation


def test_refuses_an_empty_csv_file_naming_it(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataValidationError) as caught:
        read_table(path)
    assert str(path) in caught.value.message
    assert "header row" in caught.value.remediation


def test_refuses_an_unsupported_suffix_listing_the_supported_ones(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataValidationError) as caught:
        read_table(path)
    assert "'.xlsx'" in caught.value.message
    assert str(path) in caught.value.message
    for suffix in (".csv", ".parquet"):
        assert suffix in caught.value.remediation


def test_refuses_duplicate_column_names_in_a_csv_header(tmp_path):
    path = tmp_path / "dupes.csv"
    path.write_text("age,income,age,y\n30,100,31,a\n40,200,41,b\n")
    with pytest.raises(DataValidationError) as caught:
        read_table(path)
    assert "['age']" in caught.value.message
    assert str(path) in caught.value.message
    assert "Rename or drop" in caught.value.remediation


def test_refuses_a_header_only_csv_as_having_no_rows(tmp_path):
    path = tmp_path / "header_only.csv"
    path.write_text("Status,Age,Income\n")
    table = read_table(path)
    with pytest.raises(DataValidationError) as caught:
        validate_table(table, "Status", source=f"'{path}'")
    assert caught.value.message == f"'{path}' has no rows."
    assert "at least one data row" in caught.value.remediation


def test_refuses_a_missing_target_listing_the_columns(credit):
    with pytest.raises(DataValidationError) as caught:
        validate_table(credit, "Outcome", source="'credit_data.csv'")
    message = caught.value.message
    assert "Target column 'Outcome' is not in 'credit_data.csv'" in message
    assert "Status, Seniority, Home" in message
    assert "targetColumn" in caught.value.remediation


def test_refuses_a_target_missing_in_every_row(credit):
    table = credit.assign(Status=np.nan)
    with pytest.raises(DataValidationError) as caught:
        validate_table(table, "Status")
    assert "'Status' is missing in every row" in caught.value.message
    assert "has values" in caught.value.remediation


def test_refuses_a_constant_target(credit):
    table = credit.assign(Status="good")
    with pytest.raises(DataValidationError) as caught:
        validate_table(table, "Status")
    assert "'Status' is constant (only 'good')" in caught.value.message
    assert "Choose another target" in caught.value.remediation


def test_refuses_a_target_constant_once_missing_rows_are_dropped(credit):
    table = credit.assign(Status=np.where(credit.index % 2 == 0, "good", None))
    with pytest.raises(DataValidationError) as caught:
        validate_table(table, "Status")
    assert "constant (only 'good')" in caught.value.message


def test_refuses_unknown_feature_names_naming_them(credit):
    with pytest.raises(DataValidationError) as caught:
        validate_table(credit, "Status", features=["Age", "Salary", "Colour"])
    message = caught.value.message
    assert "['Salary', 'Colour']" in message
    assert "Age" in message.split("Columns are:")[1]
    assert "dataset.features" in caught.value.remediation


@pytest.mark.parametrize("features", [None, ["Seniority"]])
def test_refuses_a_group_item_or_time_column_the_table_lacks_naming_the_setting(credit, features):
    dataset = {"path": "credit.csv", "target": "Status", "features": features}
    for key, name in STRUCTURE_KEYS.items():
        with pytest.raises(DataValidationError, match=rf"dataset.{key} \({name}\) is 'absent'"):
            validate_raw_table(credit, {**dataset, key: "absent"})


def test_refuses_the_target_listed_as_a_feature(credit):
    with pytest.raises(DataValidationError) as caught:
        validate_table(credit, "Status", features=["Age", "Status"])
    assert "'Status' is also listed in dataset.features" in caught.value.message
    assert "Remove the target" in caught.value.remediation


def test_keeps_only_the_declared_features_and_the_target(credit):
    table = validate_table(credit, "Status", features=["Age", "Income"])
    assert list(table.columns) == ["Age", "Income", "Status"]
    assert len(table) == len(credit)


def test_refuses_a_table_with_only_the_target():
    table = pd.DataFrame({"y": ["a", "b", "a"]})
    with pytest.raises(DataValidationError) as caught:
        validate_table(table, "y", source="'t.csv'")
    assert "'t.csv' has no feature column besides the target 'y'" in caught.value.message
    assert "at least one feature column" in caught.value.remediation


def test_refuses_duplicate_column_names_in_a_dataframe():
    table = pd.DataFrame([[1, 2, "a"], [3, 4, "b"]], columns=["x", "x", "y"])
    with pytest.raises(DataValidationError) as caught:
        validate_table(table, "y")
    assert "has duplicate column names: ['x']" in caught.value.message
    assert "Rename or drop" in caught.value.remediation


def test_names_a_quoted_source_once_in_the_duplicate_columns_message():
    table = pd.DataFrame([[1, 2, "a"], [3, 4, "b"]], columns=["x", "x", "y"])
    with pytest.raises(DataValidationError) as caught:
        validate_table(table, "y", source="'data/x.csv'")
    assert "''" not in caught.value.message


def test_refuses_infinite_feature_values_naming_the_columns(credit):
    table = credit.copy()
    table.loc[5, "Income"] = np.inf
    table.loc[9, "Debt"] = -np.inf
    with pytest.raises(DataValidationError) as caught:
        validate_table(table, "Status", source="'credit_data.csv'")
    assert "Columns ['Income', 'Debt'] of 'credit_data.csv' hold infinite values" in (
        caught.value.message
    )
    assert "inf/-inf" in caught.value.remediation


def test_refuses_an_infinite_regression_target():
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0], "price": [10.0, np.inf, 30.0]})
    with pytest.raises(DataValidationError) as caught:
        validate_table(table, "price")
    assert "['price']" in caught.value.message
    assert "infinite" in caught.value.message


def test_drops_rows_whose_target_is_missing(tmp_path, credit, caplog):
    blanked = credit.copy()
    blanked.loc[[3, 50, 700], "Status"] = np.nan
    path = tmp_path / "credit_blanks.csv"
    blanked.to_csv(path, index=False)
    with caplog.at_level("WARNING", logger="model_trainer.table.checks"):
        table = validate_table(read_table(path), "Status")
    assert len(table) == len(credit) - 3
    assert table["Status"].notna().all()
    assert list(table.index) == list(range(len(table)))
    assert "Dropped 3 rows whose target 'Status' is missing" in caplog.text
    # Missing feature values are kept: only the target must be present.
    assert table["Income"].isna().sum() == credit["Income"].isna().sum() - int(
        credit.loc[[3, 50, 700], "Income"].isna().sum()
    )


def test_accepts_the_penguins_table_as_is():
    table = validate_table(read_table(PENGUINS), "species")
    assert len(table) == 275
    assert set(table["species"]) == {"Adelie", "Gentoo", "Chinstrap"}


def test_refuses_a_class_smaller_than_the_number_of_folds():
    penguins = read_table(PENGUINS)
    target = pd.concat(
        [penguins["species"][penguins["species"] != "Chinstrap"], pd.Series(["Chinstrap"] * 3)],
        ignore_index=True,
    ).rename("species")
    with pytest.raises(DataValidationError) as caught:
        check_class_sizes(target, 5)
    assert "'species' has classes smaller than the 5 CV folds" in caught.value.message
    assert "{'Chinstrap': 3}" in caught.value.message
    assert "Adelie" not in caught.value.message
    assert "validation.folds" in caught.value.remediation


def test_accepts_classes_at_least_as_large_as_the_folds():
    penguins = read_table(PENGUINS)
    check_class_sizes(penguins["species"], 5)


def test_refuses_when_no_usable_feature_is_left():
    feature_types = {
        "target": "y",
        "columns": {},
        "dropped": {"row_id": "id-like name with mostly unique integer values"},
    }
    with pytest.raises(DataValidationError) as caught:
        check_usable_features(feature_types, "'ids.csv'")
    message = caught.value.message
    assert "No usable feature left in 'ids.csv'" in message
    assert "row_id" in message
    assert "dataset.feature_types" in caught.value.remediation
