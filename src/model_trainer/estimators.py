"""The estimator registry: one entry per algorithm, read from conf (`model.algorithms`).

An entry names the estimator class per task, what preprocessing it needs, its fixed defaults,
its search space and a portfolio of strong configurations to try first. Adding an algorithm is
adding an entry in conf; this module only turns entries into fitted-ready objects.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder

from model_trainer.errors import ConfigurationError
from model_trainer.preprocessing import build_preprocessor

TASKS = ("classification", "regression")


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):
    """Lets estimators that only accept 0..k-1 labels (XGBoost) keep the user's class labels."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> LabelEncodedClassifier:
        self.label_encoder_ = LabelEncoder().fit(y)
        if "eval_set" in fit_params:
            fit_params["eval_set"] = [
                (X_eval, self.label_encoder_.transform(y_eval))
                for X_eval, y_eval in fit_params["eval_set"]
            ]
        self.estimator_ = clone(self.estimator).fit(
            X, self.label_encoder_.transform(y), **fit_params
        )
        self.classes_ = self.label_encoder_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.label_encoder_.inverse_transform(self.estimator_.predict(X).astype(int))

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator_.predict_proba(X)


def algorithm_entry(registry: Mapping[str, Any], name: str, task: str) -> Mapping[str, Any]:
    if name not in registry:
        raise ConfigurationError(
            f"Unknown algorithm '{name}'.",
            f"Use 'auto' or one of: {', '.join(sorted(registry))} (model.algorithms in conf).",
        )
    entry = registry[name]
    if not entry.get(task):
        supported = [t for t in TASKS if entry.get(t)]
        raise ConfigurationError(
            f"Algorithm '{name}' does not support {task} (only {', '.join(supported)}).",
            "Choose another algorithm for this task, or 'auto'.",
        )
    return entry


def supports(registry: Mapping[str, Any], name: str, task: str) -> bool:
    return bool(registry.get(name, {}).get(task))


def make_estimator(
    registry: Mapping[str, Any], name: str, task: str, params: Mapping[str, Any], seed: int
) -> Any:
    entry = algorithm_entry(registry, name, task)
    estimator_class = _import(entry[task])
    arguments = {
        **(entry.get("defaults") or {}),
        **((entry.get("defaults_by_task") or {}).get(task) or {}),
        **params,
    }
    if "random_state" in estimator_class().get_params():
        arguments.setdefault("random_state", seed)
    try:
        estimator = estimator_class(**arguments)
    except TypeError as exc:
        raise ConfigurationError(
            f"Parameters {sorted(arguments)} do not fit {entry[task]} (algorithm '{name}'): {exc}",
            f"Fix model.algorithms.{name}.defaults or its search_space in conf.",
        ) from exc
    if task == "classification" and entry.get("encode_labels"):
        return LabelEncodedClassifier(estimator)
    return estimator


def make_pipeline(
    registry: Mapping[str, Any],
    name: str,
    task: str,
    params: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    encoding: Mapping[str, Any],
    seed: int,
) -> Pipeline:
    """Preprocessing + estimator as one object: what CV refits per fold and what gets saved."""
    entry = algorithm_entry(registry, name, task)
    preprocessor = build_preprocessor(
        feature_types,
        scale=bool(entry.get("scale", False)),
        impute=not entry.get("native_missing", False),
        encoding=encoding,
        task=task,
    )
    estimator = make_estimator(registry, name, task, params, seed)
    return Pipeline([("preprocess", preprocessor), ("model", estimator)])


def pipeline_from_configuration(
    configuration: Mapping[str, Any],
    algorithm: str,
    params: Mapping[str, Any],
    task: str,
    feature_types: Mapping[str, Any],
) -> Pipeline:
    """make_pipeline with the registry, encoding and seed the model configuration chose."""
    return make_pipeline(
        configuration["registry"],
        algorithm,
        task,
        params,
        feature_types,
        configuration["encoding"],
        configuration["seed"],
    )


def _import(dotted: str) -> type:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"Cannot import estimator class '{dotted}': {exc}",
            "Check the class path in model.algorithms, or install the package that provides it.",
        ) from exc


def choose_algorithms(
    registry: Mapping[str, Any],
    requested: str | list[str],
    auto_rules: list[Mapping[str, Any]],
    task: str,
    n_rows: int,
) -> tuple[list[str], str]:
    """The candidate families and why: by name, or by the first auto rule that fits the size."""
    if requested != "auto":
        names = [requested] if isinstance(requested, str) else list(requested)
        for name in names:
            algorithm_entry(registry, name, task)
        return names, "set by model.algorithm"
    for rule in auto_rules:
        if rule.get("max_rows") is None or n_rows <= rule["max_rows"]:
            names = [name for name in rule["algorithms"] if supports(registry, name, task)]
            limit = "any size" if rule.get("max_rows") is None else f"<= {rule['max_rows']} rows"
            return names, f"auto rule for {task} with {n_rows} rows ({limit})"
    raise ConfigurationError(
        f"No model.auto_rules entry covers {n_rows} rows.",
        "End model.auto_rules with an entry whose max_rows is null.",
    )
