"""SHAP values of a model's predictions, per raw input column, and partial dependence.

The model is explained as it is served: the whole Pipeline, from the raw columns to the
probabilities (or predictions). The values are interventional: a column is "absent" when it
takes the values of background rows (a sample of training rows), and each row's contributions
add up to its prediction minus the mean prediction over the background. A column's value is the
contribution of the column as the user gave it (its one-hot or encoded columns taken together),
not of the model's internal features.

Tree models whose exact Shapley values shap computes, and bags or ensembles of them, get them
(tree_explanations). Any other model (a linear model, a calibrated one, features made from two
columns), or one whose tree values do not add up to its outputs, gets the estimator of shap's
PermutationExplainer, computed here so that every masked row of a batch goes to the model in
one call.

Rows are masked as one numeric array (numpy picks the row's or the background's value per
cell), so non-numeric columns travel as codes into a vocabulary of the values seen and are
decoded, with their dtypes, before the model sees them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model_trainer.errors import ConfigurationError
from model_trainer.evaluation.tree_explanations import (
    NotTreeExplainable,
    check_additivity,
    tree_members,
    tree_shap_values,
)

logger = logging.getLogger(__name__)

EXPLAINED_TASKS = ("classification", "regression")
# As shap's PermutationExplainer by default: about 500 evaluations per row, at least two
# permutations (one forward and back is exact for an additive model, not for interactions)
MAX_EVALUATIONS = 500
MAX_PERMUTATIONS = 10
MAX_SAMPLES_PER_CALL = 200_000  # masked rows per model call: memory, and a look at the clock
GRID_POINTS = 20  # values of a feature in its partial dependence
MAX_PLOTTED_OUTPUTS = 5  # classes drawn in a partial-dependence panel
EXPLANATION_METHODS = ("auto", "permutation")
FIRST_TREE_ROWS = 10  # rows Tree SHAP explains before it looks at the clock


@dataclass(frozen=True)
class Explanation:
    """values[row, column, output]: the column's contribution to that output of that row;
    base_values[row, output]: the mean output over the background."""

    rows: pd.DataFrame
    columns: list[str]
    outputs: list[str]
    values: np.ndarray
    base_values: np.ndarray
    # "tree": exact, by shap's TreeExplainer; "permutation": sampled, with the reason the
    # tree explainer was not used
    method: str = "permutation"
    method_reason: str = ""

    def describe(self) -> str:
        """How the values were computed, in a few words for the report."""
        if self.method == "tree":
            return "exact Tree SHAP (shap's TreeExplainer, interventional)"
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


class _Codec:
    """Numbers as they are; every other column (text, categories, booleans, dates) as its
    value's position in a vocabulary of the values seen, missing values as NaN."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.columns = list(table.columns)
        self.dtypes = table.dtypes.to_dict()
        self.vocabularies = {
            column: pd.Index(table[column].dropna().unique())
            for column in self.columns
            if not _is_number(table[column])
        }

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        encoded = np.empty((len(table), len(self.columns)), dtype=float)
        for index, column in enumerate(self.columns):
            values = table[column]
            if column in self.vocabularies:
                codes = self.vocabularies[column].get_indexer(values).astype(float)
                codes[codes < 0] = np.nan
                encoded[:, index] = codes
            else:
                encoded[:, index] = values.to_numpy(dtype=float, na_value=np.nan)
        return encoded

    def decode(self, encoded: np.ndarray) -> pd.DataFrame:
        decoded = {}
        for index, column in enumerate(self.columns):
            values = encoded[:, index]
            if column in self.vocabularies:
                vocabulary = self.vocabularies[column]
                known = ~np.isnan(values)
                positions = np.where(known, values, 0).astype(int)
                taken = vocabulary.take(positions) if len(vocabulary) else [None] * len(values)
                column_values = pd.Series(taken, dtype=object).where(known, None)
                decoded[column] = column_values.astype(self.dtypes[column])
            else:
                decoded[column] = pd.Series(values).astype(self.dtypes[column])
        return pd.DataFrame(decoded)


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


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
    """SHAP values of `rows` against `background`: exact by shap's TreeExplainer when every
    member of the model is a tree model it reads (`method` auto), else estimated by sampling
    permutations (`method` permutation, or auto for any other model, saying why)."""
    if method not in EXPLANATION_METHODS:
        raise ConfigurationError(
            f"training.explanations.method is {method!r}; it accepts "
            f"{', '.join(EXPLANATION_METHODS)}.",
            "Set training.explanations.method to auto (exact for tree models) or permutation.",
        )
    reason, started = "training.explanations.method is permutation", time.perf_counter()
    if method == "auto":
        try:
            return explain_trees(model, rows, background, task, max_seconds, columns)
        except NotTreeExplainable as why:
            reason = str(why)
            logger.info("SHAP values by sampling permutations: %s.", reason)
    left = None if max_seconds is None else max_seconds - (time.perf_counter() - started)
    sampled = explain_by_permutations(model, rows, background, task, seed, left, columns)
    return dataclasses.replace(sampled, method_reason=reason)


def explain_trees(
    model: Any,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    task: Mapping[str, Any],
    max_seconds: float | None = None,
    columns: Sequence[str] | None = None,
) -> Explanation:
    """Exact interventional SHAP values of a tree model, a bag or an ensemble of them (see
    tree_explanations), checked to add up to the model's outputs on every row. The first
    FIRST_TREE_ROWS rows are explained at once; their time says how many more fit in
    `max_seconds` (which counts importing shap and reading the trees)."""
    started = time.perf_counter()
    members = tree_members(model)
    chosen, outputs = output_columns(model, task)
    predict, _ = model_output(model, task)
    attributed = list(columns or rows.columns)
    shap_values = tree_shap_values(model, members, rows, background, attributed, chosen)
    base = predict(background).mean(axis=0)
    values, done, size = [], 0, FIRST_TREE_ROWS
    while done < len(rows):
        batch = rows.iloc[done : done + size]
        batch_values = shap_values(batch)
        check_additivity(batch_values, base, predict(batch))
        values.append(batch_values)
        done += len(batch)
        elapsed = time.perf_counter() - started
        if max_seconds is not None:
            size = int((max_seconds - elapsed) * done / max(elapsed, 1e-9))
            if size < 1:
                break
        else:
            size = len(rows)
    if done < len(rows):
        logger.info("SHAP values of %d of %d rows, within %g s.", done, len(rows), max_seconds)
    explained = np.concatenate(values)
    return Explanation(
        rows=rows.iloc[:done].reset_index(drop=True),
        columns=attributed,
        outputs=outputs,
        values=explained,
        base_values=np.repeat(base[None], done, axis=0),
        method="tree",
    )


def explain_by_permutations(
    model: Any,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    task: Mapping[str, Any],
    seed: int = 0,
    max_seconds: float | None = None,
    columns: Sequence[str] | None = None,
) -> Explanation:
    """SHAP values of `rows` against `background` by antithetic permutation sampling, the
    estimator of shap's PermutationExplainer: along a random order of the columns, each column
    is switched from the background's values to the row's and back, and its contribution is the
    change in the mean output over the background rows. Every row's masked copies go to the
    model in one call per chunk (shap calls it once per row and permutation, which costs more
    than the predictions on a Pipeline). The contributions of a row add up to its output minus
    the background's mean output. Only `columns` (default: all) are attributed; the others
    keep the row's values (columns the model ignores need no permutations). Past
    `max_seconds` no further chunk starts."""
    predict, outputs = model_output(model, task)
    codec = _Codec(pd.concat([background, rows], ignore_index=True))
    encoded, reference = codec.encode(rows), codec.encode(background)
    attributed = [codec.columns.index(c) for c in (columns or codec.columns)]
    n, n_background = len(attributed), len(reference)
    states = 2 * n + 1
    permutations = max(2, min(MAX_PERMUTATIONS, MAX_EVALUATIONS // states))
    if permutations * states * n_background > MAX_SAMPLES_PER_CALL:
        n_background = max(1, MAX_SAMPLES_PER_CALL // (permutations * states))
        logger.info(
            "SHAP's background cut to %d of %d rows (memory).", n_background, len(reference)
        )
        reference = reference[:n_background]
    orders = [np.random.default_rng(seed + p).permutation(n) for p in range(permutations)]
    masks = np.ones((permutations * states, len(codec.columns)), dtype=bool)
    masks[:, attributed] = np.concatenate([_sweep(order) for order in orders])
    limit = max(1, MAX_SAMPLES_PER_CALL // (len(masks) * n_background))
    started = time.perf_counter()
    values, base_values = [], []
    done, size = 0, 1  # the first row alone: its time says how many fit in what is left
    while done < len(rows):
        batch = encoded[done : done + size]
        # rows x masks x background x columns: the row's value where the mask is on
        samples = np.where(masks[None, :, None, :], batch[:, None, None, :], reference[None, None])
        output = predict(codec.decode(samples.reshape(-1, len(codec.columns))))
        mean = output.reshape(len(batch), permutations, states, n_background, -1).mean(axis=3)
        by_permutation = [_contributions(mean[:, p], orders[p]) for p in range(permutations)]
        values.append(np.mean(by_permutation, axis=0))
        base_values.append(mean[:, 0, 0])
        done += len(batch)
        elapsed = time.perf_counter() - started
        left = limit if max_seconds is None else (max_seconds - elapsed) * done / max(elapsed, 1e-9)
        if left < 1:
            break
        size = int(min(limit, left))
    if done < len(rows):
        logger.info("SHAP values of %d of %d rows, within %g s.", done, len(rows), max_seconds)
    explained = np.concatenate(values)
    return Explanation(
        rows=rows.iloc[: len(explained)].reset_index(drop=True),
        columns=[codec.columns[i] for i in attributed],
        outputs=outputs,
        values=explained,
        base_values=np.concatenate(base_values),
    )


def _sweep(order: np.ndarray) -> np.ndarray:
    """The 2M + 1 masks of one permutation: none on, then the columns switched on in `order`
    one by one (all on), then switched off in the same order (none on again)."""
    n = len(order)
    masks = np.zeros((2 * n + 1, n), dtype=bool)
    for step, column in enumerate(order):
        masks[step + 1 :, column] = True
        masks[n + step + 1 :, column] = False
    return masks


def _contributions(mean: np.ndarray, order: np.ndarray) -> np.ndarray:
    """rows x states x outputs -> rows x columns x outputs: each column's change of the output
    when switched on, and when switched off (antithetic), averaged."""
    n = len(order)
    on = mean[:, 1 : n + 1] - mean[:, :n]
    off = mean[:, n : 2 * n] - mean[:, n + 1 :]
    values = np.empty((mean.shape[0], n, mean.shape[2]))
    values[:, order] = (on + off) / 2
    return values


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
