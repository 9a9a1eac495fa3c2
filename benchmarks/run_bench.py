"""The public benchmark: `kedro task` on each data set in ../shared/bench/data, scored on its
test.csv (which the project never reads), beside the anchors of ANCHORS.md.

    uv run python benchmarks/run_bench.py [--timeout 60] [--only penguins,credit_data]

Each data set runs in a fresh copy of the project (no study is resumed), through the same
command an agent would use. Writes benchmarks/results.md and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn import metrics

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
KEDRO = Path(sys.executable).parent / "kedro"
ANCHOR_COLUMNS = ("FLAML 60 s", "AutoGluon best 60 s", "AutoGluon medium 60 s", "LightGBM default")
MODEL_TYPES = {
    "binary": "classification",
    "multiclass": "classification",
    "regression": "regression",
}


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


def run_task(
    data: Path,
    spec: dict,
    timeout: float | None,
    workdir: Path,
    train_file: str = "train.csv",
    env: dict[str, str] | None = None,
) -> tuple[dict, float, float]:
    """The task's result, its wall seconds and the peak memory (MB) of the `kedro task` process;
    `timeout` None runs it without a search (hyperparameterSearch disabled)."""
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
    started = time.perf_counter()
    with open(workdir / "stdout.json", "w") as out, open(workdir / "stderr.log", "w") as err:
        process = subprocess.Popen(
            [str(KEDRO), "task", "input.json", "--output", "result.json"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=err,
        )
        _, _, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    result_file = workdir / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {"success": False}
    return result, wall, usage.ru_maxrss / 1024


def test_error(model, test: pd.DataFrame, spec: dict) -> float:
    """Error as ANCHORS.md compares it: 1 - roc_auc, log_loss, rmse."""
    y = test[spec["target"]]
    X = test.drop(columns=[spec["target"]])
    if spec["metric"] == "rmse":
        return float(metrics.root_mean_squared_error(y, model.predict(X)))
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    if spec["metric"] == "log_loss":
        return float(metrics.log_loss(y, proba, labels=classes))
    return float(1 - metrics.roc_auc_score(y == classes[1], proba[:, 1]))


def anchors() -> dict[str, dict[str, float]]:
    """ANCHORS.md's table as errors per data set and system."""
    lines = [
        line for line in (BENCH / "ANCHORS.md").read_text().splitlines() if line.startswith("|")
    ]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    table: dict[str, dict[str, float]] = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        name, metric = cells[0], cells[1]
        table[name] = {}
        for column, cell in zip(header[2:], cells[2:], strict=True):
            value = float(cell.split()[0])
            table[name][column] = 1 - value if metric == "roc_auc" else value
    return table


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--only", default="", help="comma-separated data set names")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results.md"))
    args = parser.parse_args()
    names = sorted(p.name for p in (BENCH / "data").iterdir() if p.is_dir())
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    reference = anchors()
    rows = []
    for name in names:
        data = BENCH / "data" / name
        spec = json.loads((data / "task.json").read_text())
        with tempfile.TemporaryDirectory(prefix=f"bench_{name}_") as folder:
            workdir = project_copy(Path(folder))
            result, wall, peak_mb = run_task(data, spec, args.timeout, workdir)
            if not result.get("success"):
                print(f"{name}: FAILED {result.get('error')}", file=sys.stderr)
                rows.append({"data set": name, "metric": spec["metric"], "error": math.nan})
                continue
            model = joblib.load(result["modelPath"])
            error = test_error(model, pd.read_csv(data / "test.csv"), spec)
            search = training_seconds(workdir)
            fitting = model_seconds(workdir)
        row = {
            "data set": name,
            "metric": spec["metric"],
            "error": error,
            "algorithm": result["bestParams"]["algorithm"],
            "wall s": wall,
            "in trials s": search,
            "fit/predict s": fitting,
            "overhead %": 100 * (wall - fitting) / wall,
            "peak MB": peak_mb,
        }
        for column in ANCHOR_COLUMNS:
            row[f"vs {column}"] = error / reference[name][column]
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)
    table = pd.DataFrame(rows)
    load = os.getloadavg()[2]
    ratios = {
        column: float(np.exp(np.log(table[f"vs {column}"]).mean())) for column in ANCHOR_COLUMNS
    }
    text = [
        f"# Benchmark results ({dt.date.today().isoformat()}, tuning timeout {args.timeout:g} s)",
        "",
        "Error = 1 - roc_auc (binary), log_loss (multiclass), rmse (regression), on each test.csv;"
        " `vs X` = our error / X's error (below 1 is better). `fit/predict s` = wall seconds in"
        " the nodes that fit or predict (smoke run, search, final fit, test scoring, importance,"
        " refit);"
        " `overhead %` = the rest of the `kedro task` wall time (start-up, checks, MLflow,"
        " plots, report). Reproduce: `uv run python benchmarks/run_bench.py`.",
        "",
        markdown_table(table),
        "",
        f"Machine load (15-minute average) at the end: {load:.1f} on {os.cpu_count()} cores"
        + (
            " (above the core count: other work shared the CPUs and timings are pessimistic)."
            if load > (os.cpu_count() or 1)
            else " (the benchmark's own two worker threads are most of it)."
        ),
        "",
        "Geometric-mean error ratio: "
        + ", ".join(f"vs {column} {value:.3f}" for column, value in ratios.items()),
        "",
    ]
    Path(args.output).write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
