"""`kedro serve --onnx`: the deploy pipeline's ONNX export served with onnxruntime, no pickle
loaded, answering as the joblib model does within the deploy tolerance; /predict, /explain and
/metadata as for the joblib model; a model without an export refused with the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from model_trainer.errors import ConfigurationError
from model_trainer.serving.app import build_app
from model_trainer.serving.model_store import load_stored_model
from model_trainer.serving.onnx_model import load_onnx_model
from tests.conftest import run_kedro

pytestmark = pytest.mark.e2e

TOLERANCE = 1e-4 + 1e-5  # deploy.onnx.tolerance: absolute + relative x max |output| (1 here)


@pytest.fixture(scope="module")
def deployed(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained project whose latest model the deploy pipeline exported."""
    project = Path(shutil.copytree(trained_project, tmp_path_factory.mktemp("onnx") / "project"))
    result = run_kedro(project, "run", "--pipeline=deploy", "--env=test")
    assert result.returncode == 0, result.stderr[-3000:]
    return project


def records(project: Path, n: int) -> pd.DataFrame:
    rows = pd.read_csv(project / "data" / "01_raw" / "credit_data.csv").drop(columns="Status")
    return rows.sample(n, random_state=0)


def test_the_export_answers_as_the_model_does_without_unpickling_it(deployed: Path, monkeypatch):
    models = deployed / "data" / "06_models"
    joblib_model = load_stored_model(None, models)
    monkeypatch.setattr("joblib.load", lambda *_: pytest.fail("--onnx unpickled a file"))

    served = load_onnx_model(None, models)

    assert served.save_version == joblib_model.save_version
    assert served.source.endswith(f"model.onnx/{served.save_version}/model.onnx")
    X = records(deployed, 500)
    expected = joblib_model.model.predict_proba(X)
    assert np.abs(served.model.predict_proba(X) - expected).max() <= TOLERANCE
    assert (served.model.predict(X) == joblib_model.model.predict(X)).all()
    assert list(served.model.classes_) == list(joblib_model.model.classes_)


def test_the_app_serves_predictions_and_explanations_from_the_export(deployed: Path):
    models = deployed / "data" / "06_models"
    onnx_client = TestClient(build_app(load_onnx_model(None, models)))
    joblib_client = TestClient(build_app(load_stored_model(None, models)))
    body = {"records": records(deployed, 20).replace({np.nan: None}).to_dict("records")}

    from_onnx, from_joblib = (
        c.post("/predict", json=body).json() for c in (onnx_client, joblib_client)
    )

    assert from_onnx["predictions"] == from_joblib["predictions"]
    assert np.allclose(from_onnx["probabilities"], from_joblib["probabilities"], atol=TOLERANCE)
    assert from_onnx["model_version"] == from_joblib["model_version"]
    onnx_metadata = onnx_client.get("/metadata").json()
    assert onnx_metadata["format"] == "onnx" and onnx_metadata["sha256_verified"] is None
    assert joblib_client.get("/metadata").json()["format"] == "joblib"
    explained = onnx_client.post("/explain", json={"records": body["records"][:2]})
    assert explained.status_code == 200
    [first, _] = explained.json()["explanations"]
    positive = next(iter(first["base_value"]))
    total = first["base_value"][positive] + sum(first["contributions"][positive].values())
    assert total == pytest.approx(
        from_onnx["probabilities"][0][from_onnx["classes"].index(positive)], abs=1e-4
    )


def test_a_model_without_an_export_is_refused_with_the_fix(trained_project: Path, tmp_path: Path):
    project = Path(shutil.copytree(trained_project, tmp_path / "project"))
    shutil.rmtree(project / "data" / "06_models" / "model.onnx", ignore_errors=True)

    result = run_kedro(project, "serve", "--onnx")

    assert result.returncode == 1
    assert "has no ONNX export" in result.stderr and "kedro run --pipelines=deploy" in result.stderr
    with pytest.raises(ConfigurationError, match="cannot place 'models:/m/1'"):
        load_onnx_model("models:/m/1", project / "data" / "06_models")


def test_a_model_is_named_by_its_path_in_any_project(deployed: Path, tmp_path: Path):
    """The path names the project too: its version is looked up beside it, not in the
    project being served from."""
    joblib_path = load_stored_model(None, deployed / "data" / "06_models").source

    served = load_onnx_model(joblib_path, tmp_path / "elsewhere" / "data" / "06_models")

    assert served.source.startswith(str(deployed)) and served.source.endswith("model.onnx")
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_onnx_model(joblib_path.replace("model.joblib/", "model.joblib/x"), tmp_path)
