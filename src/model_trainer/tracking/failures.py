"""What to do about a failed run, by the kind of error, and the record a failed run leaves
(error, node, remediation, what was kept), so a failure reads as a next step, not a traceback.

The table is data: the first entry whose error type and message pattern match any error in the
chain (Kedro wraps node and dataset errors) gives the remediation."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from sklearn.exceptions import ConvergenceWarning

from model_trainer.errors import TrackingServerLost, find_model_trainer_error

DEFAULT_REMEDIATION = (
    "See info.log and the failed MLflow run for details, fix the cause and rerun the same "
    "command: the stored study and the saved splits are reused."
)

CONVERGENCE = (
    "The model did not converge: scale the numeric features, raise its regularization "
    "(a smaller C or a larger alpha), or raise max_iter in its search space."
)

# MLflow's REST client, once its retries are spent: "API request to <url> failed with exception"
# (a refused or broken connection) or "... failed with timeout exception" (a server that hangs).
LOST_SERVER = re.compile(
    r"API request to (https?://\S+?)/api/\S* failed with (?:timeout )?exception"
)


# (error type, pattern in its message or None, remediation); the first match wins.
REMEDIATIONS: tuple[tuple[type[BaseException], str | None, str], ...] = (
    (
        Exception,
        LOST_SERVER.pattern,
        "The MLflow tracking server stopped answering. Start it again and rerun the same "
        "command: the study keeps its completed trials (its storage is not the server) and "
        "the search resumes from them.",
    ),
    (
        MemoryError,
        None,
        "The data or the model does not fit in memory: train on a sample of the rows, "
        "choose a lighter model (model.algorithm=logistic_regression, or "
        "lightgbm with fewer leaves), fewer trials at once (tuning.n_jobs=1, tuning.fold_jobs=1), "
        "or fewer columns (dataset.features).",
    ),
    (
        ConvergenceWarning,
        None,
        CONVERGENCE,
    ),
    (
        Exception,
        r"(?i)did not converge|failed to converge|convergence",
        CONVERGENCE,
    ),
    (
        Exception,
        r"(?i)database is locked",
        "Several processes write one SQLite study: give the workers a PostgreSQL "
        "tuning.storage (see conf/distributed), or run one process at a time.",
    ),
    (
        Exception,
        r"(?i)\b(nan|infinity|inf)\b.*(input|value)|(input|value).*\b(nan|infinity)\b",
        "The features hold NaN or infinite values the model cannot take: replace infinities "
        "in the table, or choose a model with native missing values (lightgbm).",
    ),
    (
        TimeoutError,
        None,
        "A step ran out of time: raise tuning.timeout, or lower tuning.n_trials or the data size.",
    ),
    (
        KeyError,
        None,
        "A column or key is missing: check dataset.target and dataset.features against the "
        "table's header, and the parameter names in conf.",
    ),
    (
        OSError,
        None,
        "A file could not be read or written: check that the data/ folders exist and are "
        "writable, and that the disk has space.",
    ),
)


def tracking_server_lost(error: BaseException) -> bool:
    """Whether the run failed because the MLflow tracking server stopped answering: then the
    hooks that end a failed run do not try it again (each try is a round of retries)."""
    return any(
        isinstance(link, TrackingServerLost) or LOST_SERVER.search(str(link))
        for link in error_chain(error)
    )


def error_chain(error: BaseException | None) -> Iterator[BaseException]:
    """The error, then its causes, outermost first."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def remediation_for(error: BaseException) -> str:
    user_error = find_model_trainer_error(error)
    if user_error is not None and user_error.remediation:
        return user_error.remediation
    chain = list(error_chain(error))
    for error_type, pattern, remediation in REMEDIATIONS:
        for link in chain:
            if isinstance(link, error_type) and (pattern is None or re.search(pattern, str(link))):
                return remediation
    return DEFAULT_REMEDIATION


def failure_record(
    error: BaseException, node: str | None, kept: Mapping[str, str]
) -> dict[str, Any]:
    """The failed run's summary: the innermost error names the cause, the outer one where."""
    cause = list(error_chain(error))[-1]
    user_error = find_model_trainer_error(error)
    return {
        "error_type": type(cause).__name__,
        "error": user_error.message if user_error else str(error)[:2000],
        "node": node,
        "remediation": remediation_for(error),
        "kept": dict(kept),
    }
