"""`kedro serve --api-key-env NAME`: who may call the model. The app is tested in-process on the
small model of test_serving; the command up to the point where it would start the server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from model_trainer.cli import cli, is_loopback, warn_if_reachable_by_others
from model_trainer.serving.app import build_app
from model_trainer.serving.model_store import StoredModel
from tests.test_serving import TABLE, _records, _stored

KEY = "s3cret-key-0123456789"
WRONG_KEYS = [
    {},
    {"Authorization": f"Bearer {KEY}-wrong"},
    {"X-API-Key": f"{KEY}-wrong"},
    {"Authorization": f"Basic {KEY}"},  # the key, but not as a bearer token
    {"Authorization": "Bearer"},
]
RIGHT_KEYS = [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}]
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def classifier() -> StoredModel:
    return _stored("classification")


@pytest.fixture
def client(classifier: StoredModel, tmp_path: Path) -> Iterator[TestClient]:
    app = build_app(classifier, prediction_log=tmp_path / "log.jsonl", api_key=KEY)
    with TestClient(app) as client:
        yield client


def _predict(client: TestClient, headers: dict[str, str]):
    return client.post("/predict", json={"records": _records(TABLE.head(2))}, headers=headers)


@pytest.mark.parametrize("headers", WRONG_KEYS)
@pytest.mark.parametrize("path", ["/predict", "/metadata"])
def test_a_request_without_the_right_key_is_a_401_saying_how_to_send_it(
    client: TestClient, path: str, headers: dict[str, str]
):
    response = (
        _predict(client, headers) if path == "/predict" else client.get(path, headers=headers)
    )

    assert response.status_code == 401
    assert "Authorization: Bearer <key>" in response.json()["remediation"]
    assert "X-API-Key: <key>" in response.json()["remediation"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("headers", RIGHT_KEYS)
def test_the_key_is_taken_as_a_bearer_token_or_an_x_api_key_header(
    client: TestClient, headers: dict[str, str]
):
    assert _predict(client, headers).status_code == 200
    assert client.get("/metadata", headers=headers).json()["model_version"] == "v1"


def test_every_route_but_health_needs_the_key(client: TestClient):
    guarded = [
        (method, route.path)
        for route in client.app.routes
        if isinstance(route, APIRoute) and route.path != "/health"
        for method in route.methods
    ]

    assert {path for _, path in guarded} >= {"/predict", "/metadata"}
    assert all(client.request(method, path).status_code == 401 for method, path in guarded)
    assert client.get("/no-such-route").status_code == 401  # a 404 would tell what exists
    assert client.get("/health").json()["status"] == "ok"


def test_the_body_is_checked_only_for_a_caller_with_the_key(classifier: StoredModel):
    client = TestClient(build_app(classifier, max_body_bytes=2_000, api_key=KEY))
    bodies = [
        json.dumps({"records": _records(TABLE.head(1).drop(columns=["city"]))}),  # no city
        "{not json",
        json.dumps({"records": _records(TABLE) * 10}),  # over the limit
    ]

    refused = [client.post("/predict", content=body, headers=JSON) for body in bodies]
    checked = [client.post("/predict", content=b, headers=JSON | RIGHT_KEYS[0]) for b in bodies]

    assert [answer.status_code for answer in refused] == [401, 401, 401]
    assert [answer.status_code for answer in checked] == [422, 422, 413]


def test_the_schema_stays_readable_and_declares_both_ways_of_sending_the_key(client: TestClient):
    schema = client.get("/openapi.json").json()

    assert set(schema["components"]["securitySchemes"]) == {"APIKeyHeader", "HTTPBearer"}
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert {"HTTPBearer": []} in schema["paths"]["/predict"]["post"]["security"]
    assert {"APIKeyHeader": []} in schema["paths"]["/metadata"]["get"]["security"]
    assert "security" not in schema["paths"]["/health"]["get"]
    assert client.get("/docs").status_code == 200
    assert client.get("/docs/oauth2-redirect").status_code == 200  # the Authorize button's


def test_the_key_is_in_no_log_line_log_file_or_answer(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    answers = [
        _predict(client, RIGHT_KEYS[0]),
        _predict(client, RIGHT_KEYS[1]),
        _predict(client, {"X-API-Key": f"{KEY}-wrong"}),
        client.get("/metadata", headers=RIGHT_KEYS[1]),
        client.get("/metadata"),
        client.post("/predict", json={"records": [{}]}, headers=RIGHT_KEYS[0]),  # a 422
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 401, 200, 401, 422]
    assert all(KEY not in answer.text for answer in answers)
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 2
    assert KEY not in (tmp_path / "log.jsonl").read_text()
    assert caplog.records and KEY not in caplog.text


def test_without_a_key_the_routes_stay_open(classifier: StoredModel):
    client = TestClient(build_app(classifier))

    assert _predict(client, {}).status_code == 200
    assert client.get("/metadata").status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("model.example.com", False),
    ],
)
def test_only_loopback_addresses_keep_the_server_to_this_machine(host: str, loopback: bool):
    assert is_loopback(host) is loopback


def test_serving_beyond_this_machine_without_a_key_is_a_warning(
    caplog: pytest.LogCaptureFixture,
):
    warn_if_reachable_by_others("127.0.0.1", 8000)
    assert not caplog.records

    warn_if_reachable_by_others("0.0.0.0", 8000)

    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert "anyone who can reach the port can call the model" in caplog.text
    assert "--api-key-env" in caplog.text


def _serve_a_missing_model(*options: str):
    return CliRunner().invoke(cli, ["serve", "--model", "missing/model.joblib", *options])


def test_the_command_warns_on_a_public_address_unless_a_key_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MT_TEST_API_KEY", KEY)

    open_result = _serve_a_missing_model("--host", "0.0.0.0")
    warnings = caplog.text
    caplog.clear()
    keyed_result = _serve_a_missing_model("--host", "0.0.0.0", "--api-key-env", "MT_TEST_API_KEY")

    assert "anyone who can reach the port" in warnings
    assert not caplog.records
    # Both reached the model's loading (and failed there: no model), the key never shown.
    assert "missing/model.joblib does not exist" in open_result.output
    assert "missing/model.joblib does not exist" in keyed_result.output
    assert KEY not in keyed_result.output and KEY not in caplog.text


@pytest.mark.parametrize("value", [None, "", "  \n"])
def test_the_command_refuses_an_unset_or_empty_key_variable(
    value: str | None, monkeypatch: pytest.MonkeyPatch
):
    if value is None:
        monkeypatch.delenv("MT_TEST_API_KEY", raising=False)
    else:
        monkeypatch.setenv("MT_TEST_API_KEY", value)

    result = _serve_a_missing_model("--api-key-env", "MT_TEST_API_KEY")

    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "MT_TEST_API_KEY" in result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
