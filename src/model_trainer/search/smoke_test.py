"""The smoke run: every candidate family fit once on a few hundred rows before the search, so a
broken configuration (a bad class path, a parameter the estimator refuses, a preprocessing step
that fails on these columns) stops the run in seconds, not after an hour of trials."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from model_trainer.errors import ModelTrainerError
from model_trainer.models.ensemble import predict_output
from model_trainer.models.estimators import pipeline_from_configuration
from model_trainer.search.tuning import sample_for_search
from model_trainer.training.fitting import fit_quietly

logger = logging.getLogger(__name__)

ROUND_PARAMETERS = ("n_estimators", "max_iter")  # boosting rounds, trees or iterations


def smoke_configuration(entry: Mapping[str, Any], max_rounds: int) -> dict[str, Any]:
    """The family's first portfolio configuration (what the search tries first), with its rounds
    capped: the run checks that the configuration works, not how well."""
    params = dict((entry.get("portfolio") or [{}])[0])
    for name in ROUND_PARAMETERS:
        if name in params:
            params[name] = min(int(params[name]), max_rounds)
    return params


def run_smoke_test(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Fit each searched family and the simple baseline on a stratified sample of the train
    split and predict a few validation rows. The first failure is a ModelTrainerError naming
    the family: a family that cannot fit here would fail every trial of the search."""
    if not settings.get("enabled", True):
        logger.info("Smoke run skipped (smoke_test.enabled is false).")
        return {"enabled": False}
    if task["type"] == "clustering":
        logger.info(
            "No smoke run for clustering: its search clusters one sample of the rows "
            "(model.clustering.sample_rows), so a broken family fails within seconds anyway."
        )
        return {"enabled": False}
    target = feature_types["target"]
    X, y = sample_for_search(
        train.drop(columns=[target]),
        train[target],
        int(settings.get("rows", 500)),
        task,
        configuration["cv"],
        int(configuration["seed"]),
    )
    checked = validation if len(validation) else train
    X_predict = checked.drop(columns=[target]).head(int(settings.get("predict_rows", 20)))
    families = list(dict.fromkeys([*configuration["algorithms"], configuration["simple_baseline"]]))
    max_rounds = int(settings.get("max_rounds", 50))
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for name in families:
        params = smoke_configuration(configuration["registry"][name], max_rounds)
        start = time.perf_counter()
        try:
            pipeline = pipeline_from_configuration(
                configuration, name, params, task["type"], feature_types
            )
            model, _ = fit_quietly(pipeline, X, y)
            predict_output(model, X_predict, task)
        except ModelTrainerError:
            raise
        except Exception as exc:
            raise ModelTrainerError(
                f"Smoke run: '{name}' failed to fit {len(X)} rows and predict {len(X_predict)} "
                f"with {params}: {type(exc).__name__}: {str(exc)[:500]}",
                f"Fix model.algorithms.{name} (class, defaults, portfolio) in conf, or leave "
                f"'{name}' out of model.algorithm. smoke_test.enabled: false skips this check.",
            ) from exc
        seconds[name] = round(time.perf_counter() - start, 3)
    total = round(time.perf_counter() - started, 3)
    logger.info(
        "Smoke run passed: %s fit on %d rows and predicted %d in %.2f s.",
        ", ".join(families), len(X), len(X_predict), total,
    )  # fmt: skip
    return {
        "enabled": True,
        "passed": True,
        "rows": len(X),
        "predicted_rows": len(X_predict),
        "max_rounds": max_rounds,
        "seconds": total,
        "seconds_by_family": seconds,
    }
