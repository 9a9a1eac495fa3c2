"""The decision record: every choice the pipeline made on its own, why, and the conf key that
overrides it, so a user can see each one and change it without reading the code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def decision_record(
    *,
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    study_summary: Mapping[str, Any],
    training_info: Mapping[str, Any],
    tuning: Mapping[str, Any],
    metric_setting: str,
    leak_audit: Mapping[str, Any] | None = None,
) -> list[dict[str, str]]:
    cv = configuration["cv"]
    ensemble = training_info.get("ensemble")
    record = [
        _decision(
            "task type",
            task["type"] + (f" ({len(task['classes'])} classes)" if task.get("classes") else ""),
            task["reason"],
            "task.type",
        ),
        _decision(
            "metric optimised",
            configuration["metric"],
            "the default for the task" if metric_setting == "auto" else "set in conf",
            "metric",
        ),
        *(
            _decision(f"column '{name}' dropped", "not a feature", reason, "dataset.feature_types")
            for name, reason in feature_types["dropped"].items()
        ),
        *([_leak_audit_decision(leak_audit)] if leak_audit is not None else []),
        _decision(
            "feature types",
            ", ".join(
                f"{kind}: {count}" for kind, count in _count_types(feature_types["columns"]).items()
            ),
            "inferred from each column's dtype, cardinality and values",
            "dataset.feature_types",
        ),
        _decision(
            "categorical encoding",
            "one-hot up to {} levels; more levels: {}".format(
                configuration["encoding"].get("one_hot_max_categories", 15),
                configuration["encoding"].get("high_cardinality", "auto"),
            ),
            "auto = categories for LightGBM, XGBoost and HistGradientBoosting, which split on "
            "sets of levels (up to 255 levels; codes beyond), ordinal codes for other trees, "
            "target encoding for other models (for ranking, target encoding for all: an item's "
            "usual relevance is what its level says)",
            "model.encoding",
        ),
        _decision(
            "imputation",
            configuration["encoding"].get("imputation", "median"),
            configuration.get("imputation_reason", "set in conf"),
            "model.encoding.imputation",
        ),
        _decision(
            "algorithm families searched",
            ", ".join(configuration["algorithms"]),
            configuration["algorithms_reason"],
            "model.algorithm",
        ),
        _decision(
            "cross-validation",
            f"{cv['folds']}-fold {cv['strategy']}",
            cv["reason"],
            "validation.strategy, validation.folds",
        ),
        _decision(
            "search strategy",
            _search_strategy(tuning, study_summary, task["type"]),
            f"{study_summary['n_trials']} trials ({study_summary['n_complete']} complete, "
            f"{study_summary['n_pruned']} pruned, {study_summary['n_failed']} failed) in study "
            f"'{study_summary['study_name']}'",
            "tuning.*",
        ),
        _decision(
            "final model",
            _final_model(training_info),
            _why_final(study_summary, ensemble, task["type"]),
            "tuning.ensemble.enabled",
        ),
    ]
    if len(task.get("classes") or []) == 2:
        record.insert(
            1,
            _decision(
                "positive class",
                repr(task["positive_class"]),
                (task.get("positive_class_reason") or "set by task.positive_class")
                + "; binary precision, recall, f1 and pr_auc describe it",
                "task.positive_class (positiveClass in the task JSON)",
            ),
        )
    smoke_test = configuration.get("smoke_test")
    if smoke_test:
        record.append(
            _decision(
                "smoke run before the search",
                _smoke_test_outcome(smoke_test),
                "a broken configuration fails in seconds, not after the search",
                "smoke_test.enabled, smoke_test.rows",
            )
        )
    if task["type"] == "ranking":
        record.append(
            _decision(
                "ranking relevance",
                f"rows ranked within '{task['group_column']}' ({task['n_groups']} groups); "
                f"grades: {task['grading']}; relevant (MAP, MRR) from {task['relevant_from']:g}; "
                f"metrics at the top {task['k']}",
                "relevance grades are what ranking objectives learn; NDCG uses every grade",
                "task.relevant_from, task.k",
            )
        )
        item = task.get("item_column")
        record.append(
            _decision(
                "personalisation",
                f"each group of '{task['group_column']}' ranks by its history with each '{item}' "
                "(item bias, affinity from a factorisation of the training relevance, "
                "cross-fitted)"
                if item
                else "none: every group ranks an item the same way",
                _personalisation_why(cv) if item else "no dataset.item_column names what is ranked",
                "dataset.item_column, validation.strategy",
            )
        )
    time_column = cv.get("time_column")
    if task["type"] == "regression" and time_column:
        lags = configuration.get("time_series")
        record.append(
            _decision(
                "time series",
                f"rows ordered by '{time_column}'; "
                + (
                    f"target lags {lags['target_lags']}, rolling means {lags['rolling_windows']}, "
                    f"horizon {lags['horizon']}"
                    if lags
                    else "no target lags"
                )
                + "; baselines seasonal naive and SARIMAX",
                "lags are looked up in the history the model stored at fit, so a lag is known "
                "only within its length of the training data's end (off by default)",
                "dataset.time_column, model.time_series",
            )
        )
    imbalance = configuration.get("imbalance")
    if task["type"] == "classification" and imbalance:
        record.append(
            _decision(
                "class imbalance",
                _imbalance_handling(imbalance),
                imbalance["reason"],
                "model.imbalance.strategy",
            )
        )
    threshold = training_info.get("decision_threshold")
    if threshold:
        record.append(
            _decision(
                "decision threshold",
                f"{threshold['threshold']:.4g} on P({threshold['positive_class']})",
                f"maximises {threshold['objective']} on the {threshold['validation_rows']} "
                f"validation rows: {threshold['validation_score']:.4g} "
                f"({threshold['validation_score_at_0.5']:.4g} at 0.5)",
                "training.decision_threshold",
            )
        )
    bagging = training_info.get("bagging")
    if bagging:
        folds = bagging["folds"]
        choice = f"{folds} fits averaged" if folds > 1 else "none"
        record.append(_decision("bagging", choice, bagging["reason"], "training.bagging.folds"))
    calibration = training_info.get("calibration")
    if calibration and task["type"] == "classification":
        record.append(_calibration_decision(calibration))
    stopping = training_info.get("early_stopping")
    if stopping:
        record.append(
            _decision(
                "boosting rounds",
                str(stopping.get("n_estimators")),
                f"early stopping on the validation split, patience {stopping.get('patience')}",
                "training.early_stopping",
            )
        )
    return record


def _calibration_decision(calibration: Mapping[str, Any]) -> dict[str, str]:
    held_out = calibration.get("held_out") or {}
    figures = (
        "; held-out " + calibration["loss"] + ": "
        + ", ".join(f"{method} {value:.5g}" for method, value in held_out.items())
        + (f" ({calibration['skipped']} not tried)" if calibration.get("skipped") else "")
        if held_out else ""
    )  # fmt: skip
    method = calibration["method"]
    if method == "none":
        why = calibration["reason"] + figures
    elif calibration.get("setting", "auto") == "auto":
        why = (
            "the lowest held-out loss of the methods tried, each fitted on the chosen model's "
            "out-of-fold predictions of all folds but one and scored on that one" + figures
        )
    else:
        worse = held_out and held_out.get(method, 0.0) > held_out.get("uncalibrated", 0.0)
        why = (
            "training.calibration names it; fitted on the chosen model's out-of-fold "
            "predictions" + figures
            + (": it raised the held-out loss, auto would not have calibrated" if worse else "")
        )  # fmt: skip
    # summaries saved before sigmoid and isotonic have no description
    choice = (
        calibration.get("description")
        or f"temperature scaling, T = {calibration.get('temperature', 1.0):.3g}"
    )
    return _decision(
        "probability calibration",
        "none" if method == "none" else choice,
        why,
        "training.calibration",
    )


def _leak_audit_decision(leak_audit: Mapping[str, Any]) -> dict[str, str]:
    findings = [f for f in leak_audit["findings"] if f.get("leak", True)]
    notes = [f["evidence"] for f in leak_audit["findings"] if not f.get("leak", True)]
    if findings:
        choice = f"{len(findings)} possible leak(s): " + "; ".join(f["evidence"] for f in findings)
    else:
        choice = "nothing found"
    action = leak_audit["action"]
    why = {
        "warn": "reported, nothing changed (action: warn)",
        "drop": f"leaking features dropped: {', '.join(leak_audit['dropped']) or 'none'}",
        "fail": "none found, so the run went on (action: fail)",
    }[action]
    return _decision("leak audit", choice, "; ".join([why, *notes]), "dataset.leak_audit.action")


def _decision(decision: str, choice: str, why: str, override: str) -> dict[str, str]:
    return {"decision": decision, "choice": choice, "why": why, "override": override}


def _smoke_test_outcome(smoke_test: Mapping[str, Any]) -> str:
    if not smoke_test.get("enabled"):
        return "skipped"
    return (
        f"passed: {', '.join(smoke_test['seconds_by_family'])} fit {smoke_test['rows']} rows "
        f"in {smoke_test['seconds']:.2g} s"
    )


def _personalisation_why(cv: Mapping[str, Any]) -> str:
    """Why the history is used, and whether this run could judge it: group-disjoint folds and
    test groups have no history, so only folds that keep a group on both sides can."""
    why = "what a group made of the items before orders its rows"
    if cv.get("strategy") == "group":
        why += (
            "; but the CV and test groups are unseen (group-disjoint), so they have no history "
            "and neither the search nor the test score judged it: validation.strategy "
            "group_timeseries (with a time column) does"
        )
    return why


def _imbalance_handling(imbalance: Mapping[str, Any]) -> str:
    by_algorithm = imbalance.get("by_algorithm") or {}
    if imbalance["strategy"] == "none" or not by_algorithm:
        return "none"
    searched = " (searched: on or off)" if imbalance.get("searched") else ""
    return ", ".join(
        f"{name}: {how}{searched if how != 'smote' else ''}" for name, how in by_algorithm.items()
    )


def _count_types(columns: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for info in columns.values():
        counts[info["type"]] = counts.get(info["type"], 0) + 1
    return counts


def _search_strategy(
    tuning: Mapping[str, Any], study_summary: Mapping[str, Any], task_type: str
) -> str:
    if not tuning.get("enabled", True):
        return "no search: each family's first portfolio configuration"
    if task_type == "clustering":
        return (
            f"tpe sampler on {study_summary.get('search_rows')} rows, a clustering that is no "
            f"answer pruned (model.clustering), portfolio first, up to "
            f"{tuning.get('n_trials')} trials / {tuning.get('timeout')} s"
        )
    requested = tuning.get("sampler", "auto")
    used = study_summary.get("sampler", requested)
    objectives = study_summary.get("objectives") or [study_summary["metric"]]
    parts = [
        f"{used} sampler"
        + (f" (chosen by tuning.sampler: {requested})" if used != requested else ""),
        f"{tuning.get('pruner', 'median')} pruner" if len(objectives) == 1 else "no pruning",
        "portfolio first"
        if tuning.get("enqueue_portfolio", True) and used != "grid"
        else "no portfolio",
        f"up to {tuning.get('n_trials')} trials / {tuning.get('timeout')} s",
    ]
    if len(objectives) > 1:
        parts.append(
            f"objectives {', '.join(objectives)}: the Pareto front's trials "
            f"{study_summary.get('pareto_front')}; the final model is the one lowest in "
            f"{', '.join(objectives[1:])} among those within "
            f"{100 * float(tuning.get('pareto_tolerance', 0.01)):g}% of the front's best "
            f"{objectives[0]} (no ensemble)"
        )
    return ", ".join(parts)


def _final_model(training_info: Mapping[str, Any]) -> str:
    members = training_info.get("ensemble")
    if members:
        return "weighted ensemble of " + ", ".join(
            f"{m['algorithm']} ({m['weight']:.2f})" for m in members
        )
    return training_info["algorithm"]


def _why_final(study_summary: Mapping[str, Any], ensemble: Any, task_type: str) -> str:
    cv = study_summary["cross_validation"]
    if task_type == "clustering":
        return (
            f"best trial {study_summary['best_trial']}: {study_summary['metric']} "
            f"{study_summary['best_value']:.4g} on the search rows; refit on {cv['folds']} fold "
            f"parts, it agrees with itself at ARI {cv['mean']:.3g} ± {cv['std']:.2g}"
        )
    best = f"best trial {study_summary['best_trial']}: CV {study_summary['metric']} " + (
        f"{cv['mean']:.5g} ± {cv['std']:.2g}"
    )
    if ensemble:
        chosen = study_summary.get("ensemble") or {}
        score = chosen.get("cv_score", float("nan"))
        single = chosen.get("single_trial_cv_score", float("nan"))
        return (
            f"chosen on the other folds and scored on each held-out fold, its "
            f"{study_summary['metric']} {score:.5g} beat the best single trial's {single:.5g} "
            f"(chosen the same way; {best})"
        )
    if (study_summary.get("bagging") or {}).get("replaces_ensemble"):
        return f"{best}; an ensemble beat it, but only this trial's bag fitted in the time left"
    return best
