"""Trials per minute of one study filled by 1 or 2 `kedro run --pipeline=tune` workers on a real
PostgreSQL (pgserver), at the same trial budget.

    uv run python benchmarks/workers_bench.py [--trials 20] [--params K=V,...] [--output FILE]

Each worker runs in its own project copy (as on its own machine) with conf/test (LightGBM and
logistic regression, 3 folds) on the bundled credit data. Trials per minute counts the search
only (first trial start to last trial end, from the study); wall time adds Kedro's start-up and
data preparation. Writes benchmarks/workers.md and prints it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import pgserver
from optuna.trial import TrialState
from run_bench import KEDRO, ROOT, project_copy

# (workers, tuning.fold_jobs): one worker also with both cores on its folds, as by default.
SETUPS = ((1, 1), (1, 2), (2, 1))


def run_workers(
    url: str, workers: int, fold_jobs: int, trials: int, workdir: Path, extra: str
) -> float:
    """Wall seconds until every worker has exited; `extra` are more `--params` (another data
    set, another pruner)."""
    params = (
        f"tuning.storage={url},tuning.study_name=bench,tuning.n_trials={trials},"
        f"tuning.fold_jobs={fold_jobs},tuning.worker_seeds=true,tuning.timeout=null"
        + (f",{extra}" if extra else "")
    )
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    processes = []
    for number in range(workers):
        project = project_copy(workdir / f"worker_{number}")
        shutil.copy(ROOT / "data" / "01_raw" / "credit_data.csv", project / "data" / "01_raw")
        log = (project / "kedro.log").open("w")
        command = [str(KEDRO), "run", "--pipeline=tune", "--env=test", f"--params={params}"]
        processes.append(
            subprocess.Popen(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
        )
    started = time.perf_counter()
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"a worker failed: see {workdir}/worker_*/kedro.log")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--params", default="", help="more kedro --params, e.g. dataset.path=…")
    parser.add_argument("--output", default=str(Path(__file__).parent / "workers.md"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="workers") as folder:
        server = pgserver.get_server(Path(folder) / "pg", cleanup_mode="delete")
        try:
            for workers, fold_jobs in SETUPS:
                name = f"bench_{workers}_{fold_jobs}"
                server.psql(f"CREATE DATABASE {name};")
                url = server.get_uri(name)
                wall = run_workers(
                    url, workers, fold_jobs, args.trials, Path(folder) / name, args.params
                )
                study = optuna.load_study(study_name="bench", storage=url)
                done = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
                span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
                per_worker = {t.user_attrs["worker"] for t in done}
                rows.append(
                    f"| {workers} | {fold_jobs} | {len(done)} | {len(per_worker)} | "
                    f"{span.total_seconds():.1f} | {len(done) / span.total_seconds() * 60:.1f} | "
                    f"{wall:.1f} |"
                )
        finally:
            server.cleanup()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    report = "\n".join(
        [
            "# Workers on one PostgreSQL study",
            "",
            f"`uv run python benchmarks/workers_bench.py --trials {args.trials}"
            + (f" --params {args.params}" if args.params else "")
            + "`: conf/test (LightGBM and logistic regression, 3 folds), "
            + (
                "the bundled credit data unless --params says otherwise"
                if args.params
                else "the bundled credit data"
            )
            + f", {os.cpu_count()} cores; load average (1, 5, 15 min) at the end: {load}.",
            "",
            "| workers | fold_jobs | trials | workers that ran trials | search s | "
            "trials/min | wall s |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    Path(args.output).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
