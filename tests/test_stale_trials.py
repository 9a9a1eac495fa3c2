"""A dead worker's trial does not stay RUNNING: with a stale heartbeat (Optuna's rule) or with
none at all (killed as it created the trial), it is failed and retried once; a live worker's
trial, or one that has just started, is left alone. A real SQLite RDB storage with
heartbeats of 1 s."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from optuna.trial import TrialState

from model_trainer.search.stale_trials import settle_stale_trials

GRACE = 1


def study_in(tmp_path: Path) -> tuple[optuna.Study, RDBStorage]:
    storage = RDBStorage(
        f"sqlite:///{tmp_path / 'study.db'}",
        heartbeat_interval=1,
        grace_period=GRACE,
        failed_trial_callback=RetryFailedTrialCallback(max_retry=1),
    )
    return optuna.create_study(storage=storage, study_name="s"), storage


def started(study: optuna.Study, storage: RDBStorage, x: float, heartbeat: bool) -> int:
    """A RUNNING trial as a worker leaves it: with its first heartbeat, or killed before it."""
    trial = study.ask()
    trial.suggest_float("x", x, x)
    if heartbeat:
        storage.record_heartbeat(trial._trial_id)
    return trial._trial_id


def state(storage: RDBStorage, trial_id: int) -> TrialState:
    return storage.get_trial(trial_id).state


def test_a_trial_killed_before_its_first_heartbeat_is_failed_and_retried(tmp_path):
    """Silent for the grace period as this process sees it (a trial's start time is its
    worker's local clock, which need not agree with this machine's)."""
    study, storage = study_in(tmp_path)
    silent = started(study, storage, 0.25, heartbeat=False)

    settle_stale_trials(study, storage, wait_seconds=GRACE + 1.5)

    assert state(storage, silent) == TrialState.FAIL
    [retry] = study.get_trials(states=(TrialState.WAITING,))
    assert retry.params == {"x": 0.25}


def test_a_trial_whose_heartbeat_stopped_is_failed_as_optuna_does(tmp_path):
    study, storage = study_in(tmp_path)
    dead = started(study, storage, 0.5, heartbeat=True)
    time.sleep(GRACE + 1.2)

    assert settle_stale_trials(study, storage) == 1
    assert state(storage, dead) == TrialState.FAIL


def test_a_live_trial_and_one_just_started_are_left_running(tmp_path):
    study, storage = study_in(tmp_path)
    live = started(study, storage, 0.5, heartbeat=True)
    time.sleep(GRACE + 1.2)
    storage.record_heartbeat(live)  # its worker is still beating
    just_started = started(study, storage, 0.75, heartbeat=False)

    settle_stale_trials(study, storage)

    assert state(storage, live) == TrialState.RUNNING
    assert state(storage, just_started) == TrialState.RUNNING
    assert not study.get_trials(states=(TrialState.WAITING,))
