"""`from model_trainer import train, evaluate`: the task contract in this process, twice, leaving
the caller's working directory, warning filters and garbage collector as they were."""

from __future__ import annotations

import gc
import os
import warnings
from pathlib import Path

import pandas as pd
import pytest

from model_trainer import evaluate, train
from model_trainer.errors import ConfigurationError
from tests.conftest import ROOT, copy_project

pytestmark = pytest.mark.e2e

CREDIT = pd.read_csv(ROOT / "data" / "01_raw" / "credit_data.csv").sample(800, random_state=0)
TRAIN, TEST = CREDIT.iloc[:600], CREDIT.iloc[600:]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("api") / "project")


def caller_state() -> tuple:
    """What a call must leave as it found it: working directory, environment, warning filters,
    frozen objects, MLflow's tracking URI, registry URI and active experiment."""
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    return (
        Path.cwd(), dict(os.environ), list(warnings.filters), gc.get_freeze_count() > 0,
        tracking._tracking_uri, registry._registry_uri, fluent._active_experiment_id,
    )  # fmt: skip


def test_train_twice_and_evaluate_in_one_process_leave_the_caller_as_it_was(project, tmp_path):
    import mlflow

    before = caller_state()
    first = train(
        TRAIN, "Status", project=project, algorithm="lightgbm", n_trials=2, timeout=60,
        metric="roc_auc", experiment_name="python_api",
    )  # fmt: skip
    assert first["success"], first
    assert Path(first["modelPath"]).is_file()
    assert 0.6 < first["metrics"]["roc_auc"] <= 1.0
    assert first["bestParams"]["algorithm"] in ("lightgbm", "ensemble")  # of lightgbm trials
    assert caller_state() == before

    path = tmp_path / "train.csv"
    TRAIN.to_csv(path, index=False)
    second = train(path, "Status", project=project, algorithm="logistic_regression", search=False)
    assert second["success"], second
    assert second["bestParams"]["algorithm"] == "logistic_regression"
    assert second["modelPath"] != first["modelPath"], "a new version of the model"

    scored = evaluate(TEST, "Status", project=project)
    assert scored["success"], scored
    assert scored["metrics"]["roc_auc"] == pytest.approx(second["metrics"]["roc_auc"], abs=0.15), (
        "the latest model, scored on rows of the same table"
    )
    assert caller_state() == before
    # the project's active experiment left in place made this fail: "No Experiment with id=4"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mine.db'}")
    try:
        with mlflow.start_run() as run:
            mlflow.log_metric("mine", 1.0)
        assert mlflow.get_run(run.info.run_id).data.metrics == {"mine": 1.0}
    finally:
        mlflow.set_tracking_uri(before[4])


def test_a_failed_run_returns_the_error_and_how_to_fix_it(project):
    cwd = Path.cwd()
    result = train(TRAIN, "Statuss", project=project, search=False)
    assert result["success"] is False
    assert "Statuss" in result["error"] and result["remediation"]
    assert Path.cwd() == cwd != project


def test_an_unknown_option_names_the_accepted_ones(project):
    with pytest.raises(ConfigurationError) as error:
        train(TRAIN, "Status", project=project, n_trial=5)
    assert "n_trial" in str(error.value) and "n_trials" in error.value.remediation


def test_a_folder_that_is_no_project_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="not a model-trainer project"):
        train(TRAIN, "Status", project=tmp_path)
