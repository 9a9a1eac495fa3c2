"""Exact SHAP values of tree models, by shap's TreeExplainer, per raw input column.

A model whose every member is a tree model for which shap's values are exact (LightGBM and
XGBoost regressors, extra trees: EXACT_TREE_MODELS) is explained exactly, on more rows than
sampling permutations allows: interventional Tree SHAP against the same background rows as the
permutation estimate, in the same units (the probability, or the prediction). Shapley values
are linear in the model, so an ensemble or a bag (a weighted average of its members' outputs)
gets the weighted sum of its members' values. Each raw column must reach a member as one input
(a number, a target encoding), found by varying each raw column alone through the member's own
preprocessing: the tree values of a column's one-hot parts, summed, are not the column's
Shapley value (masking them one by one makes rows that no input can be; 2-50% off on diamonds
and credit_data).

Anything else raises NotTreeExplainable with the reason, and the caller samples permutations:
a calibrated model (a map of the trees' output that is not linear), a column that reaches the
model as several inputs, a feature made from two columns (target lags, group histories), a
model for which shap's values are not exact, categorical splits or trees of 32 levels or more
(which shap's interventional algorithm cannot take), or values that do not add up to the
model's own outputs (checked on every explained row).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline

from model_trainer.evaluation.shap_values import Explanation, model_output, output_columns
from model_trainer.models.ensemble import WeightedEnsemble
from model_trainer.models.estimators import LabelEncodedClassifier, prediction_steps

logger = logging.getLogger(__name__)

# Estimators whose interventional Tree SHAP values are their exact Shapley values, as checked
# against brute force over every coalition (tests/test_tree_shap.py). Not these (shap
# 0.51, penguins): a boosted classifier's "probability" values are its log-odds values rescaled
# to add up (off by 20-60% of their size); random forests and HistGradientBoosting are off by
# 0.3-5% (thresholds midway between training values, read by shap as float32).
EXACT_TREE_MODELS = {
    ("lightgbm.sklearn", "LGBMRegressor"),
    ("xgboost.sklearn", "XGBRegressor"),
    ("sklearn.ensemble._forest", "ExtraTreesRegressor"),
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"),  # its raw output is the probability
}
MAX_ENCODED_CELLS = 5_000_000  # a sparse encoding (text) made dense for shap, at most
# How far the values may miss the model's outputs: shap reads thresholds as float32 (1e-4 of a
# forest's spread); more than this is a split read differently (missing values, categories)
ADDITIVITY_TOLERANCE = 1e-3
FIRST_TREE_ROWS = 2  # rows explained before looking at the clock
MAX_TREE_DEPTH = 32


class NotTreeExplainable(Exception):
    """Why a model is not explained by Tree SHAP (the permutation estimate is used)."""


@dataclass(frozen=True)
class TreeMember:
    """One tree model of the explained model, its weight in the average, and the preprocessing
    from the raw columns to its input."""

    weight: float
    preprocess: Pipeline | None
    estimator: Any


def tree_members(model: Any, weight: float = 1.0) -> list[TreeMember]:
    """The model as a weighted sum of tree models, or NotTreeExplainable saying what is not."""
    if isinstance(model, FixedThresholdClassifier):  # a threshold leaves the probabilities
        return tree_members(model.estimator_, weight)
    if isinstance(model, WeightedEnsemble):
        return [
            member
            for estimator, share in zip(model.estimators_, model.weights, strict=True)
            for member in tree_members(estimator, weight * share)
        ]
    if isinstance(model, Pipeline):
        steps = prediction_steps(model).steps
        *transforms, (name, last) = steps
        if name == "calibration":
            raise NotTreeExplainable("calibrated probabilities are not a sum over trees")
        if not transforms:
            return tree_members(last, weight)
        if isinstance(last, WeightedEnsemble | Pipeline | FixedThresholdClassifier):
            raise NotTreeExplainable(f"a {type(last).__name__} after preprocessing")
        return [TreeMember(weight, Pipeline(transforms), _tree_model(last))]
    return [TreeMember(weight, None, _tree_model(model))]


def _tree_model(estimator: Any) -> Any:
    if isinstance(estimator, LabelEncodedClassifier):
        estimator = estimator.estimator_
    kind = type(estimator)
    if (kind.__module__, kind.__name__) not in EXACT_TREE_MODELS:
        raise NotTreeExplainable(
            f"{kind.__name__} is not among the tree models whose exact Shapley values shap's "
            "TreeExplainer gives"
        )
    return estimator


def tree_shap_values(
    model: Any,
    members: Sequence[TreeMember],
    rows: pd.DataFrame,
    background: pd.DataFrame,
    columns: Sequence[str],
    output_columns: Sequence[int] | None,
) -> Callable[[pd.DataFrame], np.ndarray]:
    """A function giving rows x `columns` x outputs SHAP values of the rows it is given (from
    `rows`' columns), with the explainers built once on the background. `output_columns` picks
    the classes' probabilities (None: a regression's prediction). The members' raw-column maps
    are read on the background and `rows` together."""
    import shap  # 1.6 s of numba: only for a model explained this way

    probe = pd.concat([background, rows], ignore_index=True)
    explainers = []
    for member in members:
        encoded_background = _encoded(member, background)
        sources = _sources(member, probe, list(rows.columns), columns)
        explainer = _explainer(shap, member.estimator, encoded_background)
        explainers.append((member, sources, explainer))

    def values(batch: pd.DataFrame) -> np.ndarray:
        total = 0.0
        for member, sources, explainer in explainers:
            try:
                encoded = explainer.shap_values(_encoded(member, batch), check_additivity=False)
            except Exception as error:  # what shap refuses only when it computes
                raise NotTreeExplainable(f"shap's TreeExplainer failed: {error}") from error
            per_feature = _per_output(np.asarray(encoded), output_columns)
            total = total + member.weight * _by_column(per_feature, sources, len(columns))
        return np.asarray(total)

    return values


def _explainer(shap: Any, estimator: Any, background: np.ndarray) -> Any:
    """shap's explainer of one tree model, or NotTreeExplainable for what its interventional
    algorithm cannot take: categorical splits (it reads LightGBM's and XGBoost's only path by
    path) and trees of MAX_TREE_DEPTH levels or more (it crashes the process, shap #3486)."""
    try:
        explainer = shap.TreeExplainer(
            estimator, data=background, feature_perturbation="interventional"
        )
    except Exception as error:  # shap names what it cannot read; the caller samples instead
        raise NotTreeExplainable(f"shap's TreeExplainer refused it: {error}") from error
    read = explainer.model
    categorical = (
        read.trees is None
        or getattr(read, "cat_feature_indices", None) is not None
        or bool(np.any(np.asarray(getattr(read, "threshold_types", 0)) == 1))  # 1: categories
    )
    if categorical:
        raise NotTreeExplainable(
            f"{type(estimator).__name__} splits on categories, which shap's interventional "
            "Tree SHAP does not read"
        )
    if read.max_depth >= MAX_TREE_DEPTH:
        raise NotTreeExplainable(
            f"{type(estimator).__name__} has trees {read.max_depth} levels deep; shap's "
            f"interventional Tree SHAP crashes from {MAX_TREE_DEPTH} (shap issue #3486)"
        )
    return explainer


def _per_output(values: np.ndarray, output_columns: Sequence[int] | None) -> np.ndarray:
    """rows x features x outputs: a regression's 2-D values, or the chosen classes'."""
    if output_columns is None:
        return values[:, :, None]
    return values[:, :, list(output_columns)]


def _encoded(member: TreeMember, table: pd.DataFrame) -> np.ndarray:
    """The member's input as numbers: categories as their codes (the library's own levels)."""
    encoded = table if member.preprocess is None else member.preprocess.transform(table)
    if sparse.issparse(encoded):
        if np.prod(encoded.shape) > MAX_ENCODED_CELLS:
            raise NotTreeExplainable(f"a sparse encoding of {encoded.shape[1]} columns")
        return encoded.toarray()
    if isinstance(encoded, pd.DataFrame):
        return np.column_stack(
            [
                np.where(values.cat.codes < 0, np.nan, values.cat.codes)
                if isinstance(values.dtype, pd.CategoricalDtype)
                else values.to_numpy(dtype=float, na_value=np.nan)
                for _, values in encoded.items()
            ]
        )
    return np.asarray(encoded, dtype=float)


def _sources(
    member: TreeMember, probe: pd.DataFrame, raw: list[str], attributed: Sequence[str]
) -> np.ndarray:
    """Each encoded feature's raw column (its position in `attributed`), -1 for a feature that
    no column moves (constant on the probe rows: it gets no share). Each raw column's values
    are shifted along the probe rows (by one row and by half of them), and the features that
    change are its own; all the shifted copies go through the preprocessing in one call."""
    shifts = sorted({1, len(probe) // 2 or 1})
    copies = [probe]
    for column in raw:
        for shift in shifts:
            varied = probe.copy()
            varied[column] = pd.Series(
                np.roll(probe[column].to_numpy(), shift), index=probe.index
            ).astype(probe[column].dtype)
            copies.append(varied)
    encoded = _encoded(member, pd.concat(copies, ignore_index=True))
    blocks = encoded.reshape(len(copies), len(probe), -1)
    reference = blocks[0]
    same = (blocks[1:] == reference) | (np.isnan(blocks[1:]) & np.isnan(reference))
    moved_by = (~same.all(axis=1)).reshape(len(raw), len(shifts), -1).any(axis=1)
    shared = np.flatnonzero(moved_by.sum(axis=0) > 1)
    if len(shared):
        makers = [column for column, moved in zip(raw, moved_by, strict=True) if moved[shared[0]]]
        raise NotTreeExplainable(f"a feature made from {' and '.join(map(repr, makers))}")
    sources = np.full(reference.shape[1], -1)
    for column, moved in zip(raw, moved_by, strict=True):
        if not moved.any():
            continue
        if column not in attributed:
            raise NotTreeExplainable(f"column {column!r} reaches the model but is not explained")
        if moved.sum() > 1:  # masking its parts one by one makes rows no input can be
            raise NotTreeExplainable(
                f"column {column!r} reaches the model as {moved.sum()} inputs (one-hot, a "
                "missing-value indicator, date parts): their tree values do not add up to "
                "the column's Shapley value"
            )
        sources[moved] = list(attributed).index(column)
    first = reference[:1]
    constant = ((reference == first) | (np.isnan(reference) & np.isnan(first))).all(axis=0)
    if (~constant & (sources < 0)).any():
        raise NotTreeExplainable("a feature that no single input column moves")
    return sources


def _by_column(values: np.ndarray, sources: np.ndarray, n_columns: int) -> np.ndarray:
    """rows x features x outputs summed into rows x raw columns x outputs."""
    summed = np.zeros((values.shape[0], n_columns, values.shape[2]))
    kept = sources >= 0
    np.add.at(summed, (slice(None), sources[kept]), values[:, kept])
    return summed


def check_additivity(values: np.ndarray, base: np.ndarray, outputs: np.ndarray) -> None:
    """Tree SHAP's values add up to the model's own outputs, or NotTreeExplainable (shap read
    a split otherwise than the library does)."""
    scale = max(1.0, float(np.std(outputs)))
    missed = float(np.max(np.abs(values.sum(axis=1) + base - outputs), initial=0.0))
    if missed > ADDITIVITY_TOLERANCE * scale:
        raise NotTreeExplainable(
            f"shap's tree values miss the model's outputs by up to {missed:.3g}"
        )


def explain_trees(
    model: Any,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    task: Mapping[str, Any],
    max_seconds: float | None = None,
    columns: Sequence[str] | None = None,
) -> Explanation:
    """Exact interventional SHAP values of a tree model, a bag or an ensemble of them (see
    above), checked to add up to the model's outputs on every row. The first
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
