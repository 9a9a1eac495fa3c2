"""Has the data a model now scores moved away from the data it learned from?

Per feature, the population stability index (PSI) on bins of the reference (quantile bins for
numbers, the most frequent categories otherwise, missing values as a bin of their own), beside a
two-sample test: Kolmogorov-Smirnov for numbers, chi-squared for categories. PSI flags drift
(its size does not grow with the number of rows, unlike a test's p-value); the test says whether
the difference could be chance.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from model_trainer.serving.model_store import versioned_file

logger = logging.getLogger(__name__)

NUMERIC_TYPES = ("numeric",)
CATEGORICAL_TYPES = ("categorical", "boolean")
MISSING = "(missing)"
OTHER = "(other categories)"
EMPTY_SHARE = 1e-4  # stands in for an empty bin, whose log ratio is infinite
PREDICTION = "(prediction)"


RETRAIN_SPLITS = "retrain"  # catalog_retrain.yml: data/05_model_input/retrain/<split>_split.parquet


def load_split(
    splits_dir: Path, split: str, save_version: str | None
) -> tuple[pd.DataFrame | None, str]:
    """A split (train, validation, test) saved in the same run as the model, with its path; or
    None with the reason. A model the retrain pipeline fitted keeps its splits in the `retrain`
    folder, out of the way of the train pipeline's stages."""
    if save_version is None:
        return None, "the model has no save version, so the data it was trained on is unknown"
    name = f"{split}_split.parquet"
    path = versioned_file(splits_dir / name, save_version)
    retrained = versioned_file(splits_dir / RETRAIN_SPLITS / name, save_version)
    for candidate in (path, retrained):
        if candidate.is_file():
            return pd.read_parquet(candidate), str(candidate)
    return None, f"the {split} split of this model ({path}) is not on this machine"


def population_stability_index(reference: np.ndarray, current: np.ndarray) -> float:
    """sum((current - reference) * ln(current / reference)) over bin shares."""
    reference = np.clip(reference, EMPTY_SHARE, None)
    current = np.clip(current, EMPTY_SHARE, None)
    return float(np.sum((current - reference) * np.log(current / reference)))


def quantile_edges(values: pd.Series, n_bins: int) -> np.ndarray:
    """Inner edges of `n_bins` quantile bins (fewer when values repeat)."""
    observed = values.dropna().to_numpy(dtype=float)
    if not observed.size:
        return np.array([])
    return np.unique(np.quantile(observed, np.linspace(0, 1, n_bins + 1)[1:-1]))


def interval_names(edges: np.ndarray) -> list[str]:
    """The bins the edges make, open at both ends so new extremes still fall in one."""
    if not len(edges):
        return ["all values"]
    inner = [f"({_number(low)}, {_number(high)}]" for low, high in pairwise(edges)]
    return [f"<= {_number(edges[0])}", *inner, f"> {_number(edges[-1])}"]


def _number(value: float) -> str:
    """125,000 rather than 1.25e+05; 4 significant digits below 10,000."""
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def numeric_labels(values: pd.Series, edges: np.ndarray) -> pd.Series:
    names = np.asarray(interval_names(edges), dtype=object)
    index = np.searchsorted(edges, values.to_numpy(dtype=float), side="left")
    return pd.Series(names[index], index=values.index).where(values.notna(), MISSING)


def frequent_categories(values: pd.Series, max_categories: int) -> list[str]:
    return values.astype("string").value_counts().index[:max_categories].tolist()


def category_labels(values: pd.Series, kept: list[str]) -> pd.Series:
    """Categories compared as text (1 and '1' are one category, CSV against Parquet); the
    rest as one bin, missing values as another."""
    labels = values.astype("string")
    return labels.where(labels.isin(kept) | labels.isna(), OTHER).fillna(MISSING).astype(object)


def bin_counts(reference: pd.Series, current: pd.Series, bins: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bin": bins,
            "reference": reference.value_counts().reindex(bins, fill_value=0).to_numpy(),
            "current": current.value_counts().reindex(bins, fill_value=0).to_numpy(),
        }
    )


def feature_drift(
    name: str, kind: str, reference: pd.Series, current: pd.Series, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """PSI and the two-sample test of one column; bins with their shares for the plots. Fewer
    bins on few rows (`min_bin_rows` each, on average): PSI's noise grows with bins per row, and
    10 bins over 70 rows show a PSI of 0.4 between two samples of the same data."""
    n_bins = min(len(reference), len(current)) // int(settings["min_bin_rows"])
    if kind in NUMERIC_TYPES:
        edges = quantile_edges(reference, max(2, min(int(settings["bins"]), n_bins)))
        bins = bin_counts(
            numeric_labels(reference, edges),
            numeric_labels(current, edges),
            [*interval_names(edges), MISSING],
        )
        test = "ks"
        statistic, p_value = _ks_test(reference, current)
    else:
        kept = frequent_categories(reference, max(1, min(int(settings["max_categories"]), n_bins)))
        bins = bin_counts(
            category_labels(reference, kept),
            category_labels(current, kept),
            [*kept, OTHER, MISSING],
        )
        test = "chi2"
        statistic, p_value = _chi2_test(bins)
    shares = bins[["reference", "current"]] / bins[["reference", "current"]].sum()
    psi = population_stability_index(shares["reference"].to_numpy(), shares["current"].to_numpy())
    shown = bins.assign(reference=shares["reference"], current=shares["current"])
    shown = shown[(bins["reference"] > 0) | (bins["current"] > 0)]
    return {
        "feature": name,
        "type": kind,
        "psi": psi,
        "test": test,
        "statistic": statistic,
        "p_value": p_value,
        "drifted": psi >= float(settings["psi_threshold"]),
        "significant": p_value is not None and p_value < float(settings["p_value"]),
        "reference_missing": float(reference.isna().mean()),
        "current_missing": float(current.isna().mean()),
        "bins": shown.to_dict(orient="records"),
    }


def _ks_test(reference: pd.Series, current: pd.Series) -> tuple[float | None, float | None]:
    reference, current = reference.dropna(), current.dropna()
    if reference.empty or current.empty:
        return None, None
    result = stats.ks_2samp(reference.to_numpy(dtype=float), current.to_numpy(dtype=float))
    return float(result.statistic), float(result.pvalue)


def _chi2_test(bins: pd.DataFrame) -> tuple[float | None, float | None]:
    table = bins[["reference", "current"]].to_numpy().T
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return None, None
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Every feature the model uses that can be binned (datetime and text are not compared),
    the most drifted first."""
    results = [
        feature_drift(name, info["type"], reference[name], current[name], settings)
        for name, info in features.items()
        if info["type"] in (*NUMERIC_TYPES, *CATEGORICAL_TYPES)
        and name in reference
        and name in current
    ]
    return sorted(results, key=lambda r: r["psi"], reverse=True)


def drift_report(
    reference: pd.DataFrame | None,
    reference_source: str,
    current: pd.DataFrame,
    features: Mapping[str, Mapping[str, Any]],
    predictions: tuple[pd.Series, pd.Series] | None,
    task_type: str,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The whole comparison as JSON, or why it was skipped; `predictions` are the model's
    outputs on the reference and on the current rows (prediction drift)."""
    threshold = float(settings["psi_threshold"])
    skipped = None
    if reference is None:
        skipped = reference_source
    elif len(current) < int(settings["min_rows"]):
        skipped = f"{len(current)} rows are too few to compare distributions"
    if skipped:
        logger.warning("Drift not measured: %s.", skipped)
        return {
            "skipped": skipped,
            "psi_threshold": threshold,
            "drifted": None,
            "drifted_features": [],
            "prediction": None,
            "features": [],
        }
    results = compare(reference, current, features, settings)
    prediction = None
    if predictions is not None:
        kind = "numeric" if task_type == "regression" else "categorical"
        prediction = feature_drift(PREDICTION, kind, *predictions, settings)
    drifted = [r["feature"] for r in results if r["drifted"]]
    not_compared = sorted(
        name
        for name, info in features.items()
        if info["type"] not in (*NUMERIC_TYPES, *CATEGORICAL_TYPES)
    )
    if drifted:
        logger.warning(
            "Data drift: %d of %d features have PSI >= %.3g: %s.",
            len(drifted),
            len(results),
            threshold,
            ", ".join(f"{r['feature']} ({r['psi']:.3g})" for r in results if r["drifted"]),
        )
    return {
        "skipped": None,
        "reference": reference_source,
        "n_reference_rows": len(reference),
        "n_current_rows": len(current),
        "psi_threshold": threshold,
        "drifted": bool(drifted),
        "drifted_features": drifted,
        "max_psi": max((r["psi"] for r in results), default=0.0),
        "prediction": prediction,
        "not_compared": not_compared,
        "features": results,
    }
