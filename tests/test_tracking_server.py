"""A real `mlflow server`: a train run logs its run, one nested run per trial, its artifacts
and the registered model there, and nothing to a local store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import run_kedro

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


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
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
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(uri, server)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # a throwaway server: nothing to shut down cleanly
        server.wait(timeout=30)


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
    versions = client.search_model_versions("name='model_trainer'")
    assert [version.run_id for version in versions] == [parent.info.run_id]
    assert not (project / "mlflow.db").exists()
