"""What each cluster looks like in the user's own columns: the report's profile table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from model_trainer.tasks.clustering.estimators import NOISE


def cluster_profiles(
    X_raw: pd.DataFrame,
    labels: Any,
    feature_types: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """What each cluster looks like in the user's own columns, one row per cluster ("noise" for
    -1) and a last row "all" for the whole table: size, share, for a numeric column
    `<col> mean`, for a categorical or boolean one `<col> top` (most frequent value) and
    `<col> top share` (its share within the cluster). Types come from `feature_types`
    (infer_feature_types' output) when given, else from the dtypes; text and datetime columns
    are left out."""
    numeric, categorical = _profile_columns(X_raw, feature_types)
    labels = np.asarray(labels)
    groups = [
        (str(c) if c != NOISE else "noise", labels == c) for c in sorted(set(labels.tolist()))
    ]
    groups.append(("all", np.ones(len(labels), dtype=bool)))
    records = []
    for name, mask in groups:
        part = X_raw.loc[mask]
        record: dict[str, Any] = {
            "cluster": name,
            "size": int(mask.sum()),
            "share": float(mask.mean()) if len(mask) else 0.0,
        }
        for column in numeric:
            values = pd.to_numeric(part[column], errors="coerce")
            record[f"{column} mean"] = float(values.mean()) if values.notna().any() else None
        for column in categorical:
            counts = part[column].dropna().astype(str).value_counts()
            record[f"{column} top"] = counts.index[0] if len(counts) else None
            record[f"{column} top share"] = (
                float(counts.iloc[0] / len(part)) if len(counts) else None
            )
        records.append(record)
    return pd.DataFrame.from_records(records)


def _profile_columns(
    X_raw: pd.DataFrame, feature_types: Mapping[str, Any] | None
) -> tuple[list[str], list[str]]:
    if feature_types is not None:
        kinds = {name: info["type"] for name, info in feature_types["columns"].items()}
        present = [str(c) for c in X_raw.columns if str(c) in kinds]
        numeric = [c for c in present if kinds[c] == "numeric"]
        categorical = [c for c in present if kinds[c] in ("categorical", "boolean")]
        return numeric, categorical
    numeric, categorical = [], []
    for column in X_raw.columns:
        dtype = X_raw[column].dtype
        if pd.api.types.is_bool_dtype(dtype):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(dtype):
            numeric.append(column)
        elif not pd.api.types.is_datetime64_any_dtype(dtype):
            categorical.append(column)
    return numeric, categorical
