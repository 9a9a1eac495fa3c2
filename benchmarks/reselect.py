"""What a post-search change moves, on the very studies a benchmark run made.

    uv run python benchmarks/run_bench.py --systems project --keep-workdirs KEPT
    uv run python benchmarks/reselect.py KEPT --label "uncalibrated" \
        --set training.calibration=none
    uv run python benchmarks/reselect.py KEPT --label "before" --code 858f5ef

A change that acts after the search (how the final model is chosen from the trials, calibrated
or fit) can be judged without re-running the search: each kept project folder runs `kedro task`
again with `tuning.continue_search: false` (the study is used as it is: no new trial, the same
out-of-fold predictions), under other parameters (`--set KEY=VALUE`) or another commit's code
(`--code REV`: a git worktree of that commit comes first on PYTHONPATH). Both models are scored
on test.csv as run_bench.py scores them: a paired comparison, free of the search's timing
noise. The run's bagging decision (it depends on the time the search left) is kept unless a
`--set` changes it. Not timed: these runs are deterministic, so they may share the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import joblib
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import BENCH, KEDRO, ROOT, geomean, markdown_table, ratio, test_error


def kept_model(folder: Path) -> Path:
    """The model the kept run answered with (its path pointed into the deleted temporary copy)."""
    result = json.loads((folder / "result.json").read_text())
    relative = result["modelPath"].split("/data/", 1)[1]
    return folder / "data" / relative


def set_parameters(conf: Path, overrides: dict[str, object]) -> None:
    """Each dotted key set in the conf/base parameters file that holds its top-level key."""
    files = sorted((conf / "base").glob("parameters*.yml"))
    for key, value in overrides.items():
        top, *path = key.split(".")
        for file in files:
            params = yaml.safe_load(file.read_text()) or {}
            if top not in params:
                continue
            node = params[top]
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
            file.write_text(yaml.safe_dump(params, sort_keys=False))
            break
        else:
            raise SystemExit(f"no parameters file in {conf / 'base'} has the key '{top}'")


def worktree(rev: str) -> Path:
    """A checkout of `rev` beside the project (made once, reused)."""
    folder = ROOT.parent / f"worktree-{rev}"
    if not folder.exists():
        command = ["git", "worktree", "add", "--detach", str(folder), rev]
        subprocess.run(command, cwd=ROOT, check=True)
    return folder


def rerun(folder: Path, overrides: dict[str, object], code: Path | None) -> dict:
    spec = json.loads((BENCH / "data" / folder.name / "task.json").read_text())
    test = pd.read_csv(BENCH / "data" / folder.name / "test.csv")
    line: dict = {"dataset": folder.name, "metric": spec["metric"]}
    line["as_run"] = test_error(joblib.load(kept_model(folder)), test, spec)
    with tempfile.TemporaryDirectory(prefix=f"reselect_{folder.name}_") as scratch:
        work = Path(scratch) / folder.name
        shutil.copytree(folder, work)
        (work / "result.json").unlink()
        # no trial runs; a long budget keeps the time left from vetoing the kept bagging choice
        request = json.loads((work / "input.json").read_text())
        request["hyperparameterSearch"]["timeout"] = 100000
        (work / "input.json").write_text(json.dumps(request))
        # bagging as the run decided it (from the time it had left), unless the variant says
        summary = json.loads((folder / "data" / "06_models" / "study_summary.json").read_text())
        as_run = {"training.bagging.folds": (summary.get("bagging") or {}).get("folds", 1)}
        set_parameters(work / "conf", {"tuning.continue_search": False, **as_run, **overrides})
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
        if code is not None:
            env["PYTHONPATH"] = str(code / "src")
        run = subprocess.run(
            [str(KEDRO), "task", "input.json", "--output", "result.json"],
            cwd=work, env=env, capture_output=True, text=True,
        )  # fmt: skip
        result_file = work / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        if not result.get("success"):
            failure = (result.get("error") or run.stderr)[-500:]
            return {**line, "error": math.nan, "failure": failure}
        model = joblib.load(kept_model(work))
        line["error"] = test_error(model, test, spec)
        line["algorithm"] = result.get("bestParams", {}).get("algorithm")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("kept", type=Path, help="a run_bench.py --keep-workdirs folder")
    parser.add_argument("--label", required=True, help="what the variant is, for the table")
    parser.add_argument("--code", default=None, help="a git revision whose code runs instead")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE (YAML value)")
    parser.add_argument("--only", default="", help="comma-separated data set names")
    parser.add_argument("--output", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    code = worktree(args.code) if args.code else None
    wanted = {n for n in args.only.split(",") if n}
    folders = sorted(
        folder
        for folder in args.kept.iterdir()
        if (folder / "result.json").exists() and (not wanted or folder.name in wanted)
    )
    lines = []
    for folder in folders:
        line = rerun(folder, overrides, code)
        line["variant / as run"] = ratio(line["error"], line["as_run"])
        print(json.dumps(line, default=float), flush=True)
        lines.append(line)
    table = pd.DataFrame(lines)
    ratios = [r for r in table["variant / as run"] if math.isfinite(r)]
    text = (
        f"# {args.label} vs as run\n\nKept runs: `{args.kept}`; variant: {args.label}"
        f" (code {args.code or 'this checkout'}, parameters {overrides or 'as run'}).\n\n"
        + markdown_table(table)
        + f"\n\nGeometric-mean error ratio, variant / as run: {geomean(ratios):.4f}"
        f" ({sum(r < 1 for r in ratios)} better, {sum(r > 1 for r in ratios)} worse,"
        f" {sum(r == 1 for r in ratios)} equal of {len(ratios)}).\n"
    )
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
