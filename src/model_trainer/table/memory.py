"""Smaller numeric dtypes for big tables, so a table that is large for the machine fits twice
over (a training copy, a fold's copy) instead of once."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

MB = 2**20


def downcast_features(
    table: pd.DataFrame, keep: Iterable[str | None], above_mb: float | None
) -> pd.DataFrame:
    """Integer columns to the smallest integer type that holds them (exact), float64 columns to
    float32 (7 significant digits: what scikit-learn's trees and XGBoost use inside anyway),
    when the table takes more than `above_mb` MB. Columns in `keep` are left alone: the target
    (its precision is the metric's) and the time and group columns (an epoch time in float32
    is only good to a few minutes). None or 0 turns it off."""
    before = table.memory_usage(deep=True).sum() / MB
    if not above_mb or before <= float(above_mb):
        return table
    kept = {name for name in keep if name}
    changed = {}
    for name in table.columns:
        column = table[name]
        if name in kept or pd.api.types.is_bool_dtype(column):
            continue
        if pd.api.types.is_integer_dtype(column) and not isinstance(column.dtype, pd.ArrowDtype):
            changed[name] = pd.to_numeric(column, downcast="integer")
        elif column.dtype == np.float64:
            changed[name] = column.astype(np.float32)
    if not changed:
        return table
    table = table.assign(**changed)
    after = table.memory_usage(deep=True).sum() / MB
    logger.info(
        "Downcast %d numeric columns: %.0f MB -> %.0f MB in memory (dataset.downcast_above_mb %s).",
        len(changed), before, after, above_mb,
    )  # fmt: skip
    return table
