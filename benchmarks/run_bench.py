"""The public benchmark: `kedro task` on each data set in ../shared/bench/data, scored on its
test.csv (which the project never reads), beside the anchor systems run in the same process
tree, on the same machine, one after the other.

    make bench-envs                                  # the anchors' venvs (benchmarks/anchors/)
    uv run python benchmarks/run_bench.py            # all 21 sets, 60 s each: hours
    uv run python benchmarks/run_bench.py --quick    # 6 varied sets, 30 s each
    uv run python benchmarks/run_bench.py --only penguins,credit_data --timeout 20
    uv run python benchmarks/run_bench.py --systems project,flaml --anchors-from FILE.jsonl

Each data set runs in a fresh copy of the project (no study is resumed), through the same
command an agent would use; then each anchor (`/work/shared/bench/anchors.py SYSTEM DIR
BUDGET`: FLAML, AutoGluon best and medium, Optuna+LightGBM, LightGBM and HistGB untuned) in its
own venv (benchmarks/anchors/{flaml,autogluon}/.venv, made by benchmarks/anchors_env.sh), with
the same budget. Never two runs at once. Every run is one line of
benchmarks/results/<date>T<time>.jsonl (error, wall s, peak MB, load, versions);
`--anchors-from` reuses the anchors' lines of an earlier file of the same day, machine and
budget. Writes the tables to benchmarks/results.md (or --output) and prints them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
KEDRO = Path(sys.executable).parent / "kedro"
ANCHOR_ENVS_DIR = ROOT / "benchmarks" / "anchors"
RESULTS_DIR = ROOT / "benchmarks" / "results"
MODEL_TYPES = {
    "binary": "classification",
    "multiclass": "classification",
    "regression": "regression",
}
# anchors.py system -> the venv (benchmarks/anchors/<env>/.venv) that runs it
ANCHOR_ENVS = {
    "flaml": "flaml",
    "autogluon_best": "autogluon",
    "autogluon": "autogluon",
    "optuna_lgbm": "flaml",
    "lgbm": "flaml",
    "hgb": "flaml",
}
LABELS = {
    "project": "project",
    "flaml": "FLAML",
    "autogluon_best": "AutoGluon best",
    "autogluon": "AutoGluon medium",
    "optuna_lgbm": "Optuna+LightGBM",
    "lgbm": "LightGBM default",
    "hgb": "HistGB default",
}
DEFAULT_SYSTEMS = "project,flaml,autogluon_best,autogluon,optuna_lgbm,lgbm,hgb"
# binary, multiclass and regression; 276 to 3,564 training rows
QUICK_SETS = ("penguins", "credit_data", "oj", "wage", "hpc_data", "ames")
RATIO_CAP = 2.0
VERSIONED = (
    "model-trainer", "kedro", "flaml", "autogluon.tabular", "lightgbm", "xgboost", "xgboost-cpu",
    "catboost", "optuna", "scikit-learn", "pandas", "numpy",
)  # fmt: skip

sys.path.insert(0, str(BENCH))
from score import score  # noqa: E402  (/work/shared/bench/score.py: the anchors' scoring)


def project_copy(folder: Path, root: Path = ROOT) -> Path:
    """conf/ and pyproject.toml of the project at `root` in a fresh folder: no study, run or
    model of an earlier job."""
    shutil.copytree(
        root / "conf", folder / "conf", ignore=shutil.ignore_patterns("credentials.yml")
    )
    (folder / "src").mkdir()  # the package itself is installed in the venv
    for layer in (root / "data").iterdir():
        (folder / "data" / layer.name).mkdir(parents=True)
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(root / name, folder / name)
    # An installed project has its MLflow store already (`make install` creates it): migrating
    # a new SQLite store takes seconds that no later run pays.
    subprocess.run(
        [sys.executable, "-c", "import mlflow; mlflow.MlflowClient('sqlite:///mlflow.db')"
         ".search_experiments()"],
        cwd=folder, check=True,
    )  # fmt: skip
    return folder


TIME = Path("/usr/bin/time")


def run_measured(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    stdout: Path,
    stderr: Path,
    kill_after: float | None = None,
) -> tuple[int, float, float, bool]:
    """Runs `command` to its end: (return code, wall seconds, peak MB, killed). The peak is the
    larger of the biggest single process (`/usr/bin/time`'s maximum resident set, when the
    machine has it) and the summed RSS of the process tree (psutil, polled every 0.2 s: worker
    processes count). Not this process's own getrusage: on Linux a child's ru_maxrss starts
    from the RSS of the parent it was forked from (hundreds of MB here). After `kill_after`
    seconds the command's process group is killed (a guard, far beyond the budget)."""
    peak = [0]
    done = threading.Event()
    killed = [False]
    maxrss = stderr.with_name(stderr.name + ".maxrss")
    if TIME.exists():
        command = [str(TIME), "-f", "%M", "-o", str(maxrss), *command]
    with open(stdout, "w") as out, open(stderr, "w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
        )

        def poll() -> None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(process.pid)
                while not done.is_set():
                    total = 0
                    for proc in [root, *root.children(recursive=True)]:
                        with contextlib.suppress(psutil.Error):
                            total += proc.memory_info().rss
                    peak[0] = max(peak[0], total)
                    done.wait(0.2)

        def kill() -> None:
            killed[0] = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        guard = threading.Timer(kill_after, kill) if kill_after else None
        if guard:
            guard.start()
        process.wait()
        wall = time.perf_counter() - started
        done.set()
        if guard:
            guard.cancel()
        poller.join()
    peak_mb = peak[0] / 2**20
    if maxrss.exists():
        with contextlib.suppress(ValueError, IndexError):  # "Command exited with..." first
            peak_mb = max(peak_mb, int(maxrss.read_text().split()[-1]) / 1024)
    return process.returncode, wall, peak_mb, killed[0]


def kill_guard(timeout: float | None) -> float:
    return 3 * (timeout or 60) + 300


def run_task(
    data: Path,
    spec: dict,
    timeout: float | None,
    workdir: Path,
    train_file: str = "train.csv",
    env: dict[str, str] | None = None,
) -> tuple[dict, float, float]:
    """The task's result, its wall seconds and the peak memory (MB) of the `kedro task` process
    tree; `timeout` None runs it without a search (hyperparameterSearch disabled)."""
    request = {
        "task": "train",
        "modelType": MODEL_TYPES[spec["task"]],
        "algorithm": "auto",
        "trainDataPath": str(data / train_file),
        "targetColumn": spec["target"],
        "metric": spec["metric"],
        "hyperparameterSearch": (
            {"enabled": True, "nTrials": 100000, "timeout": timeout}
            if timeout is not None
            else {"enabled": False}
        ),
        "experimentTracking": {"experimentName": f"bench_{spec['name']}"},
    }
    if spec.get("time_column"):
        request["timeColumn"] = spec["time_column"]
    (workdir / "input.json").write_text(json.dumps(request))
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **(env or {}),
    }
    _, wall, peak_mb, _ = run_measured(
        [str(KEDRO), "task", "input.json", "--output", "result.json"],
        workdir,
        env,
        workdir / "stdout.json",
        workdir / "stderr.log",
        kill_guard(timeout),
    )
    result_file = workdir / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {"success": False}
    return result, wall, peak_mb


def test_error(model, test: pd.DataFrame, spec: dict) -> float:
    """Error as the anchors are scored (score.py): 1 - roc_auc, log_loss, rmse."""
    y = test[spec["target"]]
    X = test.drop(columns=[spec["target"]])
    if spec["metric"] == "rmse":
        return float(score(spec["task"], "rmse", y, model.predict(X))[1])
    classes = list(model.classes_)
    return float(score(spec["task"], spec["metric"], y, model.predict_proba(X), classes)[1])


# Nodes whose work is fitting or predicting with models; the rest of the wall time (start-up,
# data checks, MLflow logging, plots, the report) is the framework's overhead.
MODEL_NODES = (
    "smoke_test_node",
    "optimize_hyperparameters_node",
    "fit_evaluation_model_node",
    "score_test_split_node",
    "compute_feature_importance_node",
    "refit_on_all_rows_node",
)


def training_seconds(workdir: Path) -> float:
    """Seconds spent inside trials (fitting and scoring folds), from the trial table."""
    trials = workdir / "data" / "08_reporting" / "trials.csv"
    return float(pd.read_csv(trials)["duration"].sum()) if trials.exists() else math.nan


def model_seconds(workdir: Path) -> float:
    """Seconds in the nodes that fit or predict (NodeResources hook's record of the run)."""
    record = workdir / "data" / "08_reporting" / "node_resources.json"
    if not record.exists():
        return math.nan
    nodes = json.loads(record.read_text())["nodes"]
    return float(sum(nodes[name]["wall_s"] for name in MODEL_NODES if name in nodes))


def markdown_table(table: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines)


def anchor_python(env: str) -> Path:
    return ANCHOR_ENVS_DIR / env / ".venv" / "bin" / "python"


VERSIONS_CODE = f"""
import importlib.metadata as m, json, sys
found = {{"python": sys.version.split()[0]}}
for name in {VERSIONED!r}:
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        pass
print(json.dumps(found))
"""


def env_versions(python: Path) -> dict[str, str]:
    """Versions of the packages that matter in the venv of `python`."""
    run = subprocess.run([str(python), "-c", VERSIONS_CODE], capture_output=True, text=True)
    return json.loads(run.stdout) if run.returncode == 0 else {}


def project_git() -> dict[str, object]:
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return run.stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no", "--", "src", "conf")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(changed)}


def run_project(
    data: Path, spec: dict, budget: float | None, keep: Path | None = None, root: Path = ROOT
) -> dict:
    """One `kedro task` on `data` in a fresh project copy: its result line. With `keep`, the
    copy (its study, runs and model) is kept as keep/<data set>, for benchmarks/reselect.py.
    `root` is the version of the project to run (another checkout's src/ first on PYTHONPATH,
    its conf copied), this checkout by default."""
    with tempfile.TemporaryDirectory(prefix=f"bench_{spec['name']}_") as folder:
        workdir = project_copy(Path(folder), root)
        env = None if root == ROOT else {"PYTHONPATH": str(root / "src")}
        result, wall, peak_mb = run_task(data, spec, budget, workdir, env=env)
        if keep is not None:
            shutil.copytree(workdir, keep / spec["name"], dirs_exist_ok=True)
        line: dict = {"wall_s": wall, "peak_mb": peak_mb}
        if not result.get("success"):
            stderr = (workdir / "stderr.log").read_text()[-2000:]
            return {**line, "ok": False, "failure": str(result.get("error") or stderr)[-500:]}
        model = joblib.load(result["modelPath"])
        error = test_error(model, pd.read_csv(data / "test.csv"), spec)
        fitting = model_seconds(workdir)
        return {
            **line,
            "ok": True,
            "error": error,
            "algorithm": result.get("bestParams", {}).get("algorithm"),
            "in_trials_s": training_seconds(workdir),
            "fit_predict_s": fitting,
            "overhead_pct": 100 * (wall - fitting) / wall,
        }


def run_anchor(system: str, data: Path, budget: float) -> dict:
    """anchors.py SYSTEM DIR BUDGET in its venv, in a scratch folder (CatBoost writes its
    catboost_info/ in the working folder): its result line."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    with tempfile.TemporaryDirectory(prefix=f"anchor_{system}_{data.name}_") as folder:
        work = Path(folder)
        code, wall, peak_mb, killed = run_measured(
            [
                str(anchor_python(ANCHOR_ENVS[system])),
                str(BENCH / "anchors.py"),
                system,
                str(data),
                str(round(budget)),
            ],
            work,
            env,
            work / "stdout.txt",
            work / "stderr.txt",
            kill_guard(budget),
        )
        lines = [
            line for line in (work / "stdout.txt").read_text().splitlines() if line.startswith("{")
        ]
        line: dict = {"wall_s": wall, "peak_mb": peak_mb}
        if code != 0 or not lines:
            stderr = (work / "stderr.txt").read_text().strip().splitlines()
            reason = "killed by the guard" if killed else (stderr[-1] if stderr else f"exit {code}")
            return {**line, "ok": False, "failure": reason[-500:]}
    record = json.loads(lines[-1])
    return {
        **line,
        "ok": True,
        "error": record["error"],
        "value": record["value"],
        "inner_fit_s": record["fit_s"],
        "inner_wall_s": record["wall_s"],
    }


def reusable_anchors(path: Path, today: str, budget: float) -> dict[tuple[str, str], dict]:
    """Anchor lines of an earlier JSONL that this run may take as they are: same day, same
    machine, same budget, succeeded."""
    reused: dict[tuple[str, str], dict] = {}
    skipped = 0
    for text in path.read_text().splitlines():
        if not text.strip():
            continue
        line = json.loads(text)
        if line.get("kind") != "result" or line.get("system") == "project":
            continue
        if (
            line.get("date") == today
            and line.get("host") == platform.node()
            and line.get("budget_s") == budget
            and line.get("ok")
        ):
            reused[(line["dataset"], line["system"])] = line
        else:
            skipped += 1
    if skipped:
        print(
            f"--anchors-from: {skipped} line(s) of {path} not reused (another day, machine or"
            " budget, or failed): those anchors run again",
            file=sys.stderr,
        )
    return reused


def ratio(ours: float, theirs: float) -> float:
    if ours == theirs:
        return 1.0
    return ours / theirs if theirs > 0 else math.inf


def geomean(values: list[float], cap: float | None = None) -> float:
    if cap:
        values = [min(max(v, 1 / cap), cap) for v in values]
    values = [v for v in values if math.isfinite(v) and v > 0]
    return float(np.exp(np.mean(np.log(values)))) if values else math.nan


def cell(line: dict | None) -> str:
    if line is None:
        return ""
    if not line.get("ok"):
        return "FAILED"
    return f"{line['error']:.4g} ({line['wall_s']:.0f})"


def summarize(
    results: dict[str, dict[str, dict]], specs: dict[str, dict], systems: list[str]
) -> tuple[list[str], dict]:
    """Markdown tables and the summary figures of one run's result lines
    (results[dataset][system])."""
    anchors = [s for s in systems if s != "project"]
    has_project = "project" in systems
    rows, resources, details = [], [], []
    ratios: dict[str, list[float]] = {s: [] for s in [*anchors, "best anchor"]}
    wins, compared, failures = 0, 0, []
    for name, lines in results.items():
        row = {"data set": name, "metric": specs[name]["metric"]}
        row.update({LABELS[s]: cell(lines.get(s)) for s in systems})
        resources.append(
            {"data set": name}
            | {LABELS[s]: f"{lines[s]['peak_mb']:.0f}" if s in lines else "" for s in systems}
        )
        for system, line in lines.items():
            if not line.get("ok"):
                failures.append(f"{name} {LABELS[system]}: {line.get('failure')}")
        good = {s: lines[s]["error"] for s in anchors if lines.get(s, {}).get("ok")}
        best = min(good, key=good.__getitem__) if good else None
        row["best anchor"] = LABELS[best] if best else ""
        ours = lines.get("project", {})
        if has_project and ours.get("ok"):
            for system, error in good.items():
                ratios[system].append(ratio(ours["error"], error))
            for system in ("flaml", "autogluon_best"):
                if system in anchors:
                    row[f"vs {LABELS[system]}"] = (
                        f"{ratio(ours['error'], good[system]):.3f}" if system in good else ""
                    )
            if best:
                best_ratio = ratio(ours["error"], good[best])
                ratios["best anchor"].append(best_ratio)
                row["vs best anchor"] = f"{best_ratio:.3f}"
                compared += 1
                wins += ours["error"] <= good[best]
            details.append(
                {
                    "data set": name,
                    "algorithm": ours.get("algorithm"),
                    "wall s": ours["wall_s"],
                    "in trials s": ours["in_trials_s"],
                    "fit/predict s": ours["fit_predict_s"],
                    "overhead %": ours["overhead_pct"],
                    "peak MB": ours["peak_mb"],
                }
            )
        rows.append(row)
    project_walls = [lines["project"]["wall_s"] for lines in results.values() if "project" in lines]
    summary = {
        "geomean": {LABELS.get(s, s): geomean(v) for s, v in ratios.items() if v},
        "geomean_capped": {LABELS.get(s, s): geomean(v, RATIO_CAP) for s, v in ratios.items() if v},
        "wins": wins,
        "compared": compared,
        "project_median_wall_s": statistics.median(project_walls) if project_walls else math.nan,
        "failures": failures,
    }
    text = [markdown_table(pd.DataFrame(rows).fillna("")), ""]
    if has_project and compared:
        text += [
            "Geometric-mean error ratio, project / anchor (below 1: the project is better): "
            + ", ".join(f"vs {k} {v:.3f}" for k, v in summary["geomean"].items()),
            "",
            f"The same with each ratio capped at {RATIO_CAP:g}x either way: "
            + ", ".join(f"vs {k} {v:.3f}" for k, v in summary["geomean_capped"].items()),
            "",
            f"Wins (project error <= the best anchor's on the set): {wins} of {compared}. "
            f"Median wall time of the project: {summary['project_median_wall_s']:.1f} s.",
            "",
        ]
    text += [
        "Failures: " + ("; ".join(failures) if failures else "none"),
        "",
        "Peak memory (MB, the process tree):",
        "",
        markdown_table(pd.DataFrame(resources)),
        "",
    ]
    if details:
        text += [
            "The project's runs: `fit/predict s` = wall seconds in the nodes that fit or"
            " predict (smoke run, search, final fit, test scoring, importance, refit);"
            " `overhead %` = the rest of the `kedro task` wall time (start-up, checks, MLflow,"
            " plots, report).",
            "",
            markdown_table(pd.DataFrame(details)),
            "",
        ]
    return text, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--timeout", type=float, default=None,
        help="budget in seconds for the project's search and each anchor (60; --quick 30)",
    )  # fmt: skip
    parser.add_argument("--only", default="", help="comma-separated data set names")
    parser.add_argument("--quick", action="store_true", help=", ".join(QUICK_SETS) + "; 30 s")
    parser.add_argument("--systems", default=DEFAULT_SYSTEMS, help="comma-separated")
    parser.add_argument(
        "--anchors-from", type=Path, default=None,
        help="a results/*.jsonl of an earlier run today: its anchor lines are reused",
    )  # fmt: skip
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results.md"))
    parser.add_argument(
        "--keep-workdirs", type=Path, default=None,
        help="keep each project run's folder here (benchmarks/reselect.py reads them)",
    )  # fmt: skip
    args = parser.parse_args()
    budget = args.timeout if args.timeout is not None else (30.0 if args.quick else 60.0)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in LABELS]
    if unknown:
        parser.error(f"unknown systems {unknown}; known: {', '.join(LABELS)}")
    names = sorted(p.name for p in (BENCH / "data").iterdir() if p.is_dir())
    wanted = set(QUICK_SETS) if args.quick else set()
    wanted |= {n for n in args.only.split(",") if n}
    if wanted:
        unknown = wanted - set(names)
        if unknown:
            parser.error(f"unknown data sets {sorted(unknown)}")
        names = [n for n in names if n in wanted]
    today = dt.date.today().isoformat()
    reused = reusable_anchors(args.anchors_from, today, budget) if args.anchors_from else {}
    missing = {
        ANCHOR_ENVS[s]
        for s in systems
        if s in ANCHOR_ENVS
        and not anchor_python(ANCHOR_ENVS[s]).exists()
        and any((n, s) not in reused for n in names)
    }
    if missing:
        parser.error(
            f"no venv for {', '.join(sorted(missing))} in benchmarks/anchors/: run"
            " `make bench-envs` (benchmarks/anchors_env.sh)"
        )

    started = dt.datetime.now()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    record = RESULTS_DIR / f"{started:%Y-%m-%dT%H%M%S}.jsonl"
    versions = {"project": env_versions(Path(sys.executable)) | project_git()}
    for env in sorted({ANCHOR_ENVS[s] for s in systems if s in ANCHOR_ENVS}):
        if anchor_python(env).exists():
            versions[env] = env_versions(anchor_python(env))
    base = {"date": today, "host": platform.node(), "cpus": os.cpu_count()}

    def write(line: dict) -> None:
        with open(record, "a") as out:
            out.write(json.dumps(line, default=float) + "\n")

    write(
        {
            "kind": "run",
            **base,
            "started": started.isoformat(timespec="seconds"),
            "budget_s": budget,
            "datasets": names,
            "systems": systems,
            "anchors_from": str(args.anchors_from) if args.anchors_from else None,
            "load": os.getloadavg(),
            "versions": versions,
        }
    )
    print(f"Recording every run in {record}", file=sys.stderr)
    results: dict[str, dict[str, dict]] = {}
    specs: dict[str, dict] = {}
    loads: list[float] = []
    for name in names:
        data = BENCH / "data" / name
        spec = json.loads((data / "task.json").read_text())
        specs[name] = spec
        results[name] = {}
        for system in systems:
            if (name, system) in reused:
                line = reused[(name, system)] | {"reused_from": str(args.anchors_from)}
            else:
                load_before = os.getloadavg()
                try:
                    if system == "project":
                        outcome = run_project(data, spec, budget, args.keep_workdirs)
                    else:
                        outcome = run_anchor(system, data, budget)
                except Exception as exc:  # one set's failure ends no run
                    outcome = {"ok": False, "failure": repr(exc)[-500:], "wall_s": math.nan}
                    outcome["peak_mb"] = math.nan
                env = "project" if system == "project" else ANCHOR_ENVS[system]
                line = {
                    "kind": "result",
                    **base,
                    "time": dt.datetime.now().isoformat(timespec="seconds"),
                    "dataset": name,
                    "task": spec["task"],
                    "metric": spec["metric"],
                    "system": system,
                    "budget_s": budget,
                    **outcome,
                    "load_before": load_before,
                    "load_after": os.getloadavg(),
                    "versions": versions.get(env, {}),
                }
            write(line)
            results[name][system] = line
            loads.append(line["load_before"][0])
            status = f"error {line['error']:.5g}" if line.get("ok") else f"FAILED {line['failure']}"
            print(
                f"{name:12} {LABELS[system]:17} {status}, {line['wall_s']:.1f} s,"
                f" {line['peak_mb']:.0f} MB" + (" (reused)" if "reused_from" in line else ""),
                file=sys.stderr,
                flush=True,
            )

    tables, summary = summarize(results, specs, systems)
    load = os.getloadavg()
    cores = os.cpu_count() or 1
    mean_load = statistics.mean(loads) if loads else math.nan
    anchor_versions = "; ".join(
        f"{env}: " + ", ".join(f"{k} {v}" for k, v in sorted(found.items()) if k != "python")
        for env, found in versions.items()
        if env != "project"
    )
    text = [
        f"# Benchmark results ({today}, budget {budget:g} s, {len(names)} data sets)",
        "",
        "Error on each test.csv as /work/shared/bench/score.py computes it: 1 - roc_auc"
        " (binary), log_loss (multiclass), rmse (regression); lower is better. Wall seconds of"
        " the whole process (start-up included) in brackets. The project (`kedro task`,"
        f" `algorithm: auto`, a {budget:g} s search, each set in a fresh project copy) and the"
        " anchors (`/work/shared/bench/anchors.py SYSTEM DIR"
        f" {budget:g}`) ran one after the other in this run, on this machine; `vs X` = the"
        " project's error / X's (below 1: the project is better). Absolute figures move with"
        " the machine's load: compare ratios within one run, never across days.",
        "",
        f"Machine: {cores} cores; load (1-minute average) {mean_load:.1f} on average before"
        f" the runs, 15-minute average {load[2]:.1f} at the end"
        + (
            " (above the core count: other work shared the CPUs, timings are pessimistic)."
            if max(mean_load, load[2]) > cores
            else "."
        ),
        f"Project {versions['project'].get('model-trainer', '?')} at"
        f" {versions['project']['commit']}"
        + (" with uncommitted changes in src/ or conf/" if versions["project"]["dirty"] else "")
        + (f"; anchors: {anchor_versions}." if anchor_versions else "."),
        f"Every run's line: `{record.relative_to(ROOT)}`"
        + (f"; anchors reused from `{args.anchors_from}`." if reused else "."),
        f"Reproduce: `uv run python benchmarks/run_bench.py {' '.join(sys.argv[1:])}`"
        " (after `make bench-envs`).",
        "",
        *tables,
    ]
    write({"kind": "summary", **base, "budget_s": budget, "load": load, **summary})
    Path(args.output).write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
