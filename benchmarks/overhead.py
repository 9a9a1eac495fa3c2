"""The framework's overhead (wall time not spent fitting or predicting), this checkout against a
baseline commit, side by side in one run.

    uv run python benchmarks/overhead.py --baseline <git ref> [--repeats 3] [--timeout 20]

Each repeat runs `kedro task` once per version, alternating, in a fresh project copy: on
penguins without a search (the issue's "tuning disabled in at most 15 s" case) and on
credit_data with a search of `--timeout` seconds. The baseline's code is imported from a git
worktree put first on PYTHONPATH; both use this venv. Writes benchmarks/overhead.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
from run_bench import (
    BENCH,
    MODEL_NODES,
    ROOT,
    markdown_table,
    model_seconds,
    project_copy,
    run_task,
)

CASES = (("penguins", None), ("credit_data", "timeout"))


def run_once(version_root: Path, data_name: str, timeout: float | None) -> dict[str, float]:
    data = BENCH / "data" / data_name
    spec = json.loads((data / "task.json").read_text())
    with tempfile.TemporaryDirectory(prefix=f"overhead_{data_name}_") as folder:
        workdir = project_copy(Path(folder), version_root)
        env = {"PYTHONPATH": str(version_root / "src")}
        result, wall, peak_mb = run_task(data, spec, timeout, workdir, env=env)
        if not result.get("success"):
            raise RuntimeError(f"{data_name} failed under {version_root}: {result.get('error')}")
        fitting = model_seconds(workdir)
    return {
        "wall s": wall,
        "fit/predict s": fitting,
        "overhead s": wall - fitting,
        "peak MB": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git ref to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "overhead.md"))
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="overhead_baseline_") as folder:
        baseline = Path(folder) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(baseline), commit],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        try:
            versions = {f"baseline {commit}": baseline, "this checkout": ROOT}
            samples: dict[tuple[str, str], list[dict[str, float]]] = {}
            for repeat in range(args.repeats):
                for data_name, search in CASES:
                    timeout = args.timeout if search else None
                    for label, root in versions.items():
                        sample = run_once(root, data_name, timeout)
                        samples.setdefault((data_name, label), []).append(sample)
                        print(repeat, data_name, label, json.dumps(sample), flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False
            )
    rows = []
    for (data_name, label), runs in samples.items():
        medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        rows.append({"data set": data_name, "version": label, **medians})
    for data_name, _ in CASES:
        old, new = (row for row in rows if row["data set"] == data_name)
        rows.append(
            {
                "data set": data_name,
                "version": "ratio (this / baseline)",
                **{key: new[key] / old[key] for key in new if key not in ("data set", "version")},
            }
        )
    for row in rows:
        ratio = row["version"].startswith("ratio")
        row["overhead %"] = "" if ratio else 100 * row["overhead s"] / row["wall s"]
    load = os.getloadavg()[2]
    search_text = f"credit_data with a {args.timeout:g} s search"
    text = [
        "# Framework overhead, side by side",
        "",
        f"Medians of {args.repeats} alternating runs of `kedro task`: penguins without a search,"
        f" {search_text}. `fit/predict s` = wall seconds in the nodes that fit or predict"
        f" ({', '.join(MODEL_NODES)}); `overhead s` = the rest of the wall time. Reproduce:"
        f" `uv run python benchmarks/overhead.py --baseline {commit}"
        f" --repeats {args.repeats} --timeout {args.timeout:g}`.",
        "",
        markdown_table(pd.DataFrame(rows).sort_values(["data set", "version"], kind="stable")),
        "",
        f"Machine load (15-minute average) at the end: {load:.1f} on {os.cpu_count()} cores.",
        "",
    ]
    Path(args.output).write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
