"""SHA-256 digests of model files, checked before a file is unpickled.

Unpickling a joblib or pickle file runs code chosen by whoever wrote it. Training records the
digest of the file it writes (the model card's `model_sha256`; for the MLflow copy, the run's
and registered version's `model_pkl_sha256` tag), and every loader compares the file on disk
with it before `joblib.load`: a swapped or altered file is refused, not run.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import joblib

from model_trainer.errors import UnverifiedModelError

CARD_KEY = "model_sha256"  # the model card's digest of model.joblib
MLFLOW_TAG = "model_pkl_sha256"  # the MLflow run's and version's digest of its model.pkl
TRUST_HINT = (
    "If you know where this file comes from and trust it, load it anyway with "
    "--trust-unverified (kedro serve) or the parameter trust_unverified: true (evaluation, "
    "deploy, inference)."
)


def joblib_file(model: Any) -> tuple[bytes, str]:
    """The bytes of `model`'s joblib file (what `joblib.dump(model, path)` writes) and their
    SHA-256. The catalog writes these very bytes: the digest of an object dumped twice, or
    reloaded, need not match, and this way the model is serialised only once."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, recorded: str | None, where: str, trust_unverified: bool) -> bool:
    """Whether `path` matches the digest recorded for it (`where` says where it was recorded).
    A mismatch, or no digest at all, is an UnverifiedModelError unless `trust_unverified`; then
    the answer is False and the caller says so."""
    if recorded and file_sha256(path) == recorded:
        return True
    if trust_unverified:
        return False
    if not recorded:
        raise UnverifiedModelError(
            f"{path} has no SHA-256 recorded ({where} holds none), so it cannot be checked "
            "before it is unpickled, which runs any code the file holds.",
            f"Retrain it with this version of model-trainer, which records one. {TRUST_HINT}",
        )
    raise UnverifiedModelError(
        f"{path} is not the file training wrote: its SHA-256 is {file_sha256(path)}, "
        f"{where} records {recorded}. It was changed or replaced after training, and unpickling "
        "it would run whatever code it holds.",
        f"Use the file the train pipeline saved (or retrain). {TRUST_HINT}",
    )
