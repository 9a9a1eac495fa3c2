"""Throughput and latency of `kedro serve` beside `mlflow models serve` on the same model.

    uv run python benchmarks/serve_bench.py [--seconds 10] [--concurrency 1 32] [--records 1]
    uv run python benchmarks/serve_bench.py --project PATH --model models:/NAME/3

Without --project, a fresh copy of the project is trained on the bundled credit data
(`kedro run --pipeline=train --env=test`) and its registered version 1 is served by both. The
servers take turns (`--rounds` times, medians reported) with closed-loop clients (each sends its
next request when the last answered) posting `--records` rows of the training file per request,
after a warm-up. Both servers run one uvicorn process; the clients run in this process, on the
same machine. Writes benchmarks/serving.md and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from run_bench import KEDRO, ROOT, project_copy

from model_trainer.tracking.served_model import LABEL_COLUMN

RAW_DATA = ROOT / "data" / "01_raw" / "credit_data.csv"
BIN = Path(sys.executable).parent  # `mlflow models serve` runs `uvicorn` from the PATH
REGISTERED = "01_raw_credit_data_Status"  # the bundled data's registered model name


def trained_project(folder: Path) -> Path:
    project = project_copy(folder)
    shutil.copy(RAW_DATA, project / "data" / "01_raw")
    print("Training a model in a fresh project copy (kedro run --pipeline=train --env=test)...")
    subprocess.run(
        [str(KEDRO), "run", "--pipeline=train", "--env=test"],
        cwd=project,
        env=_environment(project),
        check=True,
        capture_output=True,
    )
    return project


def _environment(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def server(command: list[str], project: Path, ready_path: str, output: Path):
    """A server process on a free port, until it answers `ready_path`; stopped on exit."""
    port = _free_port()
    with output.open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=project,
            env=_environment(project),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[:3]} did not start:\n{output.read_text()[-3000:]}")
            try:
                if httpx.get(url + ready_path, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


async def load(
    url: str, bodies: list[bytes], concurrency: int, seconds: float, warmup: float
) -> dict[str, float]:
    """Closed-loop clients for `warmup` + `seconds`; only the requests after the warm-up count."""
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    measure_from, stop_at = started + warmup, started + warmup + seconds
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client(number: int, session: httpx.AsyncClient) -> None:
        nonlocal errors
        sent = number
        while (now := time.perf_counter()) < stop_at:
            response = await session.post(url, content=bodies[sent % len(bodies)], headers=headers)
            sent += concurrency
            if now >= measure_from:
                latencies.append(time.perf_counter() - now)
                errors += response.status_code != 200

    async with httpx.AsyncClient(limits=limits, timeout=60) as session:
        await asyncio.gather(*(client(n, session) for n in range(concurrency)))
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(ms),
        "errors": errors,
        "rps": len(ms) / seconds,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="A trained project (default: train one).")
    parser.add_argument("--model", default=None, help="An MLflow URI both servers can load.")
    parser.add_argument("--data", type=Path, default=RAW_DATA, help="Rows to send (CSV).")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=3, help="Medians of this many runs.")
    parser.add_argument("--records", type=int, default=1, help="Rows per request.")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "serving.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="serve_bench_") as scratch:
        work = Path(scratch)
        project = args.project.resolve() if args.project else trained_project(work / "project")
        # the trained copy registers its model per data set and target
        default_model = f"models:/{REGISTERED}/" + ("latest" if args.project else "1")
        model = args.model or default_model
        log = work / "predictions.jsonl"
        kedro_serve = [str(KEDRO), "serve", "--model", model, "--log-file", str(log)]
        mlflow_serve = [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            model,
            "--env-manager",
            "local",
        ]
        with (
            server(kedro_serve, project, "/health", work / "kedro.out") as kedro_url,
            server(mlflow_serve, project, "/ping", work / "mlflow.out") as mlflow_url,
        ):
            metadata = httpx.get(f"{kedro_url}/metadata").json()
            table = pd.read_csv(args.data)[metadata["input_columns"]]
            rows = [
                json.loads(table.iloc[i : i + args.records].to_json(orient="records"))
                for i in range(0, min(len(table), 200 * args.records), args.records)
            ]
            check = json.loads(table.head(200).to_json(orient="records"))
            ours = httpx.post(f"{kedro_url}/predict", json={"records": check}, timeout=60)
            theirs = httpx.post(
                f"{mlflow_url}/invocations", json={"dataframe_records": check}, timeout=60
            )
            # the MLflow model answers a record per row: its label and each class's probability
            labels = [row[LABEL_COLUMN] for row in theirs.json()["predictions"]]
            same = ours.json()["predictions"] == labels
            print(f"Same predictions from both servers on 200 rows: {same}")
            targets = {
                "kedro serve": (
                    f"{kedro_url}/predict",
                    [json.dumps({"records": r}).encode() for r in rows],
                ),
                "mlflow models serve": (
                    f"{mlflow_url}/invocations",
                    [json.dumps({"dataframe_records": r}).encode() for r in rows],
                ),
            }
            rounds: dict[tuple[str, int], list[dict[str, float]]] = {}
            for _ in range(args.rounds):  # alternating, so drifting machine load hits both
                for concurrency in args.concurrency:
                    for name, (url, bodies) in targets.items():
                        rounds.setdefault((name, concurrency), []).append(
                            asyncio.run(load(url, bodies, concurrency, args.seconds, args.warmup))
                        )
            logged = len(log.read_text().splitlines())
    report = _report(args, model, metadata, rounds, same, logged, load_before)
    args.output.write_text(report)
    print(report)


def _report(
    args: argparse.Namespace,
    model: str,
    metadata: dict,
    rounds: dict[tuple[str, int], list[dict[str, float]]],
    same: bool,
    logged: int,
    load_before: float,
) -> str:
    command = "uv run python benchmarks/serve_bench.py" + (
        f" --project {args.project} --model {model}" if args.project else ""
    )
    lines = [
        f"# Serving benchmark ({dt.date.today().isoformat()})",
        "",
        f"`kedro serve` against `mlflow models serve --env-manager local` on the same model "
        f"({model}: {_describe(metadata)} for `{metadata['target']}`, "
        f"{len(metadata['input_columns'])} input columns), {args.records} row(s) per request, "
        f"closed-loop clients; medians of {args.rounds} rounds of {args.seconds:g} s per cell "
        f"(after a {args.warmup:g} s warm-up), the two servers alternating. "
        f"Machine: {os.cpu_count()} cores shared by the server and the clients (load average "
        f"{load_before:.1f} before the run, from other work); each server is one uvicorn "
        "process. Reproduce: `" + command + "`.",
        "",
        "| server | clients | requests | errors | requests/s | p50 ms | p99 ms | requests/s "
        "of each round |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, concurrency), runs in sorted(rounds.items(), key=lambda item: item[0][1]):
        median = {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
        each = ", ".join(f"{run['rps']:.1f}" for run in runs)
        lines.append(
            f"| {name} | {concurrency} | {sum(run['requests'] for run in runs)} "
            f"| {sum(run['errors'] for run in runs)} | {median['rps']:.1f} | {median['p50']:.1f} "
            f"| {median['p99']:.1f} | {each} |"
        )
    lines += [
        "",
        f"Both servers gave the same predictions on 200 rows: {'yes' if same else 'NO'}. "
        f"`kedro serve` logged {logged} prediction requests (JSON lines) during the run; it "
        "also checks every request against the training schema and answers probabilities "
        "beside the labels, which `mlflow models serve` does not.",
        "",
    ]
    return "\n".join(lines)


def _describe(metadata: dict) -> str:
    members = metadata.get("ensemble") or []
    if len(members) > 1:
        return "an ensemble of " + " + ".join(
            f"{m['algorithm']} ({m['weight']:.2f})" for m in members
        )
    return metadata["algorithm"]


if __name__ == "__main__":
    main()
