"""POST /explain: each record's SHAP values per input column, against the training rows the
model card keeps; they add up to the model's own answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from model_trainer.serving.app import build_app
from model_trainer.serving.explaining import MAX_EXPLAINED_RECORDS
from model_trainer.serving.model_store import StoredModel
from tests.test_serving import TABLE, TYPES, _records, _stored


def _explainable(task: str) -> StoredModel:
    stored = _stored(task)
    stored.card["explanation_background"] = _records(TABLE.drop(columns=["row_id"]).iloc[:5])
    return stored


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_each_records_contributions_add_up_to_the_models_answer(task):
    stored = _explainable(task)
    given = TABLE.drop(columns=["row_id"]).iloc[3:8]
    with TestClient(build_app(stored)) as client:
        response = client.post("/explain", json={"records": _records(given)})
    assert response.status_code == 200, response.text
    answer = response.json()
    output = "yes" if task == "classification" else "prediction"
    assert answer["outputs"] == [output] and answer["model_version"] == "v1"
    assert (
        answer["method"] == "permutation"
        and "is not one of the tree models" in (answer["method_reason"])
    )  # a linear model: estimated, and the answer says why
    expected = (
        stored.model.predict_proba(TABLE.iloc[3:8])[:, 1]
        if task == "classification"
        else stored.model.predict(TABLE.iloc[3:8])
    )
    for explained, value in zip(answer["explanations"], expected, strict=True):
        contributions = explained["contributions"][output]
        assert set(contributions) == set(TYPES)  # the dropped row_id is no feature
        total = explained["base_value"][output] + sum(contributions.values())
        assert total == pytest.approx(value, abs=1e-9)


def test_a_record_equal_to_every_background_row_in_a_column_gets_nothing_for_it():
    stored = _explainable("classification")
    background = pd.DataFrame(stored.card["explanation_background"])
    record = _records(TABLE.drop(columns=["row_id"]).iloc[[0]])[0]
    record["member"] = True
    stored.card["explanation_background"] = _records(background.assign(member=True))
    with TestClient(build_app(stored)) as client:
        answer = client.post("/explain", json={"records": [record]}).json()
    assert answer["explanations"][0]["contributions"]["yes"]["member"] == pytest.approx(0.0)
    assert np.abs(list(answer["explanations"][0]["contributions"]["yes"].values())).sum() > 0


def test_a_model_whose_card_has_no_background_says_why_it_cannot_explain():
    stored = _stored("classification")  # as cards were before /explain
    with TestClient(build_app(stored)) as client:
        response = client.post("/explain", json={"records": _records(TABLE.iloc[:1])})
        assert client.post("/predict", json={"records": _records(TABLE.iloc[:1])}).is_success
    assert response.status_code == 409
    assert "no background rows" in response.json()["error"]
    assert "in_model_card true" in response.json()["remediation"]


def test_too_many_records_and_a_mistyped_value_are_refused_naming_the_limit_and_the_column():
    stored = _explainable("classification")
    many = _records(pd.concat([TABLE] * 3, ignore_index=True))
    assert len(many) > MAX_EXPLAINED_RECORDS
    with TestClient(build_app(stored)) as client:
        too_many = client.post("/explain", json={"records": many})
        record = _records(TABLE.iloc[:1])[0] | {"amount": "twelve"}
        mistyped = client.post("/explain", json={"records": [record]})
    assert too_many.status_code == 422
    assert f"at most {MAX_EXPLAINED_RECORDS}" in too_many.json()["error"]
    assert mistyped.status_code == 422 and "amount" in mistyped.text
