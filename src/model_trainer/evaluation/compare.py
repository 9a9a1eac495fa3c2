"""A trained model beside what it should beat on the same rows: a dummy that knows only the
class shares (or the mean), and its own earlier registered versions."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from sklearn.dummy import DummyClassifier, DummyRegressor

from model_trainer.errors import ConfigurationError
from model_trainer.evaluation.holdout import model_task, training_overlap
from model_trainer.models.ensemble import predict_output, score_output
from model_trainer.models.metrics import REPORTS
from model_trainer.serving.model_store import StoredModel, load_stored_model

logger = logging.getLogger(__name__)


def model_metrics(
    model: Any, X: pd.DataFrame, y: pd.Series, task: Mapping[str, Any]
) -> dict[str, float]:
    """Every metric of the task, from one prediction aligned to the model card's classes (so a
    model, or a dummy, that never saw a class is still scored)."""
    output = predict_output(model, X, task)
    groups = X[task["group_column"]].to_numpy() if task["type"] == "ranking" else None
    return {name: score_output(output, y, name, task, groups) for name in REPORTS[task["type"]]}


def no_skill_metrics(X: pd.DataFrame, y: pd.Series, task: Mapping[str, Any]) -> dict[str, float]:
    """A dummy that knows this data's class shares (or mean) and nothing else: the floor."""
    dummy = (
        DummyClassifier(strategy="prior")
        if task["type"] == "classification"
        else DummyRegressor(strategy="mean")  # ranking: one score for all, a random order
    )
    return model_metrics(dummy.fit(X, y), X, y, task)


def compare_models(
    stored: StoredModel, rows: pd.DataFrame, models_dir: Path, splits_dir: Path, n_earlier: int
) -> dict[str, Any]:
    """The model's metrics on these rows beside a dummy's and its earlier registered versions'
    (the same rows), its own test metrics at training for reference, and how many of these rows
    it was trained on."""
    card, task = stored.card, model_task(stored.card)
    X, y = rows[card["input_columns"]], rows[card["target"]]
    described = describe_model(stored)
    uris, note = [], None
    try:
        registered = registered_as(stored)
        if registered is None:
            note = "the model is not registered in MLflow"
        else:
            described["registered_name"], described["registered_version"] = registered
            uris = earlier_versions(*registered, n_earlier)
            if not uris:
                note = f"{registered[0]} version {registered[1]} is the first registered version"
    except MlflowException as exc:
        note = f"the MLflow registry could not be read: {exc.message}"
    if note:
        logger.info("No earlier version compared: %s.", note)
    overlap, overlap_note = training_overlap(rows, card, splits_dir, stored.save_version)
    return {
        "model": described,
        "metric": card["metric"],
        "metrics": model_metrics(stored.model, X, y, task),
        "dummy": no_skill_metrics(X, y, task),
        "at_training": dict(card.get("test_metrics") or {}),
        "earlier_versions": score_earlier_versions(uris, rows, card, models_dir),
        "earlier_versions_note": note,
        "training_overlap": overlap,
        "training_overlap_note": overlap_note,
    }


def previous_version(
    model_registration: Mapping[str, Any],
    card: Mapping[str, Any],
    test_split: pd.DataFrame,
    models_dir: Path,
    splits_dir: Path,
) -> dict[str, Any]:
    """The version registered before this run's, scored on this run's test split, and the share
    of those rows it was trained on (where its score is optimistic); or why there is none."""
    name = model_registration.get("registered_model_name")
    version = model_registration.get("registered_model_version")
    if card["task"] == "clustering":
        return {"note": "clusterings are compared by their own scores, not on held-out targets"}
    if not name or not version:
        return {"note": "the model is not registered in MLflow"}
    uris = earlier_versions(name, str(version), 1)
    if not uris:
        return {"note": f"{name} version {version} is the first registered version"}
    [scored] = score_earlier_versions(uris, test_split, card, models_dir)
    if "skipped" in scored:
        return {"model": uris[0], "note": scored["skipped"]}
    earlier = load_stored_model(uris[0], models_dir)
    overlap, overlap_note = training_overlap(
        test_split, earlier.card, splits_dir, earlier.save_version
    )
    return {**scored, "trained_on_share": overlap, "note": overlap_note}


def describe_model(stored: StoredModel) -> dict[str, Any]:
    card = stored.card
    return {
        "source": stored.source,
        "target": card["target"],
        "task": card["task"],
        "algorithm": card.get("algorithm"),
        "save_version": stored.save_version,
        "run_id": stored.run_id,
        "registered_name": stored.registered_name,
        "registered_version": stored.registered_version,
    }


def registered_as(stored: StoredModel) -> tuple[str, str] | None:
    """The model's name and version in the MLflow registry. A model loaded from a path is found
    through the run that saved it (Kedro's session id is both the save version and that run's
    `run_id` tag)."""
    if stored.registered_name:
        return stored.registered_name, str(stored.registered_version)
    run_ids = [stored.run_id] if stored.run_id else []
    if not run_ids and stored.save_version:
        runs = mlflow.search_runs(
            search_all_experiments=True,
            filter_string=f"tags.run_id = '{stored.save_version}'",
            output_format="list",
        )
        run_ids = [run.info.run_id for run in runs]
    if not run_ids:
        return None
    client = mlflow.MlflowClient()
    found = [v for r in run_ids for v in client.search_model_versions(f"run_id = '{r}'")]
    if not found:
        return None
    latest = max(found, key=lambda v: int(v.version))
    return latest.name, str(latest.version)


def earlier_versions(name: str, version: str, limit: int) -> list[str]:
    """URIs of the versions registered before this one, newest first."""
    found = mlflow.MlflowClient().search_model_versions(f"name = '{name}'")
    numbers = sorted((int(v.version) for v in found if int(v.version) < int(version)), reverse=True)
    return [f"models:/{name}/{n}" for n in numbers[:limit]]


def score_earlier_versions(
    uris: list[str], rows: pd.DataFrame, card: Mapping[str, Any], models_dir: Path
) -> list[dict[str, Any]]:
    """Each earlier version on the same rows, or why it cannot be compared: an old version that
    fails to load or to predict is reported, not allowed to stop the evaluation of this one."""
    task = model_task(card)
    y = rows[card["target"]]
    results = []
    for uri in uris:
        try:
            earlier = load_stored_model(uri, models_dir)
            reason = incompatibility(earlier.card, card, rows)
            if reason is None:
                X = rows[earlier.card["input_columns"]]
                results.append({"model": uri, "metrics": model_metrics(earlier.model, X, y, task)})
                continue
        except Exception as exc:
            reason = (
                exc.message
                if isinstance(exc, ConfigurationError)
                else f"{type(exc).__name__}: {exc}"
            )
        logger.warning("Not compared with %s: %s.", uri, reason)
        results.append({"model": uri, "skipped": reason})
    return results


def incompatibility(
    earlier: Mapping[str, Any], card: Mapping[str, Any], rows: pd.DataFrame
) -> str | None:
    for key in ("target", "task", "classes"):
        if earlier.get(key) != card.get(key):
            return f"it predicts {key} {earlier.get(key)!r}, this model {card.get(key)!r}"
    missing = [name for name in earlier["input_columns"] if name not in rows.columns]
    if missing:
        return f"it needs columns this data lacks: {missing}"
    return None
