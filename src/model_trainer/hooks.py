"""Keep a normal run's output to what a user needs, and remember where every file went."""

from __future__ import annotations

import atexit
import gc
import importlib
import json
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl


def _import_without_warning(module: str, text: str) -> None:
    """Import `module`, dropping the warning that contains `text`: MLflow shows its own
    warnings at class creation under a filter of its own ("once"), whatever the caller's say."""
    shown = warnings.showwarning

    def show(message: Any, *args: Any, **kwargs: Any) -> None:
        if text not in str(message):
            shown(message, *args, **kwargs)

    warnings.showwarning = show
    try:
        importlib.import_module(module)
    finally:
        warnings.showwarning = shown


# kedro-mlflow's KedroPipelineModel (a class this project never uses) made MLflow print "Add
# type hints to the `predict` method" in yellow as the first line of every kedro command.
_import_without_warning("kedro_mlflow.mlflow.kedro_pipeline_model", "Add type hints")

from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook  # noqa: E402
from kedro_mlflow.framework.hooks.utils import _flatten_dict  # noqa: E402
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH  # noqa: E402

from model_trainer.errors import ConfigurationError  # noqa: E402
from model_trainer.search.storage import redact  # noqa: E402
from model_trainer.tracking import failures  # noqa: E402
from model_trainer.tracking.project_lock import ProjectLock  # noqa: E402
from model_trainer.tracking.runs import build_package_map  # noqa: E402

logger = logging.getLogger("model_trainer")

# The train pipeline's search: the run's tail is prepared in the background while it runs.
SEARCH_NODE = "optimize_hyperparameters_node"
RESULT_DATASETS = (
    "task",
    "metrics",
    "training_metrics",
    "model_registration",
    "study_summary",
    "trials",
    "evaluation_comparison",
    "deployment",
    "retrain_comparison",
    "retrain_registration",
    "inference_drift",
)


class TrackingServerCheck:
    """An unreachable MLflow server is a clear error in seconds, before kedro-mlflow (which
    runs after this hook) or any node talks to it through MLflow's minutes of retries."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        uri = str(context.config_loader["mlflow"]["server"]["mlflow_tracking_uri"])
        check_tracking_server(uri)
        if uri.startswith(("http://", "https://")):
            for name, value in FAIL_FAST.items():  # an environment's own settings win
                os.environ.setdefault(name, value)


# MLflow retries a request 7 times with doubling waits (minutes, meant for a rate-limited
# service): a server that died mid-run held the run that long at every call, the failed
# run's own cleanup included. Three retries give a restarting server about 10 s.
FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def check_tracking_server(uri: str, timeout: float = 5.0) -> None:
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            if response.status == 200:
                return
            problem = f"it answered /health with HTTP {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        problem = str(getattr(exc, "reason", exc))
    raise ConfigurationError(
        f"Cannot reach the MLflow tracking server at {uri}: {problem}.",
        "Start it (e.g. `mlflow server --backend-store-uri sqlite:///mlflow.db --port 5000`), "
        "or point experimentTracking.trackingUri / --params=tracking_uri at a running server, "
        "or leave it out for the local store sqlite:///mlflow.db.",
    )


class OneRunAtATime:
    """The project lock (tracking.project_lock) from before the run starts (first: before the
    MLflow run is opened) to after it ends or fails."""

    def __init__(self) -> None:
        self.lock = ProjectLock()

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self.lock.acquire(Path(run_params["project_path"]), run_params.get("pipeline_names") or [])

    @hook_impl
    def after_pipeline_run(self) -> None:
        self.lock.release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self.lock.release()


# The libraries whose deprecation notices and advice fill a run's log with lines a user cannot
# act on. Warnings raised anywhere else (the user's code, other packages) still show.
NOISY_LIBRARIES = (
    r"(mlflow|kedro|kedro_mlflow|kedro_datasets|kedro_viz|sklearn|lightgbm|xgboost|optuna|"
    r"optuna_integration|imblearn|statsmodels|pydantic|sqlalchemy|alembic|onnx|onnxmltools|"
    r"skl2onnx|onnxruntime|joblib|pandas|numpy|matplotlib)(\..*)?$"
)
# A library's deprecation notice raised through our call (stacklevel) names our module: the
# user cannot act on it either. Our own UserWarnings are meant to be read.
OUR_MODULES = r"model_trainer(\..*)?$"


class QuietRunHooks:
    @hook_impl
    def after_context_created(self, context: Any) -> None:
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
        for category in (UserWarning, FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=NOISY_LIBRARIES)
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=OUR_MODULES)
        for name in ("mlflow", "mlflow.sklearn", "mlflow.utils", "mlflow.models"):
            logging.getLogger(name).setLevel(logging.ERROR)


def peak_rss_mb() -> float:
    """The process's peak resident memory; `resource` is Unix-only, psutil (the current RSS,
    as close as it gets) elsewhere."""
    try:
        import resource
    except ImportError:
        import psutil

        return round(psutil.Process().memory_info().rss / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class ArtifactRecorder:
    """The file behind every dataset saved in this run (what `kedro task` reports, and what a
    failed run leaves behind), plus the small results the task output is made of."""

    def __init__(self) -> None:
        self.catalog: Any = None
        self.saved: dict[str, str] = {}
        self.results: dict[str, Any] = {}

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self.catalog = catalog
        self.saved, self.results = {}, {}

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        if dataset_name in RESULT_DATASETS:
            self.results[dataset_name] = data
        path = self._file_of(dataset_name)
        if path is not None:
            self.saved[dataset_name] = path

    def _file_of(self, dataset_name: str) -> str | None:
        dataset = self.catalog.get(dataset_name) if self.catalog is not None else None
        dataset = getattr(dataset, "_dataset", dataset)  # CachedDataset wraps the real one
        if getattr(dataset, "_version", None) is not None:
            path = dataset._get_versioned_path(dataset.resolve_save_version())
        elif hasattr(dataset, "_filepath"):
            path = dataset._filepath
        else:
            return None
        return str(Path(str(path)).resolve())


class NodeResources:
    """Wall time, CPU time (all threads: CPU/wall above 1 means both cores worked) and the
    process's peak memory after every node, written to data/08_reporting/node_resources.json,
    so a slow or hungry stage is named, not guessed, and logged to MLflow in one batch as the
    run ends (first among the hooks, before kedro-mlflow closes the run), failed or not. The
    file is rewritten after every node: the report (the catalog's `node_resources`) shows the
    nodes that ran before it."""

    def __init__(self, output: str = "data/08_reporting/node_resources.json") -> None:
        self.output = output
        self.nodes: dict[str, dict[str, float]] = {}
        self._started: dict[str, tuple[float, float]] = {}
        self._run_started = 0.0

    @hook_impl
    def before_pipeline_run(self) -> None:
        self.nodes, self._started = {}, {}
        self._run_started = time.perf_counter()

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._started[node.name] = (time.perf_counter(), time.process_time())

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        wall_started, cpu_started = self._started.pop(node.name)
        self.nodes[node.name] = {
            "wall_s": round(time.perf_counter() - wall_started, 3),
            "cpu_s": round(time.process_time() - cpu_started, 3),
            "peak_rss_mb": peak_rss_mb(),
        }
        self._write()

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        self._write()
        self._log()

    @hook_impl(tryfirst=True)
    def on_pipeline_error(self, error: Exception) -> None:
        if not failures.tracking_server_lost(error):
            self._log()

    def _log(self) -> None:
        if mlflow.active_run() is not None and self.nodes:
            mlflow.log_metrics(
                {
                    f"node.{node}.{key}": value
                    for node, usage in self.nodes.items()
                    for key, value in usage.items()
                }
            )

    def _write(self) -> None:
        summary = {
            "pipeline_wall_s": round(time.perf_counter() - self._run_started, 3),
            "nodes": self.nodes,
        }
        path = Path(self.output)
        if path.parent.is_dir():
            path.write_text(json.dumps(summary, indent=2) + "\n")


class FrozenImports:
    """The objects the imports made (mlflow, sklearn, pandas, optuna: over a million) are moved
    out of the garbage collector's sight, so its full collections walk only what the run makes:
    from when settings.py builds this hook (after the heavy imports) and again when the pipeline
    starts; and at exit, where the interpreter's collections over them took 1.2 s of every
    `kedro task` (0.1 s frozen; benchmarks/overhead.py). Unfrozen after the run, so a process
    that runs several sessions (the tests) still collects their garbage."""

    def __init__(self) -> None:
        gc.freeze()
        atexit.register(gc.freeze)

    @hook_impl
    def before_pipeline_run(self) -> None:
        gc.freeze()

    @hook_impl
    def after_pipeline_run(self) -> None:
        gc.unfreeze()

    @hook_impl
    def on_pipeline_error(self) -> None:
        gc.unfreeze()


class BatchedMlflowHook(MlflowHook):
    """kedro-mlflow's hook, with the pipeline's parameters logged in one batch as the run starts
    (and any a node reads that were not known then, in one batch before that node), each once
    per run. kedro-mlflow logs them one call at a time, again for every node that reads them:
    about 290 SQLite writes per train run (1.3 s against 0.4 s in per-node batches,
    benchmarks/param_logging.py). Registered in place of the plugin's own hook (settings.py).
    It also keeps passwords out of MLflow: a URL given with credentials (`--params
    tuning.storage=postgresql://user:password@host/db`) is logged with them masked, as a
    parameter and in the run's tags (kedro-mlflow tags the run with its run-time parameters)."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        super().before_pipeline_run(
            run_params=without_credentials(run_params), pipeline=pipeline, catalog=catalog
        )
        # Every node's parameters in one batch now, not one batch per node as it starts.
        names = {name for node in pipeline.nodes for name in node.inputs if _is_param(name)}
        self._log_params({name: catalog.load(name) for name in sorted(names)})

    @hook_impl
    def before_node_run(
        self, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool
    ) -> None:
        others = {name: value for name, value in inputs.items() if not _is_param(name)}
        super().before_node_run(node=node, catalog=catalog, inputs=others, is_async=is_async)
        self._log_params({name: value for name, value in inputs.items() if _is_param(name)})
        searching = (inputs.get("params:tuning") or {}).get("enabled", True)
        if node.name == SEARCH_NODE and searching:
            # Not without a search: the thread would then slow the final fits as much.
            threading.Thread(target=prepare_run_tail, name="run-tail", daemon=True).start()

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        """A server that stopped answering cannot be told the run failed: the runs are
        forgotten here instead of retried (the server shows them RUNNING until it is told)."""
        if not failures.tracking_server_lost(error):
            super().on_pipeline_error(
                error=error, run_params=run_params, pipeline=pipeline, catalog=catalog
            )
            return
        run = mlflow.active_run()
        forget_active_runs()
        if run is not None:
            logger.warning(
                "The MLflow run %s stays RUNNING on the tracking server, which could not be "
                "told that it failed.",
                run.info.run_id,
            )

    def _log_params(self, inputs: dict[str, Any]) -> None:
        """`params:<name>` inputs, flattened as kedro-mlflow does, in one batch; a parameter
        already logged in this run with the same value is not logged again."""
        params = {name.removeprefix("params:"): value for name, value in inputs.items()}
        if not self._is_mlflow_enabled or not params:
            return
        if self.flatten:
            params = _flatten_dict(d=params, recursive=self.recursive, sep=self.sep)
        if getattr(self, "_params_run", None) != self.run_id:
            self._params_run, self._logged_params = self.run_id, {}
        batch = {}
        for given, value in without_credentials(params).items():
            name, text = self.sanitize_param_name(given), str(value)
            if self._logged_params.get(name) == text:
                continue
            if len(text) > MAX_PARAM_VAL_LENGTH:
                self._log_param(name, value)  # the plugin's long_params_strategy
            else:
                batch[name] = text
            self._logged_params[name] = text
        if batch:
            mlflow.log_params(batch)


def forget_active_runs() -> None:
    """Drop this thread's active MLflow runs without a call to the server (mlflow.end_run
    would make one per run). MLflow has no public way to do it: this is its own stack."""
    from mlflow.tracking import fluent

    fluent._active_run_stack.get().clear()


def _is_param(name: str) -> bool:
    return name.startswith("params:") or name == "parameters"


def prepare_run_tail() -> None:
    """What the run needs after the search, made ready while the search runs (its fits hold no
    GIL, so this costs the trials next to nothing): matplotlib for the plots (0.3 s to import),
    MLflow's package map for log_model (0.3 s to build) and shap for a tree model's SHAP
    values (1.6 s of numba, otherwise counted in training.explanations.max_seconds)."""
    importlib.import_module("model_trainer.reporting.plots")
    build_package_map()
    importlib.import_module("shap")


def without_credentials(value: Any) -> Any:
    """`value` with every URL's user info and password query masked, at any depth."""
    if isinstance(value, str):
        return redact(value) if "://" in value else value
    if isinstance(value, dict):
        return {key: without_credentials(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(without_credentials(item) for item in value)
    return value


class FailureReport:
    """A failed run says what failed, where, and what to do: the error, the node, a remediation
    by error type (model_trainer.tracking.failures) and the files kept so far, as tags and
    failure.json on the MLflow run. `tryfirst`: kedro-mlflow's on_pipeline_error ends the run
    (FAILED), and plugin hooks otherwise run before the project's."""

    def __init__(self, recorder: ArtifactRecorder) -> None:
        self.recorder = recorder
        self.last_node: str | None = None

    @hook_impl
    def before_pipeline_run(self) -> None:
        self.last_node = None

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        """The node that failed is the last one started (one at a time, as `kedro run` runs
        them): on_node_error misses a failure to save the node's outputs."""
        self.last_node = node.name

    @hook_impl(tryfirst=True)
    def on_pipeline_error(self, error: Exception) -> None:
        record = failures.failure_record(error, self.last_node, self.recorder.saved)
        logger.error(
            "Run failed%s (%s). Suggested fix: %s",
            f" in {record['node']}" if record["node"] else "",
            record["error_type"],
            record["remediation"],
        )
        if mlflow.active_run() is None or failures.tracking_server_lost(error):
            return
        mlflow.set_tags(
            {
                "failure.error_type": record["error_type"],
                "failure.node": record["node"] or "",
                "failure.error": record["error"][:5000],
                "failure.remediation": record["remediation"],
            }
        )
        mlflow.log_dict(record, "failure.json")


ARTIFACT_RECORDER = ArtifactRecorder()
