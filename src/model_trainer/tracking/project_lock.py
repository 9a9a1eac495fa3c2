"""One run at a time per project: the runs of a project share its Optuna study (SQLite), its
MLflow database and its unversioned datasets (splits, reports), so two at once would write them
over each other half-way. A run takes an exclusive lock on `<project>/.model-trainer.lock`; tune
workers, which are meant to share one study, take it shared (with each other, not with a
train). The operating system releases the lock when the process ends, however it ends, so a
killed run leaves no stale lock. POSIX only (fcntl); elsewhere runs are not locked.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from model_trainer.errors import ModelTrainerError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = ".model-trainer.lock"
SHARED_PIPELINES = frozenset({"tune"})  # workers of one study, by design


class ProjectBusyError(ModelTrainerError):
    """Another run holds the project."""


class ProjectLock:
    """The lock of one run at a time; `acquire` before the run, `release` after it."""

    def __init__(self) -> None:
        self._held: IO[str] | None = None
        self._exclusive = False

    def acquire(self, project: Path, pipelines: Sequence[str]) -> None:
        self.release()  # a run of this process that ended without its after-run hook
        if fcntl is None:
            return
        shared = bool(pipelines) and set(pipelines) <= SHARED_PIPELINES
        path = Path(project) / LOCK_FILE
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise ProjectBusyError(
                f"Another run is using the project {Path(project).resolve()} ({holder}). Two "
                "runs at once would write its Optuna study, MLflow database and datasets over "
                "each other; tune workers share a project with each other only.",
                "Wait for it to finish and run again, or run in a copy of the project.",
            ) from None
        if not shared:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({
                "pid": os.getpid(),
                "pipelines": list(pipelines) or ["__default__"],
                "since": dt.datetime.now().isoformat(timespec="seconds"),
            }))  # fmt: skip
            handle.flush()
        self._held, self._exclusive = handle, not shared

    def release(self) -> None:
        if self._held is None:
            return
        if self._exclusive:  # who held it no longer does
            self._held.seek(0)
            self._held.truncate()
        self._held.close()  # closing the file releases its lock
        self._held = None


def _holder(handle: IO[str]) -> str:
    """Who holds the lock, as the exclusive holder wrote it (shared holders write nothing)."""
    handle.seek(0)
    try:
        written = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        written = {}
    if not written:
        return "tune workers, or a run that did not say who it is"
    return (
        f"process {written.get('pid')}, pipeline {', '.join(written.get('pipelines', []))}, "
        f"since {written.get('since')}"
    )
