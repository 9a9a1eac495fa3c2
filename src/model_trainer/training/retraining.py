"""Champion and challenger: the serving model's configuration trained again on new rows, both
scored on the same new rows neither was fitted on, and the challenger promoted only when it
wins by the configured margin.

The challenger is a clone of the champion's Pipeline (family, hyperparameters, preprocessing,
ensemble weights, calibration method, decision threshold), fitted as the train pipeline fits its
evaluation model: on the new train and validation splits, judged on the new test split.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from model_trainer.errors import ConfigurationError
from model_trainer.evaluation import explanations
from model_trainer.evaluation.holdout import model_metrics, model_task, no_skill_metrics
from model_trainer.models.ensemble import predict_output, score_output
from model_trainer.models.metrics import get_metric
from model_trainer.reporting.report import relative_change
from model_trainer.search.tuning import data_fingerprint
from model_trainer.serving.integrity import CARD_KEY
from model_trainer.serving.model_store import RETRAINING_KEY, StoredModel
from model_trainer.table.splitting import split_holdout
from model_trainer.tracking.runs import pinned_requirements
from model_trainer.training.final_fit import fit_quietly

logger = logging.getLogger(__name__)


def retrainable_task(card: Mapping[str, Any]) -> dict[str, Any]:
    """The champion's task; a clustering has no target on which to judge two models."""
    if card["task"] == "clustering":
        raise ConfigurationError(
            "The retrain pipeline compares champion and challenger on new labelled rows; a "
            "clustering model has no target to compare them on.",
            "Train a new clustering with `kedro run --pipelines=train` on the new data and read "
            "its scores (silhouette, stability) in the train report.",
        )
    return model_task(card)


def split_new_rows(
    rows: pd.DataFrame, card: Mapping[str, Any], settings: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train / validation / test of the new rows, cut as the train pipeline cuts its splits:
    the latest rows held out when `time_column` is given, whole groups for a ranking,
    stratified by class for a classification."""
    task = retrainable_task(card)
    time_column = settings.get("time_column")
    if time_column and time_column not in rows.columns:
        raise ConfigurationError(
            f"retrain.time_column '{time_column}' is not a column of the new data.",
            f"Name one of its columns ({', '.join(map(str, rows.columns[:20]))}), or set it "
            "to null to hold out rows at random.",
        )
    train, validation, test = split_holdout(
        rows,
        card["target"],
        task,
        settings,
        time_column=time_column,
        group_column=task.get("group_column"),
    )
    minimum = int(settings["min_test_rows"])
    if len(test) < minimum:
        raise ConfigurationError(
            f"Only {len(test)} of the {len(rows)} new rows would be held out to compare the "
            f"champion with the challenger (retrain.min_test_rows is {minimum}): on so few "
            "rows the comparison is noise.",
            "Give more new rows, or raise retrain.test_fraction.",
        )
    return train, validation, test


def fit_challenger(
    champion: StoredModel, rows: pd.DataFrame, checkpoints: Mapping[str, Any] | None = None
) -> tuple[Any, list[str]]:
    """The champion's configuration, unfitted, fitted on new rows."""
    card = champion.card
    model, warnings = fit_quietly(
        clone(champion.model), rows[card["input_columns"]], rows[card["target"]], checkpoints
    )
    logger.info(
        "Fitted the challenger (%s, the champion's configuration) on %d new rows.",
        card.get("algorithm"),
        len(rows),
    )
    return model, warnings


def compare(
    champion: StoredModel,
    challenger: Any,
    test: pd.DataFrame,
    settings: Mapping[str, Any],
    champion_trained_on: pd.Series | None = None,
) -> dict[str, Any]:
    """Both models' metrics on the same held-out new rows, beside a dummy's; the challenger is
    promoted when its relative improvement on the champion's metric reaches `margin`. The share
    of bootstrap resamples of those rows in which it is better says how sure that is.

    Rows the champion was trained on (`champion_trained_on`, when its splits are known) would
    flatter it: they are left out of the judging while at least `min_test_rows` remain."""
    card = champion.card
    task = retrainable_task(card)
    metric = card["metric"]
    judged, overlap = judged_rows(test, champion_trained_on, int(settings["min_test_rows"]))
    X, y = judged[card["input_columns"]], judged[card["target"]]
    scores = {
        "champion": model_metrics(champion.model, X, y, task),
        "challenger": model_metrics(challenger, X, y, task),
        "dummy": no_skill_metrics(X, y, task),
    }
    champion_value, challenger_value = scores["champion"][metric], scores["challenger"][metric]
    improvement = relative_change(metric, task, challenger_value, champion_value)
    margin = float(settings["margin"])
    promoted = bool(
        np.isfinite([champion_value, challenger_value, improvement]).all() and improvement >= margin
    )
    win_share = bootstrap_win_share(
        champion.model, challenger, X, y, task, metric, int(settings["bootstrap"]),
        int(settings["seed"]),
    )  # fmt: skip
    verdict = "promoted" if promoted else "kept the champion"
    reason = (
        f"The challenger's {metric} is {challenger_value:.5g} against the champion's "
        f"{champion_value:.5g} on {len(judged)} new held-out rows: {improvement:+.2%} "
        f"{'reaches' if promoted else 'does not reach'} the margin of {margin:.2%}."
    )
    logger.info("Retraining %s. %s", verdict, reason)
    return {
        "metric": metric,
        "greater_is_better": get_metric(metric, task).greater_is_better,
        "metrics": scores,
        "improvement": float(improvement),
        "margin": margin,
        "challenger_win_share": win_share,
        "promoted": promoted,
        "reason": reason,
        "n_test_rows": len(judged),
        "champion_trained_on": overlap,
        "champion": {
            "source": champion.source,
            "save_version": champion.save_version,
            "registered_name": champion.registered_name,
            "registered_version": champion.registered_version,
            "algorithm": card.get("algorithm"),
            "test_metrics_at_training": dict(card.get("test_metrics") or {}),
        },
    }


def judged_rows(
    test: pd.DataFrame, trained_on: pd.Series | None, minimum: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The held-out rows without those the champion was trained on, while enough remain; and
    what was done, for the report."""
    if trained_on is None:
        return test, {"rows": None, "left_out": False}
    seen = int(trained_on.sum())
    if seen == 0:
        return test, {"rows": 0, "left_out": False}
    if len(test) - seen >= minimum:
        logger.info("Left %d held-out rows the champion was trained on out of the judging.", seen)
        return test[~trained_on.to_numpy()], {"rows": seen, "left_out": True}
    logger.warning(
        "The champion was trained on %d of the %d held-out new rows: its score there flatters "
        "it, but too few rows would remain without them (retrain.min_test_rows).",
        seen,
        len(test),
    )
    return test, {"rows": seen, "left_out": False}


def bootstrap_win_share(
    champion: Any,
    challenger: Any,
    X: pd.DataFrame,
    y: pd.Series,
    task: Mapping[str, Any],
    metric: str,
    resamples: int,
    seed: int,
) -> float | None:
    """Share of resamples (with replacement) of the held-out rows in which the challenger scores
    better than the champion: near 0.5 the two are level within noise. None for a ranking
    (its rows are not independent) or with `resamples` 0."""
    if resamples <= 0 or task["type"] == "ranking":
        return None
    greater = get_metric(metric, task).greater_is_better
    outputs = predict_output(champion, X, task), predict_output(challenger, X, task)
    generator = np.random.default_rng(seed)
    labels = y.reset_index(drop=True)
    wins = counted = 0
    for _ in range(resamples):
        rows = generator.integers(0, len(labels), len(labels))
        sample = labels.iloc[rows].reset_index(drop=True)
        champion_value, challenger_value = (
            score_output(output[rows], sample, metric, task) for output in outputs
        )
        if np.isfinite(champion_value) and np.isfinite(challenger_value):
            counted += 1
            better = challenger_value > champion_value
            wins += better if greater else challenger_value < champion_value
    return round(wins / counted, 4) if counted else None


def challenger_card(
    champion: StoredModel,
    comparison: Mapping[str, Any],
    rows: pd.DataFrame,
    train: pd.DataFrame,
    *,
    model_sha256: str,
    refit_on_all_rows: bool,
    data_source: str,
    seed: int,
) -> dict[str, Any]:
    """The champion's card with what changed: the data, the held-out metrics (against the
    dummy and the champion), the file's digest, and where the model came from. A challenger
    that lost is marked so, and "the latest model" passes over it."""
    card = dict(champion.card)
    task = retrainable_task(card)
    background = card.get("explanation_background")
    if background:
        background = explanations.card_background(
            train,
            task,
            {"columns": card["features"]},
            {"in_model_card": True, "background_rows": len(background)},
            seed,
        )
    card.update(
        {
            "test_metrics": comparison["metrics"]["challenger"],
            "baseline_metrics": {
                "dummy": comparison["metrics"]["dummy"],
                "champion": comparison["metrics"]["champion"],
            },
            "cross_validation": {
                "note": "not cross-validated: the champion's configuration fitted on new rows",
                "champion": card.get("cross_validation"),
            },
            "data_fingerprint": data_fingerprint(rows),
            "n_rows": len(rows),
            "refit_on_all_rows": refit_on_all_rows,
            CARD_KEY: model_sha256,
            "explanation_background": background,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "requirements": pinned_requirements(),
            RETRAINING_KEY: {
                "promoted": comparison["promoted"],
                "reason": comparison["reason"],
                "champion": comparison["champion"]["source"],
                "data": data_source,
            },
        }
    )
    return card
