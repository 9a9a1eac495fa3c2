"""Task, feature types and data size -> metric, candidate algorithms, search space and CV."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from model_trainer.models.estimators import (
    choose_algorithms,
    choose_imbalance,
    weighting_search_space,
)
from model_trainer.models.metrics import default_metric, get_metric
from model_trainer.models.preprocessing import choose_imputation, encoding_for
from model_trainer.search.smoke_test import run_smoke_test
from model_trainer.table.cv_strategy import choose_cv
from model_trainer.tasks.clustering import clustering_configuration
from model_trainer.tasks.forecasting import lag_configuration

logger = logging.getLogger(__name__)


def configure_model(
    task: dict[str, Any],
    train_split: pd.DataFrame,
    validation_split: pd.DataFrame,
    metric: str,
    model: dict[str, Any],
    validation: dict[str, Any],
    dataset: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    if task["type"] == "clustering":
        configuration = clustering_configuration(
            metric,
            model["algorithm"],
            model.get("clustering") or {},
            model["encoding"],
            int(validation.get("folds", 5)),
            seed,
        )
        logger.info(
            "Clustering by %s: %s (%s).",
            configuration["metric"],
            ", ".join(configuration["algorithms"]),
            configuration["algorithms_reason"],
        )
        return configuration
    n_rows = len(train_split) + len(validation_split)
    metric = default_metric(task) if metric == "auto" else metric
    get_metric(metric, task)
    algorithms, reason = choose_algorithms(
        model["algorithms"], model["algorithm"], model["auto_rules"], task["type"], n_rows
    )
    cv = choose_cv(
        task,
        validation,
        dataset.get("time_column"),
        dataset.get("group_column"),
        n_rows=n_rows,
        metric=metric,
    )
    simple = model["simple_baseline"][task["type"]]
    imbalance = choose_imbalance(
        task, model.get("imbalance") or {}, model["algorithms"], [*algorithms, simple], cv["folds"]
    )
    encoding = encoding_for(task["type"], model["encoding"])
    imputation, imputation_reason = choose_imputation(
        encoding.get("imputation", "auto"),
        pd.concat([train_split, validation_split]),  # the target has no gaps: checked
        int(encoding.get("iterative_imputation_max_rows", 10_000)),
    )
    time_series = lag_configuration(
        task["type"], model.get("time_series") or {}, cv.get("time_column")
    )
    logger.info("Metric: %s. Algorithms: %s (%s).", metric, ", ".join(algorithms), reason)
    logger.info("CV: %d-fold %s (%s).", cv["folds"], cv["strategy"], cv["reason"])
    if task.get("item_column") and cv["strategy"] == "group":
        logger.warning(
            "dataset.item_column is set, but the CV folds and the test split are whole unseen "
            "groups, which have no history: neither the search nor the test score can judge "
            "it. With a time column, validation.strategy group_timeseries can."
        )
    logger.info("Class imbalance: %s (%s).", imbalance["strategy"], imbalance["reason"])
    logger.info(
        "Imputation for models without native missing values: %s (%s).",
        imputation,
        imputation_reason,
    )
    return {
        "metric": metric,
        "algorithms": algorithms,
        "algorithms_reason": reason,
        "cv": cv,
        "search_space": {  # a family's own space wins (logistic_regression searches class_weight)
            name: {
                **weighting_search_space(imbalance, name),
                **(model["algorithms"][name].get("search_space") or {}),
            }
            for name in algorithms
        },
        "registry": {name: model["algorithms"][name] for name in {*algorithms, simple}},
        "simple_baseline": simple,
        "encoding": {**encoding, "imputation": imputation},
        "imputation_reason": imputation_reason,
        "imbalance": imbalance,
        "ranking": {
            "group_column": task["group_column"],
            "item_column": task.get("item_column"),
            "history": dict(model.get("group_item_history") or {}),
            "relevance_values": task["relevance_values"],
        }
        if task["type"] == "ranking"
        else None,
        "time_series": time_series,
        "seed": seed,
    }


def smoke_test_configuration(
    draft_model_configuration: dict[str, Any],
    train_split: pd.DataFrame,
    validation_split: pd.DataFrame,
    task: dict[str, Any],
    feature_types: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The configuration the search reads, once every family has fit a small sample: a broken
    one fails here in seconds. The result is kept in it for the decision record."""
    smoke_test = run_smoke_test(
        train_split, validation_split, task, feature_types, draft_model_configuration, settings
    )
    return {**draft_model_configuration, "smoke_test": smoke_test}
