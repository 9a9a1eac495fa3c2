"""Search strategies: the sampler `tuning.sampler` names (or `auto` chooses), a grid that
exhausts a small discrete space, CMA-ES, and NSGA-II's multi-objective study with the Pareto
rule that picks the final model's trial."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from model_trainer.errors import ConfigurationError
from model_trainer.reporting.search_plots import search_figures
from model_trainer.search import samplers, trial_records, tuning
from tests.conftest import run_kedro
from tests.test_tuning import FEATURE_TYPES, TASK, TWO_FAMILIES, X, Y, configuration

SMALL_CATEGORICAL = {
    "logistic_regression": {
        "search_space": {
            "C": {"type": "categorical", "choices": [0.1, 1.0, 10.0]},
            "class_weight": {"type": "categorical", "choices": [None, "balanced"]},
        }
    }
}
ONE_SMALL_FAMILY = configuration(["logistic_regression"], **SMALL_CATEGORICAL)
NUMERIC_ONE_FAMILY = configuration(["lightgbm"])


def run(config: dict, settings: dict) -> tuple[optuna.Study, dict]:
    return tuning.search(
        X, Y, task=TASK, feature_types=FEATURE_TYPES, configuration=config, settings=settings
    )


# --- choosing the sampler -----------------------------------------------------------------------


def test_auto_picks_grid_for_a_small_discrete_space_that_the_budget_covers():
    metric = [ONE_SMALL_FAMILY["metric"]]
    name, grid = samplers.choose_sampler({"n_trials": 6}, ONE_SMALL_FAMILY, metric)
    assert name == "grid"
    assert grid == {
        "logistic_regression__C": [0.1, 1.0, 10.0],
        "logistic_regression__class_weight": [None, "balanced"],
    }
    assert samplers.choose_sampler({"n_trials": 5}, ONE_SMALL_FAMILY, metric)[0] == "tpe"
    assert samplers.choose_sampler({"n_trials": 6, "grid_max_points": 4}, ONE_SMALL_FAMILY, metric)[
        0
    ] == ("tpe")


def test_auto_picks_tpe_for_several_families_and_nsga2_for_several_objectives():
    metric = TWO_FAMILIES["metric"]
    assert samplers.choose_sampler({"n_trials": 500}, TWO_FAMILIES, [metric]) == ("tpe", None)
    assert samplers.choose_sampler({}, ONE_SMALL_FAMILY, [metric, "latency"]) == ("nsga2", None)


def test_a_small_int_range_is_discretised_but_a_float_or_log_range_is_not():
    spaces = {"knn": {"n_neighbors": {"type": "int", "low": 1, "high": 4}}}
    assert samplers.grid_space(["knn"], spaces, 64) == {"knn__n_neighbors": [1, 2, 3, 4]}
    spaces["knn"]["n_neighbors"]["log"] = True
    assert samplers.grid_space(["knn"], spaces, 64) is None
    assert samplers.grid_space(["lightgbm"], NUMERIC_ONE_FAMILY["search_space"], 64) is None


@pytest.mark.parametrize(
    ("settings", "config", "words"),
    [
        ({"sampler": "grid"}, TWO_FAMILIES, ["single family", "grid_max_points"]),
        ({"sampler": "nsga2"}, TWO_FAMILIES, ["several objectives", "tuning.objectives"]),
        ({"sampler": "cmaes", "objectives": "metric+latency"}, TWO_FAMILIES, ["single objective"]),
        ({"sampler": "annealing"}, TWO_FAMILIES, ["Unknown tuning.sampler 'annealing'"]),
    ],
)
def test_a_sampler_that_cannot_search_the_configuration_is_a_configuration_error(
    settings, config, words
):
    objectives = samplers.objectives_of(settings, config["metric"])
    with pytest.raises(ConfigurationError) as caught:
        samplers.choose_sampler(settings, config, objectives)
    for word in words:
        assert word in caught.value.message
    assert caught.value.remediation


def test_objectives_are_a_list_or_a_plus_joined_string_with_the_metric_first():
    assert samplers.objectives_of({}, "roc_auc") == ["roc_auc"]
    assert samplers.objectives_of({"objectives": "metric+latency"}, "roc_auc") == [
        "roc_auc",
        "latency",
    ]
    assert samplers.objectives_of({"objectives": ["roc_auc", "model_size"]}, "roc_auc") == [
        "roc_auc",
        "model_size",
    ]
    for wrong in (["latency", "metric"], ["metric", "speed"], "metric+latency+latency"):
        with pytest.raises(ConfigurationError) as caught:
            samplers.objectives_of({"objectives": wrong}, "roc_auc")
        assert "latency, model_size" in caught.value.remediation


# --- grid and CMA-ES ----------------------------------------------------------------------------


@pytest.mark.slow
def test_grid_runs_every_point_of_a_small_categorical_space_once():
    study, summary = run(
        ONE_SMALL_FAMILY, {"n_trials": 20, "sampler": "grid", "pruner": "none", "fold_jobs": 1}
    )
    points = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(points) == len(set(points)) == 6, "each point once, then the search stops"
    assert {
        (p["logistic_regression__C"], p["logistic_regression__class_weight"])
        for p in (t.params for t in study.trials)
    } == set(itertools.product([0.1, 1.0, 10.0], [None, "balanced"]))
    assert summary["sampler"] == "grid"
    assert summary["best_params"] == {
        k.removeprefix("logistic_regression__"): v for k, v in study.best_trial.params.items()
    }


@pytest.mark.skipif(importlib.util.find_spec("cmaes") is not None, reason="cmaes is installed")
def test_cmaes_without_its_package_is_a_configuration_error_naming_it():
    with pytest.raises(ConfigurationError) as caught:
        run(NUMERIC_ONE_FAMILY, {"n_trials": 2, "sampler": "cmaes"})
    assert "'cmaes'" in caught.value.message and "tpe" in caught.value.remediation


@pytest.mark.slow
def test_cmaes_searches_a_numeric_single_family_space():
    pytest.importorskip("cmaes", reason="Optuna's CmaEsSampler needs the cmaes package")
    study, summary = run(
        NUMERIC_ONE_FAMILY,
        {"n_trials": 5, "sampler": "cmaes", "pruner": "none", "enqueue_portfolio": False},
    )
    assert isinstance(study.sampler, optuna.samplers.CmaEsSampler)
    assert summary["sampler"] == "cmaes" and summary["n_complete"] == 5


# --- several objectives -------------------------------------------------------------------------


def two_objective_study(values: list[tuple[float, float]], direction: str) -> optuna.Study:
    study = optuna.create_study(directions=[direction, "minimize"])
    for value in values:
        study.add_trial(
            create_trial(
                values=list(value),
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
            )
        )
    return study


def test_the_pareto_rule_takes_the_lowest_other_objective_within_tolerance_of_the_best_metric():
    # trial 0 best roc_auc; trial 1 within 1% and faster; trial 2 fastest but 5% worse.
    study = two_objective_study([(0.90, 5.0), (0.895, 2.0), (0.85, 1.0), (0.80, 9.0)], "maximize")
    assert sorted(t.number for t in study.best_trials) == [0, 1, 2]
    assert trial_records.chosen_trial(study, 0.01).number == 1
    assert trial_records.chosen_trial(study, 0.0).number == 0
    assert trial_records.chosen_trial(study, 0.10).number == 2
    # a metric to minimise (rmse): within 1% means at most 1% above the front's lowest
    rmse = two_objective_study([(10.0, 5.0), (10.09, 3.0), (10.2, 1.0)], "minimize")
    assert trial_records.chosen_trial(rmse, 0.01).number == 1


@pytest.mark.slow
def test_nsga2_with_roc_auc_and_latency_gives_a_pareto_front_and_the_rule_picks_the_model():
    settings = {
        "n_trials": 8,
        "sampler": "nsga2",
        "objectives": ["roc_auc", "latency"],
        "pareto_tolerance": 0.01,
    }
    study, summary = run(TWO_FAMILIES, settings)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert isinstance(study.sampler, optuna.samplers.NSGAIISampler)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert all(t.values[1] > 0 and t.user_attrs["latency"] == t.values[1] for t in complete)

    front = [t for t in complete if t.number in summary["pareto_front"]]
    assert front, "a Pareto front"
    for trial in front:  # nothing on the front is dominated
        assert not any(
            o.values[0] >= trial.values[0] and o.values[1] < trial.values[1] for o in complete
        )
    best_metric = max(t.values[0] for t in front)
    close = [t for t in front if t.values[0] >= best_metric * 0.99]
    chosen = min(close, key=lambda t: (t.values[1], t.number))
    assert summary["best_trial"] == chosen.number
    assert summary["best_value"] == chosen.values[0]
    assert summary["objective_values"] == {"roc_auc": chosen.values[0], "latency": chosen.values[1]}
    assert (summary["sampler"], summary["objectives"]) == ("nsga2", ["roc_auc", "latency"])
    assert "ensemble" not in summary, "the ensemble optimises the metric alone"
    json.dumps(summary)  # the MLflow artifact

    table = trial_records.trials_table(study, summary["objectives"])
    assert {"value", "latency", "algorithm"} <= set(table.columns)
    figures = search_figures(study, summary["objectives"], summary["best_trial"])
    pareto = figures["pareto_front.png"]
    labels = pareto.axes[0].get_legend_handles_labels()[1]
    assert f"chosen (trial {chosen.number})" in labels
    assert pareto.axes[0].get_xlabel() == "latency (µs per row)"


@pytest.mark.slow
def test_a_single_objective_summary_names_its_sampler_and_front(tmp_path: Path):
    study, summary = run(TWO_FAMILIES, {"n_trials": 2, "sampler": "random", "pruner": "none"})
    assert summary["sampler"] == "random" and summary["objectives"] == ["roc_auc"]
    assert summary["pareto_front"] == [study.best_trial.number]
    assert "pareto_front.png" not in search_figures(study, summary["objectives"])


@pytest.mark.e2e
def test_kedro_run_with_nsga2_plots_the_pareto_front_and_saves_a_model(project: Path):
    result = run_kedro(
        project,
        "run",
        "--pipeline=train",
        "--env=test",
        "--params=tuning.sampler=nsga2,tuning.objectives=metric+latency,tuning.n_trials=5",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Ensemble of the best trials skipped" in result.stderr + result.stdout
    plots = list((project / "data" / "08_reporting" / "search_plots").rglob("pareto_front.png"))
    assert plots, "pareto_front.png among the search plots"
    assert list((project / "data" / "06_models" / "model.joblib").rglob("model.joblib"))
    summary = json.loads((project / "data" / "06_models" / "study_summary.json").read_text())
    assert summary["sampler"] == "nsga2" and summary["objectives"] == ["roc_auc", "latency"]
    assert summary["best_trial"] in summary["pareto_front"]
