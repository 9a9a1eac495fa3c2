"""A refactor changes no prediction: `kedro task` with a fixed trial budget (no time limit) on
three bench sets, run with the package of SRC, saving each model's test-set predictions.

    uv run python benchmarks/same_predictions.py SRC NAME     # e.g. a worktree's src, "before"

Run it for the code before (a `git worktree` of the old commit) and after, then compare the
saved /tmp/same_<name>_<set>.npy files with numpy.array_equal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import BENCH, KEDRO, copy_project  # noqa: E402

SETS = ("penguins", "credit_data", "ames")


def main(src: str, name: str) -> None:
    for dataset in SETS:
        folder = BENCH / dataset
        task = json.loads((folder / "task.json").read_text())
        project = Path(f"/tmp/same_{name}_{dataset}")
        shutil.rmtree(project, ignore_errors=True)
        copy_project(project)
        spec = {
            "task": "train_model",
            "trainDataPath": str(folder / "train.csv"),
            "targetColumn": task["target"],
            "hyperparameterSearch": {"nTrials": 6, "timeout": 3600},
        }
        (project / "task.json").write_text(json.dumps(spec))
        env = {
            **os.environ,
            "PYTHONPATH": src,
            "KEDRO_LOGGING_CONFIG": str(project / "conf" / "logging.yml"),
        }
        subprocess.run(
            [str(KEDRO), "task", "task.json", "-o", "out.json"], cwd=project, env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        result = json.loads((project / "out.json").read_text())
        model = joblib.load(result["modelPath"])
        rows = pd.read_csv(folder / "test.csv").drop(columns=[task["target"]])
        predicted = (
            model.predict(rows) if task["task"] == "regression" else model.predict_proba(rows)
        )
        np.save(f"/tmp/same_{name}_{dataset}.npy", np.asarray(predicted, dtype=float))
        print(dataset, result["bestParams"]["algorithm"], result["metrics"])


if __name__ == "__main__":
    main(*sys.argv[1:3])
