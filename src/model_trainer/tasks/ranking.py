"""Ranking: rows grouped by a query (or user), ordered within each group by a model's score.

A ranker learns from whole groups (LightGBM's `group` sizes, XGBoost's `qid`), so its Pipeline
sorts the rows by group and hands the grouping to the estimator itself: cross-validation and
the final fits call `fit(X, y)` as for any other task. The relevance target is turned into the
integer grades ranking objectives need (0..30); metrics are per group, then averaged.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils import Tags
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.table.checks import columns_by_name

RANKING_REPORT = ("ndcg", "map", "mrr")
MAX_GRADE = 30  # LightGBM's default label_gain covers 0..30; XGBoost's exponential gain 0..31
TIE_BREAK_SEED = 0  # equal scores are ordered at random, the same way every time
HISTORY_COLUMNS = ("history_item_bias", "history_affinity", "history_group_rows")


def describe_relevance(
    target: pd.Series, group: pd.Series, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The ranking task's facts: how relevance becomes grades, which rows count as relevant for
    MAP and MRR (`task.relevant_from`; by default the upper half of the target's range, so 0/1
    clicks count 1 and 0.5-5 star ratings count 3 and up) and k."""
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        raise DataValidationError(
            f"Ranking target '{target.name}' is not numeric ({target.dtype}).",
            "Give a relevance column: numbers where higher means more relevant.",
        )
    if group.isna().any():
        raise DataValidationError(
            f"Group column '{group.name}' has {int(group.isna().sum())} missing values: every "
            "row must belong to a query or user to be ranked within it.",
            f"Fill or drop the rows with no '{group.name}'.",
        )
    values = np.sort(target.unique())
    integral = bool((values == np.round(values)).all()) and values.min() >= 0
    if integral and values.max() <= MAX_GRADE:
        grades, grading = None, "the target's own integer values"
    elif len(values) <= MAX_GRADE + 1:
        grades = [float(v) for v in values]
        grading = f"the {len(values)} distinct values in order, as grades 0..{len(values) - 1}"
    else:
        raise DataValidationError(
            f"Ranking target '{target.name}' has {len(values)} distinct values; ranking "
            f"objectives take at most {MAX_GRADE + 1} relevance grades.",
            f"Bin '{target.name}' into at most {MAX_GRADE + 1} levels (e.g. 0-4) first.",
        )
    relevant_from = settings.get("relevant_from")
    if relevant_from is None:
        middle = (values[0] + values[-1]) / 2
        relevant_from = float(values[np.searchsorted(values, middle)])
    sizes = group.value_counts()
    return {
        "group_column": str(group.name),
        "k": int(settings.get("k", 10)),
        "relevant_from": float(relevant_from),
        "relevance_values": grades,
        "grading": grading,
        "n_groups": len(sizes),
        "rows_per_group": {
            "min": int(sizes.min()),
            "median": float(sizes.median()),
            "max": int(sizes.max()),
        },
    }


def relevance_grades(y: Any, task: Mapping[str, Any]) -> np.ndarray:
    """Integer grades 0..30: the target itself, or the position of its value among the
    distinct values seen in training (an unseen value takes the grade of the next one below)."""
    values = np.asarray(y, dtype=float)
    levels = task.get("relevance_values")
    if levels is None:
        return values.astype(int)
    return np.clip(np.searchsorted(levels, values, side="right") - 1, 0, None)


class RankingPipeline(Pipeline):
    """A Pipeline whose final step is fit with the rows' grouping: `group` sizes for LightGBM's
    rankers, `qid` for XGBoost's, nothing for pointwise regressors (scores from a regression
    on the grades). Prediction is per row: the group column is not needed to score."""

    def __init__(
        self,
        steps: list,
        *,
        group_column: str,
        relevance_values: list[float] | None = None,
        transform_input: Any = None,
        memory: Any = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(steps, transform_input=transform_input, memory=memory, verbose=verbose)
        self.group_column = group_column
        self.relevance_values = relevance_values

    def fit(self, X: pd.DataFrame, y: Any = None, **params: Any) -> RankingPipeline:
        if self.group_column not in X:
            raise DataValidationError(
                f"The ranking model needs the group column '{self.group_column}' to learn from.",
                f"Keep '{self.group_column}' in the rows given to fit.",
            )
        X, grades, codes = by_group(X, y, self.group_column, self.relevance_values)
        name, estimator = self.steps[-1]
        accepted = inspect.signature(estimator.fit).parameters
        if "group" in accepted:
            params[f"{name}__group"] = np.bincount(codes)
        elif "qid" in accepted:
            params[f"{name}__qid"] = codes
        return super().fit(X, grades, **params)


def by_group(
    X: pd.DataFrame, y: Any, group_column: str, relevance_values: list[float] | None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The rows sorted by group (stably), their relevance grades and group codes 0..n-1: what a
    ranker is fit on (LightGBM's group sizes are np.bincount(codes), XGBoost's qid the codes)."""
    codes, _ = pd.factorize(X[group_column], sort=True)
    order = np.argsort(codes, kind="stable")
    grades = relevance_grades(np.asarray(y)[order], {"relevance_values": relevance_values})
    return X.iloc[order], grades, codes[order]


def ranking_metrics(
    y: Any,
    scores: Any,
    groups: Any,
    task: Mapping[str, Any],
    names: tuple[str, ...] = RANKING_REPORT,
) -> dict[str, float]:
    """Means over groups; a group with no relevant row has no MAP or MRR (and no NDCG when
    every grade is 0), so it is left out of that mean rather than counted as 0 or 1."""
    table = per_group_metrics(y, scores, groups, task)
    return {name: float(table[name].mean()) for name in names}


def per_group_metrics(y: Any, scores: Any, groups: Any, task: Mapping[str, Any]) -> pd.DataFrame:
    """NDCG@k (gain 2^grade - 1), MAP@k and MRR of each group, ordered by descending score with
    ties broken at random (seeded), so a constant score is a random ranking."""
    k = int(task.get("k", 10))
    grades = relevance_grades(y, task).astype(float)
    relevant = (np.asarray(y, dtype=float) >= task["relevant_from"]).astype(float)
    codes, labels = pd.factorize(pd.Series(np.asarray(groups)), sort=True)
    scores = np.asarray(scores, dtype=float)
    tie_break = np.random.default_rng(TIE_BREAK_SEED).random(len(scores))
    by_score = np.lexsort((tie_break, -scores, codes))
    by_grade = np.lexsort((-grades, codes))
    rank = _rank_within(codes[by_score])
    n_groups = len(labels)

    def per_group(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes[by_score], weights=values, minlength=n_groups)

    def discount(ranks: np.ndarray) -> np.ndarray:
        return np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)

    dcg = per_group((2.0 ** grades[by_score] - 1.0) * discount(rank))
    ideal_gain = (2.0 ** grades[by_grade] - 1.0) * discount(_rank_within(codes[by_grade]))
    ideal = np.bincount(codes[by_grade], weights=ideal_gain, minlength=n_groups)
    hits = relevant[by_score]
    cumulative_hits = np.cumsum(hits)
    starts = np.r_[0, np.flatnonzero(np.diff(codes[by_score])) + 1]
    sizes = np.diff(np.r_[starts, len(hits)])
    hits_before_group = np.repeat(np.r_[0.0, cumulative_hits][starts], sizes)
    hits_so_far = cumulative_hits - hits_before_group
    precision_terms = np.where((rank <= k) & (hits > 0), hits_so_far / rank, 0.0)
    n_relevant = per_group(hits)
    first_hit = np.full(n_groups, np.inf)
    np.minimum.at(first_hit, codes[by_score][hits > 0], rank[hits > 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame(
            {
                "group": labels,
                "rows": np.bincount(codes, minlength=n_groups),
                "relevant_rows": n_relevant.astype(int),
                "ndcg": np.where(ideal > 0, dcg / ideal, np.nan),
                "map": np.where(
                    n_relevant > 0, per_group(precision_terms) / np.minimum(n_relevant, k), np.nan
                ),
                "mrr": np.where(np.isfinite(first_hit), 1.0 / first_hit, np.nan),
            }
        )


def _rank_within(sorted_codes: np.ndarray) -> np.ndarray:
    """1-based position of each row within its group, for rows already sorted by group."""
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    sizes = np.diff(np.r_[starts, len(sorted_codes)])
    return np.arange(len(sorted_codes)) - np.repeat(starts, sizes) + 1.0


def rank_within_groups(scores: Any, groups: Any) -> np.ndarray:
    """Each row's 1-based rank in its group by descending score (ties: the first row first)."""
    frame = pd.DataFrame({"group": np.asarray(groups), "score": np.asarray(scores, dtype=float)})
    ranks = frame.groupby("group", sort=False)["score"].rank(method="first", ascending=False)
    return ranks.to_numpy(int)


def misplacement(rank: Any, y: Any, groups: Any, task: Mapping[str, Any]) -> np.ndarray:
    """How far each row's rank is from the places its relevance earns (the block of rows of
    equal grade in the ideal order), as a share of its group's size: 0 = well placed."""
    frame = pd.DataFrame(
        {"group": np.asarray(groups), "grade": relevance_grades(y, task), "rank": np.asarray(rank)}
    )
    by_group = frame.groupby("group", sort=False)["grade"]
    best = by_group.rank(method="min", ascending=False)
    worst = by_group.rank(method="max", ascending=False)
    distance = np.maximum(0.0, np.maximum(frame["rank"] - worst, best - frame["rank"]))
    return (distance / frame["group"].map(frame["group"].value_counts())).to_numpy(float)


def sample_groups(groups: pd.Series, rows: int, seed: int) -> np.ndarray:
    """Positions of whole groups drawn at random until about `rows` rows: a ranking sample
    keeps every group it has complete, or its groups would no longer be the ones ranked."""
    codes, labels = pd.factorize(groups)
    sizes = np.bincount(codes)
    drawn = np.random.default_rng(seed).permutation(len(labels))
    kept = drawn[: max(1, int(np.searchsorted(np.cumsum(sizes[drawn]), rows)) + 1)]
    return np.flatnonzero(np.isin(codes, kept))


class GroupItemHistory(TransformerMixin, BaseEstimator):
    """What each group (a user) made of each item before: adds `history_item_bias` (the item's
    relevance above the mean, shrunk toward 0 by `shrinkage` rows), `history_affinity` (this
    group's affinity for this item, from a rank-`factors` SVD of the relevance left once the
    group's and the item's means are removed) and `history_group_rows` (how many training rows
    the group has: how far its affinity can be trusted). A group or item not seen in training
    gets 0 for what it has no history of. The training rows' own columns are cross-fitted
    (`fit_transform`, as scikit-learn's TargetEncoder): each row's history leaves out its
    fold, so the model does not learn to trust a history that already holds its answer; and a
    `cold_share` of the groups get none of their own, as a group never seen gets at predict."""

    def __init__(
        self,
        group_column: str,
        item_column: str,
        *,
        factors: int = 16,
        shrinkage: float = 10.0,
        cv: int = 5,
        cold_share: float = 0.2,
        random_state: int = 0,
    ) -> None:
        self.group_column = group_column
        self.item_column = item_column
        self.factors = factors
        self.shrinkage = shrinkage
        self.cv = cv
        self.cold_share = cold_share
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any) -> GroupItemHistory:
        X, relevance = self._as_frame(X), _relevance(y)
        clash = sorted(set(HISTORY_COLUMNS) & {str(c) for c in X.columns})
        if clash:
            raise ConfigurationError(
                f"The input already has columns named {clash}, which the group's history "
                "columns would overwrite.",
                "Rename those columns, or set dataset.item_column to null.",
            )
        self.history_ = self._history(X[self.group_column], X[self.item_column], relevance)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **params: Any) -> pd.DataFrame:
        self.fit(X, y)
        X, relevance = self._as_frame(X), _relevance(y)
        groups, items = X[self.group_column], X[self.item_column]
        columns = np.zeros((len(X), len(HISTORY_COLUMNS)))
        cold = self._cold_rows(groups)
        if cold.any():  # as groups never seen: the items' history from the other groups only
            history = self._history(groups[~cold], items[~cold], relevance[~cold])
            columns[cold] = _history_columns(history, groups[cold], items[cold])
        warm = np.flatnonzero(~cold)
        # folds of (group, item) pairs: a pair's other rows (a re-rating, a repeated click)
        # hold its answer too
        pairs, _ = pd.factorize(pd.MultiIndex.from_arrays([groups.iloc[warm], items.iloc[warm]]))
        n_pairs = int(pairs.max()) + 1 if len(pairs) else 0
        if n_pairs >= 2:  # a single pair has no other rows to learn its history from
            folds = min(self.cv, n_pairs)
            drawn = np.random.default_rng(self.random_state).permutation(n_pairs) % folds
            fold_of_row = drawn[pairs]
            for fold in range(folds):
                own = warm[fold_of_row == fold]
                learnt = np.r_[warm[fold_of_row != fold], np.flatnonzero(cold)]
                history = self._history(groups.iloc[learnt], items.iloc[learnt], relevance[learnt])
                columns[own] = _history_columns(history, groups.iloc[own], items.iloc[own])
        # how many rows a group has says nothing of their relevance: counted on all of them, as
        # transform counts them, so the model learns its trust on the scale it will meet
        counted = _history_columns(self.history_, groups.iloc[warm], items.iloc[warm])
        columns[warm, 2] = counted[:, 2]
        return self._with_columns(X, columns)

    def _cold_rows(self, groups: pd.Series) -> np.ndarray:
        """The rows of a random `cold_share` of the groups (never all of them), which the model
        sees as groups with no history, so it learns to rank a new group too."""
        codes, levels = pd.factorize(groups)
        drawn = np.random.default_rng(self.random_state).random(len(levels)) < self.cold_share
        if drawn.all():
            drawn[:] = False
        cold = np.zeros(len(codes), dtype=bool)
        cold[codes >= 0] = drawn[codes[codes >= 0]]
        return cold

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "history_")
        X = self._as_frame(X, fitted=True)
        columns = _history_columns(self.history_, X[self.group_column], X[self.item_column])
        return self._with_columns(X, columns)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "history_")
        return np.asarray([*self.feature_names_in_, *HISTORY_COLUMNS], dtype=object)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = True  # other columns pass through; a missing level is unseen
        tags.input_tags.string = True
        return tags

    def _as_frame(self, X: Any, fitted: bool = False) -> pd.DataFrame:
        """The input read by column name (`columns_by_name`), once it holds both columns."""
        X = columns_by_name(X, self if fitted else None)
        missing = [c for c in (self.group_column, self.item_column) if c not in X]
        if missing:
            raise DataValidationError(
                f"The ranking model reads each group's history of each item from columns "
                f"{missing}, which the rows do not have.",
                f"Give rows with '{self.group_column}' and '{self.item_column}' (or train "
                "without dataset.item_column).",
            )
        return X

    def _history(
        self, groups: pd.Series, items: pd.Series, relevance: np.ndarray
    ) -> dict[str, Any]:
        """Means, biases and factors of one set of rows: what the columns are read from. A row
        without a group or an item teaches nothing of either."""
        group_index, group_codes = _index(groups)
        item_index, item_codes = _index(items)
        known = (group_codes >= 0) & (item_codes >= 0)
        group_codes, item_codes, relevance = group_codes[known], item_codes[known], relevance[known]
        n_groups, n_items = len(group_index), len(item_index)
        mean = float(relevance.mean()) if len(relevance) else 0.0
        item_counts = np.bincount(item_codes, minlength=n_items)
        item_bias = np.bincount(item_codes, relevance - mean, n_items) / (
            item_counts + self.shrinkage
        )
        left = relevance - mean - item_bias[item_codes]
        group_counts = np.bincount(group_codes, minlength=n_groups)
        group_bias = np.bincount(group_codes, left, n_groups) / (group_counts + self.shrinkage)
        left -= group_bias[group_codes]
        rank = min(self.factors, n_groups - 1, n_items - 1)
        pairs = pd.DataFrame({"g": group_codes, "i": item_codes, "left": left})
        cells = pairs.groupby(["g", "i"], sort=False)["left"].mean()
        group_factors, item_factors = np.zeros((n_groups, 0)), np.zeros((n_items, 0))
        if rank >= 1 and np.any(cells.to_numpy()):  # else nothing left for factors to explain
            matrix = csr_matrix(
                (
                    cells.to_numpy(),
                    (cells.index.get_level_values(0), cells.index.get_level_values(1)),
                ),
                shape=(n_groups, n_items),
            )
            u, s, vt = svds(matrix, k=rank, random_state=self.random_state)
            group_factors, item_factors = u * s, vt.T
        return {
            "groups": group_index,
            "items": item_index,
            "item_bias": item_bias,
            "group_rows": group_counts.astype(float),
            "group_factors": group_factors,
            "item_factors": item_factors,
        }

    def _with_columns(self, X: pd.DataFrame, columns: np.ndarray) -> pd.DataFrame:
        added = pd.DataFrame(columns, index=X.index, columns=list(HISTORY_COLUMNS))
        return pd.concat([X.drop(columns=list(HISTORY_COLUMNS), errors="ignore"), added], axis=1)


def _relevance(y: Any) -> np.ndarray:
    """The target as finite numbers (scikit-learn's ValueError otherwise)."""
    if y is None:
        raise ValueError(
            "GroupItemHistory requires y to be passed, but the target y is None: it learns "
            "each group's history from the relevance."
        )
    relevance = column_or_1d(check_array(y, ensure_2d=False, dtype=float), warn=True)
    return relevance


def _aligned(values: Any, levels: pd.Index) -> pd.Index:
    """Values read as the training levels were (a user id sent as "12" or 12.0 is user 12); a
    value that does not convert is unseen."""
    values = pd.Index(values)
    if values.dtype == levels.dtype or not len(levels):
        return values
    if pd.api.types.is_numeric_dtype(levels.dtype) and not pd.api.types.is_bool_dtype(levels):
        return pd.Index(pd.to_numeric(values, errors="coerce"))  # not a number: unseen
    try:
        return values.astype(levels.dtype)
    except (TypeError, ValueError):
        return values


def _index(values: pd.Series) -> tuple[pd.Index, np.ndarray]:
    """The levels seen and each row's code (-1 where missing)."""
    try:
        codes, levels = pd.factorize(values)
    except TypeError as exc:
        raise TypeError(
            f"Column '{values.name}' names groups or items: each argument must be a string or a "
            f"number ({exc})."
        ) from exc
    return pd.Index(levels), codes


def _history_columns(history: Mapping[str, Any], groups: Any, items: Any) -> np.ndarray:
    """The three history columns of rows, from one fitted history; unseen levels count 0."""
    group = history["groups"].get_indexer(_aligned(groups, history["groups"]))
    item = history["items"].get_indexer(_aligned(items, history["items"]))
    known_group, known_item = group >= 0, item >= 0
    columns = np.zeros((len(group), len(HISTORY_COLUMNS)))
    columns[known_item, 0] = history["item_bias"][item[known_item]]
    both = known_group & known_item
    columns[both, 1] = np.einsum(
        "ij,ij->i", history["group_factors"][group[both]], history["item_factors"][item[both]]
    )
    columns[known_group, 2] = history["group_rows"][group[known_group]]
    return columns
