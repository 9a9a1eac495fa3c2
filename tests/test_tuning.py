"""The hyperparameter search: study identity, the conditional space, the portfolio, and a stored
study that resumes up to its trial budget and records what each trial did."""

from __future__ import annotations

import copy
import os
import re
import sqlite3
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from model_trainer.errors import ConfigurationError, ModelTrainerError
from model_trainer.models.ensemble import OutOfFoldPredictions
from model_trainer.pipelines.model_configuration.nodes import configure_model
from model_trainer.search import (
    budget,
    final_model,
    samplers,
    space,
    storage,
    study_predictions,
    trial_records,
    tuning,
)
from model_trainer.search.objective import make_objective
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.tasks.detection import detect_task
from tests.conftest import BENCH

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "data" / "01_raw" / "credit_data.csv"
with (ROOT / "conf" / "base" / "parameters_model_configuration.yml").open() as handle:
    MODEL = yaml.safe_load(handle)["model"]
REGISTRY = MODEL["algorithms"]

TABLE = pd.read_csv(CREDIT).sample(600, random_state=0).reset_index(drop=True)
X, Y = TABLE.drop(columns=["Status"]), TABLE["Status"]
TASK = detect_task(Y, {})
FEATURE_TYPES = infer_feature_types(TABLE, "Status")
FOLDS = 3


def model_settings(algorithms: list[str], **overrides: dict) -> dict:
    """The conf's model section with tiny LightGBM models (search space and portfolio), so a
    trial takes a fraction of a second; `overrides` replace whole registry entries' keys."""
    model = copy.deepcopy(MODEL)
    model["algorithm"] = algorithms
    model["algorithms"]["lightgbm"]["search_space"] = {
        "n_estimators": {"type": "int", "low": 5, "high": 20},
        "num_leaves": {"type": "int", "low": 4, "high": 16, "log": True},
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
    }
    model["algorithms"]["lightgbm"]["portfolio"] = [
        {"n_estimators": 10, "num_leaves": 8, "learning_rate": 0.1},
        {"n_estimators": 20, "num_leaves": 4, "learning_rate": 0.2},
    ]
    for name, entry in overrides.items():
        model["algorithms"][name].update(entry)
    return model


def configuration(algorithms: list[str], **overrides: dict) -> dict:
    """A model_configuration as the model_configuration pipeline builds it."""
    return configure_model(
        TASK,
        TABLE,
        TABLE.iloc[:0],
        "auto",
        model_settings(algorithms, **overrides),
        {"strategy": "auto", "folds": FOLDS, "seed": 0},
        {},
        0,
    )


def search(config: dict, settings: dict, study_name: str = "test_study") -> optuna.Study:
    return tuning.run_study(
        X,
        Y,
        task=TASK,
        feature_types=FEATURE_TYPES,
        configuration=config,
        settings=settings,
        study_name=study_name,
    )


TWO_FAMILIES = configuration(["lightgbm", "logistic_regression"])
# C <= 0 is refused by LogisticRegression.fit, so every logistic regression trial fails.
BROKEN_LOGISTIC = {
    "logistic_regression": {
        "search_space": {"C": {"type": "categorical", "choices": [-1.0]}},
        "portfolio": [{"C": -1.0}],
    }
}


@pytest.fixture(scope="module")
def three_trials() -> optuna.Study:
    return search(TWO_FAMILIES, {"n_trials": 3, "sampler": "random", "pruner": "none"})


# --- study identity -----------------------------------------------------------------------------


def identity(**changes) -> dict:
    base = {
        "data": tuning.data_fingerprint(TABLE),
        "target": "Status",
        "task": TASK["type"],
        "metric": TWO_FAMILIES["metric"],
        "space": TWO_FAMILIES["search_space"],
        "cv": TWO_FAMILIES["cv"],
    }
    return {**base, **changes}


def test_the_same_identity_always_names_the_same_study():
    first = tuning.study_name_for(**identity())
    reordered = dict(reversed(list(identity().items())))
    reordered["space"] = dict(reversed(list(reordered["space"].items())))
    assert tuning.study_name_for(**reordered) == first
    assert tuning.study_name_for(**copy.deepcopy(identity())) == first
    assert first.startswith("model_trainer_")


def test_a_different_data_metric_or_space_names_a_different_study():
    first = tuning.study_name_for(**identity())
    other_data = tuning.data_fingerprint(TABLE.iloc[1:])
    narrower = copy.deepcopy(TWO_FAMILIES["search_space"])
    narrower["lightgbm"]["num_leaves"]["high"] = 8
    names = {
        first,
        tuning.study_name_for(**identity(data=other_data)),
        tuning.study_name_for(**identity(metric="log_loss")),
        tuning.study_name_for(**identity(space=narrower)),
    }
    assert len(names) == 4


def test_the_data_fingerprint_changes_when_one_cell_changes():
    changed = TABLE.copy()
    changed.loc[17, "Income"] = changed.loc[17, "Income"] + 1
    assert tuning.data_fingerprint(TABLE.copy()) == tuning.data_fingerprint(TABLE)
    assert tuning.data_fingerprint(changed) != tuning.data_fingerprint(TABLE)


def test_the_data_fingerprint_changes_when_a_column_is_renamed():
    renamed = TABLE.rename(columns={"Income": "income"})
    assert tuning.data_fingerprint(renamed) != tuning.data_fingerprint(TABLE)


# --- the conditional space and the portfolio ----------------------------------------------------


def test_the_portfolio_tries_each_familys_first_configuration_before_any_second_one():
    trials = space.portfolio_trials(["lightgbm", "xgboost", "logistic_regression"], REGISTRY)
    assert [t["algorithm"] for t in trials] == [
        "lightgbm",
        "xgboost",
        "logistic_regression",
        "lightgbm",
    ]
    assert (
        trials[0]["lightgbm__learning_rate"]
        == REGISTRY["lightgbm"]["portfolio"][0]["learning_rate"]
    )
    assert (
        trials[3]["lightgbm__learning_rate"]
        == REGISTRY["lightgbm"]["portfolio"][1]["learning_rate"]
    )
    assert trials[2] == {
        "algorithm": "logistic_regression",
        "logistic_regression__C": 1.0,
        "logistic_regression__class_weight": None,
    }


def test_a_single_family_portfolio_has_no_algorithm_choice():
    trials = space.portfolio_trials(["lightgbm"], REGISTRY)
    assert len(trials) == len(REGISTRY["lightgbm"]["portfolio"])
    for trial, config in zip(trials, REGISTRY["lightgbm"]["portfolio"], strict=True):
        assert "algorithm" not in trial
        assert trial == {f"lightgbm__{k}": v for k, v in config.items()}


def test_suggested_parameters_are_named_by_algorithm_and_split_back():
    spaces = TWO_FAMILIES["search_space"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        algorithm, params = space.suggest(trial, TWO_FAMILIES["algorithms"], spaces)
        seen.add(algorithm)
        assert set(params) == set(spaces[algorithm])
        assert trial.params["algorithm"] == algorithm
        assert set(trial.params) - {"algorithm"} == {f"{algorithm}__{k}" for k in params}
        assert space.split_params(trial.params, TWO_FAMILIES["algorithms"]) == (algorithm, params)
        study.tell(trial, 0.5)
    assert seen == {"lightgbm", "logistic_regression"}


def test_a_single_family_search_has_no_algorithm_parameter():
    spaces = {"lightgbm": TWO_FAMILIES["search_space"]["lightgbm"]}
    trial = optuna.create_study().ask()
    algorithm, params = space.suggest(trial, ["lightgbm"], spaces)
    assert algorithm == "lightgbm"
    assert "algorithm" not in trial.params
    assert space.split_params(trial.params, ["lightgbm"]) == ("lightgbm", params)


def test_an_unknown_search_space_type_is_a_configuration_error():
    trial = optuna.create_study().ask()
    with pytest.raises(ConfigurationError) as caught:
        space.suggest(trial, ["ridge"], {"ridge": {"alpha": {"type": "loguniform"}}})
    assert "model.algorithms.ridge.search_space.alpha" in caught.value.message


@pytest.mark.parametrize("name", ["annealing", "TPE", ""])
def test_an_unknown_sampler_is_a_configuration_error(name):
    with pytest.raises(ConfigurationError) as caught:
        samplers.make_sampler(name, 0)
    assert f"'{name}'" in caught.value.message
    assert "tpe" in caught.value.remediation and "random" in caught.value.remediation


@pytest.mark.parametrize("name", ["asha", "Median"])
def test_an_unknown_pruner_is_a_configuration_error(name):
    with pytest.raises(ConfigurationError) as caught:
        samplers.make_pruner(name)
    assert f"'{name}'" in caught.value.message
    assert "median" in caught.value.remediation and "hyperband" in caught.value.remediation


# --- the stored, resumable study ----------------------------------------------------------------


@pytest.mark.slow
def test_a_stored_study_resumes_up_to_its_total_trial_budget(tmp_path):
    database = tmp_path / "optuna" / "studies.db"  # the folder does not exist yet
    settings = {"n_trials": 2, "storage": f"sqlite:///{database}", "sampler": "tpe"}
    portfolio = space.portfolio_trials(TWO_FAMILIES["algorithms"], TWO_FAMILIES["registry"])

    first = search(TWO_FAMILIES, settings, "resumable")
    assert database.is_file()
    assert [t.state for t in first.trials] == [TrialState.COMPLETE] * 2
    assert [t.params for t in first.trials] == portfolio[:2]
    first_values = [t.value for t in first.trials]

    second = search(TWO_FAMILIES, {**settings, "n_trials": 3}, "resumable")
    assert len(second.trials) == 3
    assert [t.value for t in second.trials[:2]] == first_values
    assert second.trials[2].state == TrialState.COMPLETE

    third = search(TWO_FAMILIES, {**settings, "n_trials": 3}, "resumable")
    assert len(third.trials) == 3, "a finished study gets no more trials"
    stored = optuna.load_study(study_name="resumable", storage=settings["storage"])
    assert len(stored.trials) == 3
    with sqlite3.connect(database) as connection:
        names = connection.execute("SELECT study_name FROM studies").fetchall()
    assert names == [("resumable",)]


def test_a_stored_study_names_its_metric_and_what_it_was_run_on_and_trials_show_the_clock(
    tmp_path, caplog
):
    settings = {"n_trials": 2, "storage": f"sqlite:///{tmp_path / 's.db'}", "timeout": 600}
    with caplog.at_level("INFO", logger="model_trainer.search"):
        search(TWO_FAMILIES, settings, "described")
    stored = optuna.load_study(study_name="described", storage=settings["storage"])
    assert stored.metric_names == [TWO_FAMILIES["metric"]]  # what optuna-dashboard shows
    attrs = stored.user_attrs
    assert (attrs["target"], attrs["task"], attrs["rows"]) == ("Status", "classification", len(X))
    assert attrs["features"] == list(X.columns) and attrs["cv"].startswith(f"{FOLDS}-fold")
    assert "value" in trial_records.trials_table(stored).columns  # not Optuna's value_<metric name>
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Trial ")]
    assert len(lines) == 2
    assert all(re.search(r"; \d+ s elapsed, \d+ s of the budget left$", line) for line in lines)


@pytest.mark.slow
def test_each_trial_records_one_score_per_fold_and_its_worker(three_trials):
    for trial in three_trials.trials:
        scores = trial.user_attrs["fold_scores"]
        assert len(scores) == FOLDS
        assert all(0.5 < s <= 1.0 for s in scores)  # roc_auc of a model that learned something
        assert trial.value == pytest.approx(sum(scores) / FOLDS)
        host, pid = trial.user_attrs["worker"].rsplit(":", 1)
        assert host and pid.isdigit()
        assert trial.user_attrs["algorithm"] in TWO_FAMILIES["algorithms"]


def test_a_trial_whose_model_cannot_be_fitted_fails_without_stopping_the_search():
    config = configuration(["lightgbm", "logistic_regression"], **BROKEN_LOGISTIC)
    study = search(config, {"n_trials": 2, "pruner": "none"})
    by_algorithm = {t.user_attrs["algorithm"]: t for t in study.trials}
    assert by_algorithm["lightgbm"].state == TrialState.COMPLETE
    failed = by_algorithm["logistic_regression"]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["error"].startswith("InvalidParameterError")
    assert "'C'" in failed.user_attrs["error"]


def test_a_search_where_no_trial_completes_is_an_error_naming_the_study():
    config = configuration(["logistic_regression"], **BROKEN_LOGISTIC)
    with pytest.raises(ModelTrainerError) as caught:
        search(config, {"n_trials": 2, "pruner": "none"}, "doomed_study")
    assert "No trial of study 'doomed_study' completed" in caught.value.message
    assert "'C'" in caught.value.message  # the trials' error is in the message
    assert caught.value.remediation


def test_with_tuning_disabled_one_trial_runs_and_nothing_is_stored(tmp_path):
    database = tmp_path / "studies.db"
    settings = {"enabled": False, "n_trials": 10, "storage": f"sqlite:///{database}"}
    study = search(TWO_FAMILIES, settings)
    assert len(study.trials) == 1
    assert study.trials[0].state == TrialState.COMPLETE
    # the first portfolio configuration is the single trial
    portfolio = space.portfolio_trials(TWO_FAMILIES["algorithms"], TWO_FAMILIES["registry"])
    assert study.trials[0].params == portfolio[0]
    assert not database.exists()


def test_with_tuning_disabled_the_summary_says_the_study_is_in_memory(tmp_path):
    settings = {"enabled": False, "storage": f"sqlite:///{tmp_path / 'studies.db'}"}
    study = search(TWO_FAMILIES, settings)
    summary = trial_records.summarize_study(study, TWO_FAMILIES, settings)
    assert summary["storage"] == "in-memory"


# --- summaries ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_summary_gives_the_best_trials_parameters_without_prefix(three_trials):
    summary = trial_records.summarize_study(three_trials, TWO_FAMILIES, {})
    best = three_trials.best_trial
    algorithm = best.params["algorithm"]
    assert summary["algorithm"] == algorithm
    assert summary["best_params"] == {
        k.removeprefix(f"{algorithm}__"): v for k, v in best.params.items() if k != "algorithm"
    }
    assert not any("__" in k for k in summary["best_params"])
    assert summary["best_value"] == best.value
    assert summary["direction"] == "maximize"
    assert summary["storage"] == "in-memory"
    assert (summary["n_trials"], summary["n_complete"], summary["n_failed"]) == (3, 3, 0)
    cv = summary["cross_validation"]
    assert cv["folds"] == TWO_FAMILIES["cv"]["folds"] == FOLDS
    assert (cv["distinct_folds"], cv["repeats"]) == (FOLDS, 1)
    assert cv["mean"] == pytest.approx(best.value)
    assert cv["fold_scores"] == best.user_attrs["fold_scores"]
    assert summary["algorithms_tried"] == ["lightgbm", "logistic_regression"]


@pytest.mark.slow
def test_the_trials_table_has_one_row_per_trial_with_its_algorithm(three_trials):
    table = trial_records.trials_table(three_trials)
    assert list(table["number"]) == [0, 1, 2]
    assert list(table["algorithm"]) == [t.user_attrs["algorithm"] for t in three_trials.trials]
    assert (table["duration"] > 0).all()


@pytest.mark.slow
def test_parameter_importances_need_three_complete_trials(three_trials):
    two = search(TWO_FAMILIES, {"n_trials": 2, "pruner": "none"})
    assert trial_records.param_importances(two) == {}
    importances = trial_records.param_importances(three_trials)
    assert importances
    assert set(importances) <= {
        "algorithm",
        *(f"lightgbm__{k}" for k in TWO_FAMILIES["search_space"]["lightgbm"]),
        *(f"logistic_regression__{k}" for k in REGISTRY["logistic_regression"]["search_space"]),
    }
    assert all(v >= 0 for v in importances.values())


# --- secrets ------------------------------------------------------------------------------------


def test_a_password_in_a_storage_url_is_hidden():
    url = "postgresql://optuna:s3cr3t@db.example.com:5432/studies"
    assert storage.redact(url) == "postgresql://***@db.example.com:5432/studies"
    assert storage.redact("sqlite:///data/06_models/optuna_studies.db") == (
        "sqlite:///data/06_models/optuna_studies.db"
    )


def test_a_storage_that_cannot_be_opened_is_named_without_its_password():
    with pytest.raises(ModelTrainerError) as caught:
        storage.make_storage({"storage": "nosuchdb://optuna:s3cr3t@db.example.com/studies"})
    assert "nosuchdb://***@db.example.com/studies" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql//optuna:s3cr3t@db.example.com/studies",  # ':' missing after the scheme
        "postgresql://db.example.com/studies?user=optuna&password=s3cr3t",
    ],
    ids=["missing-colon", "query-password"],
)
def test_a_password_is_hidden_whatever_the_url_shape(url):
    assert "s3cr3t" not in storage.redact(url)


@pytest.mark.slow
def test_past_the_deadline_a_trial_fits_no_more_folds_once_a_trial_has_completed():
    """Each batch of folds is checked before it starts (the first one too: a trial that would
    only be stopped after it shows nothing for its time)."""
    study = optuna.create_study(direction="maximize")
    objective = make_objective(
        X, Y, task=TASK, feature_types=FEATURE_TYPES, configuration=TWO_FAMILIES,
        budget=budget.SearchBudget(timeout=1e-6, final_fit_factor=0.0),
    )  # fmt: skip
    study.optimize(objective, n_trials=2)
    first, second = study.trials
    assert first.state == TrialState.COMPLETE, "the first trial always finishes: a model to show"
    assert second.state == TrialState.PRUNED
    assert second.user_attrs["stopped"] == "tuning.timeout reached"
    assert "fold_scores" not in second.user_attrs and "first_batch_s" not in second.user_attrs


@pytest.mark.slow
def test_the_search_leaves_time_for_the_final_fits_of_its_best_trial():
    search_budget = budget.SearchBudget(timeout=3600.0, final_fit_factor=3.0)
    study = optuna.create_study(direction="maximize")
    objective = make_objective(
        X,
        Y,
        task=TASK,
        feature_types=FEATURE_TYPES,
        configuration=TWO_FAMILIES,
        budget=search_budget,
    )
    study.optimize(objective, n_trials=2, callbacks=[search_budget])
    fold_fit = study.best_trial.user_attrs["fold_fit_s"]
    assert fold_fit > 0
    assert search_budget.reserve_s == pytest.approx(3.0 * fold_fit)
    assert search_budget.deadline() == pytest.approx(search_budget.end - 3.0 * fold_fit)
    search_budget.end = time.monotonic()  # time is up: the next trial's end stops the study
    study.optimize(objective, n_trials=5, callbacks=[search_budget])
    assert len(study.trials) == 3


def test_a_trial_whose_first_batch_would_end_past_the_deadline_does_not_start():
    """Its family's earlier first batches, per boosting round, times its rounds: 50 times the
    rounds of the first trial cannot fit in what is left, 1 times can."""
    space = {"n_estimators": {"type": "int", "low": 10, "high": 5000}}
    config = configuration(["lightgbm"], lightgbm={"search_space": space})
    search_budget = budget.SearchBudget(timeout=3600.0, final_fit_factor=0.0)
    objective = make_objective(
        X, Y, task=TASK, feature_types=FEATURE_TYPES, configuration=config,
        budget=search_budget,
    )  # fmt: skip
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lightgbm__n_estimators": 10})
    study.optimize(objective, n_trials=1)
    first = study.trials[0]
    assert first.user_attrs["rounds"] == 10 and first.user_attrs["first_batch_s"] > 0
    per_round = first.user_attrs["first_batch_s"] / 10
    assert budget.expected_batch_seconds(study, "lightgbm", {"n_estimators": 500}) == (
        pytest.approx(500 * per_round)
    )
    # time left: 20 rounds' worth
    search_budget.end = time.monotonic() + 20 * per_round
    for rounds in (500, 10):
        study.enqueue_trial({"lightgbm__n_estimators": rounds})
        study.optimize(objective, n_trials=1)
    too_long, short = study.trials[1:]
    assert too_long.state == optuna.trial.TrialState.PRUNED
    assert too_long.user_attrs["stopped"] == "tuning.timeout reached"
    assert "first_batch_s" not in too_long.user_attrs  # no fold was fit
    assert "first_batch_s" in short.user_attrs


@pytest.mark.slow
def test_folds_fit_side_by_side_give_the_same_scores_and_predictions_as_one_by_one():
    results = []
    for fold_jobs in (1, 2):
        store = OutOfFoldPredictions(keep=3, greater_is_better=True)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
        objective = make_objective(
            X, Y, task=TASK, feature_types=FEATURE_TYPES, configuration=TWO_FAMILIES,
            out_of_fold=store, fold_jobs=fold_jobs,
        )  # fmt: skip
        study.optimize(objective, n_trials=3)
        results.append(([t.user_attrs["fold_scores"] for t in study.trials], store.outputs))
    (one_by_one, oof_one), (side_by_side, oof_two) = results
    assert one_by_one == side_by_side and len(one_by_one[0]) == FOLDS
    assert all(np.array_equal(oof_one[n], oof_two[n]) for n in oof_one)


@pytest.mark.slow
def test_completed_trials_leave_out_of_fold_predictions_for_the_ensemble():
    store = OutOfFoldPredictions(keep=2, greater_is_better=True)
    study = optuna.create_study(direction="maximize")
    objective = make_objective(
        X, Y, task=TASK, feature_types=FEATURE_TYPES, configuration=TWO_FAMILIES, out_of_fold=store
    )
    study.optimize(objective, n_trials=3)
    assert sorted(store.outputs) == sorted(
        t.number for t in sorted(study.trials, key=lambda t: -t.value)[:2]
    )
    assert all(output.shape == (len(X), 2) for output in store.outputs.values())
    assert len(store.covered) == len(X)


@pytest.mark.slow
def test_search_names_the_study_by_the_job_so_the_same_job_resumes_it(tmp_path):
    settings = {
        "n_trials": 2,
        "storage": f"sqlite:///{tmp_path / 'studies.db'}",
        "ensemble": {"enabled": True, "max_candidates": 5, "max_size": 5},
    }
    args = {"task": TASK, "feature_types": FEATURE_TYPES, "configuration": TWO_FAMILIES}
    first, summary = tuning.search(X, Y, settings=settings, **args)
    again, _ = tuning.search(X, Y, settings={**settings, "n_trials": 3}, **args)
    assert again.study_name == first.study_name
    assert len(again.trials) == 3
    assert "ensemble" in summary
    other, _ = tuning.search(X.head(400), Y.head(400), settings=settings, **args)
    assert other.study_name != first.study_name
    encoded = {
        **TWO_FAMILIES,
        "encoding": {**TWO_FAMILIES["encoding"], "high_cardinality": "target"},
    }
    recoded, _ = tuning.search(X, Y, settings=settings, **{**args, "configuration": encoded})
    assert recoded.study_name != first.study_name, "trials scored under other encodings"
    named, _ = tuning.search(X, Y, settings={**settings, "study_name": "mine"}, **args)
    assert named.study_name == "mine"


@pytest.mark.slow
def test_without_continue_search_a_part_filled_study_gets_no_new_trial(tmp_path):
    settings = {"n_trials": 1, "storage": f"sqlite:///{tmp_path / 'studies.db'}"}
    search(TWO_FAMILIES, settings, "part_filled")
    refit_only = search(
        TWO_FAMILIES, {**settings, "n_trials": 3, "continue_search": False}, "part_filled"
    )
    assert len(refit_only.trials) == 1
    continued = search(TWO_FAMILIES, {**settings, "n_trials": 3}, "part_filled")
    assert len(continued.trials) == 3


def test_without_a_complete_trial_a_study_is_searched_even_without_continue_search():
    study = search(TWO_FAMILIES, {"n_trials": 1, "continue_search": False})
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]


def test_worker_seeds_give_each_process_its_own_sampler_seed_and_a_run_its_models_seed():
    config = {"seed": 7}
    assert tuning.sampler_seed(config, {}) == 7
    assert tuning.sampler_seed(config, {"worker_seeds": True}) == (7 + os.getpid()) % 2**32


def test_a_sample_for_the_search_keeps_the_class_proportions():
    X_sample, y_sample = tuning.sample_for_search(X, Y, 300, TASK, {"strategy": "stratified"}, 0)
    assert len(X_sample) == len(y_sample) == 300
    assert y_sample.value_counts(normalize=True).to_dict() == pytest.approx(
        Y.value_counts(normalize=True).to_dict(), abs=0.01
    )
    assert X_sample.equals(tuning.sample_for_search(X, Y, 300, TASK, {}, 0)[0])  # repeatable


def test_a_sample_leaving_out_fewer_rows_than_classes_keeps_every_class():
    """chile's 203 held-out rows, 4 classes, sampled to 200 for permutation importance: a
    stratified split refuses to leave out 3 rows of 4 classes."""
    chile = pd.read_csv(BENCH / "chile" / "train.csv").sample(203, random_state=0)
    y = chile["vote"].reset_index(drop=True)
    task = detect_task(y, {})
    assert y.nunique() == 4 and y.value_counts().min() >= 2
    X_sample, y_sample = tuning.sample_for_search(
        chile.drop(columns=["vote"]).reset_index(drop=True), y, 200, task, {}, 0
    )
    assert len(X_sample) == len(y_sample) == 200
    assert set(y_sample) == set(y)
    largest = y.value_counts().idxmax()
    assert (y_sample == largest).sum() == (y == largest).sum() - 3


def test_a_sample_for_a_time_ordered_search_is_the_latest_rows_in_order():
    X_sample, _ = tuning.sample_for_search(X, Y, 100, TASK, {"strategy": "timeseries"}, 0)
    assert X_sample.equals(X.iloc[-100:].reset_index(drop=True))


def test_a_table_no_bigger_than_the_sample_is_searched_whole():
    assert tuning.sample_for_search(X, Y, len(X), TASK, {}, 0)[0] is X


@pytest.mark.slow
def test_a_resumed_study_selects_the_ensemble_one_process_would_from_stored_predictions(tmp_path):
    """The second search runs no trial (the budget is met): its ensemble comes from the
    predictions the first search stored with the study, as a new process or worker sees them."""
    settings = {
        "n_trials": 5,
        "sampler": "random",
        "pruner": "none",
        "storage": f"sqlite:///{tmp_path / 'studies.db'}",
        "ensemble": {"enabled": True, "max_candidates": 4, "max_size": 10},
    }
    args = {"task": TASK, "feature_types": FEATURE_TYPES, "configuration": TWO_FAMILIES}
    first, one_process = tuning.search(X, Y, settings=settings, **args)
    stored = [t.number for t in first.trials if study_predictions.ATTRIBUTE in t.system_attrs]
    assert 0 < len(stored) <= len(first.trials)
    resumed, summary = tuning.search(X, Y, settings=settings, **args)
    assert len(resumed.trials) == 5, "no new trial: the budget was met"
    assert one_process["ensemble"] is not None, "this study's best trials make an ensemble"
    assert summary["ensemble"] == one_process["ensemble"]
    scores = summary["ensemble"]["fold_scores"]
    assert len(scores) == FOLDS and all(0.5 < score <= 1 for score in scores)


def test_stored_predictions_decode_to_the_same_numbers():
    output = np.random.default_rng(0).random((50, 3))
    assert np.array_equal(study_predictions.decode(study_predictions.encode(output)), output)


def test_a_budget_counted_from_the_commands_start_leaves_the_search_what_start_up_did_not_use():
    started = time.time() - 100
    from_start = budget.search_seconds({"timeout": 3600, "started_at": started})
    assert from_start == pytest.approx(3500, abs=1)
    assert budget.search_seconds({"timeout": 3600}) == 3600
    assert budget.search_seconds({"timeout": 50, "started_at": started}) == 1.0
    assert budget.search_seconds({"timeout": None}) is None


def _bagging(folds=5, seconds_left=None, strategy="stratified", y=Y, objectives=("metric",)):
    study = search(TWO_FAMILIES, {"n_trials": 2, "sampler": "random", "pruner": "none"})
    summary = {"best_trial": study.best_trial.number, "ensemble": None}
    configuration = {**TWO_FAMILIES, "cv": {**TWO_FAMILIES["cv"], "strategy": strategy}}
    settings = {"folds": folds, "jobs": 2}
    refusal = final_model.bagging_refusal(settings, TASK, configuration, objectives, y)
    return final_model.chosen_bagging(settings, refusal, summary, study, seconds_left)


def test_bagging_is_chosen_when_the_rows_and_the_time_left_allow_it_and_says_why_not_else():
    assert _bagging()["folds"] == 5
    assert _bagging(seconds_left=1000.0)["folds"] == 5
    too_short = _bagging(seconds_left=1e-6)
    assert too_short["folds"] == 1 and "tuning.timeout" in too_short["reason"]
    assert "in time" in _bagging(strategy="timeseries")["reason"]
    assert _bagging(folds=1)["folds"] == 1
    assert "latency" in _bagging(objectives=("metric", "latency"))["reason"]
    rare = Y.copy()
    rare.iloc[:3] = "rare"
    assert "3 rows" in _bagging(y=rare)["reason"]


def test_the_best_trials_bag_replaces_an_ensemble_whose_bag_does_not_fit_the_time_left():
    study = search(TWO_FAMILIES, {"n_trials": 2, "sampler": "random", "pruner": "none"})
    best = study.best_trial.number
    members = [{"trial": t.number, "weight": 0.5} for t in study.trials]
    summary = {"best_trial": best, "ensemble": {"members": members}}
    settings = {"folds": 5, "jobs": 2}
    per_fit = final_model.bag_fits(settings)
    single = per_fit * study.trials[best].user_attrs["fold_fit_s"]
    both = per_fit * sum(t.user_attrs["fold_fit_s"] for t in study.trials)
    between = (single + both) / 2
    chosen = final_model.chosen_bagging(settings, None, summary, study, between)
    assert chosen["folds"] == 5 and chosen["replaces_ensemble"]
    assert "ensemble's bag" in chosen["reason"]
    roomy = final_model.chosen_bagging(settings, None, summary, study, both * 2)
    assert roomy["folds"] == 5 and "replaces_ensemble" not in roomy
    neither = final_model.chosen_bagging(settings, None, summary, study, single / 2)
    assert neither["folds"] == 1 and "replaces_ensemble" not in neither


@pytest.mark.parametrize(
    ("calibration", "bagging", "key"),
    [
        ("platt", {}, "training.calibration"),
        ("auto", {"folds": "five"}, "training.bagging.folds"),
        ("auto", {"folds": 5, "jobs": 0}, "training.bagging.jobs"),
        ("auto", {"max_overrun": -1}, "training.bagging.max_overrun"),
    ],
)
def test_final_model_settings_are_refused_before_the_search_naming_the_key(
    calibration, bagging, key
):
    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
        tuning.search(
            X, Y, task=TASK, feature_types=FEATURE_TYPES, configuration=TWO_FAMILIES,
            settings={"n_trials": 10**6}, calibration=calibration, bagging=bagging,
        )  # fmt: skip
