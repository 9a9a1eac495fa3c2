"""Raw table -> validated table, task, feature types and versioned splits."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from model_trainer.table import leak_audit
from model_trainer.table.checks import check_class_sizes, check_usable_features, validate_table
from model_trainer.table.feature_types import columns_of_type, infer_feature_types
from model_trainer.table.memory import downcast_features
from model_trainer.table.splitting import split_holdout
from model_trainer.tasks.detection import count_training_classes, detect_task, numpy_target
from model_trainer.tracking.runs import log_leak_tags

logger = logging.getLogger(__name__)
# the columns that split, order or personalise the rows, and their task JSON names
STRUCTURE_KEYS = {
    "group_column": "groupColumn",
    "item_column": "itemColumn",
    "time_column": "timeColumn",
}


def validate_raw_table(raw_table: pd.DataFrame, dataset: dict[str, Any]) -> pd.DataFrame:
    features = dataset.get("features")
    if features:  # the group and time columns split and order the rows, features or not
        structure = [dataset.get(key) for key in STRUCTURE_KEYS]
        features = [*features, *(c for c in structure if c and c not in features)]
    table = validate_table(
        raw_table,
        dataset.get("target"),
        features,
        source=f"'{dataset['path']}'",
        structure={
            f"dataset.{key} ({name})": dataset.get(key) for key, name in STRUCTURE_KEYS.items()
        },
    )
    table = downcast_features(
        table,
        [dataset.get("target"), dataset.get("time_column"), dataset.get("group_column")],
        dataset.get("downcast_above_mb"),
    )
    if dataset.get("target"):
        table[dataset["target"]] = numpy_target(table[dataset["target"]])
    logger.info("Validated %s: %d rows, %d columns.", dataset["path"], *table.shape)
    return table


def detect_task_type(validated_table: pd.DataFrame, dataset: dict, task: dict) -> dict[str, Any]:
    """The task and its classes from the whole table (stratifying needs every label); what is
    counted per class waits for the train split (`count_classes`)."""
    group, target = dataset.get("group_column"), dataset.get("target")
    detected = detect_task(
        validated_table[target] if target else None,
        task,
        validated_table[group] if group else None,
        count=False,
        item=validated_table[dataset["item_column"]] if dataset.get("item_column") else None,
    )
    detected["n_rows"] = len(validated_table)
    logger.info("Task: %s (%s).", detected["type"], detected["reason"])
    return detected


def type_features(
    validated_table: pd.DataFrame, dataset: dict[str, Any], rules: dict[str, Any]
) -> dict[str, Any]:
    declared = dict(dataset.get("feature_types") or {})
    if dataset.get("group_column"):
        declared[dataset["group_column"]] = "drop"
    features = dataset.get("features")
    for structure in (dataset.get("time_column"), dataset.get("item_column")):
        if structure and features and structure not in features:
            declared[structure] = "drop"  # kept to order the rows or read a history, not listed
    feature_types = infer_feature_types(validated_table, dataset.get("target"), rules, declared)
    by_type: dict[str, int] = {}
    for info in feature_types["columns"].values():
        by_type[info["type"]] = by_type.get(info["type"], 0) + 1
    logger.info("Feature types: %s; dropped %s.", by_type, list(feature_types["dropped"]) or "none")
    return feature_types


def split_table(
    validated_table: pd.DataFrame,
    task: dict[str, Any],
    feature_types: dict[str, Any],
    dataset: dict[str, Any],
    split: dict[str, Any],
    validation: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    target = dataset.get("target")
    check_usable_features(feature_types, f"'{dataset['path']}'")
    if task["type"] == "classification":
        check_class_sizes(validated_table[target], 2)
    in_row_order = validation.get("strategy") == "timeseries" and not dataset.get("time_column")
    if in_row_order:
        logger.warning(
            "validation.strategy is timeseries but no dataset.time_column is set: the rows are "
            "taken in their file order (the test split is the last rows of the file)."
        )
    train, validation_split, test = split_holdout(
        validated_table,
        target,
        task,
        split,
        dataset.get("time_column"),
        dataset.get("group_column"),
        in_row_order,
        within_groups=validation.get("strategy") == "group_timeseries",
    )
    if task["type"] == "classification":
        check_class_sizes(pd.concat([train, validation_split])[target], int(validation["folds"]))
    logger.info(
        "Split: %d train, %d validation, %d test rows.",
        len(train),
        len(validation_split),
        len(test),
    )
    return train, validation_split, test


def count_classes(
    detected_task: dict[str, Any],
    train_split: pd.DataFrame,
    dataset: dict[str, Any],
    task: dict[str, Any],
) -> dict[str, Any]:
    """The task as every later stage reads it: class counts and the positive class from the
    train split only, so the validation and test rows shape neither the imbalance handling
    nor the class the metrics describe."""
    if detected_task["type"] != "classification":
        return detected_task
    counted = count_training_classes(
        detected_task,
        train_split[dataset["target"]],
        task,
        "the train split",
    )
    logger.info(
        "Class counts in the train split (%d rows): %s.", len(train_split), counted["class_counts"]
    )
    if counted["positive_class"] is not None:
        logger.info(
            "Positive class: %r (%s).", counted["positive_class"], counted["positive_class_reason"]
        )
    return counted


def audit_leaks(
    train_split: pd.DataFrame,
    validation_split: pd.DataFrame,
    test_split: pd.DataFrame,
    column_types: dict[str, Any],
    detected_task: dict[str, Any],
    dataset: dict[str, Any],
    validation: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The leak audit on the splits; the feature types the model gets (with `action: drop`,
    leaking features moved to the dropped columns, so every later stage leaves them out)."""
    settings = dataset["leak_audit"]
    features = list(column_types["columns"])
    findings = leak_audit.audit(
        pd.concat([train_split, validation_split]),
        test_split,
        target=column_types["target"],
        task_type=detected_task["type"],
        feature_columns=features,
        categorical=[
            *columns_of_type(column_types, "categorical"),
            *columns_of_type(column_types, "boolean"),
        ],
        time_column=dataset.get("time_column"),
        group_column=dataset.get("group_column"),
        settings=settings,
        within_groups=validation.get("strategy") == "group_timeseries",
    )
    for finding in findings:
        logger.warning("Leak audit: %s. %s", finding["evidence"], finding["advice"])
    log_leak_tags(findings)  # before action fail stops the run
    dropped = leak_audit.act(findings, settings["action"])
    feature_types = leak_audit.without(column_types, dropped)
    if dropped:
        check_usable_features(feature_types, f"'{dataset['path']}' after the leak audit's drop")
    return feature_types, {"action": settings["action"], "findings": findings, "dropped": dropped}
