"""A failed run names its error, the node and a remediation chosen by the error's type, on the
MLflow run (marked FAILED) beside the files it kept; Kedro's --from-nodes hint resumes it."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import mlflow
import optuna
import pytest
from kedro.io import DatasetError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.exceptions import ConvergenceWarning

from model_trainer.errors import DataValidationError, TrackingServerLost
from model_trainer.hooks import FailureReport
from model_trainer.search.trial_records import TrialLogger
from model_trainer.settings import HOOKS
from model_trainer.tracking import failures
from tests.conftest import run_kedro


def raised(error: BaseException, wrapper: type[Exception] = DatasetError) -> Exception:
    """`error` as Kedro hands it over: wrapped, with the original as its cause."""
    try:
        try:
            raise error
        except BaseException as cause:
            raise wrapper(f"Failed while saving data: {cause}") from cause
    except Exception as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (MemoryError(), "does not fit in memory"),
        (ConvergenceWarning("lbfgs stopped"), "did not converge"),
        (ValueError("Solver failed to converge after 100 iterations"), "did not converge"),
        (ValueError("Input X contains infinity or a value too large"), "NaN or infinite"),
        (KeyError("Status"), "column or key is missing"),
        (PermissionError(13, "Permission denied"), "could not be read or written"),
        (RuntimeError("something new"), "fix the cause and rerun"),
        (
            MlflowException(
                "API request to http://mlflow:5000/api/2.0/mlflow/runs/log-batch failed with "
                "exception HTTPConnectionPool(host='mlflow', port=5000): Max retries exceeded"
            ),
            "tracking server stopped answering",
        ),
    ],
    ids=[
        "memory", "convergence-warning", "convergence", "infinity", "key", "os", "unknown",
        "lost-server",
    ],
)  # fmt: skip
def test_the_remediation_is_chosen_by_the_wrapped_errors_type(error, advice):
    assert advice in failures.remediation_for(raised(error))


def test_a_lost_tracking_server_is_told_from_other_failures():
    """The hooks that end a failed run skip the server then: each call would be a round of
    retries against a server that is gone."""
    lost = MlflowException(
        "API request to https://host/api/2.0/mlflow/runs/create failed with exception x"
    )
    assert failures.tracking_server_lost(raised(lost))
    hanging = MlflowException(
        "API request to http://host:5000/api/2.0/mlflow/runs/log-batch failed with timeout "
        "exception HTTPConnectionPool(host='host', port=5000): Read timed out."
    )
    assert failures.tracking_server_lost(raised(hanging))
    assert failures.tracking_server_lost(raised(TrackingServerLost("gone", "start it")))
    assert not failures.tracking_server_lost(raised(MlflowException("RESOURCE_DOES_NOT_EXIST")))
    assert not failures.tracking_server_lost(raised(KeyError("Status")))


def test_a_store_that_answers_with_an_error_is_not_a_lost_server(tmp_path, monkeypatch):
    """Only a connection that fails is the server's loss; an error the store answers with
    (here: the experiment was deleted) is raised as it is, and the run ends as any failure."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("deleted")
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    client = MlflowClient()
    parent = client.create_run(experiment)
    client.delete_experiment(experiment)
    with pytest.raises(MlflowException) as caught:
        TrialLogger("rmse", 1, parent)(study, study.trials[0])
    assert not isinstance(caught.value, TrackingServerLost)
    assert not failures.tracking_server_lost(caught.value)


def test_a_users_error_keeps_its_own_remediation():
    error = raised(DataValidationError("Target column 'y' is constant.", "Choose another target."))
    record = failures.failure_record(error, "validate_node", {})
    assert record["remediation"] == "Choose another target."
    assert record["error"] == "Target column 'y' is constant."


@pytest.mark.slow
def test_the_failure_is_logged_to_the_active_run_before_it_is_ended(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    recorder = SimpleNamespace(saved={"study_summary": "/data/06_models/study_summary.json"})
    report = FailureReport(recorder)
    with warnings.catch_warnings(), mlflow.start_run() as run:
        warnings.simplefilter("ignore")
        report.before_pipeline_run()
        report.before_node_run(SimpleNamespace(name="refit_on_all_rows_node"))
        report.on_pipeline_error(raised(MemoryError()))
    logged = MlflowClient().get_run(run.info.run_id)
    assert logged.data.tags["failure.node"] == "refit_on_all_rows_node"
    assert logged.data.tags["failure.error_type"] == "MemoryError"
    assert "does not fit in memory" in logged.data.tags["failure.remediation"]
    record = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/failure.json")
    assert record["kept"] == recorder.saved


@pytest.mark.e2e
def test_a_run_that_fails_after_the_model_is_kept_says_why_and_resumes_from_nodes(
    project: Path,
):
    assert any(isinstance(hook, FailureReport) for hook in HOOKS), (
        "register FailureReport(ARTIFACT_RECORDER) in settings.HOOKS"
    )
    outputs = project / "data" / "07_model_output"
    outputs.rmdir()
    outputs.write_text("a file where the test metrics' folder should be")

    failed = run_kedro(project, "run", "--pipeline=train", "--env=test")
    assert failed.returncode == 1
    assert "could not be read or written" in failed.stderr
    assert re.search(r"Kept from this run: .*model\.joblib", failed.stderr)
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    [run] = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]  # not a trial
    assert run.info.status == "FAILED"
    assert run.data.tags["failure.node"] == "score_test_split_node"
    assert run.data.metrics["node.refit_on_all_rows_node.wall_s"] > 0, "logged as the run failed"
    record = json.loads(
        Path(client.download_artifacts(run.info.run_id, "failure.json")).read_text()
    )
    assert "model" in record["kept"] and "study_summary" in record["kept"]

    outputs.unlink()
    outputs.mkdir()
    from_nodes = re.search(r'--from-nodes "([^"]+)"', failed.stderr).group(1)
    resumed = run_kedro(
        project, "run", "--pipeline=train", "--env=test", f"--from-nodes={from_nodes}"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (project / "data" / "08_reporting" / "report.html").is_file()
