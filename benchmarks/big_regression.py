"""A 250,000-row, 15-column regression through `kedro task`: wall time against the tuning
budget, and peak memory.

    uv run python benchmarks/big_regression.py [--rows 250000] [--timeout 60]

The table is diamonds' train.csv (43,152 real rows, 9 features + price) sampled with replacement
to `--rows` rows, with five more columns: volume (x*y*z), carat per volume, depth-table ratio
(real derived measurements) and two noise columns (one numeric, one categorical), so a model
must ignore some columns. Written as Parquet in a temporary project copy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from run_bench import BENCH, project_copy, run_task


def big_table(rows: int, seed: int = 0) -> pd.DataFrame:
    diamonds = pd.read_csv(BENCH / "data" / "diamonds" / "train.csv")
    rng = np.random.default_rng(seed)
    table = diamonds.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    volume = table["x"] * table["y"] * table["z"]
    table["volume"] = volume
    table["carat_per_volume"] = table["carat"] / volume.where(volume > 0)
    table["depth_table_ratio"] = table["depth"] / table["table"]
    table["noise"] = rng.normal(size=rows)
    table["noise_code"] = rng.choice(list("ABCDEFGH"), size=rows)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--downcast-above-mb",
        default="conf",
        help="dataset.downcast_above_mb for this run: a number, off, or conf (the project's)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_big_") as folder:
        workdir = project_copy(Path(folder))
        if args.downcast_above_mb != "conf":
            value = "null" if args.downcast_above_mb == "off" else args.downcast_above_mb
            (workdir / "conf" / "local").mkdir(parents=True, exist_ok=True)
            (workdir / "conf" / "local" / "parameters_downcast.yml").write_text(
                f"dataset:\n  downcast_above_mb: {value}\n"
            )
        data = workdir / "big"
        data.mkdir()
        table = big_table(args.rows)
        table.to_parquet(data / "train.parquet")
        spec = {"name": "big_regression", "task": "regression", "target": "price", "metric": "rmse"}
        result, wall, peak_mb = run_task(data, spec, args.timeout, workdir, "train.parquet")
        resources = json.loads(
            (workdir / "data" / "08_reporting" / "node_resources.json").read_text()
        )
    slowest = sorted(resources["nodes"].items(), key=lambda item: -item[1]["wall_s"])[:5]
    report = {
        "rows": len(table),
        "columns": table.shape[1],
        "success": result.get("success"),
        "algorithm": (result.get("bestParams") or {}).get("algorithm"),
        "test_rmse": (result.get("metrics") or {}).get("rmse"),
        "timeout_s": args.timeout,
        "downcast_above_mb": args.downcast_above_mb,
        "wall_s": round(wall, 1),
        "wall_over_budget": round(wall / args.timeout, 2),
        "pipeline_wall_s": resources["pipeline_wall_s"],
        "in_nodes_s": round(sum(usage["wall_s"] for usage in resources["nodes"].values()), 1),
        "peak_mb": round(peak_mb),
        "slowest_nodes": {name: usage["wall_s"] for name, usage in slowest},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
