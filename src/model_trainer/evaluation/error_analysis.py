"""Where a model errs: its errors per class (or range of the target) and per segment of each
feature. Errors are those of the predictions table: |actual - predicted| for regression, one
minus the probability given to the actual class for classification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from model_trainer.evaluation.drift import (
    CATEGORICAL_TYPES,
    NUMERIC_TYPES,
    category_labels,
    frequent_categories,
    numeric_labels,
    quantile_edges,
)
from model_trainer.models.metrics import label_codes


def breakdown(predictions: pd.DataFrame, task: Mapping[str, Any], bins: int) -> pd.DataFrame:
    """Per class (precision, recall, f1, mean error), or per range of the target for regression
    (mean absolute error and bias: does the model over- or under-predict there?)."""
    if task["type"] == "classification":
        # as class codes: the labels read back from the card (JSON) and the predictions file
        # may differ in type from the model's (an object array of ints, a category)
        classes = list(task["classes"])
        codes = list(range(len(classes)))
        actual = label_codes(predictions["actual"], classes)
        predicted = label_codes(predictions["predicted"], classes)
        precision, recall, f1, support = precision_recall_fscore_support(
            actual, predicted, labels=codes, zero_division=0
        )
        mean_error = predictions["error"].groupby(actual).mean()
        return pd.DataFrame(
            {
                "class": [str(c) for c in classes],
                "rows": support,
                "predicted_rows": [int((predicted == code).sum()) for code in codes],
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "mean_error": [float(mean_error.get(code, np.nan)) for code in codes],
            }
        )
    if task["type"] == "ranking":  # per relevance level: how far from their place its rows are
        table = predictions.groupby("actual")["error"].agg(rows="size", mean_misplacement="mean")
        return table.reset_index().rename(columns={"actual": "relevance"})
    segments = numeric_labels(predictions["actual"], quantile_edges(predictions["actual"], bins))
    signed = predictions["predicted"] - predictions["actual"]
    grouped = pd.DataFrame({"segment": segments, "error": predictions["error"], "bias": signed})
    table = grouped.groupby("segment", sort=False).agg(
        rows=("error", "size"), mae=("error", "mean"), bias=("bias", "mean")
    )
    order = predictions["actual"].groupby(segments).min().sort_values().index
    return table.loc[order].reset_index().rename(columns={"segment": "actual_range"})


def error_patterns(
    predictions: pd.DataFrame, features: Mapping[str, Mapping[str, Any]], settings: Mapping
) -> pd.DataFrame:
    """Per feature, its segments (quantile bins of a number, frequent categories, missing) with
    their mean error against the overall mean: `lift` > 1 is where the model errs more. Segments
    under `min_rows` rows are left out (noise); the highest lift first."""
    overall = float(predictions["error"].mean())
    found = []
    for name, info in features.items():
        if name not in predictions or info["type"] not in (*NUMERIC_TYPES, *CATEGORICAL_TYPES):
            continue
        values = predictions[name]
        if info["type"] in NUMERIC_TYPES:
            segments = numeric_labels(values, quantile_edges(values, int(settings["bins"])))
        else:
            kept = frequent_categories(values, int(settings["max_categories"]))
            segments = category_labels(values, kept)
        grouped = predictions["error"].groupby(segments).agg(["size", "mean"])
        for segment, (size, mean) in grouped.iterrows():
            if size >= int(settings["min_rows"]):
                found.append(
                    {
                        "feature": name,
                        "segment": segment,
                        "rows": int(size),
                        "mean_error": float(mean),
                        "lift": float(mean) / overall if overall else np.nan,
                    }
                )
    columns = ["feature", "segment", "rows", "mean_error", "lift"]
    table = pd.DataFrame(found, columns=columns)
    return table.sort_values("lift", ascending=False, ignore_index=True)
