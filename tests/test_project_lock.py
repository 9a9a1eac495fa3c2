"""One run at a time per project: a second run is refused with who holds the project, tune
workers share it with each other, and a killed run leaves no lock behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from model_trainer.tracking.project_lock import LOCK_FILE, ProjectBusyError, ProjectLock
from tests.conftest import KEDRO, run_kedro


def test_a_second_run_is_refused_naming_the_first_and_may_run_once_it_ends(tmp_path):
    first, second = ProjectLock(), ProjectLock()
    first.acquire(tmp_path, ["train"])
    with pytest.raises(ProjectBusyError) as refused:
        second.acquire(tmp_path, ["evaluate"])
    assert f"process {os.getpid()}, pipeline train" in refused.value.message
    assert "copy of the project" in refused.value.remediation
    first.release()
    second.acquire(tmp_path, ["evaluate"])
    second.release()
    assert (tmp_path / LOCK_FILE).read_text() == "", "who held it no longer does"


def test_tune_workers_share_the_project_with_each_other_and_not_with_a_train(tmp_path):
    workers = [ProjectLock(), ProjectLock()]
    for worker in workers:
        worker.acquire(tmp_path, ["tune"])
    with pytest.raises(ProjectBusyError, match="tune workers"):
        ProjectLock().acquire(tmp_path, ["train"])
    for worker in workers:
        worker.release()
    train = ProjectLock()
    train.acquire(tmp_path, [])  # the default pipeline: train
    with pytest.raises(ProjectBusyError, match="pipeline __default__"):
        ProjectLock().acquire(tmp_path, ["tune"])
    train.release()


@pytest.mark.e2e
def test_a_kedro_run_beside_a_running_one_is_refused_and_a_killed_run_frees_the_project(project):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    slow = "tuning.timeout=120,tuning.n_trials=1000"
    running = subprocess.Popen(
        [str(KEDRO), "run", "--pipelines=train", "--env=test", f"--params={slow}"],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        lock = project / LOCK_FILE
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text()):
            time.sleep(0.2)
        assert json.loads(lock.read_text())["pid"] == running.pid
        refused = run_kedro(project, "run", "--pipelines=evaluate", "--env=test")
        assert refused.returncode != 0
        assert f"Another run is using the project {project.resolve()}" in refused.stderr
        assert f"process {running.pid}, pipeline train" in refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait(timeout=30)
    # the operating system released the killed run's lock: the next run takes the project
    after = ProjectLock()
    after.acquire(project, ["train"])
    after.release()
