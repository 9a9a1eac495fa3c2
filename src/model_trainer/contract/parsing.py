"""A task JSON read into its typed request, or refused with what to fix.

pydantic's errors name branches of union types and nested locations; an agent needs one
sentence per bad key: the key, what it accepts and what was given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from model_trainer.contract.requests import (
    MODES,
    REQUEST,
    DeployRequest,
    EvaluateRequest,
    Request,
    RetrainRequest,
    TrainRequest,
)
from model_trainer.errors import ConfigurationError


def parse_request(spec: Any) -> Request:
    """The typed request, or a ConfigurationError naming each bad key, what it accepts and
    what was given. A missing `task` means train_model."""
    if not isinstance(spec, Mapping):
        raise ConfigurationError(
            f"The task JSON must be an object, got {type(spec).__name__}.",
            'Give {"task": "train_model", "trainDataPath": ..., "targetColumn": ...}.',
        )
    spec = {"task": "train_model", **spec}
    try:
        request = REQUEST.validate_python(spec)
    except ValidationError as exc:
        raise _explained(exc, spec) from None
    if (
        isinstance(request, TrainRequest)
        and not request.targetColumn
        and request.modelType != "clustering"
    ):
        raise ConfigurationError(
            "The task JSON has no targetColumn.",
            "Add targetColumn: the column to predict (only modelType clustering goes without one).",
        )
    if not isinstance(request, TrainRequest) and request.modelPath and request.modelUri:
        raise ConfigurationError(
            "The task JSON gives both modelPath and modelUri.",
            "Give one of them (or neither, for the latest model trained in the project).",
        )
    return request


def check_algorithms(request: TrainRequest, known: Iterable[str]) -> None:
    """Unknown algorithm names are refused before any data is read."""
    names = [request.algorithm] if isinstance(request.algorithm, str) else request.algorithm
    known = sorted(known)
    unknown = [name for name in names if name != "auto" and name not in known]
    if unknown:
        raise ConfigurationError(
            f"algorithm: unknown name(s) {unknown}.",
            f"Use auto, one of these or a list of them: {', '.join(known)}.",
        )


def _explained(exc: ValidationError, spec: Mapping[str, Any]) -> ConfigurationError:
    """One sentence per error: the key (dotted), the problem, what was given."""
    mode = spec.get("task")
    problems, remediations = [], []
    for error in _without_other_branches(exc.errors(include_url=False), mode):
        location = error["loc"]
        key = ".".join(location) or "the task JSON"
        kind = error["type"]
        if kind == "union_tag_invalid":
            problems.append(f"task '{mode}' is not a task this project runs.")
            remediations.append(f"Set task to one of: {', '.join(MODES)}.")
        elif kind == "extra_forbidden":
            problems.append(f"Unknown key '{key}'.")
            remediations.append(f"Keys accepted there: {', '.join(_keys_at(mode, location))}.")
        elif kind == "missing":
            problems.append(f"The task JSON has no {key}.")
            remediations.append(f"Add {key}{_hint(key)}.")
        else:
            problems.append(f"{key}: {error['msg']}; got {error.get('input')!r}.")
            remediations.append(f"Fix {key}{_hint(key)}.")
    return ConfigurationError(" ".join(problems), " ".join(dict.fromkeys(remediations)))


TYPE_ERRORS = {"model_type", "dict_type", "list_type", "string_type", "model_attributes_type"}


def _without_other_branches(errors: list[Any], mode: Any) -> list[Any]:
    """A value of a union type (validationStrategy: a name or an object) fails every branch:
    keep the branch of the kind of value given, and drop the branch names from the key."""
    cleaned: dict[tuple[str, ...], list[Any]] = {}
    for error in errors:
        parts = [str(part) for part in error["loc"]]
        if parts and parts[0] == mode:  # the request's tag, not a key
            parts = parts[1:]
        location = tuple(
            p for p in parts if not any(c in p for c in "[-") and p not in BRANCH_NAMES
        )
        cleaned.setdefault(location, []).append({**error, "loc": location})
    kept = []
    for location, same_key in cleaned.items():
        if any(other[: len(location)] == location for other in cleaned if other != location):
            continue  # an object or list was given, and errors inside it say what is wrong
        matching = [e for e in same_key if e["type"] not in TYPE_ERRORS]
        kept.extend(matching or same_key[:1])
    return kept


BRANCH_NAMES = {"str", "int", "float", "bool", "Validation", "MetricBounds"}


HINTS = {
    "trainDataPath": " (the CSV or Parquet file to train on)",
    "testDataPath": " (a labelled CSV or Parquet file with the model's input columns)",
    "newDataPath": " (the new labelled rows: a CSV or Parquet file with the model's columns)",
    "hyperparameterSearch.enabled": " (true or false, not a string)",
    "hyperparameterSearch.nTrials": " (an integer, 1 or more)",
    "hyperparameterSearch.timeout": " (seconds, a number above 0, e.g. 3600 for an hour)",
    "experimentTracking.enabled": " (runs are always tracked in MLflow, in the project's "
    "sqlite:///mlflow.db unless trackingUri names another store: leave it true or out)",
    "validationStrategy": " (a name such as stratified_kfold, or an object "
    '{"type": "stratified_kfold", "folds": 5, "shuffle": true})',
    "algorithm": ' (auto, a name such as "lightgbm", or a list of names)',
    "features": ' (a JSON list of column names, e.g. ["age", "income"], or leave it out)',
}


def _hint(key: str) -> str:
    return HINTS.get(key, "")


def _keys_at(mode: Any, location: list[str]) -> list[str]:
    """The keys the model at `location` (the unknown key's parent) accepts."""
    model: Any = next(
        (m for m in (TrainRequest, EvaluateRequest, DeployRequest, RetrainRequest)
         if mode in m.model_fields["task"].annotation.__args__),
        TrainRequest,
    )  # fmt: skip
    for part in location[:-1]:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type):
            break
        model = field.annotation
    return list(model.model_fields)
