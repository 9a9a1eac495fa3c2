"""Per-type transforms inside one ColumnTransformer: robust to missing and unseen values."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_trainer.errors import ConfigurationError
from model_trainer.models.preprocessing import (
    MISSING_CATEGORY,
    DatetimeFeatures,
    build_preprocessor,
    choose_imputation,
    to_category_strings,
)
from model_trainer.table.feature_types import infer_feature_types

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
ENCODING = {"one_hot_max_categories": 15, "min_category_frequency": 1, "text_max_features": 50}


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    return pd.read_csv(CREDIT)


@pytest.fixture(scope="module")
def credit_types(credit) -> dict:
    return infer_feature_types(credit, "Status")


@pytest.fixture(scope="module")
def fitted(credit, credit_types):
    train = credit.iloc[:3000]
    preprocessor = build_preprocessor(credit_types, scale=True, impute=True, encoding=ENCODING)
    preprocessor.fit(train.drop(columns=["Status"]), train["Status"])
    return preprocessor


def _unseen_rows(credit: pd.DataFrame) -> pd.DataFrame:
    rows = credit.iloc[3000:3010].drop(columns=["Status"]).copy()
    rows.loc[rows.index[0], "Home"] = "castle"  # a category never seen in training
    rows.loc[rows.index[1], "Marital"] = "unknown"
    rows.loc[rows.index[2], ["Income", "Assets", "Debt", "Age"]] = np.nan
    rows.loc[rows.index[3], ["Home", "Job", "Records"]] = np.nan
    return rows


def test_names_every_output_column_by_its_source(fitted):
    names = list(fitted.get_feature_names_out())
    assert names[:9] == [f"numeric__{c}" for c in (
        "Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price",
    )]  # fmt: skip
    assert "numeric__missingindicator_Income" in names
    assert "one_hot__Home_rent" in names
    assert f"one_hot__Home_{MISSING_CATEGORY}" in names
    # yes/no is one column: the binary category is dropped.
    assert [n for n in names if n.startswith("one_hot__Records")] == ["one_hot__Records_yes"]


def test_transforms_missing_values_and_unseen_categories_to_finite_numbers(fitted, credit):
    rows = _unseen_rows(credit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn notes the unknown categories
        matrix = fitted.transform(rows)
    names = list(fitted.get_feature_names_out())
    assert matrix.shape == (10, len(names))
    assert np.isfinite(matrix).all()
    home = [i for i, n in enumerate(names) if n.startswith("one_hot__Home_")]
    assert matrix[0, home].sum() == 0  # unseen 'castle': no known level is set
    missing_home = names.index(f"one_hot__Home_{MISSING_CATEGORY}")
    assert matrix[3, missing_home] == 1  # missing: its own category
    indicator = names.index("numeric__missingindicator_Income")
    has_income = rows["Income"].notna().to_numpy()
    assert matrix[2, indicator] > 0 > matrix[has_income, indicator].max()


def test_imputes_missing_numbers_with_the_training_median(credit, credit_types):
    train = credit.iloc[:3000]
    preprocessor = build_preprocessor(credit_types, scale=False, impute=True, encoding=ENCODING)
    preprocessor.fit(train.drop(columns=["Status"]), train["Status"])
    rows = _unseen_rows(credit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        matrix = preprocessor.transform(rows)
    income = list(preprocessor.get_feature_names_out()).index("numeric__Income")
    assert matrix[2, income] == train["Income"].median()


def test_scales_numbers_for_models_that_need_it(fitted, credit):
    matrix = fitted.transform(credit.iloc[:3000].drop(columns=["Status"]))
    age = list(fitted.get_feature_names_out()).index("numeric__Age")
    assert matrix[:, age].mean() == pytest.approx(0.0, abs=1e-9)
    assert matrix[:, age].std() == pytest.approx(1.0, abs=1e-6)


def test_leaves_missing_numbers_to_models_that_handle_them(credit, credit_types):
    train = credit.iloc[:3000]
    preprocessor = build_preprocessor(credit_types, scale=False, impute=False, encoding=ENCODING)
    preprocessor.fit(train.drop(columns=["Status"]), train["Status"])
    names = list(preprocessor.get_feature_names_out())
    assert not any("missingindicator" in n for n in names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        matrix = preprocessor.transform(_unseen_rows(credit))
    assert np.isnan(matrix[2, names.index("numeric__Income")])
    assert matrix[0, names.index("numeric__Age")] == credit.iloc[3000]["Age"]


def _high_cardinality_table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    city = rng.choice([f"city_{i}" for i in range(40)], n)
    return pd.DataFrame({"city": city, "x": rng.normal(size=n), "y": rng.choice(["a", "b"], n)})


def test_encodes_many_levels_as_ordinal_codes_with_unseen_as_minus_one():
    table = _high_cardinality_table()
    types = infer_feature_types(table, "y")
    assert types["columns"]["city"] == {
        "type": "categorical", "n_unique": 40, "missing_fraction": 0.0, "dtype": "str",
    }  # fmt: skip
    preprocessor = build_preprocessor(types, scale=False, impute=False, encoding=ENCODING)
    preprocessor.fit(table.drop(columns=["y"]), table["y"])
    names = list(preprocessor.get_feature_names_out())
    assert "many_levels__city" in names
    rows = pd.DataFrame({"city": ["atlantis", "city_3", None], "x": [0.0, 0.0, 0.0]})
    codes = preprocessor.transform(rows)[:, names.index("many_levels__city")]
    assert codes[0] == -1
    assert codes[1] >= 0
    assert codes[2] == -1


def test_many_levels_reach_the_boosting_families_as_categories_with_unseen_as_missing():
    table = _high_cardinality_table().assign(few=lambda t: np.where(t["x"] > 0, "up", "down"))
    types = infer_feature_types(table, "y")
    preprocessor = build_preprocessor(
        types, scale=False, impute=False, encoding=ENCODING, native_categories=True
    )
    frame = preprocessor.fit(table.drop(columns=["y"]), table["y"]).transform(
        pd.DataFrame({"city": ["atlantis", "city_3", None], "x": [0.0, 1.0, np.nan]}).assign(
            few=["up", "down", "up"]
        )
    )
    names = list(preprocessor.get_feature_names_out())
    assert names[0] == "categories__city" and "many_levels__city" not in names
    assert "one_hot__few_up" in names  # few levels stay one-hot
    city = frame.iloc[:, 0]
    assert isinstance(city.dtype, pd.CategoricalDtype) and len(city.cat.categories) == 40
    assert city.isna().tolist() == [True, False, True]
    assert np.isnan(frame.iloc[2, names.index("numeric__x")])  # numbers untouched
    assert all(pd.api.types.is_float_dtype(frame[c]) for c in frame.columns[1:])


def test_many_levels_stay_codes_beyond_histgb_bins_or_when_ordinal_is_asked():
    rng = np.random.default_rng(1)
    wide = pd.DataFrame({"city": [f"c{i}" for i in rng.integers(0, 300, 3000)], "y": 0})
    wide.loc[::2, "y"] = 1
    for table, encoding in (
        (wide, ENCODING),
        (_high_cardinality_table(), {**ENCODING, "high_cardinality": "ordinal"}),
    ):
        types = infer_feature_types(table, "y")
        preprocessor = build_preprocessor(
            types, scale=False, impute=False, encoding=encoding, native_categories=True
        )
        preprocessor.fit(table.drop(columns=["y"]), table["y"])
        assert "many_levels__city" in list(preprocessor.get_feature_names_out())


def test_an_unknown_high_cardinality_encoding_names_the_key_and_the_choices():
    types = infer_feature_types(_high_cardinality_table(), "y")
    with pytest.raises(ConfigurationError, match="high_cardinality is 'onehot'") as error:
        build_preprocessor(
            types, scale=False, impute=False, encoding={**ENCODING, "high_cardinality": "onehot"}
        )
    assert "auto, native, target, ordinal" in str(error.value)


def test_target_encodes_many_levels_for_scaled_models():
    table = _high_cardinality_table()
    types = infer_feature_types(table, "y")
    preprocessor = build_preprocessor(types, scale=True, impute=True, encoding=ENCODING)
    matrix = preprocessor.fit_transform(table.drop(columns=["y"]), table["y"])
    names = list(preprocessor.get_feature_names_out())
    assert len(names) == matrix.shape[1] == 2
    rows = pd.DataFrame({"city": ["atlantis"], "x": [0.0]})
    assert np.isfinite(preprocessor.transform(rows)).all()


def test_an_integer_regression_target_is_target_encoded_as_one_column_per_feature():
    """Prices in whole dollars are a continuous target, not hundreds of classes."""
    table = _high_cardinality_table().assign(y=lambda t: np.arange(len(t)) * 7 + 1000)
    types = infer_feature_types(table, "y")
    preprocessor = build_preprocessor(
        types, scale=True, impute=True, encoding=ENCODING, task="regression"
    )
    matrix = preprocessor.fit_transform(table.drop(columns=["y"]), table["y"])
    assert matrix.shape[1] == 2


def _text_table(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "note": [" ".join(rng.choice(WORDS, 5)) for _ in range(n)],
            "x": rng.normal(size=n),
            "y": rng.choice(["a", "b"], n),
        }
    )


WORDS = ["late", "payment", "again", "customer", "called", "about", "invoice", "refund"]


def test_vectorises_text_and_reads_missing_text_as_empty():
    table = _text_table()
    types = infer_feature_types(table, "y")
    assert types["columns"]["note"]["type"] == "text"
    preprocessor = build_preprocessor(types, scale=True, impute=True, encoding=ENCODING)
    preprocessor.fit(table.drop(columns=["y"]), table["y"])
    vectorizer = preprocessor.named_transformers_["text_note"][-1]
    vocabulary = list(vectorizer.get_feature_names_out())
    assert sorted(vocabulary) == sorted(WORDS)
    matrix = preprocessor.transform(pd.DataFrame({"note": [None, "refund refund"], "x": [0, 0]}))
    assert matrix.shape == (2, 1 + len(WORDS))
    text = matrix[:, 1:]
    assert text[0].sum() == 0
    assert text[1, vocabulary.index("refund")] == pytest.approx(1.0)


def test_names_the_output_columns_of_a_table_with_text():
    table = _text_table()
    types = infer_feature_types(table, "y")
    preprocessor = build_preprocessor(types, scale=True, impute=True, encoding=ENCODING)
    preprocessor.fit(table.drop(columns=["y"]), table["y"])
    names = list(preprocessor.get_feature_names_out())
    assert {f"text_note__{w}" for w in WORDS} <= set(names)


def test_datetime_features_derive_calendar_parts_from_date_strings():
    dates = pd.DataFrame({"signup": ["2021-01-05", "2021-03-17", "2022-12-31", "2023-07-04"]})
    features = DatetimeFeatures().fit(dates)
    assert list(features.get_feature_names_out()) == [
        "signup_year", "signup_month", "signup_day", "signup_dayofweek", "signup_dayofyear",
    ]  # fmt: skip
    matrix = features.transform(dates)
    assert matrix[1].tolist() == [2021, 3, 17, 2, 76]
    assert matrix[2].tolist() == [2022, 12, 31, 5, 365]


def test_datetime_features_keep_the_hour_only_when_it_varies():
    stamps = pd.DataFrame({"at": ["2021-01-05 08:30", "2021-01-05 17:45", "2021-01-06 08:00"]})
    features = DatetimeFeatures().fit(stamps)
    assert features.parts_ == {"at": ["day", "dayofweek", "dayofyear", "hour"]}
    assert features.transform(stamps)[:, -1].tolist() == [8, 17, 8]


def test_datetime_features_turn_unparseable_dates_into_missing_values():
    features = DatetimeFeatures().fit(pd.DataFrame({"d": ["2021-01-05", "2022-06-30"]}))
    matrix = features.transform(pd.DataFrame({"d": ["not a date", None, "2020-02-29"]}))
    assert np.isnan(matrix[:2]).all()
    assert matrix[2].tolist() == [2020, 2, 29, 5, 60]


def test_a_datetime_column_is_imputed_inside_the_column_transformer():
    rng = np.random.default_rng(0)
    n = 50
    table = pd.DataFrame(
        {
            "signup": pd.date_range("2020-01-01", periods=n, freq="9D").strftime("%Y-%m-%d"),
            "x": rng.normal(size=n),
            "y": rng.choice(["a", "b"], n),
        }
    )
    types = infer_feature_types(table, "y")
    preprocessor = build_preprocessor(types, scale=False, impute=True, encoding=ENCODING)
    preprocessor.fit(table.drop(columns=["y"]), table["y"])
    matrix = preprocessor.transform(pd.DataFrame({"signup": ["garbage"], "x": [1.0]}))
    assert np.isfinite(matrix).all()
    assert "datetime__signup_year" in preprocessor.get_feature_names_out()


def test_category_strings_give_missing_its_own_category():
    frame = pd.DataFrame({"a": ["x", None, "y"], "b": [1.0, np.nan, 2.0]})
    assert to_category_strings(frame).to_dict("list") == {
        "a": ["x", MISSING_CATEGORY, "y"],
        "b": ["1", MISSING_CATEGORY, "2"],
    }


def test_integer_coded_categories_match_when_new_data_reads_them_as_floats(credit):
    types = infer_feature_types(credit, "Status", declared={"Time": "categorical"})
    preprocessor = build_preprocessor(types, scale=False, impute=True, encoding=ENCODING)
    X = credit.drop(columns=["Status"])
    preprocessor.fit(X, credit["Status"])
    rows = X.head(3).copy()
    as_floats = rows.assign(Time=rows["Time"].astype(float))
    as_floats.loc[as_floats.index[2], "Time"] = np.nan
    names = list(preprocessor.get_feature_names_out())
    time = [i for i, n in enumerate(names) if n.startswith("one_hot__Time_")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = preprocessor.transform(rows)[:2, time]
        actual = preprocessor.transform(as_floats)[:2, time]
    assert np.array_equal(actual, expected)


PENGUINS = ROOT.parent / "shared" / "bench" / "data" / "penguins" / "train.csv"


def test_iterative_imputation_fills_a_gap_from_the_rows_category():
    """Gentoo (heavy, long flippers) live on Biscoe only with Adelie: a Biscoe row with every
    measurement missing gets Biscoe-like measurements, not the median penguin's."""
    penguins = pd.read_csv(PENGUINS)
    types = infer_feature_types(penguins, "species")
    X = penguins.drop(columns=["species"])
    iterative = build_preprocessor(
        types, scale=False, impute=True, encoding={**ENCODING, "imputation": "iterative"}
    ).fit(X, penguins["species"])
    row = pd.DataFrame([{"island": "Biscoe"}], columns=X.columns)
    names = list(iterative.get_feature_names_out())
    flipper = iterative.transform(row)[0, names.index("numeric__flipper_length_mm")]
    biscoe = penguins.loc[penguins["island"] == "Biscoe", "flipper_length_mm"].mean()
    median = X["flipper_length_mm"].median()
    assert abs(flipper - biscoe) < abs(flipper - median)
    assert "missingindicator_numeric__flipper_length_mm" in names


def test_imputation_is_iterative_only_for_small_tables_with_gaps(credit):
    assert choose_imputation("auto", credit, max_rows=10_000)[0] == "iterative"
    assert choose_imputation("auto", credit, max_rows=1_000)[0] == "median"
    assert choose_imputation("auto", credit.dropna(), max_rows=10_000)[0] == "median"
    assert choose_imputation("median", credit, max_rows=10_000)[0] == "median"
    with pytest.raises(ConfigurationError, match="iterative"):
        choose_imputation("mice", credit, max_rows=10_000)
