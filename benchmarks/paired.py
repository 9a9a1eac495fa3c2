"""Two versions of the project side by side: which data sets a change moves, and by how much.

    uv run python benchmarks/paired.py --before <git ref> [--after <git ref>] [--only a,b]
        [--repeats 1] [--timeout 60]

Runs of different hours differ by their timing (how many trials fit, whether a bag fits), so a
change is measured paired: per data set and repeat, `kedro task` (algorithm auto, the budget in
seconds) runs once per version, the two alternating, in the same minutes of the machine; each
model is scored on the set's test.csv, as run_bench.py scores it. `--after` defaults to this
checkout as it is (uncommitted changes included); a git ref is checked out in a temporary
worktree whose src/ is put first on PYTHONPATH (this venv's packages) and whose conf is copied.
Writes a Markdown table (per set: the median error before and after, their ratio, algorithms
and wall seconds; the geometric mean of the ratios and how many sets moved each way) and every
run's line as JSONL. Some sets move by several percent from run to run of the same code
(caravan: 0.2216-0.2380 1-AUC on 2026-12-07): repeat those before reading a change into them.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from run_bench import BENCH, RESULTS_DIR, ROOT, geomean, run_project


def checkout(ref: str | None, stack: ExitStack) -> tuple[str, Path]:
    """(label, project root): this checkout for None, else a temporary worktree of `ref`."""
    if ref is None:
        return "this checkout", ROOT
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paired_"))) / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), commit],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    stack.callback(
        subprocess.run, ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
    )
    return commit, tree


def table(lines: list[dict], sets: list[str], labels: tuple[str, str]) -> list[str]:
    rows = [
        "| data set | metric | before | after | after / before | algorithm before -> after "
        "| wall s before -> after |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for name in sets:
        runs = {label: [x for x in lines if x["dataset"] == name and x["version"] == label]
                for label in labels}  # fmt: skip
        failed = [x["failure"] for label in labels for x in runs[label] if not x["ok"]]
        if failed:
            rows.append(f"| {name} | | | | failed: {failed[0][:200]} | | |")
            continue
        before, after = (statistics.median(x["error"] for x in runs[label]) for label in labels)
        ratio = after / before if before else math.inf
        ratios.append(ratio)
        algorithms = " -> ".join("/".join(sorted({x["algorithm"] for x in runs[label]}))
                                 for label in labels)  # fmt: skip
        walls = " -> ".join(
            f"{statistics.median(x['wall_s'] for x in runs[label]):.0f}" for label in labels
        )
        metric = runs[labels[0]][0]["metric"]
        rows.append(
            f"| {name} | {metric} | {before:.5g} | {after:.5g} | {ratio:.3f} | {algorithms} "
            f"| {walls} |"
        )
    better = sum(r < 1 for r in ratios)
    worse = sum(r > 1 for r in ratios)
    rows += [
        "",
        f"Geometric mean of after / before over {len(ratios)} sets: **{geomean(ratios):.4f}** "
        f"({better} better, {worse} worse, {len(ratios) - better - worse} the same).",
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git ref of the version before")
    parser.add_argument("--after", default=None, help="git ref; default: this checkout")
    parser.add_argument("--only", default="", help="comma-separated data sets; default: all")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    stamp = time.strftime("%Y-%m-%dT%H%M%S")
    parser.add_argument("--output", default=str(RESULTS_DIR / f"paired-{stamp}.md"))
    args = parser.parse_args()
    sets = args.only.split(",") if args.only else sorted(p.name for p in (BENCH / "data").iterdir())
    lines: list[dict] = []
    output = Path(args.output)
    with ExitStack() as stack, output.with_suffix(".jsonl").open("a") as record:
        versions = dict([checkout(args.before, stack), checkout(args.after, stack)])
        labels = tuple(versions)
        for repeat in range(args.repeats):
            for name in sets:
                data = BENCH / "data" / name
                spec = {"name": name, **json.loads((data / "task.json").read_text())}
                for label, root in versions.items():
                    line = {
                        "dataset": name, "metric": spec["metric"], "version": label,
                        "repeat": repeat, "budget_s": args.timeout,
                        **run_project(data, spec, args.timeout, root=root),
                    }  # fmt: skip
                    lines.append(line)
                    record.write(json.dumps(line) + "\n")
                    record.flush()
                    shown = f"{line['error']:.5g}" if line["ok"] else line["failure"][:120]
                    print(f"{repeat} {name} {label}: {shown} ({line['wall_s']:.0f} s)", flush=True)
    text = [
        f"# Paired: {labels[1]} against {labels[0]} ({args.timeout:g} s, {stamp[:10]})",
        "",
        f"`uv run python benchmarks/paired.py --before {args.before}"
        + (f" --after {args.after}" if args.after else "")
        + (f" --only {args.only}" if args.only else "")
        + f" --repeats {args.repeats} --timeout {args.timeout:g}`; error on test.csv (1 - AUC, "
        f"log_loss or rmse), median of {args.repeats} run(s) per version; lines in "
        f"`{output.with_suffix('.jsonl').name}`.",
        "",
        *table(lines, sets, labels),
        "",
    ]
    output.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
