"""Find a trained model and what was saved with it, from a path, an MLflow URI or "the latest".

Evaluate, deploy, serve and inference all start here, so a model is named the same way
everywhere: nothing (the latest version the train pipeline saved), a joblib path, or an MLflow
URI (`models:/name/3`, `models:/name@alias`, `runs:/<run id>/model`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib

from model_trainer.errors import ConfigurationError
from model_trainer.serving import integrity

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
CARD_FILE = "model_card.json"
MLFLOW_SCHEMES = ("models:/", "runs:/")
# The card of a model the retrain pipeline fitted; `promoted: false` marks a challenger that lost.
RETRAINING_KEY = "retraining"


@dataclass
class StoredModel:
    model: Any
    card: dict[str, Any]
    source: str
    save_version: str | None = None
    run_id: str | None = None
    registered_name: str | None = None
    registered_version: str | None = None
    verified: bool = True  # the file matched the SHA-256 recorded at training

    @property
    def is_classifier(self) -> bool:
        return self.card["task"] == "classification"


def latest_version(dataset_dir: Path) -> str | None:
    versions = saved_versions(dataset_dir)
    return versions[-1] if versions else None


def saved_versions(dataset_dir: Path) -> list[str]:
    """Kedro's save versions are UTC timestamps, so the newest sorts last."""
    if not dataset_dir.is_dir():
        return []
    return sorted(p.name for p in dataset_dir.iterdir() if (p / dataset_dir.name).is_file())


def versioned_file(dataset_dir: Path, version: str) -> Path:
    return dataset_dir / version / dataset_dir.name


def load_stored_model(
    reference: str | None, models_dir: Path, trust_unverified: bool = False
) -> StoredModel:
    """`models_dir` is the train pipeline's data/06_models (where "the latest" lives). The
    model file is checked against the SHA-256 recorded at training before it is unpickled;
    `trust_unverified` loads a file that does not match (or has no digest) with a warning."""
    if reference is None or str(reference).strip() in ("", "latest"):
        return _load_latest(models_dir, trust_unverified)
    reference = str(reference).strip()
    if reference.startswith(MLFLOW_SCHEMES):
        return _load_from_mlflow(reference, trust_unverified)
    return _load_path(Path(reference).expanduser(), trust_unverified)


def _load_latest(models_dir: Path, trust_unverified: bool) -> StoredModel:
    model_dir = models_dir / MODEL_FILE
    return _load_path(versioned_file(model_dir, served_version(models_dir)), trust_unverified)


def served_version(models_dir: Path) -> str:
    """The save version of "the latest model": the newest that is not a challenger the retrain
    pipeline kept out. Read from the cards alone: nothing is unpickled."""
    model_dir = models_dir / MODEL_FILE
    versions = saved_versions(model_dir)
    rejected = [v for v in versions if was_rejected(card_of_version(models_dir, v))]
    served = [v for v in versions if v not in rejected]
    if not served:
        raise ConfigurationError(
            f"No trained model under {model_dir}"
            + (f" (only {len(rejected)} challenger(s) not promoted)." if rejected else "."),
            "Train one first (`kedro run --pipeline=train`), or name a model: a joblib path or "
            "an MLflow URI such as models:/model_trainer/1.",
        )
    if rejected and rejected[-1] > served[-1]:
        logger.info(
            "Passed over %d newer challenger(s) the retrain pipeline did not promote.",
            sum(v > served[-1] for v in rejected),
        )
    return served[-1]


def was_rejected(card: dict[str, Any] | None) -> bool:
    """A challenger the retrain pipeline did not promote: kept for the record, not served as
    "the latest model"."""
    return ((card or {}).get(RETRAINING_KEY) or {}).get("promoted") is False


def card_of_version(models_dir: Path, version: str) -> dict[str, Any] | None:
    path = versioned_file(models_dir / CARD_FILE, version)
    return json.loads(path.read_text()) if path.is_file() else None


def _load_path(path: Path, trust_unverified: bool) -> StoredModel:
    if not path.is_file():
        raise ConfigurationError(
            f"The model file {path} does not exist.",
            "Give the path of a model.joblib the train pipeline saved, or an MLflow URI.",
        )
    version = path.parent.name if path.parent.parent.name == MODEL_FILE else None
    card_path = _card_beside(path, version)
    if card_path is None:
        raise ConfigurationError(
            f"No model card beside {path}.",
            f"Keep the {CARD_FILE} the train pipeline saved with the model (same version folder "
            "under data/06_models/model_card.json, or the same folder as the model).",
        )
    card = json.loads(card_path.read_text())
    verified = integrity.verify(
        path, card.get(integrity.CARD_KEY), f"its model card {card_path}", trust_unverified
    )
    if not verified:
        _warn_unverified(path)
    model = _checked_model(joblib.load(path), str(path))
    return StoredModel(
        model=model,
        card=card,
        source=str(path.resolve()),
        save_version=version,
        verified=verified,
    )


def _warn_unverified(path: Path) -> None:
    logger.warning(
        "Loading %s without a matching SHA-256 (trust_unverified): unpickling runs any code the "
        "file holds.",
        path,
    )


def _card_beside(model_path: Path, version: str | None) -> Path | None:
    candidates = [model_path.parent / CARD_FILE]
    if version is not None:
        candidates.insert(0, versioned_file(model_path.parent.parent.parent / CARD_FILE, version))
    return next((c for c in candidates if c.is_file()), None)


def _load_from_mlflow(uri: str, trust_unverified: bool) -> StoredModel:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    try:
        run_id, name, version = _resolve_run(uri)
        card = mlflow.artifacts.load_dict(f"runs:/{run_id}/{CARD_FILE}")
        tags = mlflow.get_run(run_id).data.tags
        save_version = tags.get("run_id")
        # A folder of its own, as mlflow.sklearn.load_model(uri) would download into itself.
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
        pickled = local / Model.load(local).flavors["sklearn"]["pickled_model"]
        verified = integrity.verify(
            pickled,
            tags.get(integrity.MLFLOW_TAG),
            f"the tag {integrity.MLFLOW_TAG} of MLflow run {run_id}",
            trust_unverified,
        )
        if not verified:
            _warn_unverified(pickled)
        model = mlflow.sklearn.load_model(str(local))
    except MlflowException as exc:
        raise ConfigurationError(
            f"Cannot load the model {uri} from MLflow ({mlflow.get_tracking_uri()}): {exc.message}",
            "Check the name and version (or alias) in the registry, and that the tracking URI "
            "points at the store the model was logged to.",
        ) from exc
    return StoredModel(
        model=_checked_model(model, uri),
        card=card,
        source=uri,
        save_version=save_version,
        run_id=run_id,
        registered_name=name,
        registered_version=version,
        verified=verified,
    )


def _resolve_run(uri: str) -> tuple[str, str | None, str | None]:
    """The run that logged the model, and its registry name and version when it has one."""
    from mlflow import MlflowClient

    client = MlflowClient()
    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/", 1)[0], None, None
    name_and_version = uri.removeprefix("models:/")
    if "@" in name_and_version:
        name, alias = name_and_version.split("@", 1)
        found = client.get_model_version_by_alias(name, alias)
    elif "/" in name_and_version:
        name, version = name_and_version.rsplit("/", 1)
        if version == "latest":
            found = max(
                client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)
            )
        else:
            found = client.get_model_version(name, version)
    else:
        found = client.get_logged_model(name_and_version)
        return found.source_run_id, None, None
    return found.run_id, found.name, str(found.version)


def _checked_model(model: Any, source: str) -> Any:
    if not hasattr(model, "predict"):
        raise ConfigurationError(
            f"{source} holds a {type(model).__name__}, not a fitted model with predict().",
            "Give a model the train pipeline saved.",
        )
    return model
