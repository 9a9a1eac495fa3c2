"""The serving app fuzzed from its own OpenAPI schema (schemathesis, bounded in examples): no
answer is a 5xx, and every 4xx says what was wrong in a body a client can read."""

from __future__ import annotations

import hypothesis
import schemathesis

from model_trainer.serving.app import build_app
from tests.test_serving import TABLE, _records, _stored

STORED = _stored("classification")
STORED.card["explanation_background"] = _records(TABLE.drop(columns=["row_id"]).iloc[:4])
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", build_app(STORED))


@SCHEMA.parametrize()
@hypothesis.settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
    derandomize=True,
)
def test_no_request_the_schema_allows_or_nearly_allows_gets_a_server_error(case):
    response = case.call()
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        said = body.get("error") or body.get("detail")
        assert said, f"a {response.status_code} without a word of why: {response.text}"
