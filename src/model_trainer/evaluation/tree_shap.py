"""Exact SHAP values of tree models, per raw input column.

A model whose every member is a sum or an average of trees in the units explained (LightGBM,
XGBoost, HistGradientBoosting, random-forest and extra-trees regressors; random-forest and
extra-trees classifiers, whose trees average probabilities: TREE_MODELS) is explained exactly,
on more rows than sampling permutations allows. The values are interventional, against the same
background rows as the permutation estimate, and each raw column is one player with all the
inputs it becomes (one-hot parts, a missing-value indicator, date parts): grouped_tree_shap.
Which inputs come from which column is found by varying each raw column alone through the
member's own preprocessing. Shapley values are linear in the model, so an ensemble or a bag (a
weighted average of its members' outputs) gets the weighted sum of its members' values. shap
reads the trees (its TreeEnsemble, for every library's format); its own interventional algorithm
is not used: it takes each input as a player, and it is 0.1-5% off for random forests and
HistGradientBoosting, crashes on trees of 32 levels or more (shap #3486), and its "probability"
values of a boosted classifier are rescaled log-odds values, not Shapley values.

Anything else raises NotTreeExplainable with the reason, and the caller samples permutations:
a boosted classifier (its probability is not a sum over trees), a calibrated model, a feature
made from two columns (target lags, group histories), categorical splits, or values that do
not add up to the model's own outputs (checked on every explained row).
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

from model_trainer.evaluation.grouped_tree_shap import (
    MAX_PATH_CELLS,
    GroupedTreeShap,
    TooLarge,
    TreeArrays,
)
from model_trainer.evaluation.shap_values import Explanation, model_output, output_columns
from model_trainer.models.ensemble import WeightedEnsemble
from model_trainer.models.estimators import LabelEncodedClassifier, prediction_steps

logger = logging.getLogger(__name__)

# Estimators whose output is the sum (or the average) of their trees' outputs, as shap's
# TreeEnsemble reads them; a regressor with a log link (Poisson, Tweedie) is not, and fails the
# additivity check
TREE_MODELS = {
    ("lightgbm.sklearn", "LGBMRegressor"),
    ("xgboost.sklearn", "XGBRegressor"),
    ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingRegressor"),
    ("sklearn.ensemble._forest", "RandomForestRegressor"),
    ("sklearn.ensemble._forest", "ExtraTreesRegressor"),
    ("sklearn.ensemble._forest", "RandomForestClassifier"),  # trees average probabilities
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"),
}
MAX_ENCODED_CELLS = 5_000_000  # a sparse encoding (text) made dense, at most
# How far the values may miss the model's outputs, relative to their size (XGBoost adds its
# float32 leaves in float32: 5e-7 on diamonds); more is a split read otherwise than the library
ADDITIVITY_TOLERANCE = 1e-4
FIRST_TREE_ROWS = 2  # rows explained before looking at the clock
MIN_TREE_ROWS = 20  # fewer exact rows than this within the time: the sampled estimate instead


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
    if (kind.__module__, kind.__name__) not in TREE_MODELS:
        raise NotTreeExplainable(
            f"{kind.__name__} is not one of the tree models whose output is the sum of their "
            "trees' (LightGBM, XGBoost and HistGradientBoosting regressors, random forests, "
            "extra trees)"
        )
    return estimator


def tree_shap_values(
    members: Sequence[TreeMember],
    rows: pd.DataFrame,
    background: pd.DataFrame,
    columns: Sequence[str],
    output_columns: Sequence[int] | None,
    deadline: float | None = None,
) -> Callable[[pd.DataFrame], np.ndarray]:
    """A function giving rows x `columns` x outputs SHAP values of the rows it is given (from
    `rows`' columns), with the trees and the background read once, before `deadline` (a
    time.monotonic() value) or NotTreeExplainable. `output_columns` picks the classes'
    probabilities (None: a regression's prediction). The members' raw-column maps are read on
    the background and `rows` together."""
    import shap  # 1.6 s of numba; a train run imports it while the search runs

    probe = pd.concat([background, rows], ignore_index=True)
    read = []
    for member in members:
        _check_size(member.estimator)
        players = _sources(member, probe, list(rows.columns), columns)
        _check_time(deadline, "mapping the inputs to the raw columns")
        trees = _trees(shap, member.estimator)
        _check_time(deadline, "shap's reading of the trees")
        try:
            grouped = GroupedTreeShap(
                trees, _encoded(member, background), players, len(columns), deadline
            )
        except TooLarge as large:
            raise NotTreeExplainable(
                f"its trees are too large to explain exactly ({large})"
            ) from large
        except TimeoutError as stopped:
            raise NotTreeExplainable(
                f"reading the trees ({stopped}) took more than a third of "
                "training.explanations.max_seconds"
            ) from stopped
        read.append((member, grouped))

    def values(batch: pd.DataFrame) -> np.ndarray:
        total = 0.0
        for member, grouped in read:
            explained = grouped.values(_encoded(member, batch))
            chosen = explained if output_columns is None else explained[:, :, list(output_columns)]
            total = total + member.weight * chosen
        return np.asarray(total)

    return values


def _check_time(deadline: float | None, step: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise NotTreeExplainable(
            f"{step} took more than a third of training.explanations.max_seconds"
        )


def _check_size(estimator: Any) -> None:
    """A scikit-learn forest too large to explain exactly is refused before shap reads it (2 s
    for 300 deep trees); other models are checked once read."""
    forest = getattr(estimator, "estimators_", None)
    if forest is None or not hasattr(forest[0], "tree_"):
        return
    cells = sum(tree.tree_.n_leaves * tree.tree_.max_depth for tree in forest)
    if cells > MAX_PATH_CELLS:
        raise NotTreeExplainable(
            f"its trees are too large to explain exactly ({cells:,} leaf-path cells, more "
            f"than {MAX_PATH_CELLS:,})"
        )


def _trees(shap: Any, estimator: Any) -> TreeArrays:
    """The trees as shap's TreeEnsemble reads them, or NotTreeExplainable for what it cannot
    read, or splits on categories (grouped_tree_shap follows thresholds only)."""
    try:
        read = shap.TreeExplainer(estimator).model
    except Exception as error:  # shap names what it cannot read; the caller samples instead
        raise NotTreeExplainable(f"shap cannot read its trees: {error}") from error
    native = getattr(estimator, "is_categorical_", None)  # HistGradientBoosting's categories:
    categorical = (  # shap reads their splits as thresholds
        read.trees is None
        or getattr(read, "cat_feature_indices", None) is not None
        or bool(np.any(np.asarray(getattr(read, "threshold_types", 0)) == 1))  # 1: categories
        or (native is not None and bool(np.any(native)))
    )
    if categorical:
        raise NotTreeExplainable(f"{type(estimator).__name__} splits on categories")
    return TreeArrays.of(read)


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
        sources[moved] = list(attributed).index(column)
    first = reference[:1]
    constant = ((reference == first) | (np.isnan(reference) & np.isnan(first))).all(axis=0)
    if (~constant & (sources < 0)).any():
        raise NotTreeExplainable("a feature that no single input column moves")
    return sources


def check_additivity(values: np.ndarray, base: np.ndarray, outputs: np.ndarray) -> None:
    """The values add up to the model's own outputs (to ADDITIVITY_TOLERANCE of their size),
    or NotTreeExplainable: a split read otherwise than the library reads it, or a link that is
    not the identity."""
    scale = max(1.0, float(np.max(np.abs(outputs), initial=0.0)))
    missed = float(np.max(np.abs(values.sum(axis=1) + base - outputs), initial=0.0))
    if missed > ADDITIVITY_TOLERANCE * scale:
        raise NotTreeExplainable(f"the tree values miss the model's outputs by up to {missed:.3g}")


def explain_trees(
    model: Any,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    task: Mapping[str, Any],
    max_seconds: float | None = None,
    columns: Sequence[str] | None = None,
) -> Explanation:
    """Exact interventional SHAP values of a tree model, a bag or an ensemble of them (see
    above), checked to add up to the model's outputs on every row. The first FIRST_TREE_ROWS
    rows are explained at once; their time says how many more fit in `max_seconds` (which
    counts reading the trees, at most a third of it). Fewer than MIN_TREE_ROWS in all:
    NotTreeExplainable, the permutation estimate explains more rows in what is left."""
    started = time.perf_counter()
    members = tree_members(model)
    chosen, outputs = output_columns(model, task)
    predict, _ = model_output(model, task)
    attributed = list(columns or rows.columns)
    # a third of the time at most to read the trees, so that the estimate still has time
    deadline = None if max_seconds is None else time.monotonic() + max_seconds / 3
    shap_values = tree_shap_values(members, rows, background, attributed, chosen, deadline)
    base = predict(background).mean(axis=0)
    values, done, size, explaining = [], 0, FIRST_TREE_ROWS, 0.0
    while done < len(rows):
        batch_started = time.perf_counter()
        batch = rows.iloc[done : done + size]
        batch_values = shap_values(batch)
        check_additivity(batch_values, base, predict(batch))
        values.append(batch_values)
        done += len(batch)
        explaining += time.perf_counter() - batch_started
        if max_seconds is not None:  # as many rows as the pace so far says fit in what is left
            left = max_seconds - (time.perf_counter() - started)
            size = int(left * done / max(explaining, 1e-9))
            if done == len(batch) and done + max(size, 0) < min(MIN_TREE_ROWS, len(rows)):
                raise NotTreeExplainable(
                    f"about {done + max(size, 0)} of {len(rows)} rows would be explained within "
                    "training.explanations.max_seconds: sampling explains more"
                )
            if size < 1:
                break
        else:
            size = len(rows)
    if done < len(rows):
        logger.info("SHAP values of %d of %d rows, within %.1f s.", done, len(rows), max_seconds)
    explained = np.concatenate(values)
    return Explanation(
        rows=rows.iloc[:done].reset_index(drop=True),
        columns=attributed,
        outputs=outputs,
        values=explained,
        base_values=np.repeat(base[None], done, axis=0),
        method="tree",
    )
