"""Decide what each column is, so preprocessing can treat it right and drop what would mislead."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from model_trainer.errors import ConfigurationError

logger = logging.getLogger(__name__)

FEATURE_TYPES = ("numeric", "categorical", "boolean", "datetime", "text")
BOOLEAN_VALUES = {"true", "false", "yes", "no", "y", "n", "t", "f"}
ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key)$|^index$", re.IGNORECASE)

DEFAULT_RULES: dict[str, Any] = {
    "id_unique_fraction": 0.95,
    "high_cardinality_max_categories": 1000,
    "high_cardinality_unique_fraction": 0.5,
    "text_min_mean_words": 4,
    "datetime_parse_fraction": 0.95,
    "sample_size": 2000,
}


def infer_feature_types(
    table: pd.DataFrame,
    target: str | None,
    rules: Mapping[str, Any] | None = None,
    declared: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Type every feature column; columns that carry no generalisable signal are dropped with why.

    `declared` maps a column to a type from FEATURE_TYPES (or "drop") and wins over inference.
    """
    rules = {**DEFAULT_RULES, **(rules or {})}
    declared = dict(declared or {})
    unknown = sorted(set(declared) - {str(c) for c in table.columns})
    if unknown:
        raise ConfigurationError(
            f"dataset.feature_types names columns that are not in the table: {unknown}.",
            "Remove them from dataset.feature_types, or fix their names.",
        )
    wrong = {name: kind for name, kind in declared.items() if kind not in (*FEATURE_TYPES, "drop")}
    if wrong:
        raise ConfigurationError(
            f"dataset.feature_types has unknown types: {wrong}.",
            f"Use one of: {', '.join(FEATURE_TYPES)} or drop.",
        )
    columns: dict[str, dict[str, Any]] = {}
    dropped: dict[str, str] = {}
    for name in table.columns:
        if name == target:
            continue
        column = table[name]
        if name in declared:
            kind = declared[name]
            reason = "declared drop in dataset.feature_types" if kind == "drop" else None
        else:
            kind, reason = _infer_column(column, rules)
        if reason:
            dropped[str(name)] = reason
            logger.info("Dropped column '%s': %s.", name, reason)
            continue
        columns[str(name)] = {
            "type": kind,
            "n_unique": int(column.nunique()),
            "missing_fraction": round(float(column.isna().mean()), 4),
            "dtype": str(column.dtype),
        }
    return {"target": target, "columns": columns, "dropped": dropped}


def columns_of_type(feature_types: Mapping[str, Any], kind: str) -> list[str]:
    return [name for name, info in feature_types["columns"].items() if info["type"] == kind]


def _infer_column(column: pd.Series, rules: Mapping[str, Any]) -> tuple[str, str | None]:
    non_missing = column.dropna()
    n_rows = len(column)
    n_unique = non_missing.nunique()
    if non_missing.empty:
        return "numeric", "every value is missing"
    if n_unique == 1:
        return "numeric", f"constant (only '{non_missing.iloc[0]}')"
    if pd.api.types.is_bool_dtype(column):
        return "boolean", None
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime", None
    unique_fraction = n_unique / max(n_rows, 1)
    if pd.api.types.is_numeric_dtype(column):
        integral = pd.api.types.is_integer_dtype(column) or bool(
            (non_missing == non_missing.round()).all()
        )
        if integral and ID_NAME.search(str(column.name)) and unique_fraction >= 0.5:
            return "numeric", "id-like name with mostly unique integer values"
        if integral and n_unique == n_rows and _is_consecutive(non_missing):
            return "numeric", "id-like: a unique, consecutive integer per row"
        return "numeric", None
    values = non_missing.astype(str)
    if set(values.str.strip().str.lower().unique()) <= BOOLEAN_VALUES and n_unique == 2:
        return "boolean", None
    sample = values.sample(min(len(values), rules["sample_size"]), random_state=0)
    if _looks_like_datetime(sample, rules["datetime_parse_fraction"]):
        return "datetime", None
    mean_words = float(sample.str.split().str.len().mean())
    if mean_words >= rules["text_min_mean_words"]:
        return "text", None
    if unique_fraction >= rules["id_unique_fraction"] and n_rows > 20:
        return "categorical", f"id-like: {unique_fraction:.0%} of values are unique"
    if (
        n_unique > rules["high_cardinality_max_categories"]
        and unique_fraction >= rules["high_cardinality_unique_fraction"]
    ):
        return "categorical", f"high cardinality: {n_unique} distinct values"
    return "categorical", None


def _is_consecutive(values: pd.Series) -> bool:
    ordered = values.sort_values().to_numpy()
    return bool(len(ordered) > 20 and (ordered[1:] - ordered[:-1] == 1).all())


def _looks_like_datetime(values: pd.Series, min_fraction: float) -> bool:
    if not values.str.contains(r"\d{1,4}[-/:.]\d{1,2}", regex=True).mean() >= min_fraction:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= min_fraction)
