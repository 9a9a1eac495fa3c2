"""Naming a trained model: the latest, a path, or an MLflow registry URI, each with its card."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from model_trainer.errors import ConfigurationError
from model_trainer.serving.model_store import load_stored_model


@pytest.fixture
def tracking_uri(trained_project: Path):
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{trained_project / 'mlflow.db'}"
    yield
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI")
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.mark.e2e
def test_latest_path_and_registry_name_the_same_model(trained_project: Path, tracking_uri):
    models = trained_project / "data" / "06_models"
    latest = load_stored_model(None, models)
    by_path = load_stored_model(latest.source, models)
    cwd = Path.cwd()
    os.chdir(trained_project)  # artifacts are stored relative to the project
    try:
        registered = load_stored_model("models:/01_raw_credit_data_Status/1", models)
        aliased_latest = load_stored_model("models:/01_raw_credit_data_Status/latest", models)
    finally:
        os.chdir(cwd)

    assert latest.save_version is not None and latest.card["target"] == "Status"
    assert by_path.save_version == latest.save_version
    assert registered.save_version == latest.save_version
    assert registered.registered_name == "01_raw_credit_data_Status"
    assert registered.registered_version == "1"
    assert aliased_latest.run_id == registered.run_id
    rows = pd.read_csv(trained_project / "data" / "01_raw" / "credit_data.csv").head(20)
    features = rows[latest.card["input_columns"]]
    for loaded in (by_path, registered):
        assert (loaded.model.predict(features) == latest.model.predict(features)).all()
    assert latest.is_classifier


def test_a_missing_model_says_how_to_get_one(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="kedro run --pipeline=train"):
        load_stored_model(None, tmp_path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_stored_model(str(tmp_path / "nope.joblib"), tmp_path)


@pytest.mark.e2e
def test_an_unknown_registry_version_is_a_clear_error(trained_project: Path, tracking_uri):
    with pytest.raises(ConfigurationError, match="models:/01_raw_credit_data_Status/99"):
        load_stored_model(
            "models:/01_raw_credit_data_Status/99", trained_project / "data" / "06_models"
        )
