"""Hold-out splits and CV folds follow the data's structure: classes, time and groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.table import leak_audit
from model_trainer.table.cv_strategy import choose_cv
from model_trainer.table.splitting import cv_splits, split_holdout
from tests.conftest import BENCH

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
DIAMONDS = BENCH / "diamonds" / "train.csv"
CLASSIFICATION = {"type": "classification", "classes": ["bad", "good"]}
REGRESSION = {"type": "regression"}
SPLIT = {"validation_fraction": 0.1, "test_fraction": 0.1, "seed": 42}


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    table = pd.read_csv(CREDIT)
    rng = np.random.default_rng(1)
    days = rng.permutation(len(table))
    return table.assign(
        applied=pd.Timestamp("2015-01-01") + pd.to_timedelta(days, unit="D"),
        customer=np.arange(len(table)) // 4,
    )


@pytest.fixture(scope="module")
def diamonds() -> pd.DataFrame:
    return pd.read_csv(DIAMONDS).sample(2000, random_state=0).reset_index(drop=True)


def _shares(target: pd.Series) -> pd.Series:
    return target.value_counts(normalize=True).sort_index()


def test_splits_80_10_10_without_losing_or_repeating_rows(credit):
    train, validation, test = split_holdout(credit, "Status", CLASSIFICATION, SPLIT)
    assert (len(train), len(validation), len(test)) == (2849, 357, 357)
    indices = [*train.index, *validation.index, *test.index]
    assert sorted(indices) == list(credit.index)


def test_stratifies_the_holdout_splits_for_classification(credit):
    train, validation, test = split_holdout(credit, "Status", CLASSIFICATION, SPLIT)
    overall = _shares(credit["Status"])
    for part in (train, validation, test):
        assert np.allclose(_shares(part["Status"]), overall, atol=0.01)


def test_the_same_seed_gives_the_same_split(credit):
    first = split_holdout(credit, "Status", CLASSIFICATION, SPLIT)
    second = split_holdout(credit, "Status", CLASSIFICATION, SPLIT)
    other = split_holdout(credit, "Status", CLASSIFICATION, {**SPLIT, "seed": 7})
    assert list(first[2].index) == list(second[2].index)
    assert list(first[2].index) != list(other[2].index)


def test_splits_a_regression_table_without_stratifying(diamonds):
    train, validation, test = split_holdout(diamonds, "price", REGRESSION, SPLIT)
    assert (len(train), len(validation), len(test)) == (1600, 200, 200)


def test_with_a_time_column_the_test_split_is_the_last_slice_in_time(credit):
    train, validation, test = split_holdout(
        credit, "Status", CLASSIFICATION, SPLIT, time_column="applied"
    )
    assert (len(train), len(validation), len(test)) == (2851, 356, 356)
    assert train["applied"].max() < validation["applied"].min()
    assert validation["applied"].max() < test["applied"].min()
    assert train["applied"].is_monotonic_increasing


def test_a_time_split_keeps_the_rows_of_one_time_on_one_side(credit):
    """Monthly times: about 300 rows share each, so a cut by position would split a month."""
    monthly = credit.assign(applied=credit["applied"].dt.to_period("M").dt.to_timestamp())
    train, validation, test = split_holdout(
        monthly, "Status", CLASSIFICATION, SPLIT, time_column="applied"
    )
    assert train["applied"].max() < validation["applied"].min()
    assert validation["applied"].max() < test["applied"].min()
    assert len(train) + len(validation) + len(test) == len(credit)
    months = [set(part["applied"]) for part in (train, validation, test)]
    assert not months[0] & months[1] and not months[1] & months[2]
    assert 0.05 < len(test) / len(credit) < 0.15


def test_a_time_split_orders_dates_written_as_text_by_date_not_by_text(credit):
    text = credit.assign(applied=credit["applied"].dt.strftime("%m/%d/%Y"))
    _, _, test = split_holdout(text, "Status", CLASSIFICATION, SPLIT, time_column="applied")
    _, _, expected = split_holdout(credit, "Status", CLASSIFICATION, SPLIT, time_column="applied")
    assert list(test["applied"]) == list(expected["applied"].dt.strftime("%m/%d/%Y"))


@pytest.mark.parametrize(
    ("blank", "said"),
    [(None, "has no usable time in 7 of 3563 rows:"), ("someday", "such as ['someday']")],
)
def test_a_time_split_refuses_rows_without_a_usable_time(credit, blank, said):
    rows = credit.assign(applied=credit["applied"].astype(str).astype(object))
    rows.loc[rows.index[:7], "applied"] = blank
    with pytest.raises(DataValidationError) as caught:
        split_holdout(rows, "Status", CLASSIFICATION, SPLIT, time_column="applied")
    assert "time column 'applied'" in caught.value.message and said in caught.value.message
    assert "Drop the rows without a time, or fill 'applied'" in caught.value.remediation


def test_a_time_split_on_a_single_time_is_refused(credit):
    rows = credit.assign(applied=pd.Timestamp("2020-01-01"))
    with pytest.raises(DataValidationError) as caught:
        split_holdout(rows, "Status", CLASSIFICATION, SPLIT, time_column="applied")
    assert "too few distinct times" in caught.value.message


def test_with_time_and_group_columns_the_split_warns_how_many_groups_straddle_the_cut(
    credit, caplog
):
    with caplog.at_level("WARNING", logger="model_trainer"):
        train, validation, test = split_holdout(
            credit, "Status", CLASSIFICATION, SPLIT, time_column="applied", group_column="customer"
        )
    seen = [set(part["customer"]) for part in (train, validation, test)]
    shared = len((seen[0] & (seen[1] | seen[2])) | (seen[1] & seen[2]))
    assert shared > 0
    assert f"'applied', not by the group column 'customer': {shared} of 891 groups" in caplog.text
    assert train["applied"].max() < validation["applied"].min()


def test_with_a_group_column_no_group_spans_two_splits(credit):
    train, validation, test = split_holdout(
        credit, "Status", CLASSIFICATION, SPLIT, group_column="customer"
    )
    groups = [set(part["customer"]) for part in (train, validation, test)]
    assert not groups[0] & groups[1]
    assert not groups[0] & groups[2]
    assert not groups[1] & groups[2]
    assert len(train) + len(validation) + len(test) == len(credit)
    assert 0.05 < len(test) / len(credit) < 0.15


@pytest.mark.parametrize(
    ("task", "time_column", "group_column", "strategy", "shuffle"),
    [
        (CLASSIFICATION, None, None, "stratified", True),
        (REGRESSION, None, None, "kfold", True),
        (CLASSIFICATION, "applied", None, "timeseries", False),
        (REGRESSION, None, "customer", "group", False),
    ],
)
def test_auto_chooses_cv_from_the_data_structure(
    task, time_column, group_column, strategy, shuffle
):
    cv = choose_cv(task, {"strategy": "auto", "folds": 4}, time_column, group_column)
    assert cv["strategy"] == strategy
    assert cv["shuffle"] is shuffle
    assert cv["folds"] == 4
    assert cv["reason"] != "set by validation.strategy"


def test_a_declared_strategy_wins(credit):
    cv = choose_cv(CLASSIFICATION, {"strategy": "kfold", "folds": 3, "seed": 5}, None, None)
    assert cv["strategy"] == "kfold"
    assert cv["reason"] == "set by validation.strategy"
    assert cv["seed"] == 5


def test_refuses_an_unknown_strategy_listing_the_allowed_ones():
    with pytest.raises(ConfigurationError) as caught:
        choose_cv(CLASSIFICATION, {"strategy": "bootstrap"}, None, None)
    assert "'bootstrap'" in caught.value.message
    assert "auto, kfold, stratified, timeseries, group_timeseries, group, repeated_kfold" in (
        caught.value.remediation
    )


def test_refuses_fewer_than_two_folds():
    with pytest.raises(ConfigurationError) as caught:
        choose_cv(CLASSIFICATION, {"folds": 1}, None, None)
    assert "validation.folds must be at least 2, got 1" in caught.value.message
    assert "2 or more" in caught.value.remediation


def test_refuses_group_cv_without_a_group_column():
    with pytest.raises(ConfigurationError) as caught:
        choose_cv(REGRESSION, {"strategy": "group"}, None, None)
    assert "'group'" in caught.value.message
    assert "dataset.group_column" in caught.value.remediation


def test_refuses_stratified_cv_for_regression():
    with pytest.raises(ConfigurationError) as caught:
        choose_cv(REGRESSION, {"strategy": "stratified"}, None, None)
    assert "'stratified' needs a classification task" in caught.value.message
    assert "kfold" in caught.value.remediation


def test_timeseries_without_a_time_column_takes_the_rows_in_file_order(diamonds):
    cv = choose_cv(REGRESSION, {"strategy": "timeseries"}, None, None)
    assert cv["strategy"] == "timeseries" and "file order" in cv["reason"]
    train, _, test = split_holdout(diamonds, "price", REGRESSION, SPLIT, in_row_order=True)
    assert train.equals(diamonds.iloc[: len(train)].reset_index(drop=True))
    assert test.reset_index(drop=True).equals(diamonds.iloc[-len(test) :].reset_index(drop=True))


def test_stratified_folds_keep_class_proportions_and_cover_every_row(credit):
    cv = choose_cv(CLASSIFICATION, {"folds": 5, "seed": 42}, None, None)
    X, y = credit.drop(columns=["Status"]), credit["Status"]
    folds = cv_splits(cv, X, y)
    assert len(folds) == 5
    held_out = np.concatenate([validation for _, validation in folds])
    assert sorted(held_out) == list(range(len(credit)))
    for train_idx, validation_idx in folds:
        assert not set(train_idx) & set(validation_idx)
        assert np.allclose(_shares(y.iloc[validation_idx]), _shares(y), atol=0.01)


def test_cv_folds_are_repeatable(credit):
    cv = choose_cv(CLASSIFICATION, {"folds": 3, "seed": 42}, None, None)
    X, y = credit.drop(columns=["Status"]), credit["Status"]
    first, second = cv_splits(cv, X, y), cv_splits(cv, X, y)
    for (a_train, a_val), (b_train, b_val) in zip(first, second, strict=True):
        assert np.array_equal(a_val, b_val) and np.array_equal(a_train, b_train)


def test_group_folds_keep_each_group_on_one_side(credit):
    cv = choose_cv(CLASSIFICATION, {"folds": 4}, None, "customer")
    X, y = credit.drop(columns=["Status"]), credit["Status"]
    for train_idx, validation_idx in cv_splits(cv, X, y):
        train_groups = set(X["customer"].iloc[train_idx])
        assert not train_groups & set(X["customer"].iloc[validation_idx])


def test_timeseries_folds_train_on_the_past_and_leave_the_gap(diamonds):
    cv = choose_cv(REGRESSION, {"strategy": "timeseries", "folds": 3, "gap": 10}, None, None)
    X, y = diamonds.drop(columns=["price"]), diamonds["price"]
    folds = cv_splits(cv, X, y)
    assert len(folds) == 3
    for train_idx, validation_idx in folds:
        assert train_idx.max() + 10 < validation_idx.min()


def test_timeseries_folds_cut_on_time_values_and_keep_each_time_on_one_side(diamonds):
    """carat as the time: 2,000 rows, not in carat order, share 173 values."""
    cv = choose_cv(REGRESSION, {"folds": 4, "gap": 10}, "carat", None)
    X, y = diamonds.drop(columns=["price"]), diamonds["price"]
    folds = cv_splits(cv, X, y)
    assert len(folds) == 4
    scored = np.concatenate([validation for _, validation in folds])
    assert len(scored) == len(set(scored)) > len(X) / 2
    for train_idx, validation_idx in folds:
        first_scored = X["carat"].iloc[validation_idx].min()
        assert X["carat"].iloc[train_idx].max() < first_scored
        assert (X["carat"].iloc[train_idx].max() < X["carat"]).sum() >= len(validation_idx) + 10
        assert (X["carat"] < first_scored).sum() >= len(train_idx) + 10  # the gap


def test_time_folds_refuse_rows_without_a_time(diamonds):
    cv = choose_cv(REGRESSION, {"folds": 3}, "carat", None)
    X = diamonds.drop(columns=["price"]).assign(carat=lambda t: t["carat"].mask(t.index < 5))
    with pytest.raises(DataValidationError) as caught:
        cv_splits(cv, X, diamonds["price"])
    assert "'carat' has no usable time in 5 of 2000 rows" in caught.value.message


def test_with_time_and_group_columns_the_cv_reason_says_groups_are_not_kept_apart():
    cv = choose_cv(REGRESSION, {"folds": 3}, "applied", "customer")
    assert cv["strategy"] == "timeseries"
    assert "not by 'customer'" in cv["reason"] and "both sides" in cv["reason"]


SMALL_DATA = {
    "folds": 5,
    "seed": 0,
    "small_data": {"repeated_below": 1000, "repeats": 3, "loo_below": 50},
}


@pytest.mark.parametrize(
    ("task", "n_rows", "metric", "strategy", "folds", "repeats"),
    [
        (CLASSIFICATION, 5000, "roc_auc", "stratified", 5, 1),
        (CLASSIFICATION, 400, "roc_auc", "repeated_stratified", 5, 3),
        (REGRESSION, 400, "rmse", "repeated_kfold", 5, 3),
        (CLASSIFICATION, 40, "log_loss", "loo", 40, 1),
        (REGRESSION, 40, "mae", "loo", 40, 1),
        (CLASSIFICATION, 40, "roc_auc", "repeated_stratified", 5, 3),
    ],
)
def test_few_rows_get_repeated_folds_or_leave_one_out(
    task, n_rows, metric, strategy, folds, repeats
):
    cv = choose_cv(task, SMALL_DATA, None, None, n_rows=n_rows, metric=metric)
    assert (cv["strategy"], cv["folds"], cv["repeats"]) == (strategy, folds, repeats)
    assert str(n_rows) in cv["reason"] or strategy == "stratified"


def test_leave_one_out_is_not_chosen_for_a_metric_undefined_on_one_row():
    cv = choose_cv(CLASSIFICATION, SMALL_DATA, None, None, n_rows=40, metric="roc_auc")
    assert "leave-one-out cannot score roc_auc on one row" in cv["reason"]


def test_refuses_declared_leave_one_out_for_a_metric_undefined_on_one_row():
    with pytest.raises(ConfigurationError) as caught:
        choose_cv(REGRESSION, {"strategy": "loo"}, None, None, n_rows=40, metric="rmse")
    assert "cannot score rmse" in caught.value.message
    assert "accuracy, log_loss, brier, mae" in caught.value.remediation


def test_time_and_group_structure_win_over_small_data():
    cv = choose_cv(CLASSIFICATION, SMALL_DATA, "applied", None, n_rows=40, metric="log_loss")
    assert cv["strategy"] == "timeseries"
    cv = choose_cv(REGRESSION, SMALL_DATA, None, "customer", n_rows=400, metric="rmse")
    assert cv["strategy"] == "group"


def test_repeated_folds_score_every_row_once_per_repeat(credit):
    rows = credit.iloc[:300]
    X, y = rows.drop(columns=["Status"]), rows["Status"]
    cv = choose_cv(CLASSIFICATION, SMALL_DATA, None, None, n_rows=len(rows), metric="roc_auc")
    folds = cv_splits(cv, X, y)
    assert len(folds) == 15
    for repeat in range(3):
        held_out = np.concatenate([v for _, v in folds[repeat * 5 : (repeat + 1) * 5]])
        assert sorted(held_out) == list(range(len(rows)))
    assert not np.array_equal(folds[0][1], folds[5][1])  # each repeat shuffles anew


def test_leave_one_out_holds_out_each_row_alone(credit):
    rows = credit.iloc[:30]
    cv = choose_cv(CLASSIFICATION, SMALL_DATA, None, None, n_rows=30, metric="accuracy")
    folds = cv_splits(cv, rows.drop(columns=["Status"]), rows["Status"])
    assert [list(v) for _, v in folds] == [[i] for i in range(30)]


def test_unshuffled_kfold_folds_are_contiguous_blocks_and_repeats_refuse_it():
    table = pd.read_csv(BENCH / "diamonds" / "train.csv").head(300)
    X, y = table.drop(columns=["price"]), table["price"]
    task = {"type": "regression"}
    cv = choose_cv(task, {"strategy": "kfold", "folds": 3, "shuffle": False}, len(X), "rmse")
    assert cv["shuffle"] is False
    for _, rows in cv_splits(cv, X, y):
        assert list(rows) == list(range(rows[0], rows[0] + len(rows)))
    shuffled = choose_cv(task, {"strategy": "kfold", "folds": 3}, len(X), "rmse")
    assert any(list(rows) != sorted(rows) or rows[-1] - rows[0] >= len(rows)
               for _, rows in cv_splits(shuffled, X, y))  # fmt: skip
    with pytest.raises(ConfigurationError, match=r"validation\.shuffle is false"):
        choose_cv(task, {"strategy": "repeated_kfold", "shuffle": False}, len(X), "rmse")


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    """60 users with 5 to 40 ratings each, at times that interleave across users."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(5, 41, 60)
    users = np.repeat(np.arange(60), sizes)
    return pd.DataFrame(
        {
            "user": users,
            "time": rng.permutation(len(users)),
            "rating": rng.integers(1, 6, len(users)),
        }
    ).sample(frac=1.0, random_state=0)


def test_group_timeseries_holds_out_each_groups_latest_rows(ratings):
    train, validation, test = split_holdout(
        ratings, "rating", REGRESSION, SPLIT, "time", "user", within_groups=True
    )
    assert len(train) + len(validation) + len(test) == len(ratings)
    assert not set(train.index) & set(test.index)
    for user, rows in ratings.groupby("user"):
        held = test[test["user"] == user]
        assert len(held) == int(0.1 * len(rows) + 0.5)  # rounded half up: 25 rows hold out 3
        if len(held):  # the test rows are the user's latest, validation just before them
            assert held["time"].min() > train.loc[train["user"] == user, "time"].max()
            before = validation.loc[validation["user"] == user, "time"]
            assert before.empty or before.max() < held["time"].min()
    # one cut in time for everybody would not put 50 users' last rows in test
    assert test["user"].nunique() > 50
    assert test["time"].min() < train["time"].max()
    findings = leak_audit.time_overlap(pd.concat([train, validation]), test, "time", "user")
    assert findings == []
    assert leak_audit.time_overlap(pd.concat([train, validation]), test, "time")


def test_group_timeseries_folds_learn_from_each_groups_past_and_score_its_next_rows(ratings):
    cv = choose_cv(REGRESSION, {"strategy": "group_timeseries", "folds": 4}, "time", "user")
    assert "each group of 'user' is cut in time on its own" in cv["reason"]
    folds = cv_splits(cv, ratings, ratings["rating"])
    assert len(folds) == 4
    previous = 0
    for train_rows, scored_rows in folds:
        train, scored = ratings.iloc[train_rows], ratings.iloc[scored_rows]
        latest = train.groupby("user")["time"].max()
        assert (scored["time"].to_numpy() > scored["user"].map(latest).fillna(-1).to_numpy()).all()
        assert len(train) > previous  # expanding
        previous = len(train)
    assert set(np.concatenate([s for _, s in folds])) | set(folds[0][0]) == set(range(len(ratings)))


def test_group_timeseries_needs_a_time_and_a_group_column(ratings):
    with pytest.raises(ConfigurationError, match="group_timeseries"):
        choose_cv(REGRESSION, {"strategy": "group_timeseries"}, "time", None)
    with pytest.raises(ConfigurationError, match="not both set"):  # before any split is made
        split_holdout(ratings, "rating", REGRESSION, SPLIT, None, "user", within_groups=True)


def test_group_timeseries_keeps_a_groups_rows_of_one_time_on_one_side(ratings):
    tied = ratings.assign(time=ratings["time"] // 200)  # about 10 ratings per user and time
    train, validation, test = split_holdout(
        tied, "rating", REGRESSION, SPLIT, "time", "user", within_groups=True
    )
    moments = [set(zip(part["user"], part["time"], strict=True)) for part in (train, test)]
    assert len(test) and not moments[0] & moments[1]
    assert leak_audit.time_overlap(pd.concat([train, validation]), test, "time", "user") == []
    cv = choose_cv(REGRESSION, {"strategy": "group_timeseries", "folds": 3}, "time", "user")
    for fit_rows, scored_rows in cv_splits(cv, tied, tied["rating"]):
        fit, scored = tied.iloc[fit_rows], tied.iloc[scored_rows]
        seen = set(zip(fit["user"], fit["time"], strict=True))
        assert not seen & set(zip(scored["user"], scored["time"], strict=True))


def test_group_timeseries_refuses_rows_without_a_group(ratings):
    gaps = ratings.assign(user=ratings["user"].astype(float).mask(ratings.index < 5))
    with pytest.raises(DataValidationError, match="'user' has 5 missing values"):
        split_holdout(gaps, "rating", REGRESSION, SPLIT, "time", "user", within_groups=True)
