"""`kedro serve`: requests checked against the training schema, answers equal to the saved model's.

The app is tested in-process on a small model with every column kind; the real server (uvicorn
under `kedro serve`, in the session's trained project) answers real HTTP requests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline as SamplingPipeline
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from model_trainer.cli import cli
from model_trainer.models.preprocessing import DatetimeFeatures, to_category_strings
from model_trainer.serving.app import build_app, json_type
from model_trainer.serving.model_store import StoredModel, load_stored_model
from tests.conftest import KEDRO

# One column of each kind; "signed up" has a space, "row_id" was dropped by the training.
TABLE = pd.DataFrame(
    {
        "amount": [10.0, 250.5, np.nan, 40.0, 999.0, 12.5, 300.0, 75.0],
        "city": ["Oslo", "Lima", "Oslo", None, "Pune", "Lima", "Oslo", "Pune"],
        "member": [True, False, True, True, False, False, True, False],
        "plan": [1, 2, 3, 1, 2, 3, 1, 2],
        "signed up": [
            "2024-01-05", "2023-06-30", "2024-03-01", "2022-11-11",
            "2021-02-14", "2024-07-04", "2023-12-24", "2022-05-01",
        ],
        "row_id": range(8),
    }
)  # fmt: skip
TYPES = {
    "amount": "numeric",
    "city": "categorical",
    "member": "boolean",
    "plan": "categorical",
    "signed up": "datetime",
}
LABELS = pd.Series(["yes", "no", "yes", "no", "no", "yes", "yes", "no"])


def _stored(task: str) -> StoredModel:
    categories = make_pipeline(
        FunctionTransformer(to_category_strings), OneHotEncoder(handle_unknown="ignore")
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", SimpleImputer(), ["amount"]),
            ("categories", categories, ["city", "member", "plan"]),
            ("dates", make_pipeline(DatetimeFeatures(), SimpleImputer()), ["signed up"]),
        ]
    )
    if task == "classification":
        model = make_pipeline(preprocess, LogisticRegression(max_iter=1000)).fit(TABLE, LABELS)
    else:
        model = make_pipeline(preprocess, LinearRegression()).fit(TABLE, TABLE["amount"].fillna(0))
    card = {
        "target": "label",
        "task": task,
        "classes": ["no", "yes"] if task == "classification" else None,
        "positive_class": "yes" if task == "classification" else None,
        "metric": "roc_auc" if task == "classification" else "rmse",
        "algorithm": "linear",
        "input_columns": list(TABLE.columns),
        "features": {
            name: {"type": kind, "dtype": str(TABLE[name].dtype), "missing_fraction": 0.0}
            for name, kind in TYPES.items()
        },
        "ignored_columns": {"row_id": "id-like: a unique, consecutive integer per row"},
        "test_metrics": {"roc_auc": 0.9},
        "cross_validation": {"mean": 0.9, "std": 0.01, "folds": 3},
        "data_fingerprint": "abc",
        "created": "2026-01-01T00:00:00+00:00",
    }
    return StoredModel(model=model, card=card, source="memory", save_version="v1")


def _records(table: pd.DataFrame) -> list[dict]:
    return json.loads(table.to_json(orient="records"))


@pytest.fixture(scope="module")
def classifier() -> StoredModel:
    return _stored("classification")


@pytest.fixture
def client(classifier: StoredModel, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build_app(classifier, prediction_log=tmp_path / "log.jsonl")) as client:
        yield client


def test_answers_are_the_models_own(classifier: StoredModel, client: TestClient, tmp_path: Path):
    given = TABLE.drop(columns=["row_id"])  # a dropped column may be left out

    response = client.post("/predict", json={"records": _records(given)})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["predictions"] == classifier.model.predict(TABLE).tolist()
    np.testing.assert_allclose(answer["probabilities"], classifier.model.predict_proba(TABLE))
    assert answer["classes"] == ["no", "yes"] and answer["model_version"] == "v1"
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(e["n_records"], e["predictions"]) for e in logged] == [(8, answer["predictions"])]
    assert logged[0]["latency_ms"] > 0 and logged[0]["model_version"] == "v1"


def test_null_is_a_missing_value_in_every_kind_of_column(client: TestClient):
    record = dict.fromkeys(TYPES)

    response = client.post("/predict", json={"records": [record]})

    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0] in ("no", "yes")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("amount", "12", "valid number"),
        ("amount", True, "valid number"),
        ("city", 3, "valid string"),
        ("member", "yes", "valid boolean"),  # the training column held booleans
        ("plan", "gold", "valid number"),  # a code column read as numbers
        ("signed up", "not a date", "date or time"),
    ],
)
def test_a_mistyped_value_is_a_422_naming_its_column(
    client: TestClient, column: str, value: object, message: str
):
    records = _records(TABLE.head(3))
    records[1][column] = value

    response = client.post("/predict", json={"records": records})

    assert response.status_code == 422
    assert f"column '{column}'" in response.json()["error"] and message in response.json()["error"]
    assert ["body", "records", 1, column] in [error["loc"] for error in response.json()["detail"]]


def test_a_missing_column_is_a_422_naming_it(client: TestClient):
    records = _records(TABLE.head(2).drop(columns=["city"]))

    response = client.post("/predict", json={"records": records})

    assert response.status_code == 422
    assert response.json()["error"] == "column 'city' is missing (records 0, 1)"


def test_a_code_column_takes_whole_numbers_as_the_same_level(client: TestClient):
    as_int, as_float = _records(TABLE.head(1)), _records(TABLE.head(1))
    as_float[0]["plan"] = 1.0

    answers = [client.post("/predict", json={"records": r}).json() for r in (as_int, as_float)]

    assert answers[0]["probabilities"] == answers[1]["probabilities"]


def test_unknown_columns_are_dropped_or_refused_as_configured(classifier: StoredModel):
    records = [{**record, "colour": "red"} for record in _records(TABLE.head(2))]
    ignoring, refusing = (
        TestClient(build_app(classifier, unknown_columns=policy)) for policy in ("ignore", "refuse")
    )

    assert ignoring.post("/predict", json={"records": records}).status_code == 200
    refused = refusing.post("/predict", json={"records": records})
    assert refused.status_code == 422 and "column 'colour'" in refused.json()["error"]
    known = refusing.post("/predict", json={"records": _records(TABLE.head(2))})
    assert known.status_code == 200  # row_id was dropped by the training, not unknown


def test_a_body_over_the_limit_is_a_413_declared_or_streamed(classifier: StoredModel):
    client = TestClient(build_app(classifier, max_body_bytes=2_000))
    small = {"records": _records(TABLE.head(2))}
    large = json.dumps({"records": _records(TABLE) * 10}).encode()
    streamed = (large[i : i + 500] for i in range(0, len(large), 500))  # no Content-Length

    assert client.post("/predict", json=small).status_code == 200
    assert client.post("/predict", content=large).status_code == 413
    refused = client.post("/predict", content=streamed)
    assert refused.status_code == 413 and "--max-body-bytes" in refused.json()["remediation"]


def test_a_regressor_answers_numbers_without_probabilities():
    regressor = _stored("regression")

    answer = (
        TestClient(build_app(regressor)).post("/predict", json={"records": _records(TABLE)}).json()
    )

    assert set(answer) == {"predictions", "model_version"}
    np.testing.assert_allclose(answer["predictions"], regressor.model.predict(TABLE))


@pytest.mark.parametrize(
    ("feature", "accepted"),
    [
        ({"type": "numeric", "dtype": "int64"}, "number"),
        ({"type": "categorical", "dtype": "float64"}, "number"),
        ({"type": "categorical", "dtype": "str"}, "string"),
        ({"type": "boolean", "dtype": "bool"}, "boolean"),
        ({"type": "boolean", "dtype": "object"}, "string"),
        ({"type": "datetime", "dtype": "datetime64[ns]"}, "string"),
        ({"type": "text", "dtype": "str"}, "string"),
    ],
)
def test_the_training_dtype_decides_the_json_type(feature: dict, accepted: str):
    assert json_type(feature) == accepted


# The real server: `kedro serve` in the trained project, two at once (they start in parallel).


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(project: Path, output: Path, *options: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "KEDRO_LOGGING_CONFIG": str(project / "conf" / "logging.yml"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)  # models:/ URIs resolve against the project's store
    with output.open("w") as log:
        server = subprocess.Popen(
            [str(KEDRO), "serve", "--port", str(port), *options],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return server, f"http://127.0.0.1:{port}"


def _wait_until_healthy(server: subprocess.Popen, url: str, output: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, output.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.25)
    pytest.fail(f"`kedro serve` did not answer within 90 s:\n{output.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def servers(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    logs = tmp_path_factory.mktemp("serving")
    options = {
        "latest": ("--max-body-bytes", "20000", "--log-file", str(logs / "predictions.jsonl")),
        "registry": (
            "--model",
            "models:/01_raw_credit_data_Status/1",
            "--unknown-columns",
            "refuse",
        ),
    }
    started = {
        name: _start_server(trained_project, logs / f"{name}.out", *args)
        for name, args in options.items()
    }
    try:
        for name, (server, url) in started.items():
            _wait_until_healthy(server, url, logs / f"{name}.out")
        yield {name: url for name, (_, url) in started.items()} | {"logs": logs}
    finally:
        for server, _ in started.values():
            server.terminate()
            server.wait(timeout=20)


@pytest.fixture(scope="module")
def credit_rows(trained_project: Path) -> pd.DataFrame:
    """Rows of the training file, target included, with missing values among them."""
    table = pd.read_csv(trained_project / "data" / "01_raw" / "credit_data.csv")
    return pd.concat([table.head(20), table[table.isna().any(axis=1)].head(5)])


@pytest.mark.e2e
def test_the_server_answers_as_the_saved_model(
    servers: dict, trained_project: Path, credit_rows: pd.DataFrame
):
    saved = load_stored_model(None, trained_project / "data" / "06_models")
    features = credit_rows[saved.card["input_columns"]]
    records = _records(credit_rows)  # the target is an unknown column: dropped by default

    answer = httpx.post(f"{servers['latest']}/predict", json={"records": records}).json()
    registered = httpx.post(
        f"{servers['registry']}/predict", json={"records": _records(features)}
    ).json()
    refused = httpx.post(f"{servers['registry']}/predict", json={"records": records})

    assert answer["predictions"] == saved.model.predict(features).tolist()
    np.testing.assert_allclose(answer["probabilities"], saved.model.predict_proba(features))
    assert answer["classes"] == ["bad", "good"]
    assert answer["model_version"] == saved.save_version
    assert registered["predictions"] == answer["predictions"]
    assert registered["model_version"] == saved.save_version
    assert refused.status_code == 422 and "column 'Status'" in refused.json()["error"]
    logged = [
        json.loads(line)
        for line in (servers["logs"] / "predictions.jsonl").read_text().splitlines()
    ]
    assert logged[-1]["n_records"] == len(records) and logged[-1]["latency_ms"] > 0
    assert logged[-1]["predictions"] == answer["predictions"]


@pytest.mark.e2e
def test_the_server_explains_records_of_the_trained_model_adding_up_to_its_probabilities(
    servers: dict, trained_project: Path, credit_rows: pd.DataFrame
):
    saved = load_stored_model(None, trained_project / "data" / "06_models")
    features = credit_rows[saved.card["input_columns"]].head(3)
    response = httpx.post(
        f"{servers['latest']}/explain", json={"records": _records(features)}, timeout=60
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    positive = saved.card["positive_class"]
    assert answer["outputs"] == [positive]
    column = list(saved.model.classes_).index(positive)
    for explained, probability in zip(
        answer["explanations"], saved.model.predict_proba(features)[:, column], strict=True
    ):
        contributions = explained["contributions"][positive]
        assert set(contributions) == set(saved.card["features"])
        total = explained["base_value"][positive] + sum(contributions.values())
        assert total == pytest.approx(probability, abs=1e-6)


@pytest.mark.e2e
def test_the_server_checks_requests_against_the_training_schema(
    servers: dict, credit_rows: pd.DataFrame
):
    url = f"{servers['latest']}/predict"
    missing = [{k: v for k, v in r.items() if k != "Income"} for r in _records(credit_rows.head(2))]
    mistyped = [{**r, "Age": "thirty"} for r in _records(credit_rows.head(1))]
    nulls = [{**r, "Income": None, "Home": None} for r in _records(credit_rows.head(1))]
    too_large = {"records": _records(credit_rows) * 20}

    assert httpx.post(url, json={"records": missing}).json()["error"] == (
        "column 'Income' is missing (records 0, 1)"
    )
    assert (
        "column 'Age': Input should be a valid number"
        in (httpx.post(url, json={"records": mistyped}).json()["error"])
    )
    assert httpx.post(url, json={"records": nulls}).status_code == 200
    assert httpx.post(url, json=too_large).status_code == 413


@pytest.mark.e2e
def test_the_server_describes_its_model(servers: dict):
    metadata = httpx.get(f"{servers['registry']}/metadata").json()
    openapi = httpx.get(f"{servers['latest']}/openapi.json").json()

    assert (
        metadata["registered_model"] == "01_raw_credit_data_Status"
        and metadata["registered_version"] == "1"
    )
    assert metadata["task"] == "classification" and metadata["target"] == "Status"
    assert metadata["features"]["Income"]["json_type"] == "number"
    assert metadata["features"]["Home"]["json_type"] == "string"
    assert "roc_auc" in metadata["test_metrics"]
    assert httpx.get(f"{servers['latest']}/health").json()["status"] == "ok"
    assert set(openapi["components"]["schemas"]["Record"]["properties"]) >= {"Income", "Home"}
    assert httpx.get(f"{servers['latest']}/docs").status_code == 200


@pytest.mark.e2e
def test_a_missing_model_is_an_error_with_a_fix(
    trained_project: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(trained_project)

    result = CliRunner().invoke(cli, ["serve", "--model", "nowhere/model.joblib"])

    assert result.exit_code == 1
    assert "Error: The model file nowhere/model.joblib does not exist." in result.output
    assert "Fix:" in result.output and "Traceback" not in result.output


def test_a_smote_model_answers_as_the_model_predicts():
    """The sampler step does nothing at prediction time; the server skips it too."""
    stored = _stored("classification")
    preprocess, estimator = stored.model.steps[0][1], stored.model.steps[-1][1]
    stored.model = SamplingPipeline(
        [("preprocess", preprocess), ("balance", SMOTE(k_neighbors=2)), ("model", estimator)]
    ).fit(TABLE, LABELS)
    with TestClient(build_app(stored)) as client:
        response = client.post("/predict", json={"records": _records(TABLE)})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == stored.model.predict(TABLE).tolist()
    np.testing.assert_allclose(response.json()["probabilities"], stored.model.predict_proba(TABLE))
