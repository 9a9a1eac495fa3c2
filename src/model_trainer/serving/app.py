"""An HTTP endpoint for a trained model: requests are checked against the training schema in the
model card, so a client learns which column is wrong (422) instead of getting a 500 or, worse, a
silent prediction from a mistyped value.

Kept free of Kedro: `kedro serve` loads the model and hands it here; tests build the app directly.
"""

import datetime as dt
import json
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired

import anyio
import numpy as np
import pandas as pd
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictStr,
    create_model,
    with_config,
)
from sklearn.pipeline import Pipeline
from typing_extensions import TypedDict

from model_trainer.models.ensemble import WeightedEnsemble
from model_trainer.models.estimators import prediction_steps
from model_trainer.serving.explaining import MAX_EXPLAINED_RECORDS, Explanations, explainer
from model_trainer.serving.middleware import ARRIVED, BodyGate, KeyGate
from model_trainer.serving.model_store import StoredModel
from model_trainer.tasks.ranking import rank_within_groups

DEFAULT_MAX_BODY_BYTES = 1_048_576
UnknownColumns = Literal["ignore", "refuse"]
# The two ways of sending the key, declared in the OpenAPI schema (the Authorize button of
# /docs); auto_error=False, as KeyGate is what checks the key.
KEY_SCHEMES = [
    Security(APIKeyHeader(name="X-API-Key", auto_error=False)),
    Security(HTTPBearer(auto_error=False)),
]


def _floats(values: list[Any]) -> np.ndarray:
    return np.array(values, dtype="float64")  # null = NaN


def _objects(values: list[Any]) -> np.ndarray:
    return np.array(values, dtype=object)  # booleans with None for missing


def _strings(values: list[Any]) -> Any:
    return pd.array(values, dtype="str")  # pandas' str, as training read text; null = NaN


# What JSON a column takes, as a pydantic type, and how its values become the model's column.
JSON_TYPES: dict[str, tuple[Any, Callable[[list[Any]], Any]]] = {
    "number": (StrictFloat | None, _floats),
    "boolean": (StrictBool | None, _objects),
    "string": (StrictStr | None, _strings),
}


def _unused(values: list[Any]) -> np.ndarray:
    """A column the training dropped: the model never reads it, whatever was sent."""
    return np.full(len(values), None, dtype=object)


class Predictions(BaseModel):
    predictions: list[Any]
    probabilities: list[list[float]] | None = Field(
        None, description="Classifiers: one row per record, in the order of `classes`."
    )
    classes: list[Any] | None = None
    ranks: list[int] | None = Field(
        None,
        description="Ranking models: each record's rank among this request's records of its "
        "group (1 = first), when every record gives the group column.",
    )
    model_version: str


def json_type(feature: Mapping[str, Any]) -> str:
    """The training dtype decides: a code column read as numbers takes numbers even when it is
    treated as categorical, and a yes/no column read as text takes strings."""
    dtype = pd.api.types.pandas_dtype(feature["dtype"])
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if feature["type"] == "numeric" or pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return "string"


def model_version(stored: StoredModel) -> str:
    """Kedro's save version names the model the same whether it was loaded from a path or from
    the registry; a loose joblib file falls back to its card's creation time."""
    return stored.save_version or stored.card["created"]


def build_app(
    stored: StoredModel,
    *,
    unknown_columns: UnknownColumns = "ignore",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    prediction_log: Path | None = None,
    api_key: str | None = None,
) -> FastAPI:
    """With `api_key`, every route but /health answers a 401 without it. /docs and /openapi.json
    stay open: they hold the request's columns and types and how to send the key, what a client
    needs to call the server, not the model's source, metrics or answers."""
    card = stored.card
    features: dict[str, dict[str, Any]] = card["features"]
    types = {name: json_type(info) for name, info in features.items()}
    # The Pipeline takes the columns the training dropped too; a request may leave them out.
    column_builders = {
        name: JSON_TYPES[types[name]][1] if name in types else _unused
        for name in card["input_columns"]
    }
    ranking = card.get("ranking") or {}
    group_column = ranking.get("group_column")
    # what a ranking is made within and whose history is read, features or not: a column the
    # training dropped is kept as sent (GroupItemHistory matches it to the training values' type)
    for structure in (group_column, ranking.get("item_column")):
        if structure and structure not in types:
            column_builders[structure] = _objects
    datetime_columns = [name for name, info in features.items() if info["type"] == "datetime"]
    request_model = _request_model(card, types, unknown_columns)
    version = model_version(stored)
    with_probabilities = stored.is_classifier and hasattr(stored.model, "predict_proba")
    score = _scorer(stored.model, with_probabilities)
    classes = np.asarray(stored.model.classes_).tolist() if with_probabilities else None
    log = PredictionLog(prediction_log) if prediction_log else None

    app = FastAPI(
        title=f"model-trainer: {card['target']} ({card['task']}, {card['algorithm']})",
        version=version,
        description="Predictions from a model trained by model-trainer. Columns are checked "
        "against the training schema (see /metadata); null is a missing value.",
    )
    app.add_middleware(BodyGate, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _explain_invalid_request)
    if api_key:  # added last, so it runs first
        open_paths = {"/health", app.docs_url, app.swagger_ui_oauth2_redirect_url, app.openapi_url}
        app.add_middleware(KeyGate, api_key=api_key, open_paths=open_paths)
    key_schemes = KEY_SCHEMES if api_key else []

    # One prediction at a time, off the event loop (which keeps reading and checking requests
    # meanwhile). Concurrent predictions fight over the GIL and the model's own threads
    # (LightGBM's OpenMP): at 32 clients on 2 cores, a thread per request (FastAPI's pool of 40)
    # or 6 threads had a p99 of 3 s and more, 1 or 2 threads 1.1-1.3 s at the same throughput.
    # More throughput is more processes (replicas); see benchmarks/serving.md.
    one_at_a_time = anyio.CapacityLimiter(1)

    def frame_of(records: list[dict[str, Any]]) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                name: build([record.get(name) for record in records])
                for name, build in column_builders.items()
            },
            copy=False,
        )
        _check_datetimes(frame, datetime_columns)
        return frame

    def answer(records: list[dict[str, Any]]) -> dict[str, Any]:
        frame = frame_of(records)
        predictions, probabilities = score(frame)
        grouped = group_column is not None and frame[group_column].notna().all()
        return {
            "predictions": predictions.tolist(),
            "probabilities": None if probabilities is None else probabilities.tolist(),
            "classes": classes,
            "ranks": rank_within_groups(predictions, frame[group_column]).tolist()
            if grouped
            else None,
            "model_version": version,
        }

    @app.post(
        "/predict",
        response_model=Predictions,
        response_model_exclude_none=True,
        dependencies=key_schemes,
    )
    async def predict(body: request_model, request: Request) -> dict[str, Any]:
        result = await anyio.to_thread.run_sync(answer, body.records, limiter=one_at_a_time)
        if log is not None:
            latency_ms = (time.perf_counter() - request.scope["state"][ARRIVED]) * 1000
            log.write(version, len(body.records), latency_ms, result["predictions"])
        return result

    explained, refusal = explainer(stored.model, card, frame_of)
    unexplainable, remedy = refusal or (None, None)
    # Explanations queue on their own: a slow one must not hold up the predictions behind it.
    one_explanation_at_a_time = anyio.CapacityLimiter(1)

    @app.post("/explain", response_model=Explanations, dependencies=key_schemes)
    async def explain(body: request_model) -> Any:
        """Each record's SHAP values per input column (at most MAX_EXPLAINED_RECORDS)."""
        if explained is None:
            return JSONResponse(
                status_code=409,
                content={"error": f"This model cannot be explained: {unexplainable}.",
                         "remediation": remedy},
            )  # fmt: skip
        if len(body.records) > MAX_EXPLAINED_RECORDS:
            return JSONResponse(
                status_code=422,
                content={
                    "error": f"records holds {len(body.records)} records; /explain takes at "
                    f"most {MAX_EXPLAINED_RECORDS} per request.",
                    "remediation": "Send them in smaller requests.",
                },
            )
        result = await anyio.to_thread.run_sync(
            lambda: explained(frame_of(body.records)), limiter=one_explanation_at_a_time
        )
        return {**result, "model_version": version}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model_version": version}

    onnx = stored.source.endswith(".onnx")
    metadata = {
        "model_version": version,
        "source": stored.source,
        "run_id": stored.run_id,
        "registered_model": stored.registered_name,
        "registered_version": stored.registered_version,
        "format": "onnx" if onnx else "joblib",
        # false: loaded with --trust-unverified; null: an ONNX file, which has no digest
        "sha256_verified": None if onnx else stored.verified,
        "target": card["target"],
        "task": card["task"],
        "classes": card.get("classes"),
        "positive_class": card.get("positive_class"),
        "ranking": card.get("ranking"),
        "algorithm": card["algorithm"],
        "ensemble": card.get("ensemble"),
        "metric": card["metric"],
        "input_columns": card["input_columns"],
        "features": {name: {**info, "json_type": types[name]} for name, info in features.items()},
        "ignored_columns": card["ignored_columns"],
        "test_metrics": card["test_metrics"],
        "cross_validation": card["cross_validation"],
        "data_fingerprint": card["data_fingerprint"],
        "created": card["created"],
        "unknown_columns": unknown_columns,
        "max_body_bytes": max_body_bytes,
    }

    @app.get("/metadata", dependencies=key_schemes)
    async def get_metadata() -> dict[str, Any]:
        return metadata

    return app


def _request_model(
    card: Mapping[str, Any], types: Mapping[str, str], unknown_columns: UnknownColumns
) -> type[BaseModel]:
    """A record type with one key per training column (any name, spaces included), so pydantic
    reports a missing or mistyped value at its column, and /docs shows the schema."""
    fields: dict[str, Any] = {
        name: Annotated[
            JSON_TYPES[types[name]][0],
            Field(description=f"{card['features'][name]['type']}; null = missing"),
        ]
        for name in types
    }
    ranking = card.get("ranking") or {}
    read = {
        ranking.get("group_column"): "the group the record is ranked within"
        + ("; its history with the item is read" if ranking.get("item_column") else ""),
        ranking.get("item_column"): "the item ranked; the group's history with it is read",
    }
    for name in card["input_columns"]:
        if name not in fields:
            description = read.get(name, "unused by the model")
            fields[name] = NotRequired[Annotated[Any, Field(description=description)]]
    extra = "forbid" if unknown_columns == "refuse" else "ignore"
    record = with_config(ConfigDict(extra=extra))(TypedDict("Record", fields))
    return create_model(
        "PredictionRequest", records=(Annotated[list[record], Field(min_length=1)], ...)
    )


def _scorer(
    model: Any, with_probabilities: bool
) -> Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]:
    """Labels and probabilities from one pass through the model: a Pipeline's transforms run once
    for both, and an ensemble's label is the argmax of its probabilities (as its own predict
    computes it), so its members are not run twice."""
    if not with_probabilities:
        return lambda frame: (np.asarray(model.predict(frame)), None)
    transforms, estimator = None, model
    if isinstance(model, Pipeline):
        steps = prediction_steps(model)
        transforms, estimator = (steps[:-1] if len(steps) > 1 else None), steps[-1]

    def score(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        features = frame if transforms is None else transforms.transform(frame)
        probabilities = np.asarray(estimator.predict_proba(features))
        if isinstance(estimator, WeightedEnsemble):
            return estimator.classes_[probabilities.argmax(axis=1)], probabilities
        return np.asarray(estimator.predict(features)), probabilities

    return score


def _check_datetimes(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """The model would read an unparseable date as missing without a word: refuse it instead."""
    errors = []
    for name in columns:
        given = frame[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                unreadable = (
                    given.notna() & pd.to_datetime(given, errors="coerce", format="mixed").isna()
                )
            except (ValueError, TypeError):  # e.g. time zones mixed with naive times
                unreadable = given.notna()
        errors += [
            {
                "loc": ("body", "records", int(row), name),
                "msg": "Input should be a date or time, e.g. ISO 8601 2024-05-31T12:00:00",
                "type": "datetime_parsing",
            }
            for row in np.flatnonzero(unreadable.to_numpy())
        ]
    if errors:
        raise RequestValidationError(errors)


async def _explain_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's `detail` list (where, what), without echoing inputs back, and one line that
    names the columns."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    problems: dict[str, list[int]] = {}
    for error in detail:
        loc = error["loc"]
        if len(loc) >= 4 and loc[1] == "records" and isinstance(loc[2], int):
            what = (
                f"column '{loc[3]}' is missing"
                if error["type"] == "missing"
                else f"column '{loc[3]}': {error['msg']}"
            )
            problems.setdefault(what, []).append(loc[2])
        else:
            problems.setdefault(" -> ".join(map(str, loc)) + f": {error['msg']}", [])
    summary = "; ".join(
        what + (f" (records {_first_rows(rows)})" if rows else "")
        for what, rows in problems.items()
    )
    return JSONResponse(status_code=422, content={"error": summary, "detail": detail})


def _first_rows(rows: list[int], shown: int = 5) -> str:
    unique = sorted(set(rows))
    text = ", ".join(map(str, unique[:shown]))
    return text + (f" and {len(unique) - shown} more" if len(unique) > shown else "")


class PredictionLog:
    """One JSON line per answered request, for monitoring. The file is opened per write so a
    log rotation never loses lines; the lock keeps lines from interleaving across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(
        self, model_version: str, n_records: int, latency_ms: float, predictions: list[Any]
    ) -> None:
        line = json.dumps(
            {
                "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "model_version": model_version,
                "n_records": n_records,
                "latency_ms": round(latency_ms, 3),
                "predictions": predictions,
            }
        )
        with self._lock, self.path.open("a") as handle:
            handle.write(line + "\n")
