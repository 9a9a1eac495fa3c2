"""A progress bar under the per-trial lines, in an interactive terminal only.

The trial lines go through the console log handler as always; while the bar shows, that handler
writes through rich's Live display, which prints them above the bar instead of through it. A
file, a pipe, CI or an agent reading `kedro task` gets the lines and no bar.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna

from model_trainer.search.trial_records import COUNTED_STATES


def _terminal_handlers() -> list[logging.StreamHandler]:
    """The root logger's handlers that write to this process's terminal (stderr or stdout)."""
    return [
        handler
        for handler in logging.getLogger().handlers
        if type(handler) is logging.StreamHandler
        and handler.stream in (sys.stderr, sys.stdout)
        and getattr(handler.stream, "isatty", lambda: False)()
    ]


class _Bar:
    """Trials counted against the trial budget, or seconds against tuning.timeout when the
    trial budget is out of reach in that time; and the best value so far."""

    def __init__(self, progress: Any, n_trials: int, timeout: float | None, metric: str) -> None:
        self.progress, self.n_trials, self.metric = progress, n_trials, metric
        self.by_time = timeout is not None
        self.started = time.monotonic()
        total = timeout if self.by_time else n_trials
        self.task = progress.add_task("search", total=total, status="")

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counted = len(study.get_trials(deepcopy=False, states=COUNTED_STATES))
        completed = time.monotonic() - self.started if self.by_time else counted
        try:
            best = f", best {self.metric} {study.best_value:.5g}"
        except (ValueError, RuntimeError):  # no complete trial yet, or several objectives
            best = ""
        status = f"trial {counted}/{self.n_trials}{best}"
        self.progress.update(self.task, completed=completed, status=status)


@contextmanager
def search_progress(
    n_trials: int, timeout: float | None, metric: str, console: Any = None
) -> Iterator[Any]:
    """A study callback that moves the bar, or None where there is no terminal to draw it on.
    `console`: a rich Console to draw on (the tests'); by default the terminal of the console
    log handler."""
    handlers = [] if console is not None else _terminal_handlers()
    if console is None and not handlers:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(file=handlers[0].stream)
    progress = Progress(
        TextColumn("search"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=True,
    )
    names = ["stderr" if handler.stream is sys.stderr else "stdout" for handler in handlers]
    with progress:
        # the log lines go through rich's proxy of the stream (sys.stderr while the bar shows),
        # which prints them above the bar
        streams = [
            handler.setStream(getattr(sys, name))
            for handler, name in zip(handlers, names, strict=True)
        ]
        try:
            yield _Bar(progress, n_trials, timeout, metric)
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                handler.setStream(stream)
