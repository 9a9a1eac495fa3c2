"""Data given after training checked against what the model expects (its card), the rows of it
the model was trained on, and the batch predictions of the inference pipeline. The evaluate
pipeline's comparisons are in `compare`, its error analysis in `error_analysis`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.evaluation.drift import (
    NUMERIC_TYPES,
    load_split,
)
from model_trainer.models.ensemble import predict_output
from model_trainer.models.metrics import label_codes
from model_trainer.table.checks import READERS, validate_table
from model_trainer.tasks.ranking import rank_within_groups

logger = logging.getLogger(__name__)


def require_data_path(path: str | None, parameter: str, pipeline: str) -> Path:
    """Checked before the catalog reads the file, so the fix names the right parameter."""
    if path is None or not str(path).strip():
        raise ConfigurationError(
            f"No data file given: {parameter} is empty.",
            f"Name a CSV or Parquet file at run time: "
            f'kedro run --pipelines={pipeline} --params="{parameter}=PATH".',
        )
    path = Path(str(path).strip())
    if path.suffix.lower() not in READERS:
        raise DataValidationError(
            f"Cannot read '{path}' ({parameter}): unsupported file type '{path.suffix}'.",
            f"Give a CSV or Parquet file ({', '.join(READERS)}) in {parameter}.",
        )
    if not path.is_file():
        raise DataValidationError(
            f"Data file '{path}' ({parameter}) does not exist.",
            f"Check {parameter}; a relative path starts at the project root.",
        )
    return path


def model_task(card: Mapping[str, Any]) -> dict[str, Any]:
    """The task as metrics.py and ensemble.py take it, from the model card."""
    return {
        "type": card["task"],
        "classes": card.get("classes"),
        "positive_class": card.get("positive_class"),
        **(card.get("ranking") or {}),
    }


def check_model_inputs(table: pd.DataFrame, card: Mapping[str, Any], source: str) -> pd.DataFrame:
    """The model's input columns in its order; a missing column or text where the model was
    trained on numbers is an error that names the columns (the model would fail less clearly)."""
    inputs = card["input_columns"]
    missing = [name for name in inputs if name not in table.columns]
    if missing:
        raise DataValidationError(
            f"{source} lacks the model's input columns {missing}.",
            f"Give a table with every column the model was trained on ({', '.join(inputs)}); "
            "other columns are ignored.",
        )
    features = validate_table(table, None, inputs, source)
    not_numeric = [
        name
        for name, info in card["features"].items()
        if info["type"] in NUMERIC_TYPES
        and not pd.api.types.is_numeric_dtype(features[name])
        and features[name].notna().any()
    ]
    if not_numeric:
        raise DataValidationError(
            f"Columns {not_numeric} of {source} hold text, but the model was trained on numbers "
            "there.",
            "Fix those values: a number, or an empty cell for a missing value.",
        )
    return features


def check_labelled_rows(table: pd.DataFrame, card: Mapping[str, Any], source: str) -> pd.DataFrame:
    """The rows with a target, every column kept (an earlier version may use other columns);
    labels the model cannot predict are an error, since every metric would be wrong."""
    target = card["target"]
    if card["task"] == "clustering":
        raise ConfigurationError(
            "The evaluate pipeline compares predictions with known targets; a clustering "
            "model has none to compare with.",
            "Read the clustering's scores in its train report (silhouette, stability, ARI with "
            "a reference column), and assign new rows with `kedro run --pipelines=inference`.",
        )
    if target not in table.columns:
        raise DataValidationError(
            f"{source} has no target column '{target}', so the model cannot be judged on it.",
            f"Give labelled data with a '{target}' column, or score unlabelled rows with "
            "`kedro run --pipelines=inference`.",
        )
    check_model_inputs(table, card, source)
    labelled = table.loc[table[target].notna()].reset_index(drop=True)
    if len(labelled) < len(table):
        logger.warning("Left out %d rows whose target is missing.", len(table) - len(labelled))
    if labelled.empty:
        raise DataValidationError(
            f"Target column '{target}' is missing in every row of {source}.",
            "Give rows whose target is known.",
        )
    if card["task"] == "classification":
        codes = label_codes(labelled[target], card["classes"])
        unknown = sorted(set(labelled[target][codes < 0].tolist()), key=str)
        if unknown:
            raise DataValidationError(
                f"{source} has target values the model never learned: {unknown[:10]} "
                f"(its classes are {card['classes']}).",
                "Evaluate on rows labelled with the model's classes, or retrain with these.",
            )
        # the model's own labels, whatever this file's encoding ("1" in a text column, a
        # category): predictions are compared with them and sklearn wants one type
        labelled[target] = pd.Series(card["classes"]).to_numpy()[codes]
    elif not pd.api.types.is_numeric_dtype(labelled[target]):
        raise DataValidationError(
            f"Target column '{target}' of {source} is not numeric, but the model is a regression.",
            "Fix the target values, or evaluate a model trained for this target.",
        )
    return labelled


def training_overlap(
    rows: pd.DataFrame, card: Mapping[str, Any], splits_dir: Path, save_version: str | None
) -> tuple[float | None, str | None]:
    """The share of these rows (inputs and target alike) that the model was trained on, where
    its metrics are optimistic; None with the reason when its splits are not on this machine."""
    columns = [*card["input_columns"], card["target"]]
    seen, reason = trained_on(rows, card, splits_dir, save_version, columns)
    return (None, reason) if seen is None else (float(seen.mean()), None)


def trained_on(
    rows: pd.DataFrame,
    card: Mapping[str, Any],
    splits_dir: Path,
    save_version: str | None,
    columns: list[str],
) -> tuple[pd.Series | None, str | None]:
    """Per row, whether the model was trained on it (the same values of `columns` in one of its
    splits); None with the reason when its splits are not on this machine."""
    trained, reason = training_rows(card, splits_dir, save_version)
    return (None, reason) if trained is None else (rows_in(rows, trained, columns), None)


def training_rows(
    card: Mapping[str, Any], splits_dir: Path, save_version: str | None
) -> tuple[pd.DataFrame | None, str | None]:
    """The rows the model was fitted on, from the splits saved with it (the test split too when
    it was refit on every row); None with the reason when they are not on this machine."""
    fitted_on = ["train", "validation", *(["test"] if card.get("refit_on_all_rows") else [])]
    splits = []
    for name in fitted_on:
        split, reason = load_split(splits_dir, name, save_version)
        if split is None:
            return None, reason
        splits.append(split)
    return pd.concat(splits, ignore_index=True), None


def rows_in(rows: pd.DataFrame, other: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Per row of `rows`, whether `other` holds a row with the same values of `columns`,
    whatever the dtypes each was read with (an integer column read as floats because of one
    missing value, a category as text)."""
    seen = set(_row_hashes(other, columns))
    return pd.Series(_row_hashes(rows, columns).isin(seen).to_numpy(), index=rows.index)


def _row_hashes(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    normalised = pd.DataFrame(
        {
            column: frame[column].astype("float64")
            if pd.api.types.is_numeric_dtype(frame[column])
            else frame[column].astype("string")
            for column in columns
        }
    )
    return pd.util.hash_pandas_object(normalised, index=False)


def predict_rows(
    model: Any,
    features: pd.DataFrame,
    task: Mapping[str, Any],
    keys: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Batch predictions: the row number in the input file and its key columns, the prediction,
    and the probability of every class for classifiers."""
    table = pd.DataFrame({"row": np.arange(len(features))})
    if keys is not None:
        table = pd.concat([table, keys.reset_index(drop=True)], axis=1)
    if task["type"] == "clustering":
        table["predicted"] = model.predict(features)  # the cluster; -1 = noise
        return table
    output = predict_output(model, features, task)
    if task["type"] == "ranking":
        table["predicted"] = output  # the score: higher ranks first within a group
        group = task["group_column"]
        if group in features:
            table[group] = features[group].to_numpy()
            table["rank"] = rank_within_groups(output, features[group])
        return table
    if task["type"] == "regression":
        table["predicted"] = output
        return table
    classes = list(task["classes"])
    table["predicted"] = np.asarray(classes, dtype=object)[output.argmax(axis=1)]
    for index, label in enumerate(classes):
        table[f"proba_{label}"] = output[:, index]
    return table


def key_columns(
    table: pd.DataFrame, card: Mapping[str, Any], declared: list[str] | None
) -> list[str]:
    """The columns that identify a row: those declared, else the ones the model ignored as
    id-like; any that the table lacks is an error when declared, left out otherwise."""
    if declared:
        missing = [name for name in declared if name not in table.columns]
        if missing:
            raise DataValidationError(
                f"Key columns {missing} (inference.key_columns) are not in the data.",
                "Name columns of the scored file in inference.key_columns, or leave it empty.",
            )
        return list(declared)
    ignored = card.get("ignored_columns") or {}
    return [
        name
        for name, reason in ignored.items()
        if str(reason).startswith("id-like") and name in table.columns
    ]


def prediction_summary(predictions: pd.DataFrame, task: Mapping[str, Any]) -> dict[str, float]:
    """What a batch was predicted to be: the share of each class, or the spread of values."""
    predicted = predictions["predicted"]
    if task["type"] in ("regression", "ranking"):
        return {
            "predicted_mean": float(predicted.mean()),
            "predicted_std": float(predicted.std()),
            "predicted_min": float(predicted.min()),
            "predicted_max": float(predicted.max()),
        }
    shares = predicted.value_counts(normalize=True)
    labels = sorted(shares.index) if task["type"] == "clustering" else task["classes"]
    return {f"predicted_share_{c}": float(shares.get(c, 0.0)) for c in labels}
