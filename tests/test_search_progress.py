"""The search's progress bar: drawn in a terminal with the trials counted and the best value,
absent where there is no terminal."""

from __future__ import annotations

import io

import optuna
from rich.console import Console

from model_trainer.search.progress import search_progress


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(0))


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -1.0, 1.0) ** 2


def test_a_terminal_gets_a_bar_with_the_trials_counted_and_the_best_value():
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    study = _study()
    with search_progress(5, None, "rmse", console=terminal) as bar:
        assert bar is not None
        study.optimize(_objective, n_trials=5, callbacks=[bar])
        bar.progress.refresh()  # the bar is transient: read it while it shows
        drawn = screen.getvalue()
    assert "trial 5/5" in drawn
    assert f"best rmse {study.best_value:.5g}" in drawn


def test_a_time_budget_moves_the_bar_by_the_clock():
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    with search_progress(10**6, 30.0, "roc_auc", console=terminal) as bar:
        _study().optimize(_objective, n_trials=3, callbacks=[bar])
        task = bar.progress.tasks[0]
        assert task.total == 30.0 and 0 < task.completed < 30.0


def test_no_terminal_no_bar():
    # pytest captures the output: the log handlers write to no terminal
    with search_progress(5, None, "rmse") as bar:
        assert bar is None
