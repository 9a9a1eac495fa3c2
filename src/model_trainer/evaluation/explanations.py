"""SHAP values of a model's predictions, per raw input column, and partial dependence.

The model is explained as it is served: the whole Pipeline, from the raw columns to the
probabilities (or predictions). The values are interventional: a column is "absent" when it
takes the values of background rows (a sample of training rows), and each row's contributions
add up to its prediction minus the mean prediction over the background. A column's value is the
contribution of the column as the user gave it (its one-hot or encoded columns taken together),
not of the model's internal features.

Tree models whose output is the sum of their trees', and bags or ensembles of them, get exact
values (tree_shap). Any other model (a linear model, a calibrated one, features made from two
columns), or one whose tree values do not add up to its outputs, gets the estimator of shap's
PermutationExplainer (permutation_shap).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from model_trainer.errors import ConfigurationError
from model_trainer.evaluation.permutation_shap import explain_by_permutations
from model_trainer.evaluation.shap_values import Explanation, model_output
from model_trainer.evaluation.tree_shap import NotTreeExplainable, explain_trees

logger = logging.getLogger(__name__)

EXPLAINED_TASKS = ("classification", "regression")
GRID_POINTS = 20  # values of a feature in its partial dependence
MAX_PLOTTED_OUTPUTS = 5  # classes drawn in a partial-dependence panel
EXPLANATION_METHODS = ("auto", "permutation")


def check_method(method: str) -> None:
    """training.explanations.method is one this module knows; checked before the search too,
    so that a typo does not cost the budget."""
    if method not in EXPLANATION_METHODS:
        raise ConfigurationError(
            f"training.explanations.method is {method!r}; it accepts "
            f"{', '.join(EXPLANATION_METHODS)}.",
            "Set training.explanations.method to auto (exact for tree models) or permutation.",
        )


def explain(
    model: Any,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    task: Mapping[str, Any],
    seed: int = 0,
    max_seconds: float | None = None,
    columns: Sequence[str] | None = None,
    method: str = "auto",
) -> Explanation:
    """SHAP values of `rows` against `background`: exact when every member of the model is a
    sum of trees (`method` auto, tree_shap), else estimated by sampling permutations (`method`
    permutation, or auto for any other model, saying why)."""
    check_method(method)
    reason, started = "training.explanations.method is permutation", time.perf_counter()
    if method == "auto":
        try:
            return explain_trees(model, rows, background, task, max_seconds, columns)
        except NotTreeExplainable as why:
            reason = str(why)
            logger.info("SHAP values by sampling permutations: %s.", reason)
        except Exception as error:  # a defect of the exact path loses no run: it is estimated
            reason = f"the exact values failed ({type(error).__name__}: {error})"
            logger.warning("SHAP values by sampling permutations: %s.", reason, exc_info=True)
    left = None if max_seconds is None else max_seconds - (time.perf_counter() - started)
    sampled = explain_by_permutations(model, rows, background, task, seed, left, columns)
    return dataclasses.replace(sampled, method_reason=reason)


def sample_rows(table: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` rows, drawn at random (all when there are fewer)."""
    if len(table) <= rows:
        return table.reset_index(drop=True)
    return table.sample(rows, random_state=seed).reset_index(drop=True)


def partial_dependences(
    model: Any,
    rows: pd.DataFrame,
    features: list[str],
    feature_types: Mapping[str, Any],
    outputs: list[str],
    task: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The partial dependence of each output on each feature, as scikit-learn's
    `partial_dependence(kind="average")` defines it: the mean output over `rows` with the
    feature set to each grid value. Numbers: GRID_POINTS quantiles from 5% to 95% of the rows'
    values; categories: their most frequent values seen, missing left out. One model call per
    feature (all grid values at once; scikit-learn makes one per grid value)."""
    predict, names = model_output(model, task)
    chosen = [names.index(output) for output in outputs]
    curves = []
    for feature in features:
        categorical = feature_types["columns"][feature]["type"] != "numeric"
        grid = _grid(rows[feature], categorical)
        if len(grid) < 2:
            logger.info("No partial dependence on %s: fewer than two values to vary.", feature)
            continue
        varied = pd.concat([rows] * len(grid), ignore_index=True)
        column = np.repeat(np.asarray(grid, dtype=object), len(rows))
        varied[feature] = pd.Series(column).astype(rows[feature].dtype)
        output = predict(varied)[:, chosen].reshape(len(grid), len(rows), -1).mean(axis=1)
        curves.append(
            {
                "feature": feature,
                "categorical": categorical,
                "grid": [_plain(v) for v in grid],
                "average": output.T.tolist(),  # outputs x grid
                "outputs": outputs,
            }
        )
    return curves


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _grid(values: pd.Series, categorical: bool) -> list[Any]:
    seen = values.dropna()
    if categorical:
        return list(seen.value_counts().index[:GRID_POINTS])
    if seen.empty:
        return []
    quantiles = np.quantile(seen.to_numpy(dtype=float), np.linspace(0.05, 0.95, GRID_POINTS))
    if pd.api.types.is_integer_dtype(values):
        quantiles = np.round(quantiles)
    return list(np.unique(quantiles))


def plotted_outputs(explanation: Explanation) -> list[str]:
    """The outputs a partial-dependence panel draws: all of them up to MAX_PLOTTED_OUTPUTS, else
    the classes whose probabilities the features move most (mean |SHAP|); thirty lines in one
    panel (leaf's classes) say nothing."""
    if len(explanation.outputs) <= MAX_PLOTTED_OUTPUTS:
        return explanation.outputs
    moved = np.abs(explanation.values).mean(axis=(0, 1))
    return [explanation.outputs[i] for i in np.argsort(-moved)[:MAX_PLOTTED_OUTPUTS]]


def dependence_features(
    explanation: Explanation, feature_types: Mapping[str, Any], top: int
) -> list[str]:
    """The `top` columns by mean |SHAP| that a partial-dependence plot can vary: numbers and
    categories (not dates or free text, whose grid of values means nothing)."""
    kinds = {name: info["type"] for name, info in feature_types["columns"].items()}
    ranked = explanation.importance()["feature"]
    return [c for c in ranked if kinds.get(c) in ("numeric", "categorical", "boolean")][:top]


def explanation_metrics(importance: pd.DataFrame, top: int) -> dict[str, dict[str, float]]:
    """The `top` columns' mean |SHAP| as MLflow metrics (`shap.<column>`)."""
    return {
        _metric_name(row.feature): {"value": float(row.mean_abs_shap), "step": 0}
        for row in importance.head(top).itertuples()
    }


def _metric_name(column: str) -> str:
    """MLflow accepts letters, digits, _ - . / and spaces in a metric's name."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in str(column))


def explain_model(
    model: Any,
    train: pd.DataFrame,
    test: pd.DataFrame,
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    settings: Mapping[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, dict[str, float]]]:
    """What the report shows (training.explanations): SHAP values of sampled test rows against
    the background (`background`), the partial dependence of the top features, and their mean
    |SHAP| as a table and as MLflow metrics; or why not, with an empty table."""
    target = feature_types["target"]
    reason = (
        explainable(task)
        or ("training.explanations.rows is 0" if int(settings["rows"]) < 1 else None)
        or ("the test split is empty" if test.empty else None)
    )
    if reason:
        logger.info("No SHAP values: %s.", reason)
        return {"reason": reason}, pd.DataFrame({"feature": [], "mean_abs_shap": []}), {}
    explanation = explain(
        model,
        sample_rows(test.drop(columns=[target]), int(settings["rows"]), seed),
        background(train.drop(columns=[target]), settings, seed),
        task,
        seed,
        settings["max_seconds"],
        columns=list(feature_types["columns"]),
        method=settings["method"],
    )
    importance = explanation.importance()
    features = dependence_features(explanation, feature_types, settings["dependence_features"])
    dependence = partial_dependences(
        model, explanation.rows, features, feature_types, plotted_outputs(explanation), task
    )
    metrics = explanation_metrics(importance, settings["logged_features"])
    return {"explanation": explanation, "partial_dependence": dependence}, importance, metrics


def background(train: pd.DataFrame, settings: Mapping[str, Any], seed: int) -> pd.DataFrame:
    """The training rows that stand for "absent": the same rows for the report and for /explain
    (the sample depends on the number of rows and the seed only, not on the columns given)."""
    return sample_rows(train, int(settings["background_rows"]), seed)


def card_background(
    train: pd.DataFrame,
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    settings: Mapping[str, Any],
    seed: int,
) -> list[dict[str, Any]] | None:
    """The background as the model card keeps it, for /explain: None for a model that is not
    explained, or when training.explanations.in_model_card is false."""
    if explainable(task) is not None or not settings["in_model_card"]:
        return None
    rows = background(train[list(feature_types["columns"])], settings, seed)  # what /explain reads
    return background_records(rows) if len(rows) else None


def explainable(task: Mapping[str, Any]) -> str | None:
    """Why the model is not explained, or None: clustering and ranking answer other questions
    (a cluster, an order within a group) than a contribution to one output."""
    if task["type"] not in EXPLAINED_TASKS:
        return f"a {task['type']} model is not explained by SHAP values here"
    return None


def background_records(background: pd.DataFrame) -> list[dict[str, Any]]:
    """The background rows as JSON records (dates as ISO text, missing as null), for the model
    card, from which the serving app explains posted rows against them."""
    return json.loads(background.to_json(orient="records", date_format="iso"))
