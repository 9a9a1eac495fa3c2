"""Shared fixtures: a throwaway copy of the project, so runs never touch the repository's data/
or mlflow.db, and a helper that runs `kedro` in it as a user would."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench" / "data"
KEDRO = Path(sys.executable).parent / "kedro"


def require_bench_data() -> None:
    """Fails with a clear message when the public benchmark data is missing. Only the modules
    that read it need it: they request the fixture below, and those that read it on import
    call this first."""
    assert BENCH.is_dir(), f"the public benchmark data is expected in {BENCH} (../shared)"


@pytest.fixture(scope="session")
def bench_data_is_beside_the_project() -> None:
    """Requested by the modules that read BENCH (`pytest.mark.usefixtures`), so the other tests
    run without the benchmark data."""
    require_bench_data()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """conf/, the bundled raw data and pyproject.toml in a fresh folder."""
    return copy_project(tmp_path / "project")


def copy_project(copy: Path) -> Path:
    copy.mkdir(parents=True)
    shutil.copytree(ROOT / "conf", copy / "conf", ignore=shutil.ignore_patterns("credentials.yml"))
    for layer in sorted((ROOT / "data").iterdir()):
        (copy / "data" / layer.name).mkdir(parents=True)
    shutil.copy(ROOT / "data" / "01_raw" / "credit_data.csv", copy / "data" / "01_raw")
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(ROOT / name, copy / name)
    (copy / "src").mkdir()  # the package itself is installed (editable) in the venv
    return copy


def kedro_env(project: Path) -> dict[str, str]:
    """The environment a `kedro` command of the tests runs in: no telemetry, the project's
    logging."""
    return {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "KEDRO_LOGGING_CONFIG": str(project / "conf" / "logging.yml"),
    }


def run_kedro(project: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KEDRO), *args],
        cwd=project,
        env=kedro_env(project),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_task(project: Path, spec: dict) -> dict:
    """`kedro task` on `spec` (written as task.json) in the project; its result JSON, once the
    command has succeeded."""
    (project / "task.json").write_text(json.dumps(spec))
    result = run_kedro(project, "task", "task.json", "--output", "out.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((project / "out.json").read_text())


def query(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchall()


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project trained once (conf/test budgets, the bundled credit data) for the tests of what
    comes after training: evaluate, deploy, serve, inference. Tests may add runs to it, not
    remove its model."""
    copy = copy_project(tmp_path_factory.mktemp("trained") / "project")
    result = run_kedro(copy, "run", "--pipeline=train", "--env=test")
    assert result.returncode == 0, result.stderr[-3000:]
    return copy
