"""The best trials' out-of-fold predictions, kept in the study's own storage.

The ensemble of best trials is selected on their out-of-fold predictions. Held only in the
memory of the process that ran the trials, they were lost to a resumed study and to the other
workers of a shared one, which then shipped a lone trial. Stored beside the trial (a system
attribute: every worker reaches the study's storage, and optuna-dashboard does not show it),
they give a resumed or multi-worker study the ensemble one process would have selected.
"""

from __future__ import annotations

import base64
import logging
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from model_trainer.models.ensemble import OutOfFoldPredictions

logger = logging.getLogger(__name__)

ATTRIBUTE = "model_trainer:out_of_fold"
# Larger tables keep their predictions in this process only (tens of MB per trial otherwise).
MAX_STORED_BYTES = 16 * 2**20


def store(
    trial: optuna.Trial, value: float, output: np.ndarray, predictions: OutOfFoldPredictions
) -> None:
    """Store `output` when the trial is among the `predictions.keep` best completed so far
    (the others can never be selected)."""
    if output.nbytes > MAX_STORED_BYTES:
        return
    completed = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    values = [t.value for t in completed if t.value is not None]
    better = sum(v > value if predictions.greater_is_better else v < value for v in values)
    if better < predictions.keep:
        trial.storage.set_trial_system_attr(trial._trial_id, ATTRIBUTE, encode(output))


def restore(
    study: optuna.Study,
    predictions: OutOfFoldPredictions,
    n_rows: int,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> None:
    """Add the stored predictions of completed trials this process did not run itself."""
    if predictions.covered is None:
        predictions.covered = np.unique(np.concatenate([rows for _, rows in folds]))
    restored = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        stored = trial.system_attrs.get(ATTRIBUTE)
        if stored is None or trial.number in predictions.outputs:
            continue
        output = decode(stored)
        if len(output) == n_rows:
            predictions.add(trial.number, float(trial.value), output)
            restored += 1
    if restored:
        logger.info(
            "Out-of-fold predictions of %d trial(s) run before or elsewhere read from the study.",
            restored,
        )


def encode(output: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(output, dtype=np.float64)
    return {
        "shape": list(array.shape),
        "data": base64.b64encode(zlib.compress(array.tobytes(), 1)).decode("ascii"),
    }


def decode(stored: dict[str, Any]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(stored["data"]))
    return np.frombuffer(raw, dtype=np.float64).reshape(stored["shape"]).copy()
