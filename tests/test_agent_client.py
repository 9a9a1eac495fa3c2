"""A real agent client drives the project (issue 18): the seed's babysitter SDK
(@a5c-ai/babysitter-sdk, pinned in tests/agent_client/package.json) runs a `kind: 'agent'`
train_model task defined as in the seed, and tests/agent_client/harness.mjs plays the agent's side:
`model-trainer task` on the effect's tasks/<effectId>/input.json, in the run's folder, its result
posted back with `babysitter task:post`. The SDK comes from tests/agent_client/node_modules
(`make test` runs `npm ci --prefix tests/agent_client` when it is missing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BENCH, ROOT, copy_project

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("bench_data_is_beside_the_project")]

AGENT_CLIENT = ROOT / "tests" / "agent_client"
SDK = AGENT_CLIENT / "node_modules" / "@a5c-ai" / "babysitter-sdk"
MODEL_TRAINER = Path(sys.executable).parent / "model-trainer"
TRAIN = BENCH / "penguins" / "train.csv"
TARGET = "species"

# The seed's input keys (its Input Specification), and the project's output keys.
INPUT_KEYS = {
    "task", "modelType", "algorithm", "trainDataPath", "targetColumn", "features",
    "validationStrategy", "hyperparameterSearch", "experimentTracking", "options",
}  # fmt: skip
OUTPUT_KEYS = {
    "success", "modelPath", "metrics", "bestParams", "crossValidation", "experimentRun",
    "trainingTime", "artifacts", "positiveClass",
}  # fmt: skip


def _journal(run_dir: Path) -> list[str]:
    return [json.loads(f.read_text())["type"] for f in sorted((run_dir / "journal").glob("*.json"))]


def test_babysitter_sdk_run_is_answered_by_model_trainer(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "node is not installed (.ci/run installs it; make test the pinned babysitter SDK)"
        )
    assert (SDK / "package.json").is_file(), (
        "the pinned babysitter SDK is not installed: run "
        "`npm ci --prefix tests/agent_client --omit=optional --ignore-scripts` (make test does)"
    )
    pinned = json.loads((AGENT_CLIENT / "package.json").read_text())["dependencies"]
    installed = json.loads((SDK / "package.json").read_text())["version"]
    assert installed == pinned["@a5c-ai/babysitter-sdk"], "node_modules is stale: rerun npm ci"
    assert MODEL_TRAINER.is_file(), f"the model-trainer console script is missing: {MODEL_TRAINER}"

    project = copy_project(tmp_path / "project")
    workspace = tmp_path / "agent"
    features = [c for c in TRAIN.read_text().splitlines()[0].split(",") if c != TARGET]
    env = {
        **os.environ,
        "MODEL_TRAINER_PROJECT": str(project),  # never the checkout's data/ and mlflow.db
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "KEDRO_LOGGING_CONFIG": str(project / "conf" / "logging.yml"),
    }
    trainer = [str(MODEL_TRAINER), "task", "{input}", "--output", "{output}", "--env", "test"]
    completed = subprocess.run(
        [node, str(AGENT_CLIENT / "harness.mjs"), "--workspace", str(workspace),
         "--train-data", str(TRAIN), "--target", TARGET, "--features", ",".join(features),
         "--", *trainer],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]
    summary = json.loads(completed.stdout)

    # The SDK's run finished: its journal ends with RUN_COMPLETED, and it gave a completion proof.
    run_dir = Path(summary["runDir"])
    assert summary["state"] == "completed", summary
    assert summary["completionProof"]
    events = _journal(run_dir)
    assert events[0] == "RUN_CREATED" and events[-1] == "RUN_COMPLETED", events
    assert events.count("EFFECT_REQUESTED") == events.count("EFFECT_RESOLVED") == 1, events

    # One agent effect, done by model-trainer on the input.json of the effect's task directory.
    [effect] = summary["effects"]
    assert (effect["kind"], effect["agent"], effect["exitCode"]) == ("agent", "model-trainer", 0)
    task_dir = run_dir / "tasks" / effect["effectId"]
    task_def = json.loads((task_dir / "task.json").read_text())  # as the SDK wrote it
    assert task_def["kind"] == "agent"
    assert task_def["io"]["inputJsonPath"] == f"tasks/{effect['effectId']}/input.json"
    assert Path(effect["inputJsonPath"]) == task_dir / "input.json"
    task_json = json.loads((task_dir / "input.json").read_text())
    assert task_json == task_def["inputs"]
    assert set(task_json) == INPUT_KEYS
    assert task_json["task"] == "train_model"
    assert task_json["targetColumn"] == TARGET
    assert task_json["trainDataPath"] == str(run_dir / "train.csv")

    # The result handed back: the SDK's result.json for the effect holds model-trainer's output,
    # and so does the run's output.
    handed_back = json.loads((task_dir / "result.json").read_text())
    assert handed_back["status"] == "ok", handed_back
    result = handed_back["value"]
    assert result == json.loads((task_dir / "output.json").read_text())
    assert result["success"] is True, result
    assert not OUTPUT_KEYS - set(result), f"missing output keys: {OUTPUT_KEYS - set(result)}"
    assert summary["output"] == result
    assert Path(result["modelPath"]).is_file()
    assert all(Path(artifact).is_file() for artifact in result["artifacts"])
    assert result["metrics"] and result["crossValidation"]["folds"] == 3
    assert result["experimentRun"]["runId"]
    assert result["trainingTime"] > 0
    assert (run_dir / "mlflow.db").is_file()  # the task JSON's trackingUri
