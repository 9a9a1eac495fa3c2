"""The task contract from Python: `train(data, target, **options)` and `evaluate(...)` run what
`kedro task` runs, in this process, and return the same result, so a notebook needs no
subprocess.

    from model_trainer import train, evaluate

    result = train(frame, "Status", n_trials=20, timeout=120, metric="roc_auc")
    result["metrics"], result["modelPath"]

The options are the task JSON's, in snake_case. A call leaves the caller's working directory,
environment, MLflow tracking settings, warning filters and garbage collector as they were, so it
can be made again and again.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from model_trainer.errors import ConfigurationError

# snake_case option -> where it goes in the train task JSON
TRAIN_OPTIONS = {
    "model_type": ("modelType",),
    "algorithm": ("algorithm",),
    "metric": ("metric",),
    "features": ("features",),
    "time_column": ("timeColumn",),
    "group_column": ("groupColumn",),
    "item_column": ("itemColumn",),
    "positive_class": ("positiveClass",),
    "registered_model_name": ("registeredModelName",),
    "validation_strategy": ("validationStrategy",),
    "search": ("hyperparameterSearch", "enabled"),
    "n_trials": ("hyperparameterSearch", "nTrials"),
    "timeout": ("hyperparameterSearch", "timeout"),
    "sampler": ("hyperparameterSearch", "sampler"),
    "pruner": ("hyperparameterSearch", "pruner"),
    "experiment_name": ("experimentTracking", "experimentName"),
    "tracking_uri": ("experimentTracking", "trackingUri"),
    "early_stopping_rounds": ("options", "earlyStoppingRounds"),
    "verbosity": ("options", "verbosity"),
}
# A DataFrame is handed to the pipeline as this file in the project (Parquet keeps its dtypes).
FRAME_FILES = {"train": "python_api_train.parquet", "evaluate": "python_api_test.parquet"}


def train(
    data: pd.DataFrame | str | Path,
    target: str | None = None,
    *,
    project: str | Path | None = None,
    env: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train as `kedro task` does for `{"task": "train_model"}`: `data` is a DataFrame or the
    path of a CSV or Parquet file, `target` its target column (None for clustering), `options`
    the task JSON's in snake_case (TRAIN_OPTIONS). Returns the result JSON as a dict: on
    failure `success` is false, with `error` and `remediation`. `project` defaults to the
    nearest model-trainer project from the working directory up; `env` is a conf environment."""
    unknown = sorted(set(options) - set(TRAIN_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"Unknown option(s) {unknown} for train().",
            f"Use the task JSON's options in snake_case: {', '.join(TRAIN_OPTIONS)}.",
        )
    root = _project(project)
    spec: dict[str, Any] = {
        "task": "train_model",
        "trainDataPath": _data_path(data, root, "train"),
        **({"targetColumn": target} if target is not None else {}),
    }
    for name, value in options.items():
        *parents, key = TRAIN_OPTIONS[name]
        section = spec
        for parent in parents:
            section = section.setdefault(parent, {})
        section[key] = value
    return _run(spec, root, env)


def evaluate(
    data: pd.DataFrame | str | Path,
    target: str | None = None,
    *,
    model_path: str | Path | None = None,
    model_uri: str | None = None,
    project: str | Path | None = None,
    env: str | None = None,
) -> dict[str, Any]:
    """Score a trained model on new labelled rows, as `kedro task` does for
    `{"task": "evaluate_model"}`: by default the project's latest trained model, else
    `model_path` or an MLflow `model_uri` (models:/name/3). Returns the result JSON as a dict."""
    root = _project(project)
    spec: dict[str, Any] = {
        "task": "evaluate_model",
        "testDataPath": _data_path(data, root, "evaluate"),
        **({"targetColumn": target} if target is not None else {}),
        **({"modelPath": str(Path(model_path).expanduser().resolve())} if model_path else {}),
        **({"modelUri": model_uri} if model_uri else {}),
    }
    return _run(spec, root, env)


def _project(project: str | Path | None) -> Path:
    from model_trainer.console import is_project, nearest_project

    root = Path(project).expanduser().resolve() if project else nearest_project()
    if not is_project(root):
        raise ConfigurationError(
            f"'{root}' is not a model-trainer project (no pyproject.toml and conf/ there).",
            "Pass project= the project's folder, or call from inside it.",
        )
    return root


def _data_path(data: pd.DataFrame | str | Path, root: Path, role: str) -> str:
    """A path as an absolute path; a DataFrame written to the project's raw data folder."""
    if isinstance(data, pd.DataFrame):
        path = root / "data" / "01_raw" / FRAME_FILES[role]
        path.parent.mkdir(parents=True, exist_ok=True)
        data.to_parquet(path, index=False)
        return str(path)
    if isinstance(data, (str, Path)):
        return str(Path(data).expanduser().resolve())
    raise ConfigurationError(
        f"data must be a pandas DataFrame or a file path, not {type(data).__name__}.",
        "Pass the table itself, or the path of its CSV or Parquet file.",
    )


def _run(spec: Mapping[str, Any], root: Path, env: str | None) -> dict[str, Any]:
    with _callers_state_kept():
        # imported here, inside: Kedro, MLflow and the rest add warning filters as they load
        from model_trainer.task_runner import run_task

        return run_task(dict(spec), Path.cwd(), env, root)


@contextmanager
def _callers_state_kept() -> Iterator[None]:
    """The run changes the working directory (conf's paths are the project's), environment
    variables and MLflow's tracking URI, registry URI and active experiment (kedro-mlflow sets
    them), warning filters (Kedro's and the libraries') and the garbage collector's frozen
    objects (hooks.FrozenImports): all are put back as they were. Left in place, the active
    experiment of the project's store made the caller's next `mlflow.start_run()` on another
    store fail ("No Experiment with id=4 exists")."""
    cwd, frozen, environ = Path.cwd(), gc.get_freeze_count(), dict(os.environ)
    with warnings.catch_warnings():
        from mlflow.tracking import fluent
        from mlflow.tracking._model_registry import utils as registry
        from mlflow.tracking._tracking_service import utils as tracking

        uris = (tracking._tracking_uri, registry._registry_uri, fluent._active_experiment_id)
        try:
            yield
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(environ)
            tracking._tracking_uri, registry._registry_uri, fluent._active_experiment_id = uris
            # the run unfreezes what it froze (hooks.FrozenImports), and with it what the caller
            # had frozen: that is frozen again (with what is alive now), the exact set being lost
            if frozen:
                gc.freeze()
            else:
                gc.unfreeze()
