"""Checkpointed final fits: a killed fit, started again, resumes from its last checkpoint.

The estimator of a preprocessing + estimator Pipeline is fit in chunks of `every` rounds
(LightGBM and XGBoost continue from the previous booster; the neural network continues with
warm_start), and saved after each chunk. Checkpoints are state addressed by a fingerprint of the
fit (estimator class and parameters, chunk size, the training matrix and labels), kept in a
folder named by a parameter: a catalog dataset could not be both the input and the output of
the node that fits, and the fingerprint, not a run, says which state belongs to which fit.

A resumed fit equals the uninterrupted checkpointed fit exactly: the chunk boundaries and each
chunk's seed depend on the round count only, and the saved estimator holds all of its state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelEncoder

from model_trainer.models.estimators import LabelEncodedClassifier
from model_trainer.search.tuning import data_fingerprint
from model_trainer.tasks.ranking import RankingPipeline

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "round-"


def family(estimator: Any) -> str | None:
    """How an estimator continues training, or None when it cannot (then it is fit at once)."""
    module = type(estimator).__module__
    if module.startswith("lightgbm"):
        return "lightgbm"
    if module.startswith("xgboost"):
        return "xgboost"
    if module.startswith("sklearn.neural_network") and estimator.get_params()["solver"] != "lbfgs":
        return "neural_network"
    return None


def supports(pipeline: Any) -> bool:
    """A preprocessing + estimator Pipeline whose estimator trains in rounds. Not a ranking
    Pipeline: its estimator is fit with the rows' groups, which chunks would not pass on."""
    steps = getattr(pipeline, "named_steps", {})
    if "preprocess" not in steps or "model" not in steps or isinstance(pipeline, RankingPipeline):
        return False
    model = steps["model"]
    inner = model.estimator if isinstance(model, LabelEncodedClassifier) else model
    return family(inner) is not None


def checkpointed_fit(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    every: int,
    folder: str | Path,
    keep: bool = False,
    after_chunk: Callable[[int], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fit a clone of `pipeline` as `pipeline.fit(X, y)` would, saving the estimator every
    `every` rounds under `folder`/<fingerprint>/ and resuming from the last one found there.
    `after_chunk(rounds)` is called after each save (tests interrupt or slow the fit with it).
    The fit's checkpoints are removed once it completes, unless `keep`: the model is saved
    (versioned) by the catalog, and finished state would pile up, one per distinct fit."""
    if every < 1:
        raise ValueError(f"training.checkpoints.every must be an int >= 1. Got {every} instead.")
    fitted = clone(pipeline)
    # fit_transform, as Pipeline.fit does: the TargetEncoder cross-fits the training rows, where
    # fit then transform would encode each with its own label
    matrix, labels = fitted.named_steps["preprocess"].fit_transform(X, y), y
    if "balance" in fitted.named_steps:  # SMOTE: as the Pipeline does it, on the training rows
        matrix, labels = fitted.named_steps["balance"].fit_resample(matrix, labels)
    model = fitted.named_steps["model"]
    encoder = None
    estimator = model
    if isinstance(model, LabelEncodedClassifier):
        encoder = LabelEncoder().fit(labels)
        labels = encoder.transform(labels)
        estimator = clone(model.estimator)
    labels = np.asarray(labels)
    fingerprint = fit_fingerprint(estimator, every, matrix, labels)
    directory = Path(folder) / fingerprint
    estimator, info = _fit_in_chunks(estimator, matrix, labels, every, directory, after_chunk)
    info["fingerprint"] = fingerprint
    if encoder is not None:
        model.label_encoder_, model.estimator_, model.classes_ = (
            encoder,
            estimator,
            encoder.classes_,
        )
        estimator = model
    fitted.steps[-1] = ("model", estimator)
    if not keep:
        shutil.rmtree(directory, ignore_errors=True)
    return fitted, info


def fit_fingerprint(estimator: Any, every: int, matrix: Any, labels: np.ndarray) -> str:
    """Same estimator, parameters, chunk size, training matrix and labels -> same checkpoints;
    any other fit never finds them. The matrix (after preprocessing and SMOTE) is what the
    estimator learns from, so a change in the preprocessing changes it too."""
    digest = hashlib.sha256()
    params = {k: v for k, v in estimator.get_params().items() if k not in ("warm_start",)}
    identity = {"estimator": type(estimator).__qualname__, "params": params, "every": every}
    digest.update(json.dumps(identity, sort_keys=True, default=repr).encode())
    if isinstance(matrix, pd.DataFrame):
        digest.update(data_fingerprint(matrix).encode())
    elif scipy.sparse.issparse(matrix):
        matrix = scipy.sparse.csr_matrix(matrix)
        for part in (matrix.data, matrix.indices, matrix.indptr, np.asarray(matrix.shape)):
            digest.update(np.ascontiguousarray(part).tobytes())
    else:
        digest.update(np.asarray(matrix.shape).tobytes())
        digest.update(np.ascontiguousarray(matrix).tobytes())
    digest.update(data_fingerprint(pd.DataFrame({"label": labels})).encode())
    return f"{type(estimator).__name__.lower()}_{digest.hexdigest()[:16]}"


def _fit_in_chunks(
    estimator: Any,
    matrix: Any,
    labels: np.ndarray,
    every: int,
    directory: Path,
    after_chunk: Callable[[int], None] | None,
) -> tuple[Any, dict[str, Any]]:
    kind = family(estimator)
    rounds_param = "max_iter" if kind == "neural_network" else "n_estimators"
    params = estimator.get_params()
    total = int(params[rounds_param] or 100)  # boosters' default is 100 rounds
    seed = params.get("random_state")
    done, complete = 0, False
    latest = latest_checkpoint(directory)
    if latest is not None:
        saved = joblib.load(latest)
        estimator, done, complete = saved["estimator"], saved["rounds"], saved["complete"]
        logger.info(
            "Resuming the fit of %s from its checkpoint at round %d of %d (%s).",
            type(estimator).__name__, done, total, latest,
        )  # fmt: skip
    # A complete checkpoint stopped short of `total` only when the network converged: resumed
    # from one, the fit still warns when it did not (as the uninterrupted fit did).
    started_at, converged = done, complete and done < total
    while not complete:
        chunk = min(every, total - done)
        estimator, ran = _fit_chunk(kind, estimator, matrix, labels, chunk, done, every, seed)
        done += ran
        converged = ran < chunk  # fewer epochs than asked: the network stopped on its own
        complete = done >= total or converged
        save_checkpoint(directory, estimator, done, complete)
        if after_chunk is not None:
            after_chunk(done)
    estimator.set_params(**{rounds_param: total})
    if kind in {"lightgbm", "xgboost"}:
        estimator.set_params(random_state=seed)
    else:
        estimator.set_params(warm_start=params["warm_start"])
        if not converged:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({total}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=2,
            )
    return estimator, {"rounds": done, "resumed_from": started_at, "every": every}


def _fit_chunk(
    kind: str | None,
    estimator: Any,
    matrix: Any,
    labels: np.ndarray,
    chunk: int,
    done: int,
    every: int,
    seed: int | None,
) -> tuple[Any, int]:
    """`chunk` more rounds on top of `done`; returns the estimator and the rounds it ran.
    Boosters draw their bagging and column samples with a seed per chunk (the seed plus the
    chunk index): a continued booster restarts its random generator, and the same seed would
    repeat the same samples in every chunk."""
    if kind == "neural_network":
        estimator.set_params(warm_start=True, max_iter=chunk)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a chunk ends before the fit
            estimator.fit(matrix, labels)
        return estimator, int(estimator.n_iter_)
    chunk_seed = None if seed is None else int(seed) + done // every
    previous = None
    if done:
        previous = estimator.booster_ if kind == "lightgbm" else estimator.get_booster()
    estimator.set_params(n_estimators=chunk, random_state=chunk_seed)
    if kind == "lightgbm":
        estimator.fit(matrix, labels, init_model=previous)
    else:
        estimator.fit(matrix, labels, xgb_model=previous)
    return estimator, chunk


def latest_checkpoint(directory: Path) -> Path | None:
    found = sorted(directory.glob(f"{CHECKPOINT_PREFIX}*.joblib"))
    return found[-1] if found else None


def save_checkpoint(directory: Path, estimator: Any, rounds: int, complete: bool) -> Path:
    """Written to a temporary file and renamed: a kill mid-write leaves the previous one whole."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{CHECKPOINT_PREFIX}{rounds:07d}.joblib"
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            joblib.dump({"estimator": estimator, "rounds": rounds, "complete": complete}, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
