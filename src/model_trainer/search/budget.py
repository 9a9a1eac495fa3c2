"""The search's share of the time budget: `tuning.timeout` counted from the command's start,
less what the final fits will need, and when a trial should not start another batch of folds."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

logger = logging.getLogger(__name__)


class SearchBudget:
    """The search's share of `tuning.timeout`: the search stops early enough to leave time for
    the final fits (evaluation model and refit on all rows), estimated as `final_fit_factor`
    times the best trial's mean fold fit, so the whole run, not just the search, keeps to the
    budget on big tables. `deadline()` is a time.monotonic() value."""

    def __init__(self, timeout: float | None, final_fit_factor: float) -> None:
        self.end = time.monotonic() + timeout if timeout else None
        self.final_fit_factor = final_fit_factor
        self.reserve_s = 0.0

    def deadline(self) -> float | None:
        return None if self.end is None else self.end - self.reserve_s

    def update_reserve(self, study: optuna.Study) -> bool:
        """The reserve from the best trials; whether the study has a complete trial."""
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if complete:
            # The slowest fit on the Pareto front: any of them may be the final model.
            fold_fit_s = max(float(t.user_attrs.get("fold_fit_s", 0)) for t in study.best_trials)
            self.reserve_s = self.final_fit_factor * fold_fit_s
        return bool(complete)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """An Optuna callback: update the reserve from the best trial, stop when time is up."""
        if self.end is None:
            return
        complete = self.update_reserve(study)
        if complete and time.monotonic() >= self.deadline():
            logger.info(
                "Search stopped with %.0fs of tuning.timeout left for the final fits.",
                max(self.end - time.monotonic(), 0.0),
            )
            study.stop()


def search_seconds(settings: Mapping[str, Any]) -> float | None:
    """What is left of `tuning.timeout` for the search and final fits: it counts from
    `tuning.started_at` (`kedro task` sets its start) or else from now. At least a second: one
    trial always runs."""
    left = seconds_left(settings)
    if left is None:
        return None
    if left <= 0:
        timeout = float(settings["timeout"])
        logger.warning(
            "%.0f s of the %.0f s budget (tuning.timeout) were spent before the search: one trial "
            "runs.",
            timeout - left,
            timeout,
        )
    return max(left, 1.0)


def seconds_left(settings: Mapping[str, Any]) -> float | None:
    """`tuning.timeout` less the time since `tuning.started_at` (or none, if not started);
    None without a timeout."""
    timeout = settings.get("timeout")
    if not timeout:
        return None
    started = settings.get("started_at")
    return float(timeout) - (time.time() - float(started) if started else 0.0)


def past_deadline(trial: optuna.Trial, deadline: float | None, next_seconds: float) -> bool:
    """The next `next_seconds` would end past the deadline, and the study already has a model
    to show for it."""
    return (
        deadline is not None
        and time.monotonic() + next_seconds > deadline
        and has_complete(trial.study)
    )


def has_complete(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


# What a fit's time grows with, within one family: boosting rounds, trees.
ROUNDS_PARAMS = ("n_estimators", "max_iter")


def rounds_of(params: Mapping[str, Any]) -> float:
    return float(next((params[name] for name in ROUNDS_PARAMS if name in params), 1))


def expected_batch_seconds(study: optuna.Study, algorithm: str, params: Mapping[str, Any]) -> float:
    """A trial's first batch of folds, estimated before it starts: the slowest seconds per round
    of the family's earlier first batches, times this trial's rounds (0 while the family has
    none). Unchecked, a trial started 3 s before the deadline ran a 30 s batch (chile,
    HistGradientBoosting with 892 rounds, 0.034 s a round in the family's first trial), only to
    be stopped before its second batch: 30 s past the budget for nothing."""
    paces = [
        t.user_attrs["first_batch_s"] / max(float(t.user_attrs.get("rounds", 1)), 1.0)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if t.user_attrs.get("algorithm") == algorithm and "first_batch_s" in t.user_attrs
    ]
    return max(paces, default=0.0) * rounds_of(params)
