"""The tracking server check, against real sockets: a server that answers, and one that is not
there."""

from __future__ import annotations

import gc
import http.server
import socket
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import mlflow
import pytest
from kedro.pipeline import Node
from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig

from model_trainer.errors import ConfigurationError
from model_trainer.hooks import (
    BatchedMlflowHook,
    FrozenImports,
    check_tracking_server,
    without_credentials,
)

ROOT = Path(__file__).resolve().parents[1]


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args) -> None:
        pass


def test_a_server_that_answers_health_passes_and_a_local_store_is_not_checked():
    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        check_tracking_server(f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()
    check_tracking_server("sqlite:///nowhere/mlflow.db")


def test_a_closed_port_is_a_configuration_error_naming_the_uri():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigurationError, match=f"http://127.0.0.1:{port}") as caught:
        check_tracking_server(f"http://127.0.0.1:{port}", timeout=2)
    assert "mlflow server" in caught.value.remediation


@pytest.mark.slow
def test_node_parameters_reach_mlflow_flattened_in_one_batch_and_once_per_run(
    tmp_path, monkeypatch
):
    hook = BatchedMlflowHook()
    hook.flatten, hook.recursive, hook.sep, hook.long_params_strategy = True, True, ".", "truncate"
    hook._is_mlflow_enabled = True
    hook.mlflow_config = KedroMlflowConfig()  # what after_context_created reads from mlflow.yml
    writes = []
    monkeypatch.setattr(mlflow, "log_params", lambda batch: writes.append(batch) or real(batch))
    real = mlflow.tracking.fluent.log_params
    training = {
        "checkpoints": {"every": 100},
        "patience": 50,
        "long": "x" * 7000,
        "storage": "postgresql://me:s3cret@db.example:5432/optuna",
    }
    node = Node(func=lambda *args: None, inputs=["a", "params:training"], outputs=None, name="n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        run = mlflow.start_run()
        hook.run_id = run.info.run_id
        for _ in range(2):  # two nodes reading the same parameters
            hook.before_node_run(
                node=node,
                catalog=None,
                inputs={"a": 1, "params:training": training},
                is_async=False,
            )
        logged = mlflow.get_run(run.info.run_id).data.params
    finally:
        while mlflow.active_run() is not None:  # the hook reopens the run before each node
            mlflow.end_run()
    masked = "postgresql://***@db.example:5432/optuna"
    assert logged == {
        "training.checkpoints.every": "100",
        "training.patience": "50",
        "training.long": "x" * 6000,
        "training.storage": masked,
    }
    assert writes == [
        {"training.checkpoints.every": "100", "training.patience": "50", "training.storage": masked}
    ]


def test_run_time_parameters_reach_the_run_tags_without_their_passwords():
    run_params = {
        "pipeline_name": "tune",
        "runtime_params": {
            "tuning": {"storage": "postgresql://me:s3cret@db/optuna?password=again", "n_trials": 5}
        },
        "extra_params": ["sqlite:///data/optuna.db"],
    }
    assert without_credentials(run_params) == {
        "pipeline_name": "tune",
        "runtime_params": {
            "tuning": {"storage": "postgresql://***@db/optuna?password=***", "n_trials": 5}
        },
        "extra_params": ["sqlite:///data/optuna.db"],
    }


class Cycle:
    def __init__(self) -> None:
        self.itself = self


@pytest.mark.parametrize("ending", ["after_pipeline_run", "on_pipeline_error"])
def test_the_objects_alive_at_the_start_of_a_run_are_frozen_until_it_ends(ending):
    hooks = FrozenImports()
    gc.unfreeze()
    tracked = len(gc.get_objects())
    hooks.before_pipeline_run()
    try:
        assert gc.get_freeze_count() > 0.9 * tracked > 9_000
        assert len(gc.get_objects()) < tracked // 10, "full collections skip the frozen objects"
        garbage = weakref.ref(Cycle())  # a cycle made during the run, only the collector frees
    finally:
        getattr(hooks, ending)()
    assert gc.get_freeze_count() == 0, "a process running several sessions still collects"
    gc.collect()
    assert garbage() is None


@pytest.mark.e2e
def test_start_up_leaves_matplotlib_and_mlflows_package_map_to_the_searchs_background():
    """The project's start-up (settings, every pipeline) does not import matplotlib; the thread
    started with the search (prepare_run_tail) imports it and builds MLflow's package map."""
    script = """
import sys
from pathlib import Path
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
bootstrap_project(Path.cwd())
pipelines["train"]
assert "matplotlib" not in sys.modules, [m for m in sys.modules if m.startswith("matplotlib")]
from mlflow.utils import requirements_utils
assert requirements_utils._PACKAGES_TO_MODULES is None
from model_trainer.hooks import prepare_run_tail
prepare_run_tail()
assert "matplotlib.pyplot" in sys.modules and "model_trainer.reporting.plots" in sys.modules
assert "scikit-learn" in requirements_utils._PACKAGES_TO_MODULES
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
