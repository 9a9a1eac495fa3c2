"""The modules' names before the packages of 2026-12-06, as aliases of where they went.

A saved model (joblib, a checkpoint, an MLflow model) names the modules of the classes inside
it. Models saved before the move name `model_trainer.ensemble` and the like: these aliases
let them load, the same module object under its old name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "data_checks": "table.checks",
    "feature_typing": "table.feature_types",
    "splitting": "table.splitting",
    "memory": "table.memory",
    "task_detection": "tasks.detection",
    "ranking": "tasks.ranking",
    "clustering": "tasks.clustering",
    "forecasting": "tasks.forecasting",
    "estimators": "models.estimators",
    "preprocessing": "models.preprocessing",
    "ensemble": "models.ensemble",
    "metrics": "models.metrics",
    "tuning": "search.tuning",
    "smoke_test": "search.smoke_test",
    "study_predictions": "search.study_predictions",
    "checkpoints": "training.checkpoints",
    "drift": "evaluation.drift",
    "decisions": "reporting.decisions",
    "plots": "reporting.plots",
    "model_store": "serving.model_store",
    "model_card": "serving.model_card",
    "deployment": "serving.deployment",
    "onnx_export": "serving.onnx_export",
    "failures": "tracking.failures",
    "task_contract": "contract.task_json",
}  # training, evaluation, reporting, serving and tracking are packages of those names now


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: object, target: object = None) -> object:
        package, _, name = fullname.rpartition(".")
        if package != "model_trainer" or name not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(f"model_trainer.{MOVED[spec.name.rpartition('.')[2]]}")

    def exec_module(self, module: ModuleType) -> None:
        """The module it aliases is already executed."""


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
