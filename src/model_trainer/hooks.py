"""Keep a normal run's output to what a user needs, and remember where every file went."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger("model_trainer")

RESULT_DATASETS = ("metrics", "training_metrics", "model_registration")


class QuietRunHooks:
    @hook_impl
    def after_context_created(self, context: Any) -> None:
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
        for category in (UserWarning, FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category)
        for name in ("mlflow", "mlflow.sklearn", "mlflow.utils", "mlflow.models"):
            logging.getLogger(name).setLevel(logging.ERROR)


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


ARTIFACT_RECORDER = ArtifactRecorder()
