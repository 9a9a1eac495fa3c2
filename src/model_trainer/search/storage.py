"""Where studies live: an Optuna storage from a URL (SQLite, PostgreSQL, a journal file, or an
environment variable holding one), opened with retries, its password kept out of logs."""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Mapping
from itertools import count
from typing import Any

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from sqlalchemy.exc import IntegrityError, ProgrammingError

from model_trainer.errors import ConfigurationError, ModelTrainerError

logger = logging.getLogger(__name__)


STORAGE_OPEN_ATTEMPTS = 5


def make_storage(settings: Mapping[str, Any]) -> optuna.storages.BaseStorage | None:
    """SQLite/PostgreSQL (RDB, with heartbeats so a killed trial is marked failed), a journal
    file (`journal:PATH`, no heartbeat), or in memory when tuning is not stored. `env:NAME`
    reads the URL from the environment variable NAME, so a password stays out of conf and of
    the parameters kedro-mlflow logs."""
    url = storage_url(settings.get("storage"))
    if not url:
        return None
    if url.startswith("journal:"):
        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(os.path.abspath(url.removeprefix("sqlite:///"))), exist_ok=True)
    for attempt in count(1):
        try:
            return RDBStorage(
                url,
                heartbeat_interval=int(settings.get("heartbeat_interval", 60)),
                grace_period=int(settings.get("heartbeat_grace_period", 120)),
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
        except (IntegrityError, ProgrammingError) as exc:
            # Workers starting together on a fresh database race to create the tables: the
            # loser's CREATE collides with the winner's, and on a retry the tables exist.
            if attempt == STORAGE_OPEN_ATTEMPTS:
                raise _storage_error(url, exc) from exc
            logger.info("Optuna tables being created by another worker; retry %d.", attempt)
            time.sleep(random.uniform(0.2, 1.0) * attempt)
        except Exception as exc:
            raise _storage_error(url, exc) from exc


def storage_url(value: str | None) -> str | None:
    if not value or not value.startswith("env:"):
        return value
    name = value.removeprefix("env:")
    if not os.environ.get(name):
        raise ConfigurationError(
            f"tuning.storage is {value}, but the environment variable {name} is not set.",
            f"Set {name} to the study's storage URL (e.g. postgresql://user:password@host/db).",
        )
    return os.environ[name]


def _storage_error(url: str, exc: Exception) -> ModelTrainerError:
    return ModelTrainerError(
        f"Cannot open the Optuna storage '{redact(url)}': {type(exc).__name__}: {redact(str(exc))}",
        "Check tuning.storage: a SQLAlchemy URL (sqlite:///path.db, postgresql://…) or "
        "journal:path.log, and that its server is reachable.",
    )


def redact(url: str) -> str:
    """Storage URLs may carry a password (user info or a query parameter); never log or save it."""
    url = re.sub(r"(?<=[/:])[^/@?]*@", "***@", url, count=1)
    return re.sub(r"(?i)([?&][^=&]*pass[^=&]*=)[^&]*", r"\1***", url)
