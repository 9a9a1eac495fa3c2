"""Reading the input table and refusing, with a reason and a fix, what cannot be trained on."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array

from model_trainer.errors import DataValidationError

logger = logging.getLogger(__name__)

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV or Parquet by suffix; refuse duplicate headers before pandas renames them."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataValidationError(
            f"Cannot read '{path}': unsupported file type '{path.suffix}'.",
            f"Give a CSV or Parquet file ({', '.join(READERS)}) in dataset.path.",
        )
    if not path.is_file():
        raise DataValidationError(
            f"Data file '{path}' does not exist.",
            "Check dataset.path (or trainDataPath); relative paths start at the project root.",
        )
    try:
        table = reader(path)
    except Exception as exc:
        raise DataValidationError(
            f"Cannot read data file '{path}': {type(exc).__name__}: {exc}",
            "Check that the file is a valid, uncompressed CSV with a header row or a Parquet file.",
        ) from exc
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle), [])
        check_unique_columns(header, f"Data file '{path}'")
    return table


def check_unique_columns(columns: Sequence[str], source: str | Path) -> None:
    duplicates = sorted(name for name, count in Counter(columns).items() if count > 1)
    if duplicates:
        raise DataValidationError(
            f"{source} has duplicate column names: {duplicates}.",
            "Rename or drop the repeated columns so each name appears once.",
        )


def validate_table(
    table: pd.DataFrame,
    target: str | None,
    features: Sequence[str] | None = None,
    source: str = "the input table",
    structure: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """Return the rows and columns to train on; raise on anything that would give a wrong model.
    `structure`: the columns named by settings (the group, item and time columns), each under
    the setting that names it."""
    check_unique_columns([str(c) for c in table.columns], source)
    if table.empty or len(table.columns) == 0:
        raise DataValidationError(
            f"{source} has no rows.", "Give a file with a header row and at least one data row."
        )
    for setting, column in (structure or {}).items():
        if column is not None and column not in table.columns:
            raise DataValidationError(
                f"{setting} is '{column}', which is not a column of {source}. "
                f"Columns are: {_preview(table.columns)}.",
                f"Set {setting} to one of the columns above, or to null.",
            )
    if target is not None:
        if target not in table.columns:
            raise DataValidationError(
                f"Target column '{target}' is not in {source}. "
                f"Columns are: {_preview(table.columns)}.",
                "Set dataset.target (or targetColumn) to one of the columns above.",
            )
        n_missing = int(table[target].isna().sum())
        if n_missing == len(table):
            raise DataValidationError(
                f"Target column '{target}' is missing in every row of {source}.",
                "Choose a target column that has values.",
            )
        if n_missing:
            logger.warning("Dropped %d rows whose target '%s' is missing.", n_missing, target)
            table = table.loc[table[target].notna()]
        if table[target].nunique() < 2:
            raise DataValidationError(
                f"Target column '{target}' is constant (only '{table[target].iloc[0]}'): "
                "there is nothing to learn.",
                "Choose another target, or add rows with other values.",
            )
    if features:
        unknown = [name for name in features if name not in table.columns]
        if unknown:
            raise DataValidationError(
                f"Unknown feature names {unknown}: not columns of {source}. "
                f"Columns are: {_preview(table.columns)}.",
                "Fix dataset.features (or features) to name existing columns, or leave it empty "
                "to use every column but the target.",
            )
        if target in features:
            raise DataValidationError(
                f"Target column '{target}' is also listed in dataset.features.",
                "Remove the target from the feature list.",
            )
        table = table[[*features, target] if target else list(features)]
    feature_columns = [c for c in table.columns if c != target]
    if not feature_columns:
        raise DataValidationError(
            f"{source} has no feature column besides the target '{target}'.",
            "Give a table with at least one feature column.",
        )
    numeric = table[feature_columns].select_dtypes("number")
    infinite = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype=float)).any()]
    target_is_numeric = target is not None and pd.api.types.is_numeric_dtype(table[target])
    if target_is_numeric and np.isinf(table[target].to_numpy(dtype=float)).any():
        infinite.append(target)
    if infinite:
        raise DataValidationError(
            f"Columns {infinite} of {source} hold infinite values.",
            "Replace inf/-inf with a finite value or leave the cell empty (missing).",
        )
    return table.reset_index(drop=True)


def check_class_sizes(target: pd.Series, n_folds: int) -> None:
    """Stratified CV needs every class in every fold."""
    counts = target.value_counts()
    small = counts[counts < n_folds]
    if not small.empty:
        raise DataValidationError(
            f"Target '{target.name}' has classes smaller than the {n_folds} CV folds: "
            f"{ {str(k): int(v) for k, v in small.items()} }.",
            "Add rows of those classes, merge or drop them, or lower validation.folds.",
        )


def _preview(columns: Sequence[str], limit: int = 20) -> str:
    names = [str(c) for c in columns]
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_usable_features(feature_types: dict, source: str) -> None:
    if not feature_types["columns"]:
        raise DataValidationError(
            f"No usable feature left in {source}: every column was dropped "
            f"({feature_types['dropped']}).",
            "Add informative columns, or declare a column's type in dataset.feature_types.",
        )


def columns_by_name(X: Any, fitted: Any = None) -> pd.DataFrame:
    """The input of an estimator that reads its columns by name. A DataFrame as it is, so other
    columns may come and go (as ColumnTransformer allows); any other input checked as
    scikit-learn checks arrays (2-d, dense, not complex or empty; as many columns as at fit,
    once `fitted`), its columns numbered."""
    if isinstance(X, pd.DataFrame):
        return X
    array = check_array(X, dtype=None, ensure_all_finite=False)
    if fitted is not None and array.shape[1] != fitted.n_features_in_:
        raise ValueError(
            f"X has {array.shape[1]} features, but {type(fitted).__name__} is expecting "
            f"{fitted.n_features_in_} features as input."
        )
    return pd.DataFrame(array)
