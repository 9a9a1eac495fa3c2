"""Several workers on one PostgreSQL study: tables created once despite a race, every trial
named by the worker that ran it, and a train run that refits the filled study's best trial."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pgserver
import pytest
import sqlalchemy
import yaml
from kedro.config import OmegaConfigLoader
from optuna.trial import TrialState

from model_trainer.errors import ConfigurationError
from model_trainer.search import storage
from model_trainer.search.storage import redact
from model_trainer.settings import CONFIG_LOADER_ARGS
from tests.conftest import KEDRO, ROOT, copy_project, query, run_kedro

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)


def start_kedro(project: Path, *args: str) -> subprocess.Popen:
    """`kedro` in the background, in its own process group (so a test can kill all of it),
    with run_kedro's environment and its output in project/kedro.out."""
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "KEDRO_LOGGING_CONFIG": str(project / "conf" / "logging.yml"),
    }
    with (project / "kedro.out").open("w") as output:
        return subprocess.Popen(
            [str(KEDRO), *args],
            cwd=project,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture(scope="module")
def postgres() -> Iterator[pgserver.PostgresServer]:
    """A real PostgreSQL server (a short socket path: Unix sockets allow ~100 characters)."""
    server = pgserver.get_server(tempfile.mkdtemp(prefix="pg"), cleanup_mode="delete")
    yield server
    server.cleanup()


def fresh_database(server: pgserver.PostgresServer, name: str) -> str:
    server.psql(f"CREATE DATABASE {name};")
    return server.get_uri(name)


def open_storage(url: str, barrier: multiprocessing.Barrier, outcomes: multiprocessing.Queue):
    barrier.wait()
    try:
        storage.make_storage({"storage": url})
        outcomes.put("opened")
    except Exception as exc:  # the outcome is the test's assertion
        outcomes.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.e2e
def test_workers_racing_on_a_fresh_database_all_open_the_storage(postgres):
    """Without retries, all but one of four workers starting at once fail on CREATE TYPE/TABLE."""
    url = fresh_database(postgres, "race")
    barrier, outcomes = multiprocessing.Barrier(4), multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=open_storage, args=(url, barrier, outcomes))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [outcomes.get(timeout=5) for _ in workers] == ["opened"] * 4


@pytest.mark.e2e
def test_two_workers_fill_one_study_and_train_refits_its_best_trial_without_a_new_one(
    postgres, tmp_path
):
    url = fresh_database(postgres, "workers")
    params = f"tuning.storage={url},tuning.study_name=shared,tuning.n_trials=6,tuning.fold_jobs=1"
    projects = [copy_project(tmp_path / f"machine_{n}") for n in (1, 2)]
    workers = [
        start_kedro(project, "run", "--pipeline=tune", "--env=test", f"--params={params}")
        for project in projects
    ]
    for worker, project in zip(workers, projects, strict=True):
        assert worker.wait(timeout=240) == 0, (project / "kedro.out").read_text()[-3000:]

    study = optuna.load_study(study_name="shared", storage=url)
    counted = study.get_trials(states=COUNTED)
    # MaxTrialsCallback stops each worker at the budget; the other's running trial may add one.
    assert 6 <= len(counted) <= 7
    assert {trial.user_attrs["worker"].split(":")[1] for trial in counted} == {
        str(worker.pid) for worker in workers
    }

    trained = run_kedro(projects[0], "run", "--pipeline=train", "--env=test", f"--params={params}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert len(optuna.load_study(study_name="shared", storage=url).trials) == len(study.trials)
    assert f"{len(counted)} of 6 trials already done" in trained.stderr
    summary = json.loads((projects[0] / "data/06_models/study_summary.json").read_text())
    assert summary["best_trial"] == study.best_trial.number
    # the URL's user info (a password, in a real deployment) is masked in MLflow
    database = projects[0] / "mlflow.db"
    logged = [
        v for (v,) in query(database, "select value from params union all select value from tags")
    ]
    assert not any(url in value for value in logged)
    assert any(redact(url) in value for value in logged)


def running_trials_of(url: str, study_name: str, pid: int) -> list[int]:
    """The numbers of the RUNNING trials worker `pid` started (with their first heartbeat
    stored: before it, only the settling of a later run can tell the trial is dead)."""
    try:
        study = optuna.load_study(study_name=study_name, storage=url)
    except KeyError:  # not created yet
        return []
    running = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if trial.user_attrs.get("worker", "").endswith(f":{pid}")
    ]
    if not running:
        return []
    with sqlalchemy.create_engine(url).connect() as connection:
        rows = connection.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))
        beating = {trial_id for (trial_id,) in rows}
    return [trial.number for trial in running if trial._trial_id in beating]


@pytest.mark.e2e
def test_a_worker_killed_mid_trial_leaves_no_ghost_once_its_command_runs_again(postgres, tmp_path):
    """Two `tune` workers on one PostgreSQL study; one is killed (SIGKILL) mid-trial, the other
    fills the budget; the killed machine's command, run again, finds the budget full and still
    fails the dead trial (it waits for the heartbeat grace period), leaving nothing RUNNING."""
    url = fresh_database(postgres, "ghosts")
    params = (
        f"tuning.storage={url},tuning.study_name=ghosts,tuning.n_trials=8,tuning.fold_jobs=1,"
        "tuning.heartbeat_interval=1,tuning.heartbeat_grace_period=2"
    )
    projects = [copy_project(tmp_path / f"machine_{n}") for n in (1, 2)]
    victim, survivor = (
        start_kedro(project, "run", "--pipeline=tune", "--env=test", f"--params={params}")
        for project in projects
    )
    deadline = time.monotonic() + 240
    while not (ghosts := running_trials_of(url, "ghosts", victim.pid)):
        assert time.monotonic() < deadline and victim.poll() is None, "no trial to kill"
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert survivor.wait(timeout=240) == 0, (projects[1] / "kedro.out").read_text()[-3000:]

    rerun = run_kedro(projects[0], "run", "--pipeline=tune", "--env=test", f"--params={params}")

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    trials = {t.number: t.state for t in optuna.load_study(study_name="ghosts", storage=url).trials}
    assert all(trials[number] == TrialState.FAIL for number in ghosts), trials
    assert TrialState.RUNNING not in trials.values(), trials
    assert sum(state in COUNTED for state in trials.values()) >= 8


def test_the_distributed_environment_reads_the_storage_url_from_the_environment(monkeypatch):
    tuning_params = OmegaConfigLoader(str(ROOT / "conf"), env="distributed", **CONFIG_LOADER_ARGS)[
        "parameters"
    ]["tuning"]
    base = yaml.safe_load((ROOT / "conf/base/parameters_hyperparameter_optimization.yml").open())
    assert tuning_params["storage"] == "env:MODEL_TRAINER_OPTUNA_STORAGE"
    assert tuning_params["worker_seeds"] is True
    assert tuning_params["n_trials"] == base["tuning"]["n_trials"]  # soft merge keeps base

    monkeypatch.setenv("MODEL_TRAINER_OPTUNA_STORAGE", "sqlite:///:memory:")
    assert storage.storage_url(tuning_params["storage"]) == "sqlite:///:memory:"


def test_a_storage_named_by_an_unset_environment_variable_is_a_configuration_error(monkeypatch):
    monkeypatch.delenv("MODEL_TRAINER_OPTUNA_STORAGE", raising=False)
    with pytest.raises(ConfigurationError, match="MODEL_TRAINER_OPTUNA_STORAGE is not set"):
        storage.make_storage({"storage": "env:MODEL_TRAINER_OPTUNA_STORAGE"})
