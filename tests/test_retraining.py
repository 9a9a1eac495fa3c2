"""Champion and challenger, in-process: the champion's configuration fitted on new rows, both
judged on the same held-out new rows, promotion by the margin, and "the latest model" passing
over a challenger that lost. A real model trained as the pipelines train it, on real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from model_trainer.errors import ConfigurationError
from model_trainer.evaluation import holdout as evaluation
from model_trainer.models.calibration import CalibratedClassifier, Sigmoid, calibrated
from model_trainer.models.ensemble import FoldBag
from model_trainer.serving.integrity import joblib_file
from model_trainer.serving.model_store import StoredModel, load_stored_model
from model_trainer.training import retraining
from tests.trained import stored_model, train_as_the_pipelines_do

ROOT = Path(__file__).resolve().parents[1]
CREDIT = pd.read_csv(ROOT / "data" / "01_raw" / "credit_data.csv")
SETTINGS = {
    "validation_fraction": 0.1,
    "test_fraction": 0.25,
    "time_column": None,
    "seed": 0,
    "min_test_rows": 30,
    "margin": 0.01,
    "bootstrap": 100,
}


@pytest.fixture(scope="module")
def champion() -> StoredModel:
    """Logistic regression on 1,500 credit applications."""
    return stored_model(CREDIT.iloc[:1500].reset_index(drop=True), "Status", "logistic_regression")[
        0
    ]


def changed_world(rows: pd.DataFrame) -> pd.DataFrame:
    """The same applicants judged by a new rule: the amount asked against the price decides."""
    noise = np.random.default_rng(0).normal(0, 0.1, len(rows))
    score = rows["Amount"] / rows["Price"] + noise
    return rows.assign(Status=np.where(score > np.quantile(score, 0.7), "bad", "good"))


def retrain(champion: StoredModel, new: pd.DataFrame, **settings) -> tuple[dict, object]:
    settings = {**SETTINGS, **settings}
    train, validation, test = retraining.split_new_rows(new, champion.card, settings)
    challenger, _ = retraining.refit(
        champion.model, champion.card, pd.concat([train, validation], ignore_index=True)
    )
    return retraining.compare(champion, challenger, test, settings), challenger


def test_a_challenger_that_learned_a_changed_world_is_promoted(champion):
    new = changed_world(CREDIT.iloc[1500:].reset_index(drop=True))

    comparison, challenger = retrain(champion, new)

    assert repr(clone(challenger)) == repr(clone(champion.model))  # the champion's configuration
    scores = comparison["metrics"]
    assert comparison["metric"] == "roc_auc"
    assert scores["challenger"]["roc_auc"] > scores["champion"]["roc_auc"] + 0.1
    assert comparison["improvement"] == pytest.approx(
        scores["challenger"]["roc_auc"] / scores["champion"]["roc_auc"] - 1
    )
    assert comparison["promoted"] and "reaches the margin" in comparison["reason"]
    assert comparison["challenger_win_share"] > 0.95
    assert comparison["n_test_rows"] == round(len(new) * 0.25)


def test_the_champion_is_kept_unless_the_challenger_wins_by_the_margin(champion):
    same_world = CREDIT.iloc[1500:].reset_index(drop=True)

    comparison, _ = retrain(champion, same_world, margin=0.05)

    assert not comparison["promoted"]
    assert comparison["improvement"] < 0.05
    assert "does not reach the margin of 5.00%" in comparison["reason"]
    # on one world, neither model wins most resamples by much: the share says they are level
    assert 0.05 < comparison["challenger_win_share"] < 0.95


def test_an_error_metric_is_improved_by_going_down(champion):
    card = {**champion.card, "metric": "log_loss"}
    log_loss_champion = StoredModel(model=champion.model, card=card, source="log_loss champion")
    new = changed_world(CREDIT.iloc[1500:].reset_index(drop=True))

    comparison, _ = retrain(log_loss_champion, new)

    scores = comparison["metrics"]
    assert not comparison["greater_is_better"]
    assert scores["challenger"]["log_loss"] < scores["champion"]["log_loss"]
    assert comparison["improvement"] > 0 and comparison["promoted"]


def test_rows_a_model_was_trained_on_are_left_out_while_enough_remain():
    test = CREDIT.iloc[:100]
    champion_saw = pd.Series([True] * 30 + [False] * 70, index=test.index)
    challenger_saw = pd.Series([False] * 20 + [True] * 20 + [False] * 60, index=test.index)
    seen = {"champion": champion_saw, "challenger": challenger_saw}

    judged, overlap = retraining.judged_rows(test, seen, minimum=50)
    assert len(judged) == 60 and not (champion_saw | challenger_saw)[judged.index].any()
    assert overlap == {"champion": 30, "challenger": 20, "left_out": 40}

    judged, overlap = retraining.judged_rows(test, seen, minimum=61)
    assert len(judged) == 100 and overlap["left_out"] == 0

    judged, overlap = retraining.judged_rows(test, {"champion": None, "challenger": None}, 61)
    assert len(judged) == 100 and overlap == {"champion": None, "challenger": None, "left_out": 0}


def test_a_ranking_loses_whole_groups_not_rows_of_them():
    test = pd.DataFrame({"query": [1, 1, 1, 2, 2, 3, 3, 3], "x": range(8)})
    seen = pd.Series([False, True, False, False, False, False, False, False], index=test.index)

    judged, overlap = retraining.judged_rows(
        test, {"champion": seen}, minimum=2, group_column="query"
    )

    assert sorted(judged["query"].unique()) == [2, 3] and overlap["left_out"] == 3


def test_rows_are_matched_whatever_dtype_they_were_read_with():
    rows = CREDIT.iloc[:50].reset_index(drop=True)
    read_again = rows.astype({"Seniority": "float64", "Home": "category"})
    read_again.loc[49, "Seniority"] = np.nan  # a missing value: the column reads as floats

    matched = evaluation.rows_in(read_again, rows, ["Seniority", "Home", "Income"])

    assert matched[:49].all() and not matched[49]


def test_with_a_time_column_the_latest_rows_are_held_out(champion):
    new = CREDIT.iloc[1500:2500].reset_index(drop=True)
    new["month"] = pd.date_range("2020-01-01", periods=len(new), freq="D").to_period("M")
    new["month"] = new["month"].astype(str)
    shuffled = new.sample(frac=1, random_state=0)

    train, validation, test = retraining.split_new_rows(
        shuffled, champion.card, {**SETTINGS, "time_column": "month"}
    )

    assert test["month"].min() >= validation["month"].max() >= train["month"].max()
    assert len(train) + len(validation) + len(test) == len(new)

    # a champion validated on each group's latest rows is judged on each group's latest rows
    # (one branch's rows are all older than the other's: one cut in time would test only one)
    grouped = new.assign(branch=np.where(new.index < 500, "older", "newer")).sample(
        frac=1, random_state=0
    )
    setup = {"configuration": {"cv": {"strategy": "group_timeseries", "group_column": "branch"}}}
    card = {**champion.card, "training_setup": setup}
    train, _, test = retraining.split_new_rows(grouped, card, {**SETTINGS, "time_column": "month"})
    assert set(test["branch"]) == {"older", "newer"}
    latest = train.groupby("branch")["month"].max()
    assert (test["month"] >= test["branch"].map(latest)).all()


def test_new_rows_that_cannot_judge_a_challenger_are_refused_with_the_fix(champion):
    new = CREDIT.iloc[1500:2500].reset_index(drop=True)
    with pytest.raises(ConfigurationError, match=r"retrain\.time_column 'when'") as caught:
        retraining.split_new_rows(new, champion.card, {**SETTINGS, "time_column": "when"})
    assert "Seniority" in caught.value.remediation
    with pytest.raises(ConfigurationError, match="Only 25 of the 100 new rows") as caught:
        retraining.split_new_rows(new.head(100), champion.card, SETTINGS)
    assert "retrain.test_fraction" in caught.value.remediation
    with pytest.raises(ConfigurationError, match=r"1 class\(es\) \('good': 400\)"):
        retraining.split_new_rows(new[new["Status"] == "good"].head(400), champion.card, SETTINGS)
    rare = pd.concat([new[new["Status"] == "good"].head(400), new[new["Status"] == "bad"].head(1)])
    with pytest.raises(ConfigurationError, match="'bad': 1"):
        retraining.split_new_rows(rare, champion.card, SETTINGS)
    clustering = {**champion.card, "task": "clustering"}
    with pytest.raises(ConfigurationError, match="clustering model has no target"):
        retraining.split_new_rows(new, clustering, SETTINGS)


def test_the_challengers_card_says_where_it_came_from(champion):
    new = changed_world(CREDIT.iloc[1500:].reset_index(drop=True))
    comparison, challenger = retrain(champion, new)
    train = new.iloc[:1000]

    card = retraining.challenger_card(
        champion,
        comparison,
        new,
        train,
        configuration=retraining.champion_configuration(champion.card),
        challenger_classes=challenger.classes_,
        model_sha256=joblib_file(challenger)[1],
        refit_on_all_rows=True,
        data_source="new.csv",
        seed=0,
    )

    assert card["retraining"] == {
        "promoted": True,
        "reason": comparison["reason"],
        "champion": champion.source,
        "configuration": "the champion's configuration",
        "data": "new.csv",
    }
    assert card["test_metrics"] == comparison["metrics"]["challenger"]
    assert card["baseline_metrics"]["champion"] == comparison["metrics"]["champion"]
    assert card["n_rows"] == len(new) and card["model_sha256"] == joblib_file(challenger)[1]
    assert card["input_columns"] == champion.card["input_columns"]
    assert card["algorithm"] == champion.card["algorithm"]
    json.dumps(card)  # the card is saved as JSON


def save_version(models: Path, version: str, model: object, card: dict) -> None:
    """A model and its card in Kedro's versioned layout, as the catalog saves them."""
    for name, content in (
        ("model.joblib", joblib_file(model)[0]),
        ("model_card.json", json.dumps(card).encode()),
    ):
        folder = models / name / version
        folder.mkdir(parents=True)
        (folder / name).write_bytes(content)


def test_the_latest_model_passes_over_a_challenger_that_lost(champion, tmp_path):
    def card_of(model: object, promoted: bool | None) -> dict:
        retrained = None if promoted is None else {"promoted": promoted}
        return {**champion.card, "model_sha256": joblib_file(model)[1], "retraining": retrained}

    save_version(
        tmp_path, "2026-01-01T00.00.00.000Z", champion.model, card_of(champion.model, None)
    )
    save_version(
        tmp_path, "2026-02-01T00.00.00.000Z", champion.model, card_of(champion.model, False)
    )
    assert load_stored_model(None, tmp_path).save_version == "2026-01-01T00.00.00.000Z"

    save_version(
        tmp_path, "2026-03-01T00.00.00.000Z", champion.model, card_of(champion.model, True)
    )
    assert load_stored_model(None, tmp_path).save_version == "2026-03-01T00.00.00.000Z"
    lost = tmp_path / "model.joblib" / "2026-02-01T00.00.00.000Z" / "model.joblib"
    assert load_stored_model(str(lost), tmp_path).card["retraining"]["promoted"] is False


def test_only_challengers_that_lost_is_no_model_to_serve(champion, tmp_path):
    card = {**champion.card, "model_sha256": joblib_file(champion.model)[1]}
    save_version(
        tmp_path,
        "2026-02-01T00.00.00.000Z",
        champion.model,
        {**card, "retraining": {"promoted": False}},
    )
    with pytest.raises(ConfigurationError, match=r"only 1 challenger\(s\) not promoted"):
        load_stored_model(None, tmp_path)


def test_a_calibrated_champions_map_is_fitted_again_on_the_new_rows(champion):
    """The map learnt how the champion's probabilities were off on old rows; the challenger's
    are off otherwise. A class absent from the new rows must not break it either."""
    old_rows = CREDIT.iloc[:1500]
    old_map = Sigmoid.fitted(np.tile([[0.9, 0.1]], (10, 1)), np.array([0] * 5 + [1] * 5))
    calibrated_champion = StoredModel(
        model=calibrated(clone(champion.model), old_map).fit(
            old_rows[champion.card["input_columns"]], old_rows["Status"]
        ),
        card=champion.card,
        source="calibrated champion",
    )
    new = changed_world(CREDIT.iloc[1500:].reset_index(drop=True))

    challenger, _ = retraining.refit(calibrated_champion.model, champion.card, new)

    [wrapper] = [s for s in challenger.get_params().values() if isinstance(s, CalibratedClassifier)]
    assert isinstance(wrapper.calibrator, Sigmoid) and wrapper.calibrator.maps != old_map.maps
    proba = challenger.predict_proba(new[champion.card["input_columns"]])[:, 0]
    observed = (new["Status"] == "bad").mean()
    assert abs(proba.mean() - observed) < 0.03  # calibrated on these rows: shares agree


def test_a_fresh_search_needs_the_setup_the_champion_was_searched_with(champion):
    new = CREDIT.iloc[1500:].reset_index(drop=True)
    with pytest.raises(ConfigurationError, match="keeps no training setup") as caught:
        retraining.search_challenger(champion, new.iloc[:800], new.iloc[800:900], {}, {})
    assert "retrain.search to false" in caught.value.remediation


def test_a_fresh_search_takes_the_champions_training_settings(tmp_path, monkeypatch):
    """The conf of the retrain run may have changed since: the search answers for the setup
    the champion was searched with (here no bagging, where this run's conf bags 3 times)."""
    monkeypatch.chdir(tmp_path)  # the study's SQLite storage is written under data/06_models
    table = CREDIT.iloc[:900].reset_index(drop=True)
    trained = train_as_the_pipelines_do(table, "Status", "logistic_regression")
    champion, _ = stored_model(table, "Status", "logistic_regression")
    champion.card["training_setup"] = {
        "task": trained.task,
        "feature_types": trained.feature_types,
        "configuration": trained.configuration,
        "training": {"calibration": "none", "bagging": {"folds": 1}},
    }
    new = CREDIT.iloc[900:1900].reset_index(drop=True)
    this_runs_conf = {"calibration": "none", "bagging": {"folds": 3, "jobs": 1}}

    model, described = retraining.search_challenger(
        champion,
        new.iloc[:800],
        new.iloc[800:],
        {"enabled": False, "storage": f"sqlite:///{tmp_path / 'studies.db'}"},
        this_runs_conf,
    )

    assert not any(isinstance(step, FoldBag) for step in model.get_params(deep=True).values())
    assert described["source"].startswith("a fresh search: 1 trials in study")
    assert described["algorithm"] == "logistic_regression"
