"""Drift between the data a model learned from and the data it scores: PSI per feature beside a
KS or chi-squared test, on real tables."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from model_trainer.evaluation import drift
from model_trainer.reporting.pages import render_drift_html
from model_trainer.reporting.plots import drift_figures
from model_trainer.table.feature_types import infer_feature_types
from tests.conftest import BENCH

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
SETTINGS = {
    "psi_threshold": 0.2,
    "p_value": 0.01,
    "bins": 10,
    "max_categories": 20,
    "min_bin_rows": 20,
    "min_rows": 30,
}


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    return pd.read_csv(CREDIT)


@pytest.fixture(scope="module")
def features(credit) -> dict:
    return infer_feature_types(credit, "Status")["columns"]


def halves(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = table.sample(frac=0.5, random_state=0)
    return reference, table.drop(reference.index)


def report(reference, current, features, predictions=None, settings=SETTINGS) -> dict:
    return drift.drift_report(
        reference, "reference", current, features, predictions, "classification", settings
    )


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift():
    same = np.array([0.2, 0.3, 0.5])
    assert drift.population_stability_index(same, same) == 0.0
    expected = 0.4 * math.log(0.9 / 0.5) + 0.4 * math.log(0.5 / 0.1)
    small = drift.population_stability_index(np.array([0.5, 0.5]), np.array([0.6, 0.4]))
    large = drift.population_stability_index(np.array([0.5, 0.5]), np.array([0.9, 0.1]))
    assert large == pytest.approx(expected)
    assert 0 < small < large


def test_an_empty_bin_gives_a_large_but_finite_psi():
    psi = drift.population_stability_index(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert math.isfinite(psi) and psi > 1


def test_a_random_half_has_not_drifted_from_the_other(credit, features):
    result = report(*halves(credit), features)
    assert result["drifted"] is False and result["drifted_features"] == []
    assert result["max_psi"] < 0.1
    assert {r["feature"] for r in result["features"]} == set(features)
    numeric = next(r for r in result["features"] if r["feature"] == "Income")
    categorical = next(r for r in result["features"] if r["feature"] == "Home")
    assert numeric["test"] == "ks" and categorical["test"] == "chi2"
    assert all(r["p_value"] > 0.001 for r in result["features"])


def test_older_applicants_drift_in_age_first(credit, features, caplog):
    reference, _ = halves(credit)
    older = credit[credit["Age"] > 45]
    with caplog.at_level(logging.WARNING, logger="model_trainer.evaluation.drift"):
        result = report(reference, older, features)
    first = result["features"][0]
    assert first["feature"] == "Age" and first["drifted"] and first["significant"]
    assert first["psi"] > 1 and first["p_value"] < 1e-10
    assert result["drifted"] and "Age" in result["drifted_features"]
    assert result["features"] == sorted(result["features"], key=lambda r: -r["psi"])
    assert "Data drift" in caplog.text and "Age" in caplog.text


def test_values_beyond_the_training_range_fall_in_the_open_end_bin(credit):
    reference = credit["Income"]
    richer = credit["Income"] * 10
    result = drift.feature_drift("Income", "numeric", reference, richer, SETTINGS)
    last_bin = next(b for b in result["bins"] if b["bin"].startswith(">"))
    assert last_bin["current"] > 0.8 and last_bin["reference"] == pytest.approx(0.1, abs=0.03)
    assert result["drifted"]


def test_unseen_categories_and_new_missing_values_are_bins_of_their_own(credit):
    reference = credit["Home"]
    current = reference.copy()
    current.iloc[:300] = "castle"
    current.iloc[300:600] = None
    result = drift.feature_drift("Home", "categorical", reference, current, SETTINGS)
    shares = {b["bin"]: b for b in result["bins"]}
    assert shares[drift.OTHER]["current"] == pytest.approx(300 / len(credit))
    assert shares[drift.MISSING]["current"] > shares[drift.MISSING]["reference"]
    assert result["current_missing"] > result["reference_missing"]
    assert result["statistic"] > 0 and result["p_value"] < 0.01


def test_a_category_read_as_a_number_or_as_text_is_the_same_category():
    as_numbers = pd.Series([1, 2, 2, 3] * 20)
    as_text = as_numbers.astype(str)
    result = drift.feature_drift("level", "categorical", as_numbers, as_text, SETTINGS)
    assert result["psi"] == pytest.approx(0.0)


def test_predictions_are_compared_beside_the_features(credit, features):
    reference, current = halves(credit)
    predictions = (reference["Status"], current["Status"].where(current["Age"] > 30, "bad"))
    result = report(reference, current, features, predictions)
    assert result["prediction"]["feature"] == drift.PREDICTION
    assert result["prediction"]["psi"] > 0.05


def test_datetime_and_text_columns_are_listed_as_not_compared():
    chicago = pd.read_csv(BENCH / "chicago" / "train.csv")
    features = infer_feature_types(chicago, "ridership")["columns"]
    assert features["date"]["type"] == "datetime"
    result = report(*halves(chicago), features)
    assert result["not_compared"] == ["date"]
    assert "date" not in {r["feature"] for r in result["features"]}


def test_drift_is_skipped_with_a_warning_without_a_reference_or_with_too_few_rows(
    credit, features, tmp_path, caplog
):
    missing, reason = drift.load_split(tmp_path, "train", "2026-01-01T00.00.00.000Z")
    assert missing is None and "is not on this machine" in reason
    unknown, why = drift.load_split(tmp_path, "train", None)
    assert unknown is None and "no save version" in why
    with caplog.at_level(logging.WARNING, logger="model_trainer.evaluation.drift"):
        skipped = drift.drift_report(
            None, reason, credit, features, None, "classification", SETTINGS
        )
        few = report(credit, credit.head(5), features)
    assert skipped["skipped"] == reason and skipped["features"] == []
    assert "too few" in few["skipped"]
    assert caplog.text.count("Drift not measured") == 2


def test_the_training_split_of_the_models_save_version_is_the_reference(credit, tmp_path):
    version = "2026-01-01T00.00.00.000Z"
    folder = tmp_path / "train_split.parquet" / version
    folder.mkdir(parents=True)
    credit.head(100).to_parquet(folder / "train_split.parquet")
    reference, source = drift.load_split(tmp_path, "train", version)
    assert len(reference) == 100 and source.endswith(f"{version}/train_split.parquet")


def test_the_report_is_plain_json(credit, features):
    reference, current = halves(credit)
    result = report(reference, current, features, (reference["Status"], current["Status"]))
    assert json.loads(json.dumps(result)) == result


def test_a_small_sample_of_the_same_data_has_not_drifted():
    """69 test rows of penguins against their 206 training rows: with 10 bins PSI would pass 0.2
    on noise alone; fewer bins on fewer rows keep it honest."""
    train = pd.read_csv(BENCH / "penguins" / "train.csv")
    test = pd.read_csv(BENCH / "penguins" / "test.csv")
    features = infer_feature_types(train, "species")["columns"]
    result = report(train, test, features)
    assert result["drifted_features"] == [] and result["max_psi"] < 0.2
    assert all(len(r["bins"]) <= 69 // SETTINGS["min_bin_rows"] + 1 for r in result["features"])


def test_the_plots_show_psi_first_then_predictions_then_the_most_drifted(credit, features):
    reference, _ = halves(credit)
    older = credit[credit["Age"] > 45]
    result = report(reference, older, features, (reference["Status"], older["Status"]))
    figures = drift_figures(result, top=2)
    plt.close("all")
    assert list(figures) == ["00_psi.png", "01_prediction.png", "02_Age.png", "03_Marital.png"]
    assert drift_figures({**result, "features": [], "prediction": None}, top=2) == {}


def test_the_html_report_says_why_drift_was_not_measured(credit, features):
    skipped = drift.drift_report(
        None, "no split here", credit, features, None, "classification", SETTINGS
    )
    html = render_drift_html(
        drift=skipped,
        model={"source": "m.joblib", "target": "Status", "task": "classification"},
        predictions={"data": "new.csv", "rows": 3, "summary": {"predicted_share_bad": 0.5}},
        figures={},
    )
    assert "Drift not measured: no split here." in html
    assert "new.csv (3 rows scored)" in html
