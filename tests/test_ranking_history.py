"""A ranker that knows each user's history with each item (`dataset.item_column`): the history
columns, their cross-fitting, and a ranking that beats one without them on later rows of known
users, in a world where taste is not in any column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.models.estimators import make_pipeline
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.tasks.detection import detect_task
from model_trainer.tasks.ranking import HISTORY_COLUMNS, GroupItemHistory, ranking_metrics
from tests.conftest import ROOT

MODEL = yaml.safe_load((ROOT / "conf/base/parameters_model_configuration.yml").read_text())["model"]


def taste_world(users: int = 150, items: int = 120, per_user: int = 40, seed: int = 0):
    """Each user likes one hidden genre of items; relevance 0..4 = taste + quality + noise.
    Each user's last quarter of rows (by time) is held out."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(0, 4, items)
    quality = rng.normal(0, 0.6, items)
    favourite = rng.integers(0, 4, users)
    rows = []
    for user in range(users):
        rated = rng.choice(items, per_user, replace=False)
        liked = (genre[rated] == favourite[user]) * 2.0
        relevance = np.clip(
            np.round(1 + liked + quality[rated] + rng.normal(0, 0.5, per_user)), 0, 4
        )
        rows.append(
            pd.DataFrame(
                {
                    "user": f"u{user}",
                    "item": [f"i{i}" for i in rated],
                    "price": np.round(10 + quality[rated] + rng.normal(0, 1, per_user), 2),
                    "time": np.arange(per_user),
                    "relevance": relevance,
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    later = table["time"] >= per_user * 3 // 4
    return table[~later].reset_index(drop=True), table[later].reset_index(drop=True)


def test_the_history_columns_are_cross_fitted_on_training_rows_and_read_whole_after():
    train, held_out = taste_world()
    history = GroupItemHistory("user", "item")
    crossed = history.fit_transform(train, train["relevance"])
    assert list(crossed.columns[-3:]) == list(HISTORY_COLUMNS)
    in_sample = history.transform(train)

    def fit(frame: pd.DataFrame, y: pd.Series) -> float:
        return float(np.corrcoef(frame["history_affinity"], y)[0, 1])

    later = fit(history.transform(held_out), held_out["relevance"])
    assert later > 0.3  # taste is learnt from the other rows of the user
    # rows scored by a history that holds their own answer look far better than later rows;
    # cross-fitted ones look as later rows do, which is what the ranker must learn from
    assert fit(in_sample, train["relevance"]) > later + 0.2
    assert abs(fit(crossed, train["relevance"]) - later) < 0.15
    assert (in_sample["history_group_rows"] == 30).all()
    # about a fifth of the users get no history of their own, as a new user at predict time
    cold = crossed["history_group_rows"] == 0
    assert 0.1 < train.loc[cold, "user"].nunique() / train["user"].nunique() < 0.3
    assert (crossed.loc[cold, "history_affinity"] == 0).all()
    assert crossed.loc[cold, "history_item_bias"].abs().sum() > 0  # the items' from the others


def test_an_unseen_user_or_item_has_no_history_and_a_missing_column_is_named():
    train, _ = taste_world(users=20, items=30, per_user=12)
    history = GroupItemHistory("user", "item").fit(train, train["relevance"])
    new = pd.DataFrame({"user": ["u0", "stranger"], "item": ["never seen", "i1"], "price": 1.0})
    columns = history.transform(new)
    assert columns.loc[0, ["history_item_bias", "history_affinity"]].tolist() == [0.0, 0.0]
    assert columns.loc[1, ["history_affinity", "history_group_rows"]].tolist() == [0.0, 0.0]
    with pytest.raises(DataValidationError, match=r"\['item'\]"):
        history.transform(new.drop(columns=["item"]))


def ranker(train: pd.DataFrame, task: dict, item_column: str | None):
    feature_types = infer_feature_types(
        train, "relevance", declared={"user": "drop", "item": "categorical", "time": "drop"}
    )
    ranking = {
        "group_column": "user",
        "item_column": item_column,
        "relevance_values": task["relevance_values"],
    }
    pipeline = make_pipeline(
        MODEL["algorithms"], "lightgbm", "ranking", {"n_estimators": 100}, feature_types,
        MODEL["encoding"], 0, ranking=ranking,
    )  # fmt: skip
    return pipeline.fit(train.drop(columns=["relevance"]), train["relevance"])


def test_a_ranker_with_the_users_history_ranks_their_later_rows_better():
    train, held_out = taste_world()
    task = detect_task(train["relevance"], {"type": "ranking"}, train["user"], item=train["item"])
    assert task["item_column"] == "item"

    def ndcg(item_column: str | None) -> float:
        scores = ranker(train, task, item_column).predict(held_out.drop(columns=["relevance"]))
        return ranking_metrics(held_out["relevance"], scores, held_out["user"], task)["ndcg"]

    # without the history the ranker knows each item's usual relevance, not who likes it
    assert ndcg("item") > ndcg(None) + 0.05


def test_an_item_column_is_refused_outside_ranking_or_when_it_is_the_group():
    train, _ = taste_world(users=10, items=20, per_user=8)
    with pytest.raises(ConfigurationError, match="not ranking"):
        detect_task(train["relevance"], {"type": "regression"}, item=train["item"])
    with pytest.raises(ConfigurationError, match="also the group column"):
        detect_task(train["relevance"], {"type": "ranking"}, train["user"], item=train["user"])
    gaps = train["item"].mask(train.index < 3)
    with pytest.raises(DataValidationError, match="3 missing values"):
        detect_task(train["relevance"], {"type": "ranking"}, train["user"], item=gaps)


def test_ids_sent_as_text_or_floats_are_the_training_users_and_odd_inputs_do_not_crash():
    train, _ = taste_world(users=20, items=30, per_user=12)
    numbered = train.assign(user=train["user"].str[1:].astype(int))
    history = GroupItemHistory("user", "item").fit(numbered, numbered["relevance"])
    rows = numbered.head(3)
    expected = history.transform(rows)["history_affinity"].to_numpy()
    for sent in (rows["user"].astype(str), rows["user"].astype(float), rows["user"].astype(object)):
        got = history.transform(rows.assign(user=sent.to_numpy()))["history_affinity"]
        np.testing.assert_allclose(got, expected)
    assert (history.transform(rows.assign(user="not a user"))["history_group_rows"] == 0).all()
    # one relevance for every row leaves nothing to factorise; one row nothing to cross-fit
    constant = GroupItemHistory("user", "item").fit_transform(train, np.ones(len(train)))
    assert (constant["history_affinity"] == 0).all()
    single = GroupItemHistory("user", "item").fit_transform(train.head(1), [3.0])
    assert single[list(HISTORY_COLUMNS)].to_numpy().tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(ConfigurationError, match="history_affinity"):
        GroupItemHistory("user", "item").fit(train.assign(history_affinity=1.0), train["relevance"])


def test_a_rows_twin_of_the_same_user_and_item_does_not_bring_its_answer_into_its_history():
    """Re-ratings or repeated clicks: the cross-fitting folds hold whole (user, item) pairs."""
    rng = np.random.default_rng(0)
    once = pd.DataFrame(
        {"user": rng.integers(0, 80, 3000), "item": rng.integers(0, 150, 3000)}
    ).drop_duplicates()
    noise = rng.normal(0, 1, len(once))
    twice = pd.concat([once.assign(relevance=noise), once.assign(relevance=noise)])
    crossed = GroupItemHistory("user", "item").fit_transform(twice, twice["relevance"])
    # a relevance of pure noise: nothing about a row's answer may be read from its history
    assert abs(np.corrcoef(crossed["history_affinity"], twice["relevance"])[0, 1]) < 0.1


def test_degenerate_histories_give_zeros_not_errors():
    frame = pd.DataFrame({"user": [0, 0, 1, 1, 0], "item": [1, 0, 1, 1, 0]})
    for seed in range(6):  # every cell mean 0 in some fold: nothing for the factors to explain
        GroupItemHistory("user", "item", random_state=seed).fit_transform(
            frame, [2.0, 2.0, 1.0, 1.0, 0.0]
        )
    missing = pd.DataFrame({"user": [np.nan, np.nan], "item": [1.0, 2.0]})
    history = GroupItemHistory("user", "item")
    assert (history.fit_transform(missing, [1.0, 2.0])[list(HISTORY_COLUMNS)] == 0).all().all()
    assert (history.transform(missing.assign(user=1.0))["history_affinity"] == 0).all()


def test_the_history_settings_come_from_conf_and_a_wrong_key_is_named():
    train, _ = taste_world(users=20, items=30, per_user=12)
    assert MODEL["group_item_history"]["factors"] == 16
    feature_types = infer_feature_types(train, "relevance", declared={"user": "drop"})
    ranking = {"group_column": "user", "item_column": "item", "relevance_values": None}

    def built(history: dict):
        return make_pipeline(
            MODEL["algorithms"], "ridge", "ranking", {}, feature_types, MODEL["encoding"], 0,
            ranking={**ranking, "history": history},
        )  # fmt: skip

    step = built({"factors": 4, "cold_share": 0.0}).named_steps["preprocess"].steps[0][1]
    assert (step.factors, step.cold_share, step.shrinkage) == (4, 0.0, 10.0)
    with pytest.raises(
        ConfigurationError, match=r"model.group_item_history has unknown keys \['rank'\]"
    ):
        built({"rank": 4})
