"""The final model on held-out rows: its metrics, its predictions table (worst first) and the
permutation importance of each raw input column."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from model_trainer.models.ensemble import predict_output, score_output
from model_trainer.models.estimators import predicted_labels
from model_trainer.models.metrics import evaluate, get_metric
from model_trainer.search.tuning import sample_for_search
from model_trainer.tasks.ranking import misplacement, rank_within_groups

logger = logging.getLogger(__name__)

PERMUTATION_BATCH_ROWS = 20_000
MIN_PERMUTATION_ROWS = 200  # fewer held-out rows make the drops mostly noise


def feature_importance(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    metric: str,
    task: Mapping[str, Any],
    repeats: int,
    seed: int,
    max_rows: int | None = None,
    max_seconds: float | None = None,
) -> pd.DataFrame:
    """Permutation importance on held-out rows, per raw input column, in metric units: the drop
    in score when the column is shuffled. Shuffled copies are stacked and predicted in a few
    large batches (a predict's fixed cost dominates on small tables); `max_rows` bounds it, and
    `max_seconds` too: a model that predicts slowly (an ensemble, a bag, categorical splits) is
    shuffled on fewer rows, as many as the baseline prediction's pace says fit in the time."""
    if max_rows and len(X) > max_rows:
        X = X.sample(max_rows, random_state=seed)
        y = y.loc[X.index]
    X, y = X.reset_index(drop=True), y.reset_index(drop=True)
    sign = 1.0 if get_metric(metric, task).greater_is_better else -1.0
    ranking = task["type"] == "ranking"
    # The group column says which rows are ranked together: it is no feature to shuffle.
    columns = [c for c in X.columns if not ranking or c != task["group_column"]]
    started = time.perf_counter()
    output = predict_output(model, X, task)
    seconds_per_row = (time.perf_counter() - started) / max(len(X), 1)
    affordable = (
        int(max_seconds / (seconds_per_row * len(columns) * repeats))
        if max_seconds and columns and seconds_per_row > 0
        else len(X)
    )
    rows = max(affordable, MIN_PERMUTATION_ROWS)
    if rows < len(X):  # stratified by class; a ranking's whole groups
        held_out = len(X)
        X, y = sample_for_search(X, y, rows, task, {}, seed)
        output = predict_output(model, X, task)
        logger.info(
            "Permutation importance on %d of %d held-out rows, to keep within "
            "training.permutation_max_seconds (%gs): the model predicts %.0f rows a second.",
            len(X), held_out, max_seconds, 1.0 / seconds_per_row,
        )  # fmt: skip
    groups = X[task["group_column"]].to_numpy() if ranking else None
    baseline = score_output(output, y, metric, task, groups)
    rng = np.random.default_rng(seed)
    # repeat by repeat, so that stopping at the time bound leaves every column shuffled alike
    shuffles = [(column, rng.permutation(len(X))) for _ in range(repeats) for column in columns]
    per_batch = max(1, PERMUTATION_BATCH_ROWS // len(X))
    drops: dict[str, list[float]] = {column: [] for column in columns}
    for start in range(0, len(shuffles), per_batch):
        # copying the shuffled tables costs what the prediction pace does not show: past the
        # bound, once every column has been shuffled, no further batch starts
        if max_seconds and start >= len(columns) and time.perf_counter() - started > max_seconds:
            break
        batch = shuffles[start : start + per_batch]
        copies = []
        for column, order in batch:
            copy = X.copy()
            copy[column] = X[column].to_numpy()[order]
            copies.append(copy)
        outputs = predict_output(model, pd.concat(copies, ignore_index=True), task)
        for index, (column, _) in enumerate(batch):
            output = outputs[index * len(X) : (index + 1) * len(X)]
            drops[column].append(sign * (baseline - score_output(output, y, metric, task, groups)))
    done = min((len(v) for v in drops.values()), default=repeats)
    if done < repeats:
        logger.info(
            "Permutation importance stopped after %d of %d repeats, at %.1f s: over "
            "training.permutation_max_seconds (%gs).",
            done, repeats, time.perf_counter() - started, max_seconds,
        )  # fmt: skip
        drops = {column: values[:done] for column, values in drops.items()}
    table = pd.DataFrame(
        {
            "feature": list(drops),
            "importance": [float(np.mean(v)) for v in drops.values()],
            "importance_std": [float(np.std(v)) for v in drops.values()],
        }
    )
    return table.sort_values("importance", ascending=False).reset_index(drop=True)


def holdout_metrics(
    models: Mapping[str, Any], X: pd.DataFrame, y: pd.Series, task: Mapping[str, Any]
) -> dict[str, dict[str, float]]:
    return {name: evaluate(model, X, y, task) for name, model in models.items()}


def predictions_table(
    model: Any, X: pd.DataFrame, y: pd.Series, task: Mapping[str, Any]
) -> pd.DataFrame:
    """Every held-out row with its actual value, prediction and error (then the rank or the
    class probabilities, then the inputs), worst first."""
    table = X.copy()
    table["actual"] = y.to_numpy()
    if task["type"] == "ranking":
        groups = X[task["group_column"]]
        table["predicted"] = model.predict(X)
        table["rank"] = rank_within_groups(table["predicted"], groups)
        table["error"] = misplacement(table["rank"], y, groups, task)
    elif task["type"] == "regression":
        table["predicted"] = model.predict(X)
        table["error"] = np.abs(table["predicted"] - table["actual"])
    else:
        proba = model.predict_proba(X)
        classes = list(model.classes_)
        table["predicted"] = predicted_labels(model, proba)
        actual_index = [classes.index(v) for v in y]
        table["probability_of_actual"] = proba[np.arange(len(y)), actual_index]
        for index, label in enumerate(classes):
            table[f"proba_{label}"] = proba[:, index]
        table["error"] = 1.0 - table["probability_of_actual"]
    outcome = [column for column in table.columns if column not in X.columns]
    first = ["actual", "predicted", "error"]  # what a reader looks at first, then the inputs
    table = table[[*first, *(c for c in outcome if c not in first), *X.columns]]
    return table.sort_values("error", ascending=False).reset_index(drop=True)
