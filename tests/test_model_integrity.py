"""A model file is checked against the SHA-256 recorded at training before it is unpickled
(issue 16): the train pipeline writes model.joblib from the very bytes it digests, the card and
the MLflow run and version carry the digests, and every loader refuses a changed file unless
told to trust it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
from kedro.io.core import DatasetError
from sklearn.linear_model import LogisticRegression

from model_trainer.datasets import ModelFileDataset
from model_trainer.errors import UnverifiedModelError
from model_trainer.serving import integrity
from model_trainer.serving.model_store import latest_version, load_stored_model, versioned_file
from tests.conftest import run_kedro

ROWS = np.random.default_rng(0).normal(size=(60, 3))
LABELS = (ROWS[:, 0] > 0).astype(int)


def fitted() -> LogisticRegression:
    return LogisticRegression().fit(ROWS, LABELS)


def test_the_dataset_writes_the_digested_bytes_and_loads_the_model(tmp_path: Path) -> None:
    data, digest = integrity.joblib_file(fitted())
    dataset = ModelFileDataset(filepath=str(tmp_path / "model.joblib"))
    dataset.save(data)
    assert integrity.file_sha256(tmp_path / "model.joblib") == digest
    assert (dataset.load().predict(ROWS) == fitted().predict(ROWS)).all()
    with pytest.raises(DatasetError, match="joblib bytes, not a LogisticRegression"):
        dataset.save(fitted())


def test_verify_refuses_a_changed_or_undigested_file_unless_trusted(tmp_path: Path) -> None:
    data, digest = integrity.joblib_file(fitted())
    path = tmp_path / "model.joblib"
    path.write_bytes(data)
    assert integrity.verify(path, digest, "the card", trust_unverified=False)
    joblib.dump(LogisticRegression().fit(ROWS, 1 - LABELS), path)  # another model, same name
    with pytest.raises(UnverifiedModelError) as caught:
        integrity.verify(path, digest, "the card", trust_unverified=False)
    assert digest in caught.value.message
    assert integrity.file_sha256(path) in caught.value.message
    assert "--trust-unverified" in caught.value.remediation
    with pytest.raises(UnverifiedModelError, match="no SHA-256 recorded"):
        integrity.verify(path, None, "the card", trust_unverified=False)
    assert not integrity.verify(path, digest, "the card", trust_unverified=True)


def swapped_copy(trained_project: Path, folder: Path) -> Path:
    """The latest model and its card copied to `folder`, the model replaced by another pickle."""
    models = trained_project / "data" / "06_models"
    version = latest_version(models / "model.joblib")
    folder.mkdir()
    shutil.copy(versioned_file(models / "model_card.json", version), folder / "model_card.json")
    original = joblib.load(versioned_file(models / "model.joblib", version))
    joblib.dump(original, folder / "model.joblib")  # the same model, but not the same bytes
    return folder / "model.joblib"


@pytest.mark.e2e
def test_training_records_the_digests_and_loaders_check_them(
    trained_project: Path, tmp_path: Path
) -> None:
    models = trained_project / "data" / "06_models"
    version = latest_version(models / "model.joblib")
    card = json.loads(versioned_file(models / "model_card.json", version).read_text())
    saved = versioned_file(models / "model.joblib", version)
    assert card[integrity.CARD_KEY] == integrity.file_sha256(saved)
    assert load_stored_model(None, models).verified

    swapped = swapped_copy(trained_project, tmp_path / "swapped")
    with pytest.raises(UnverifiedModelError, match=card[integrity.CARD_KEY]):
        load_stored_model(str(swapped), models)
    assert not load_stored_model(str(swapped), models, trust_unverified=True).verified

    refused = run_kedro(trained_project, "serve", "--model", str(swapped), "--port", "8765")
    assert refused.returncode == 1
    assert "is not the file training wrote" in refused.stdout + refused.stderr
    evaluate = ["run", "--pipelines=evaluate", "--env=test"]
    data = f"evaluation.data={trained_project / 'data' / '01_raw' / 'credit_data.csv'}"
    model = f"evaluation.model={swapped}"
    failed = run_kedro(trained_project, *evaluate, f"--params={data},{model}")
    assert failed.returncode != 0
    assert "is not the file training wrote" in failed.stdout + failed.stderr
    trusted = run_kedro(
        trained_project, *evaluate, f"--params={data},{model},evaluation.trust_unverified=true"
    )
    assert trusted.returncode == 0, trusted.stderr[-3000:]


@pytest.mark.e2e
def test_the_mlflow_copy_is_checked_against_its_run_tag(
    trained_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(trained_project)  # the SQLite store and its artifact paths are relative
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    card = load_stored_model(None, trained_project / "data" / "06_models").card
    uri = f"models:/{card['registered_model_name']}/1"
    stored = load_stored_model(uri, trained_project / "data" / "06_models")
    assert stored.verified
    client = mlflow.MlflowClient()
    version = client.get_model_version(card["registered_model_name"], "1")
    tag = version.tags[integrity.MLFLOW_TAG]
    assert tag == client.get_run(stored.run_id).data.tags[integrity.MLFLOW_TAG]

    client.set_tag(stored.run_id, integrity.MLFLOW_TAG, "0" * 64)  # as if the file had changed
    try:
        with pytest.raises(UnverifiedModelError, match=r"0{64}"):
            load_stored_model(uri, trained_project / "data" / "06_models")
    finally:
        client.set_tag(stored.run_id, integrity.MLFLOW_TAG, tag)
