"""What the trials become: the ensemble of the best trials, the k-fold bag and the probability
calibration of the final model, each decided out of sample and said why."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd

from model_trainer.errors import ConfigurationError
from model_trainer.models.calibration import (
    CALIBRATORS,
    LOSSES,
    fit_calibrator,
    held_out_losses,
)
from model_trainer.models.ensemble import (
    OutOfFoldPredictions,
    held_out_choice,
    select_ensemble,
)
from model_trainer.models.metrics import get_metric, is_better
from model_trainer.search.space import split_params

logger = logging.getLogger(__name__)


CALIBRATIONS = ("auto", *CALIBRATORS, "none")
# auto tries isotonic calibration from this many out-of-fold rows; sigmoid and temperature, with
# two and one parameters, from any number
ISOTONIC_MIN_ROWS = 1000


BAGGED_TASKS = ("classification", "regression")


def check_final_model_settings(calibration: str, bagging: Mapping[str, Any]) -> None:
    """Before the search, not after it: a typo must not cost the budget."""
    if calibration not in CALIBRATIONS:
        raise ConfigurationError(
            f"training.calibration is '{calibration}'.", f"Use one of {', '.join(CALIBRATIONS)}."
        )
    for key, kind, low in (("folds", int, 1), ("jobs", int, 1), ("max_overrun", float, 0)):
        value = bagging.get(key, low)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise ConfigurationError(
                f"training.bagging.{key} is {value!r}.",
                f"Give {'an integer' if kind is int else 'a number'} of at least {low}.",
            )


def bag_fits(bagging: Mapping[str, Any]) -> float:
    """A bag's cost in fold fits of the search: k fits for the evaluation model and k on 10%
    more rows for the refit on every row, `jobs` at a time."""
    return 2.1 * int(bagging.get("folds", 1)) / max(1, int(bagging.get("jobs", 1)))


def bagging_refusal(
    bagging: Mapping[str, Any],
    task: Mapping[str, Any],
    configuration: Mapping[str, Any],
    objectives: Sequence[str],
    y: pd.Series,
) -> str | None:
    """Why the final model is not bagged whatever the time left (known before the search, which
    then keeps no time for a bag), or None."""
    folds = int(bagging.get("folds", 1))
    smallest_class = int(y.value_counts().min()) if task["type"] == "classification" else folds
    return (
        "training.bagging.folds is below 2" if folds < 2
        else f"a {task['type']} model is not bagged" if task["type"] not in BAGGED_TASKS
        else f"the search weighed {' and '.join(objectives[1:])} too: a bag is k times slower "
        "and bigger" if len(objectives) > 1
        else "the rows are ordered in time or grouped: a bag's folds would cut across them"
        if configuration["cv"].get("strategy") in ("timeseries", "group_timeseries", "group")
        else f"a class has {smallest_class} rows, fewer than the {folds} folds"
        if smallest_class < folds
        else None
    )  # fmt: skip


def chosen_bagging(
    bagging: Mapping[str, Any],
    refusal: str | None,
    summary: Mapping[str, Any],
    study: optuna.Study,
    seconds_left: float | None,
    rows_scale: float = 1.0,
) -> dict[str, Any]:
    """training.bagging.folds k-fold bagging of the final model (`FoldBag`) unless `refusal`
    says why not or the time left of tuning.timeout does not cover the fits of the model's
    trials (their fold fit times, scaled from the search's rows to all of them). When an
    ensemble's bag does not fit but the best single trial's does, that bag replaces the
    ensemble (`replaces_ensemble`): where both were tried on the same studies, a bag lowered
    the error more than an ensemble did (leaf's log loss 0.0084 -> 0.0025,
    benchmarks/results/bag-or-ensemble-60s.md)."""
    folds = int(bagging.get("folds", 1))
    ensemble = [m["trial"] for m in (summary.get("ensemble") or {}).get("members", [])]
    trials = {t.number: t for t in study.trials}

    def seconds_for(members: Sequence[int]) -> float:
        fold_fit_s = sum(float(trials[n].user_attrs.get("fold_fit_s", 0.0)) for n in members)
        return bag_fits(bagging) * fold_fit_s * rows_scale

    needed = seconds_for(ensemble or [summary["best_trial"]])
    short = seconds_left is not None and needed > seconds_left
    single = seconds_for([summary["best_trial"]])
    if not refusal and short and ensemble and single <= seconds_left:
        logger.info(
            "The final model: a bag of %d fits of the best trial instead of the ensemble, whose "
            "bag (about %.0f s) does not fit in the %.0f s left.",
            folds, needed, seconds_left,
        )  # fmt: skip
        return {
            "folds": folds,
            "jobs": int(bagging.get("jobs", 1)),
            "replaces_ensemble": True,
            "reason": f"the ensemble's bag (about {needed:.0f} s) does not fit in the "
            f"{seconds_left:.0f} s left of tuning.timeout, the best trial's (about {single:.0f} "
            "s) does, and a bag lowers the error more than an ensemble",
        }
    reason = refusal or (
        f"the {seconds_left:.0f} s left of tuning.timeout (with training.bagging.max_overrun) "
        f"do not cover it (about {needed:.0f} s)"
        if short
        else None
    )
    if reason:
        return {"folds": 1, "reason": reason}
    logger.info("The final model: a bag of %d fits, each without 1/%d of the rows.", folds, folds)
    return {
        "folds": folds,
        "jobs": int(bagging.get("jobs", 1)),
        "reason": f"averaging {folds} fits lowers the variance of one; about {needed:.0f} s",
    }


def chosen_calibration(
    setting: str,
    summary: Mapping[str, Any],
    out_of_fold: OutOfFoldPredictions | None,
    y: pd.Series,
    task: Mapping[str, Any],
    configuration: Mapping[str, Any],
    held_out_rows: Sequence[np.ndarray],
) -> dict[str, Any]:
    """training.calibration: a method by name maps the chosen model's probabilities by its fit
    to the out-of-fold predictions. `auto`, for a log_loss or brier search whose model is not
    bagged, fits each method on all folds but one and scores it on that one, and keeps the one
    that lowers the held-out loss most, or none when none lowers it. Isotonic is tried from
    ISOTONIC_MIN_ROWS rows: with fewer its steps follow the noise."""
    metric = configuration["metric"]
    bag = int((summary.get("bagging") or {}).get("folds", 1))
    ensemble = summary.get("ensemble")
    kept = out_of_fold.outputs if out_of_fold is not None else {}
    reason = (
        "training.calibration is none" if setting == "none"
        else "not a classification" if task["type"] != "classification"
        else f"auto calibrates a search scored by {' or '.join(LOSSES)}; this one optimised "
        f"{metric}" if setting == "auto" and metric not in LOSSES
        else f"the model is a bag of {bag} fits, whose averaged probabilities are softer than "
        "the out-of-fold ones a calibration would be fitted on"
        if setting == "auto" and bag > 1
        else "fewer than two folds to fit it on and check it on" if len(held_out_rows) < 2
        else "no out-of-fold predictions of the chosen model were kept to fit it on"
        if not ensemble and summary["best_trial"] not in kept
        else None
    )  # fmt: skip
    if reason:
        return {"method": "none", "reason": reason}
    oof = (
        sum(m["weight"] * kept[m["trial"]] for m in ensemble["members"])
        if ensemble
        else kept[summary["best_trial"]]
    )
    classes = list(task["classes"])
    covered = out_of_fold.covered
    methods = (
        [setting] if setting != "auto"
        else [m for m in CALIBRATORS if m != "isotonic" or len(covered) >= ISOTONIC_MIN_ROWS]
    )  # fmt: skip
    loss = metric if metric in LOSSES else "log_loss"
    held_out = {
        method: float(np.mean(losses))
        for method, losses in held_out_losses(oof, y, classes, held_out_rows, methods, loss).items()
    }
    figures = {"setting": setting, "loss": loss, "held_out": held_out}
    if setting == "auto" and "isotonic" not in methods:
        figures["skipped"] = f"isotonic (fewer than {ISOTONIC_MIN_ROWS} out-of-fold rows)"
    best = min(methods, key=held_out.__getitem__)
    before = held_out["uncalibrated"]
    if setting == "auto" and held_out[best] >= before:
        return {
            "method": "none",
            "reason": f"none of {', '.join(methods)} lowered the held-out {loss}",
            **figures,
        }
    calibrator = fit_calibrator(best, oof[covered], y.iloc[covered], classes)
    logger.info(
        "Probabilities calibrated by %s: held-out %s %.5g instead of %.5g.",
        calibrator, loss, held_out[best], before,
    )  # fmt: skip
    return {
        "method": best,
        "parameters": calibrator.parameters(),
        "description": str(calibrator),
        **figures,
    }


def ensemble_of_best_trials(
    study: optuna.Study,
    out_of_fold: OutOfFoldPredictions,
    y: pd.Series,
    task: Mapping[str, Any],
    configuration: Mapping[str, Any],
    max_size: int,
    held_out_rows: Sequence[np.ndarray],
) -> dict[str, Any] | None:
    """Members with weights when the ensemble beats the best single trial out of sample (each
    chosen on the other folds, scored on the held-out one: `held_out_choice`), else None.
    `fold_scores` and `cv_score` are those held-out scores, not the flattering ones the weights
    were selected on. Any gain counts: asking for more than one standard error of the fold gains
    changed 3 of 21 models, 1 for the better, 1.009 times the error on the geometric mean
    (benchmarks/results/reselect-ensemble-rules-60s.md)."""
    metric = configuration["metric"]
    selection = select_ensemble(out_of_fold, y, metric, task, max_size)
    if len(selection["weights"]) < 2 or len(held_out_rows) < 2:
        return None  # one fold leaves no other fold to choose on
    held_out = held_out_choice(out_of_fold, y, metric, task, max_size, held_out_rows)
    ensemble_score, single_score = (float(np.mean(held_out[k])) for k in held_out)
    if not is_better(get_metric(metric, task), ensemble_score, single_score):
        logger.info(
            "The best trial is kept: chosen on other folds and scored on the held-out one, the "
            "ensemble's %s %.5g does not beat the best single trial's %.5g.",
            metric,
            ensemble_score,
            single_score,
        )
        return None
    trials = {t.number: t for t in study.trials}
    members = []
    for number, weight in sorted(selection["weights"].items(), key=lambda item: -item[1]):
        algorithm, params = split_params(trials[number].params, configuration["algorithms"])
        members.append(
            {"trial": number, "algorithm": algorithm, "params": params, "weight": weight}
        )
    logger.info(
        "Ensemble of %d trials (%s): held-out %s %.5g against %.5g for the best single trial.",
        len(members),
        ", ".join(f"{m['algorithm']} {m['weight']:.2f}" for m in members),
        metric,
        ensemble_score,
        single_score,
    )
    return {
        "members": members,
        "cv_score": ensemble_score,
        "fold_scores": [float(score) for score in held_out["ensemble"]],
        "single_trial_cv_score": single_score,
    }
