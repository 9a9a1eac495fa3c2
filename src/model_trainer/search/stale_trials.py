"""A worker that dies mid-trial must not leave its trial RUNNING for good.

Optuna fails a trial whose heartbeat stopped only when some process starts a new trial in the
study. A run that finds the trial budget already full (another worker filled it) starts none,
so the dead worker's trial would stay RUNNING: the train run that follows reads a ghost, and
optuna-dashboard shows it running forever. Every run therefore settles the study itself, before
counting the trials done and again when its search ends.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

logger = logging.getLogger(__name__)


def settle_stale_trials(
    study: optuna.Study, storage: BaseStorage | None, wait_seconds: float = 0.0
) -> int:
    """Fail the RUNNING trials whose heartbeat is older than the grace period; the storage's
    stale-trial callback enqueues each once more, so the budget can retry it. With
    `wait_seconds`, trials still running elsewhere get that long to finish or go stale (a live
    worker's trial keeps running after it). `storage` is the one the study was opened with
    (the study holds it wrapped in a cache). Returns how many trials were failed."""
    if not isinstance(storage, RDBStorage) or storage.heartbeat_interval is None:
        return 0  # no heartbeats (a journal, or in memory): staleness cannot be told
    interval = storage.heartbeat_interval
    deadline = time.monotonic() + wait_seconds
    failed_before = _count(study, TrialState.FAIL)
    running = _count(study, TrialState.RUNNING)
    if running and wait_seconds > 0:
        logger.info(
            "Waiting up to %.0f s for %d trial(s) running in other workers to finish or go stale.",
            wait_seconds,
            running,
        )
    while True:
        with warnings.catch_warnings():  # experimental since Optuna 2.9, as its optimize knows
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        _fail_silent_since_start(study, storage)
        remaining = deadline - time.monotonic()
        if not _count(study, TrialState.RUNNING) or remaining <= 0:
            break
        time.sleep(min(interval, remaining))
    failed = _count(study, TrialState.FAIL) - failed_before
    if failed:
        logger.warning(
            "Marked %d trial(s) failed: their worker stopped (no heartbeat for %s s); each is "
            "retried once while the trial budget lasts.",
            failed,
            storage.grace_period,
        )
    return failed


# When this process first saw each RUNNING trial that had no heartbeat, by its own clock: a
# trial's datetime_start is its worker's local time, which another machine cannot compare.
_SILENT_SINCE: dict[tuple[str, int], float] = {}  # (storage URL, trial id): seen silent


def _fail_silent_since_start(study: optuna.Study, storage: RDBStorage) -> None:
    """A worker killed between creating its trial and recording the trial's first heartbeat
    (which its heartbeat thread does at once) leaves a RUNNING trial Optuna never calls stale:
    it has no heartbeat to age. Such a trial seen without a heartbeat for longer than the grace
    period, by this process's clock, is failed and retried through the stale-trial callback,
    as Optuna does with the others. (A worker of the same study that records no heartbeats
    at all, say a notebook's optimize on a storage without heartbeat_interval, would have its
    long trials failed too: every worker of a study should open it with heartbeats.)"""
    grace = storage.grace_period or 2 * storage.heartbeat_interval
    running = {
        trial._trial_id: trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    }
    if not running:
        return
    query = sqlalchemy.text(
        "SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids"
    ).bindparams(sqlalchemy.bindparam("ids", expanding=True))
    with storage.engine.connect() as connection:
        beating = {row[0] for row in connection.execute(query, {"ids": list(running)})}
    now = time.monotonic()
    silent = [trial_id for trial_id in running if trial_id not in beating]
    for trial_id in silent:
        _SILENT_SINCE.setdefault((storage.url, trial_id), now)
    failed = []
    for trial_id in silent:
        if now - _SILENT_SINCE[(storage.url, trial_id)] <= grace:
            continue
        try:
            if study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another process failed it first
    callback = storage.get_heartbeat_stale_trial_callback()
    for trial_id in failed:
        logger.warning(
            "Trial %d never recorded a heartbeat (its worker died as it started it).",
            running[trial_id].number,
        )
        if callback is not None:
            callback(study, copy.deepcopy(study._storage.get_trial(trial_id)))


def grace_seconds(storage: BaseStorage | None) -> float:
    """How long a trial may be silent before it is stale, plus one heartbeat."""
    if not isinstance(storage, RDBStorage) or storage.heartbeat_interval is None:
        return 0.0
    interval = storage.heartbeat_interval
    return float(storage.grace_period or 2 * interval) + interval


def _count(study: optuna.Study, state: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=(state,)))
