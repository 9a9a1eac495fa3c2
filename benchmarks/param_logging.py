"""kedro-mlflow's per-parameter logging against the project's batched hook, side by side.

Replays what `kedro run --pipeline=train` asks of the hook before each node (the node's
`params:` inputs from conf/base) against a fresh SQLite MLflow store per repeat, alternating the
two hooks, and prints the seconds and SQLite parameter writes of each. (The project's hook now
logs all of them in one batch as the run starts; the per-node batches measured here are what it
does for a parameter that was not known then.)
Reproduce: `uv run python benchmarks/param_logging.py [--repeats 5]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import mlflow
from kedro.config import OmegaConfigLoader
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

from model_trainer.hooks import BatchedMlflowHook

ROOT = Path(__file__).resolve().parents[1]


def node_inputs() -> list[tuple[object, dict[str, object]]]:
    """Each train node with the parameter inputs Kedro hands the hooks."""
    bootstrap_project(ROOT)
    loader = OmegaConfigLoader(
        str(ROOT / "conf"), base_env="base", default_run_env="base", merge_strategy={}
    )
    parameters = loader["parameters"]

    def value(name: str) -> object:
        found: object = parameters
        for key in name.removeprefix("params:").split("."):
            found = found[key]  # type: ignore[index]
        return found

    return [
        (node, {name: value(name) for name in node.inputs if name.startswith("params:")})
        for node in pipelines["train"].nodes
    ]


def replay(hook: MlflowHook, nodes: list, folder: Path) -> tuple[float, int]:
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.MlflowClient().search_experiments()  # the store exists, as after `make install`
    hook.flatten, hook.recursive, hook.sep, hook.long_params_strategy = True, True, ".", "truncate"
    hook._is_mlflow_enabled, hook.mlflow_config = True, KedroMlflowConfig()
    run = mlflow.start_run()
    hook.run_id = run.info.run_id
    started = time.perf_counter()
    for node, inputs in nodes:
        hook.before_node_run(node=node, catalog=None, inputs=inputs, is_async=False)
    seconds = time.perf_counter() - started
    while mlflow.active_run() is not None:  # the hook reopens the run before every node
        mlflow.end_run()
    return seconds, len(mlflow.get_run(run.info.run_id).data.params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    nodes = node_inputs()
    calls = sum(1 for _, inputs in nodes for _ in inputs)
    times: dict[str, list[float]] = {"kedro-mlflow": [], "batched": []}
    for _ in range(args.repeats):
        for name, hook in (("kedro-mlflow", MlflowHook()), ("batched", BatchedMlflowHook())):
            with tempfile.TemporaryDirectory() as folder:
                seconds, logged = replay(hook, nodes, Path(folder))
            times[name].append(seconds)
    plugin, batched = (statistics.median(times[n]) for n in ("kedro-mlflow", "batched"))
    print(f"{len(nodes)} nodes, {calls} params: inputs, {logged} distinct parameters logged")
    print(f"kedro-mlflow per parameter: median {plugin:.2f} s over {args.repeats} repeats")
    print(f"batched, once per run:      median {batched:.2f} s ({plugin / batched:.0f}x faster)")


if __name__ == "__main__":
    main()
