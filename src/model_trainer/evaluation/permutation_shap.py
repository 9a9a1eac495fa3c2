"""SHAP values of any model by sampling permutations: the estimator of shap's
PermutationExplainer, computed here so that every masked row of a batch goes to the model in one
call (shap calls it once per row and permutation, which costs more than the predictions on a
Pipeline).

Rows are masked as one numeric array (numpy picks the row's or the background's value per
cell), so non-numeric columns travel as codes into a vocabulary of the values seen and are
decoded, with their dtypes, before the model sees them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from model_trainer.evaluation.shap_values import Explanation, model_output

logger = logging.getLogger(__name__)

# As shap's PermutationExplainer by default: about 500 evaluations per row, at least two
# permutations (one forward and back is exact for an additive model, not for interactions)
MAX_EVALUATIONS = 500
MAX_PERMUTATIONS = 10
MAX_SAMPLES_PER_CALL = 200_000  # masked rows per model call: memory, and a look at the clock


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
        logger.info("SHAP values of %d of %d rows, within %.1f s.", done, len(rows), max_seconds)
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
