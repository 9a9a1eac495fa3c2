"""What SHAP values explain and how they are kept: the outputs of a model (a class's
probability, or the prediction) and the Explanation of some rows, whichever estimator made it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Explanation:
    """values[row, column, output]: the column's contribution to that output of that row;
    base_values[row, output]: the mean output over the background."""

    rows: pd.DataFrame
    columns: list[str]
    outputs: list[str]
    values: np.ndarray
    base_values: np.ndarray
    # "tree": exact (tree_shap); "permutation": sampled, with the reason the
    # tree explainer was not used
    method: str = "permutation"
    method_reason: str = ""

    def describe(self) -> str:
        """How the values were computed, in a few words for the report."""
        if self.method == "tree":
            return "exact (interventional Tree SHAP, one player per raw column)"
        why = f": {self.method_reason}" if self.method_reason else ""
        return f"permutation estimate{why}"

    def importance(self) -> pd.DataFrame:
        """Mean |SHAP| per column (averaged over outputs too), largest first, with each
        output's own mean |SHAP| beside it when there are several."""
        magnitude = np.abs(self.values).mean(axis=0)  # columns x outputs
        table = pd.DataFrame({"feature": self.columns, "mean_abs_shap": magnitude.mean(axis=1)})
        if len(self.outputs) > 1:
            for index, output in enumerate(self.outputs):
                table[f"mean_abs_shap_{output}"] = magnitude[:, index]
        return table.sort_values("mean_abs_shap", ascending=False, ignore_index=True)

    def per_row(self) -> list[dict[str, Any]]:
        """Each row's base value and contributions per output, as JSON answers them."""
        return [
            {
                "base_value": dict(
                    zip(self.outputs, map(float, self.base_values[row]), strict=True)
                ),
                "contributions": {
                    output: dict(
                        zip(self.columns, map(float, self.values[row, :, index]), strict=True)
                    )
                    for index, output in enumerate(self.outputs)
                },
            }
            for row in range(len(self.rows))
        ]


def model_output(
    model: Any, task: Mapping[str, Any]
) -> tuple[Callable[[pd.DataFrame], np.ndarray], list[str]]:
    """What is explained, and its outputs' names: the positive class's probability for two
    classes, each class's for more, the prediction for a regression."""
    chosen, outputs = output_columns(model, task)
    if chosen is None:
        return lambda table: np.asarray(model.predict(table), dtype=float)[:, None], outputs
    return lambda table: np.asarray(model.predict_proba(table), dtype=float)[:, chosen], outputs


def output_columns(model: Any, task: Mapping[str, Any]) -> tuple[list[int] | None, list[str]]:
    """The columns of predict_proba explained (None: a regression's prediction), and their
    names."""
    if task["type"] == "regression":
        return None, ["prediction"]
    classes = list(model.classes_)
    if len(classes) == 2:
        positive = task.get("positive_class")
        column = classes.index(positive) if positive in classes else 1
        return [column], [str(classes[column])]
    return list(range(len(classes))), list(map(str, classes))
