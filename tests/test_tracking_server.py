"""A real `mlflow server`: a train run logs its run, one nested run per trial, its artifacts
and the registered model there, and nothing to a local store."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import joblib
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import KEDRO, kedro_env, query, run_kedro
from tests.test_task_contract import SEED_EXAMPLE

pytestmark = pytest.mark.e2e

MLFLOW = Path(sys.executable).parent / "mlflow"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(uri: str, server: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "mlflow server exited"
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {uri} not healthy after {seconds}s")


def start_server(folder: Path, port: int) -> subprocess.Popen:
    """`mlflow server` on a SQLite store and an artifact folder in `folder`, once healthy."""
    server = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'server.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the server's workers share its process group
    )
    wait_for_health(f"http://127.0.0.1:{port}", server)
    return server


def kill(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGKILL)  # a throwaway server: nothing to shut down cleanly
    server.wait(timeout=30)


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    server = start_server(tmp_path, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        kill(server)


def test_a_train_run_logs_runs_trials_artifacts_and_the_model_to_the_server(
    project, tracking_server, tmp_path
):
    result = run_kedro(
        project, "run", "--pipeline=train", "--env=test", f"--params=tracking_uri={tracking_server}"
    )
    assert result.returncode == 0, result.stderr[-3000:]

    client = MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    trials = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 3  # conf/test: n_trials 3
    assert all("cv_roc_auc" in trial.data.metrics for trial in trials)
    logged = parent.data.metrics
    assert 0.5 < logged["mlflow_metrics.test_roc_auc"] <= 1, "the metrics, in one batch"
    assert {"mlflow_metrics.cv_mean", "mlflow_metrics.dummy_test_roc_auc"} <= set(logged)
    assert logged["node.optimize_hyperparameters_node.wall_s"] > 0
    assert parent.data.params["tuning.n_trials"] == "3", "every node's parameters, in one batch"

    artifacts = {artifact.path for artifact in client.list_artifacts(parent.info.run_id)}
    assert "study_summary.json" in artifacts
    assert list((tmp_path / "artifacts").rglob("study_summary.json"))  # stored by the server
    versions = client.search_model_versions("name='01_raw_credit_data_Status'")
    assert [version.run_id for version in versions] == [parent.info.run_id]
    assert not (project / "mlflow.db").exists()


def test_the_seeds_literal_example_trains_against_a_real_tracking_server(
    project, tracking_server, tmp_path
):
    """The seed's input, verbatim but for the data path and the server's address, run by the
    console script from the agent's own folder, as an agent would."""
    agent = tmp_path / "agent"
    agent.mkdir()
    credit = pd.read_csv(project / "data" / "01_raw" / "credit_data.csv").sample(
        400, random_state=0
    )
    pd.DataFrame(
        {
            "age": credit["Age"],
            "income": credit["Income"],
            "category": credit["Home"],
            "target": (credit["Status"] == "bad").astype(int),
        }
    ).to_csv(agent / "train.csv", index=False)
    seed = json.loads(json.dumps(SEED_EXAMPLE))
    seed["trainDataPath"] = "train.csv"
    seed["experimentTracking"]["trackingUri"] = tracking_server
    (agent / "input.json").write_text(json.dumps(seed))

    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "model-trainer"),
            "task",
            "input.json",
            "-o",
            "out.json",
        ],
        cwd=agent,
        env={
            **os.environ,
            "MODEL_TRAINER_PROJECT": str(project),
            "KEDRO_DISABLE_TELEMETRY": "1",
            "KEDRO_LOGGING_CONFIG": "conf/logging.yml",  # as the Makefile sets it: relative
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads((agent / "out.json").read_text())
    assert not (agent / "info.log").exists(), "the project's log stays in the project"
    assert list(result) == [
        "success", "modelPath", "metrics", "bestParams", "crossValidation",
        "experimentRun", "trainingTime", "artifacts", "positiveClass",
    ]  # fmt: skip
    assert result["success"] is True and Path(result["modelPath"]).is_file()
    assert {"accuracy", "precision", "recall", "f1", "roc_auc"} <= set(result["metrics"])
    assert all(0 <= result["metrics"][name] <= 1 for name in ("accuracy", "f1", "roc_auc"))
    assert result["positiveClass"] == 1
    assert result["bestParams"]["algorithm"] == "random_forest"
    assert result["crossValidation"]["metric"] == "roc_auc"
    assert (result["crossValidation"]["folds"], result["crossValidation"]["repeats"]) == (5, 1)
    model = joblib.load(result["modelPath"])
    assert list(model.classes_) == [0, 1]

    client = MlflowClient(tracking_server)
    run = client.get_run(result["experimentRun"]["runId"])
    assert client.get_experiment(run.info.experiment_id).name == "customer-churn"
    assert run.data.params["tuning.n_trials"] == "100"
    assert run.data.params["training.early_stopping.patience"] == "10"
    assert [v.name for v in client.search_model_versions("name='customer-churn'")] == [
        "customer-churn"
    ]


def trials_by_state(project: Path) -> dict[str, int]:
    return dict(
        query(
            project / "data" / "06_models" / "optuna_studies.db",
            "select state, count(*) from trials group by state",
        )
    )


def completed_trials(project: Path) -> int:
    """0 until the study's storage exists and holds its tables."""
    try:
        return trials_by_state(project).get("COMPLETE", 0)
    except sqlite3.OperationalError:
        return 0


def test_a_server_dying_mid_search_ends_the_run_clearly_and_the_rerun_resumes(project, tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    budget = "tuning.n_trials=500,tuning.timeout=300"
    run = subprocess.Popen(
        [
            str(KEDRO),
            "run",
            "--pipeline=train",
            "--env=test",
            f"--params=tracking_uri={uri},{budget}",
        ],
        cwd=project,
        env=kedro_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while completed_trials(project) < 3:
            assert time.monotonic() < deadline and run.poll() is None, "the search never started"
            time.sleep(1)
        kill(server)
        killed = time.monotonic()
        _, stderr = run.communicate(timeout=180)
        waited = time.monotonic() - killed
    finally:
        if run.poll() is None:
            run.kill()

    assert run.returncode == 1
    assert waited < 60, f"the run took {waited:.0f} s to give up on the server (MLflow: minutes)"
    assert f"Error: The MLflow tracking server at {uri} stopped answering during the search" in (
        stderr
    )
    states = trials_by_state(project)
    assert f"keeps its {states['COMPLETE']} completed trials" in stderr
    assert set(states) <= {"COMPLETE", "PRUNED"}, "no trial left RUNNING"
    assert "Traceback" not in stderr
    done = sum(states.values())  # what tuning.n_trials counts

    server = start_server(tmp_path, port)  # back, on the same store
    try:
        again = f"tuning.n_trials={done + 2},tuning.timeout=300"
        result = run_kedro(
            project, "run", "--pipeline=train", "--env=test", f"--params=tracking_uri={uri},{again}"
        )
    finally:
        kill(server)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{done} of {done + 2} trials already done" in result.stdout + result.stderr
    resumed = trials_by_state(project)
    assert sum(resumed.values()) == done + 2 and set(resumed) <= {"COMPLETE", "PRUNED"}
