"""Is a trained model fit to ship? Checks with their figures and thresholds (what follows them,
the promotion, is in promotion).

A check is a plain dict (name, status, value, threshold, detail), exactly as deployment.json
lists it, so a failed deployment says which figure missed which threshold. Statuses: passed,
failed, not_convertible (the ONNX export: the reason is the detail) and skipped.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor

from model_trainer.errors import ConfigurationError
from model_trainer.models.metrics import METRICS, evaluate, is_better
from model_trainer.serving import onnx_export
from model_trainer.serving.model_store import StoredModel, load_stored_model, versioned_file
from model_trainer.table.checks import read_table
from model_trainer.tasks.clustering import clustering_scores

logger = logging.getLogger(__name__)

PASSED, FAILED, NOT_CONVERTIBLE, SKIPPED = "passed", "failed", "not_convertible", "skipped"
PROBABILITY_SUM_TOLERANCE = 1e-6
SINGLE_ROW_TOLERANCE = 1e-9
SINGLE_ROWS_COMPARED = 5


@dataclass
class Candidate:
    """The model to deploy and the rows that judge it (features and target)."""

    stored: StoredModel
    rows: pd.DataFrame
    rows_source: str
    rows_seen_in_training: bool  # its run's test split, and the model was refit on all rows

    @property
    def card(self) -> dict[str, Any]:
        return self.stored.card

    @property
    def X(self) -> pd.DataFrame:
        return self.rows[self.card["input_columns"]]

    @property
    def y(self) -> pd.Series | None:
        """None for a clustering without a reference column."""
        target = self.card["target"]
        return self.rows[target] if target else None

    @property
    def task(self) -> dict[str, Any]:
        """The task as metrics.evaluate reads it."""
        return {
            "type": self.card["task"],
            "classes": self.card["classes"],
            "positive_class": self.card["positive_class"],
        }


def load_candidate(
    reference: str | None,
    data: str | None,
    models_dir: Path,
    held_out_split: Path,
    trust_unverified: bool = False,
) -> Candidate:
    """The named model (the latest by default) with the rows given, or else with the held-out
    split its own run saved (under the model's save version)."""
    stored = load_stored_model(reference, models_dir, trust_unverified)
    card = stored.card
    if data:
        path, seen = Path(data), False
    else:
        path = _held_out_split_of(stored, held_out_split)
        seen = bool(card.get("refit_on_all_rows", False))
    rows = read_table(path)
    target = card["target"]  # a clustering may have none
    needed = [*card["input_columns"], *([target] if target else [])]
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise ConfigurationError(
            f"The rows in {path} lack columns the model needs: {', '.join(missing)}.",
            "Give deploy.data a table with the model's input columns"
            + (f" and its target '{target}'." if target else "."),
        )
    labelled = rows[target].notna() if target else np.ones(len(rows), dtype=bool)
    rows = rows.loc[labelled, needed].reset_index(drop=True)
    if rows.empty:
        raise ConfigurationError(
            f"No row of {path} has a value for the target '{card['target']}'.",
            "Give deploy.data labelled rows the model has not been trained on.",
        )
    logger.info("Deploying %s, judged on %d rows of %s.", stored.source, len(rows), path)
    return Candidate(stored, rows, str(path.resolve()), seen)


def _held_out_split_of(stored: StoredModel, held_out_split: Path) -> Path:
    remediation = (
        "Pass labelled rows the model was not trained on: --params=deploy.data=PATH (a CSV or "
        f"Parquet file with its input columns and the target '{stored.card['target']}')."
    )
    if stored.save_version is None:
        raise ConfigurationError(
            f"{stored.source} has no save version, so its run's held-out split is unknown.",
            remediation,
        )
    path = versioned_file(held_out_split, stored.save_version)
    if not path.is_file():
        raise ConfigurationError(
            f"The held-out split of the model's run ({path}) is not here.", remediation
        )
    return path


def verdict(passed: bool) -> str:
    return PASSED if passed else FAILED


def make_check(
    name: str, status: str, value: Any, threshold: Any = None, detail: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "value": value,
        "threshold": threshold,
        "detail": detail,
    }


def metric_checks(
    candidate: Candidate, thresholds: Mapping[str, Mapping[str, float | None]], beat_dummy: bool
) -> list[dict[str, Any]]:
    """One check per configured metric of the task (min and/or max), and the model's metric
    against the dummy baseline's on the same rows."""
    unknown = sorted(set(thresholds) - set(METRICS))
    if unknown:
        raise ConfigurationError(
            f"deploy.metric_thresholds names unknown metrics: {', '.join(unknown)}.",
            f"Use metrics among: {', '.join(METRICS)}.",
        )
    figures, dummy, source = held_out_figures(candidate)
    checks = []
    for name, bounds in thresholds.items():
        if name not in figures:
            continue  # a metric of the other task
        low, high = (bounds or {}).get("min"), (bounds or {}).get("max")
        value = figures[name]
        within = (low is None or value >= low) and (high is None or value <= high)
        limits = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        checks.append(make_check(f"metric_{name}", verdict(within), value, limits, source))
    if beat_dummy:
        metric = candidate.card["metric"]
        checks.append(
            make_check(
                "beats_dummy_baseline",
                verdict(is_better(METRICS[metric], figures[metric], dummy[metric])),
                figures[metric],
                {"dummy": dummy[metric]},
                f"{metric}; {source}",
            )
        )
    return checks


def held_out_figures(candidate: Candidate) -> tuple[dict[str, float], dict[str, float], str]:
    """The model's and a dummy's metrics on the judging rows. A model refit on all rows has
    seen its own test split, so there its card's figures (scored before the refit) count."""
    card = candidate.card
    if candidate.rows_seen_in_training:
        source = "the model card: its run's test split, scored before the refit on all rows"
        return card["test_metrics"], card["baseline_metrics"]["dummy"], source
    X, y, task = candidate.X, candidate.y, candidate.task
    if task["type"] == "clustering":
        figures, dummy = clustering_scores(candidate.stored.model, X, y, seed=0)
        return figures, dummy, f"scored on {candidate.rows_source}"
    dummy = DummyRegressor() if task["type"] == "regression" else DummyClassifier()
    figures = evaluate(candidate.stored.model, X, y, task)
    return figures, evaluate(dummy.fit(X, y), X, y, task), f"scored on {candidate.rows_source}"


def prediction_checks(candidate: Candidate, sample_rows: int) -> list[dict[str, Any]]:
    """Valid outputs (shapes, labels among the classes, probabilities that sum to 1, no NaN) on
    held-out rows and on a row whose every value is missing (serving accepts nulls); a row
    predicted alone gets what it gets in a batch."""
    model, card = candidate.stored.model, candidate.card
    sample = candidate.X.head(sample_rows)
    checks = []
    for name, rows in (
        ("sample_predictions", sample),
        ("all_missing_row", all_missing_row(sample)),
    ):
        problems = output_problems(model, rows, card)
        detail = "; ".join(problems) or f"valid outputs for {len(rows)} row(s)"
        checks.append(make_check(name, verdict(not problems), len(rows), None, detail))
    predict = prediction_function(model, candidate.stored.is_classifier)
    alone = sample.head(SINGLE_ROWS_COMPARED)
    try:
        in_batch = np.asarray(predict(alone), dtype=float)
        one_by_one = np.concatenate(
            [np.asarray(predict(alone.iloc[[i]])) for i in range(len(alone))]
        )
        difference: float | None = float(np.max(np.abs(one_by_one - in_batch)))
        detail = f"largest difference over {len(alone)} rows predicted alone and together"
    except Exception as exc:  # reported by the check, like any failure to predict
        difference, detail = None, _failure(exc)
    checks.append(
        make_check(
            "single_row_matches_batch",
            verdict(difference is not None and difference <= SINGLE_ROW_TOLERANCE),
            difference,
            {"max": SINGLE_ROW_TOLERANCE},
            detail,
        )
    )
    return checks


def _failure(exc: Exception) -> str:
    return f"predicting failed: {type(exc).__name__}: {str(exc)[:300]}"


def prediction_function(model: Any, is_classifier: bool) -> Callable[[pd.DataFrame], Any]:
    """What serving calls: probabilities for a classifier, predictions for a regressor."""
    return model.predict_proba if is_classifier else model.predict


def output_problems(model: Any, X: pd.DataFrame, card: Mapping[str, Any]) -> list[str]:
    try:
        predicted = np.asarray(model.predict(X))
        proba = np.asarray(model.predict_proba(X)) if card["task"] == "classification" else None
    except Exception as exc:  # any failure to predict is the finding
        return [_failure(exc)]
    problems = []
    if predicted.shape != (len(X),):
        problems.append(f"predict returned shape {predicted.shape} for {len(X)} rows")
    if pd.isna(predicted).any():
        problems.append("predict returned missing values")
    if proba is None:
        if not pd.isna(predicted).any() and not np.isfinite(predicted.astype(float)).all():
            problems.append("predict returned infinite values")
        return problems
    classes = card["classes"]
    if np.asarray(model.classes_).tolist() != classes:
        problems.append(f"the model's classes {list(model.classes_)} are not the card's {classes}")
    unknown = sorted({str(p) for p in predicted} - {str(c) for c in classes})
    if unknown:
        problems.append(f"predict returned labels outside the classes: {', '.join(unknown)}")
    if proba.shape != (len(X), len(classes)):
        problems.append(f"predict_proba returned shape {proba.shape}, not {(len(X), len(classes))}")
    elif not np.isfinite(proba).all():
        problems.append("predict_proba returned NaN or infinite values")
    else:
        if (proba < 0).any() or (proba > 1).any():
            problems.append("predict_proba returned values outside [0, 1]")
        worst = float(np.max(np.abs(proba.sum(axis=1) - 1)))
        if worst > PROBABILITY_SUM_TOLERANCE:
            problems.append(f"probabilities of a row sum to 1 ± {worst:.3g}")
    return problems


def all_missing_row(X: pd.DataFrame) -> pd.DataFrame:
    """One row whose every value is missing, in dtypes that can hold a missing value."""

    def nullable(column: pd.Series) -> Any:
        if pd.api.types.is_bool_dtype(column):
            return object
        if pd.api.types.is_numeric_dtype(column):
            return "float64"
        return column.dtype

    return pd.DataFrame({c: pd.Series([None], dtype=nullable(X[c])) for c in X.columns})


def size_check(model: Any, max_bytes: float | None) -> dict[str, Any]:
    """The model's joblib size (serialized as the train pipeline saves it, whatever its source)."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    size = buffer.getbuffer().nbytes
    within = max_bytes is None or size <= max_bytes
    threshold = None if max_bytes is None else {"max": int(max_bytes)}
    return make_check("size_bytes", verdict(within), size, threshold, "joblib of the Pipeline")


def latency_ms(predict: Callable[[pd.DataFrame], Any], rows: pd.DataFrame, repeats: int) -> dict:
    """p50 and p99 of `repeats` timed calls, after one untimed warm-up call."""
    predict(rows)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(rows)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "p50": float(np.percentile(times, 50)),
        "p99": float(np.percentile(times, 99)),
        "rows": len(rows),
        "repeats": repeats,
    }


def latency_checks(candidate: Candidate, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Single-row and batch latency of what serving calls; batches are drawn from the held-out
    rows (with replacement when there are fewer)."""
    predict = prediction_function(candidate.stored.model, candidate.stored.is_classifier)
    X = candidate.X
    single, batch = settings["single_row"], settings["batch"]
    n_batch = int(batch["rows"])
    batch_rows = X.sample(n=n_batch, replace=len(X) < n_batch, random_state=0)
    checks = []
    for name, rows, limits in (
        ("latency_single_row_ms", X.head(1), single),
        ("latency_batch_ms", batch_rows, batch),
    ):
        limit = limits.get("max_p99_ms")
        threshold = None if limit is None else {"max_p99": limit}
        try:
            figures = latency_ms(predict, rows, int(limits["repeats"]))
        except Exception as exc:  # a model that cannot predict has no latency
            checks.append(make_check(name, FAILED, None, threshold, _failure(exc)))
            continue
        checks.append(
            make_check(
                name,
                verdict(limit is None or figures["p99"] <= limit),
                figures,
                threshold,
                f"{figures['repeats']} calls of {figures['rows']} row(s)"
                + ("" if limit is not None else "; no limit set"),
            )
        )
    return checks


def onnx_check(
    candidate: Candidate, settings: Mapping[str, Any], latency_repeats: int
) -> tuple[Any | None, dict[str, Any]]:
    """The ONNX export and whether it agrees with the model on the held-out rows within
    |onnx - model| <= absolute + relative * max |model| (probabilities for classifiers,
    predictions for regressors). Only an agreeing export is returned, to be saved."""
    name = "onnx_agreement"
    if not settings.get("enabled", True):
        return None, make_check(name, SKIPPED, None, None, "deploy.onnx.enabled is false")
    model, is_classifier = candidate.stored.model, candidate.stored.is_classifier
    tolerance = {k: float(settings["tolerance"][k]) for k in ("absolute", "relative")}
    if candidate.card["task"] == "clustering":
        detail = (
            "clustering: skl2onnx exports KMeans alone, as distances to the centres, and has no "
            "form for the other families' assignments; serve the joblib or MLflow model"
        )
        return None, make_check(name, NOT_CONVERTIBLE, None, tolerance, detail)
    try:
        kinds = onnx_export.input_kinds(model)
        graph = onnx_export.to_onnx(model, kinds)
    except onnx_export.NotConvertible as exc:
        logger.warning("The model cannot be exported to ONNX: %s", exc)
        return None, make_check(name, NOT_CONVERTIBLE, None, tolerance, str(exc))
    try:
        predictor = onnx_export.OnnxPredictor(graph, kinds)
        figures = onnx_export.agreement(model, predictor, candidate.X, is_classifier, **tolerance)
    except Exception as exc:  # onnxruntime refusing the graph is a failed export, not a crash
        detail = f"running the export beside the model failed: {type(exc).__name__}: {exc}"
        logger.warning("The ONNX export cannot be checked: %s", detail)
        return None, make_check(name, FAILED, None, tolerance, detail[:1000])
    agrees = figures["rows_outside_tolerance"] == 0
    detail = (
        f"{'probabilities' if is_classifier else 'predictions'} of {figures['rows']} held-out "
        f"rows; {figures['rows_outside_tolerance']} outside the tolerance"
    )
    if not agrees:
        logger.warning("The ONNX export disagrees with the model: %s.", detail)
    check = make_check(name, verdict(agrees), figures["max_abs_diff"], tolerance, detail)
    check["onnx"] = {
        "inputs": kinds,
        "outputs": predictor.output_names,
        "sizeBytes": len(graph.SerializeToString()),
        "latencySingleRowMs": latency_ms(predictor, candidate.X.head(1), latency_repeats),
    }
    return (graph if agrees else None), check
