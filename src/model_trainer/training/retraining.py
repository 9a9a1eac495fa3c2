"""Champion and challenger: the serving model's configuration trained again on new rows, both
scored on the same new rows neither was fitted on, and the challenger promoted only when it
wins by the configured margin.

The challenger is a clone of the champion's Pipeline (family, hyperparameters, preprocessing,
ensemble weights, decision threshold), fitted as the train pipeline fits its evaluation model:
on the new train and validation splits, judged on the new test split. A calibration map is
fitted again, with the champion's method, on the new rows' out-of-fold predictions.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from model_trainer.errors import ConfigurationError
from model_trainer.evaluation import explanations
from model_trainer.evaluation.compare import model_metrics, no_skill_metrics
from model_trainer.evaluation.holdout import model_task, training_rows
from model_trainer.models.calibration import CALIBRATORS, CalibratedClassifier, fit_calibrator
from model_trainer.models.ensemble import predict_output, score_output
from model_trainer.models.metrics import get_metric
from model_trainer.reporting.report import relative_change
from model_trainer.search.tuning import data_fingerprint, search
from model_trainer.serving.integrity import CARD_KEY
from model_trainer.serving.model_store import RETRAINING_KEY, StoredModel
from model_trainer.table.splitting import split_holdout
from model_trainer.tracking.runs import pinned_requirements
from model_trainer.training.final_fit import fit_chosen_configuration
from model_trainer.training.fitting import fit_quietly

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
    the latest rows held out when a time column is given (retrain.time_column, else the one
    the champion was trained with; each group's latest when the champion was validated with
    group_timeseries), whole groups for a ranking, stratified by class for a
    classification."""
    task = retrainable_task(card)
    time_column = settings.get("time_column") or card.get("time_column")
    cv = ((card.get("training_setup") or {}).get("configuration") or {}).get("cv") or {}
    within_groups = cv.get("strategy") == "group_timeseries"
    if task["type"] == "classification":
        _check_class_counts(rows[card["target"]], card["target"])
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
        group_column=task.get("group_column")
        or (cv.get("group_column") if within_groups else None),
        within_groups=within_groups,
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


def _check_class_counts(labels: pd.Series, target: str) -> None:
    counts = labels.value_counts()
    if len(counts) < 2 or counts.min() < 2:
        shown = ", ".join(f"{label!r}: {n}" for label, n in counts.items())
        raise ConfigurationError(
            f"The new data's target '{target}' has {len(counts)} class(es) ({shown}): a "
            "challenger needs two classes or more, each with two rows or more, to be fitted "
            "and judged on a stratified split.",
            "Give retrain.data more labelled rows (or drop the rows of a class seen once).",
        )


def champion_rows(champion: StoredModel, splits_dir: Path) -> pd.DataFrame:
    """The rows the champion was trained on, from the splits saved with it (for
    retrain.add_champion_rows)."""
    card = champion.card
    trained, reason = training_rows(card, splits_dir, champion.save_version)
    if trained is None:
        raise ConfigurationError(
            f"retrain.add_champion_rows is true, but the champion's training rows cannot be "
            f"read: {reason}.",
            f"Retrain where the champion was trained (its splits under {splits_dir}), or set "
            "retrain.add_champion_rows to false.",
        )
    logger.info("Added the %d rows the champion was trained on.", len(trained))
    return trained[[*card["input_columns"], card["target"]]]


def refit(
    model: Any,
    card: Mapping[str, Any],
    rows: pd.DataFrame,
    checkpoints: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> tuple[Any, list[str]]:
    """`model`'s configuration, unfitted, fitted on `rows`; its calibration map, if any, fitted
    again on them (a map learnt from another fit's predictions is wrong for this one)."""
    X, y = rows[card["input_columns"]], rows[card["target"]]
    unfitted = clone(model)
    method = recalibrate(unfitted, X, y, int(card["cross_validation"].get("folds") or 5), seed)
    fitted, warnings = fit_quietly(unfitted, X, y, checkpoints)
    logger.info(
        "Fitted the challenger on %d rows%s.",
        len(rows),
        f" ({method} calibration fitted again)" if method else "",
    )
    return fitted, warnings


def champion_configuration(card: Mapping[str, Any]) -> dict[str, Any]:
    """What the challenger takes from the champion when it is not searched again."""
    return {
        "source": "the champion's configuration",
        **{key: card.get(key) for key in CONFIGURATION_KEYS},
    }


CONFIGURATION_KEYS = ("algorithm", "params", "ensemble", "decision_threshold")


def search_challenger(
    champion: StoredModel,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    tuning_settings: Mapping[str, Any],
    training_settings: Mapping[str, Any],
    mlflow_parent: Any | None = None,
) -> tuple[Any, dict[str, Any]]:
    """A fresh search on the new rows, in the space, with the metric and folds the champion
    was searched with (its card's training setup), in a study of its own; its choice fitted on
    train + validation as the train pipeline fits it. The model and how it was configured."""
    card = champion.card
    setup = card.get("training_setup")
    if not setup:
        raise ConfigurationError(
            "retrain.search is true, but the champion's card keeps no training setup (the "
            "model was trained before 2026-12-07): the space to search is unknown.",
            "Set retrain.search to false to refit the champion's configuration, or train a "
            "model on the new data with `kedro run --pipelines=train`.",
        )
    task, feature_types, configuration = (
        dict(setup["task"]),
        setup["feature_types"],
        setup["configuration"],
    )
    target = card["target"]
    rows = pd.concat([train, validation], ignore_index=True)
    # the champion's calibration, bagging, threshold and early stopping; this run's checkpoints
    training_settings = {**training_settings, **(setup.get("training") or {})}
    if task["type"] == "classification":
        task["class_counts"] = {str(k): int(v) for k, v in train[target].value_counts().items()}
    study, summary = search(
        rows[card["input_columns"]],
        rows[target],
        task=task,
        feature_types=feature_types,
        configuration=configuration,
        settings={**tuning_settings, "study_name": None},  # never the champion's own study
        mlflow_parent=mlflow_parent,
        calibration=training_settings.get("calibration", "none"),
        bagging=training_settings.get("bagging"),
    )
    model, info = fit_chosen_configuration(
        summary, task, feature_types, configuration, train, validation, training_settings
    )
    described = {
        "source": f"a fresh search: {len(study.trials)} trials in study '{study.study_name}', "
        f"CV {summary['metric']} {summary['best_value']:.5g}",
        **{key: info.get(key) for key in CONFIGURATION_KEYS},
    }
    logger.info("Challenger from %s: %s.", described["source"], info.get("algorithm"))
    return model, described


def recalibrate(model: Any, X: pd.DataFrame, y: pd.Series, folds: int, seed: int) -> str | None:
    """The calibration map of an unfitted clone, fitted with the same method on out-of-fold
    predictions of `X` (as the search fits it); the method, or None without calibration. The
    train pipeline wraps the whole Pipeline (`calibrated`), so the wrapper reads the raw rows."""
    wrappers = [
        step
        for step in (model, *model.get_params(deep=True).values())
        if isinstance(step, CalibratedClassifier) and step.calibrator is not None
    ]
    if not wrappers:
        return None
    [wrapper] = wrappers
    method = next(
        name for name, kind in CALIBRATORS.items() if isinstance(wrapper.calibrator, kind)
    )
    folds = max(2, min(folds, int(y.value_counts().min())))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(clone(wrapper.estimator), X, y, cv=cv, method="predict_proba")
    wrapper.set_params(calibrator=fit_calibrator(method, predicted, y, np.unique(y)))
    return method


def compare(
    champion: StoredModel,
    challenger: Any,
    test: pd.DataFrame,
    settings: Mapping[str, Any],
    champion_trained_on: pd.Series | None = None,
    challenger_trained_on: pd.Series | None = None,
) -> dict[str, Any]:
    """Both models' metrics on the same held-out new rows, beside a dummy's; the challenger is
    promoted when its relative improvement on the champion's metric reaches `margin`. The share
    of bootstrap resamples of those rows in which it is better says how sure that is.

    Rows either model was trained on (the same inputs in its training rows; the champion's when
    its splits are known) would flatter it: they are left out of the judging while at least
    `min_test_rows` remain."""
    card = champion.card
    task = retrainable_task(card)
    metric = card["metric"]
    judged, overlap = judged_rows(
        test,
        {"champion": champion_trained_on, "challenger": challenger_trained_on},
        int(settings["min_test_rows"]),
        task.get("group_column"),
    )
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
        "trained_on": overlap,
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
    test: pd.DataFrame,
    trained_on: Mapping[str, pd.Series | None],
    minimum: int,
    group_column: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The held-out rows without those a model was trained on (whole groups of a ranking, whose
    metrics are per group), while `minimum` remain; and what was done, for the report: per
    model the rows it was trained on (None: unknown), and whether they were left out."""
    known = [mask for mask in trained_on.values() if mask is not None]
    overlap: dict[str, Any] = {
        name: None if mask is None else int(mask.sum()) for name, mask in trained_on.items()
    }
    seen = pd.Series(False, index=test.index)
    for mask in known:
        seen |= mask.to_numpy()
    if group_column is not None and seen.any():
        seen = test[group_column].isin(test.loc[seen, group_column])
    if not seen.any():
        return test, {**overlap, "left_out": 0}
    if len(test) - int(seen.sum()) >= minimum:
        logger.info("Left %d held-out rows a model was trained on out of the judging.", seen.sum())
        return test[~seen.to_numpy()], {**overlap, "left_out": int(seen.sum())}
    logger.warning(
        "%d of the %d held-out new rows are rows a model was trained on (%s): its score there "
        "flatters it, but too few rows would remain without them (retrain.min_test_rows).",
        seen.sum(),
        len(test),
        ", ".join(f"{name} {n}" for name, n in overlap.items() if n),
    )
    return test, {**overlap, "left_out": 0}


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
    configuration: Mapping[str, Any],
    challenger_classes: Any,
    model_sha256: str,
    refit_on_all_rows: bool,
    data_source: str,
    seed: int,
) -> dict[str, Any]:
    """The champion's card with what changed: the configuration (`champion_configuration` or
    a fresh search's), the data, the held-out metrics (against the dummy and the champion),
    the file's digest, and where the model came from. A challenger that lost is marked so, and
    "the latest model" passes over it."""
    card = dict(champion.card)
    card.update({key: configuration.get(key) for key in CONFIGURATION_KEYS})
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
    if task["type"] == "classification":  # a class absent from the new rows is not predicted
        card["classes"] = np.asarray(challenger_classes).tolist()
    card.update(
        {
            "test_metrics": comparison["metrics"]["challenger"],
            "baseline_metrics": {
                "dummy": comparison["metrics"]["dummy"],
                "champion": comparison["metrics"]["champion"],
            },
            "cross_validation": {
                "note": f"retrained with {configuration['source']}",
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
                "configuration": configuration["source"],
                "data": data_source,
            },
        }
    )
    return card
