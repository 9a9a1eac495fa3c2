"""What the numbers mean: headline metrics against baselines and rule-based recommendations,
for the training and evaluation reports (`pages` renders those as HTML)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from model_trainer.models.metrics import get_metric

FIXED_SCALE_METRICS = ("r2",)


def relative_change(metric: str, task: Mapping[str, Any], value: float, reference: float) -> float:
    """Improvement of `value` over `reference`, > 0 is better: as a fraction of the reference, or
    as a plain difference for metrics on a fixed 0..1 scale whose baseline sits near 0 (r2) and
    from a reference of 0 (an f1 of 0, say), of which no fraction can be taken."""
    sign = 1.0 if get_metric(metric, task).greater_is_better else -1.0
    if metric in FIXED_SCALE_METRICS or reference == 0:
        return sign * (value - reference)
    return sign * (value - reference) / abs(reference)


def recommendations(
    metric: str,
    task: Mapping[str, Any],
    test_metrics: Mapping[str, float],
    baseline_metrics: Mapping[str, Mapping[str, float]],
    cross_validation: Mapping[str, Any],
    training_info: Mapping[str, Any],
    thresholds: Mapping[str, float],
    imbalance_handling: str = "none",
) -> list[dict[str, str]]:
    """Each finding with its evidence and what to try; the rules are the thresholds in conf.
    `imbalance_handling` is model.imbalance's resolved strategy, so the advice is not to try
    what was already done."""
    if task["type"] == "clustering":
        return clustering_findings(metric, test_metrics, baseline_metrics, cross_validation)
    found: list[dict[str, str]] = []
    test_value, cv_mean = test_metrics[metric], cross_validation["mean"]
    gap = relative_change(metric, task, cv_mean, test_value)
    if gap > thresholds["overfitting_gap"]:
        found.append(
            {
                "finding": "overfitting",
                "evidence": f"CV {metric} {cv_mean:.4g} is {gap:.1%} better than test "
                f"{test_value:.4g}.",
                "advice": "Regularize more (smaller trees, more min samples per leaf, stronger "
                "penalties), add rows, or remove features that leak the target.",
            }
        )
    dummy = baseline_metrics.get("dummy", {}).get(metric)
    if (
        dummy is not None
        and relative_change(metric, task, test_value, dummy) < thresholds["baseline_margin"]
    ):
        found.append(
            {
                "finding": "underfitting",
                "evidence": f"test {metric} {test_value:.4g} is barely better than the dummy's "
                f"{dummy:.4g}.",
                "advice": "Check that the features carry signal about the target, add features, or "
                "give the search more trials and more flexible algorithms.",
            }
        )
    for name, values in baseline_metrics.items():
        if name != "dummy" and relative_change(metric, task, values[metric], test_value) > 0:
            found.append(
                {
                    "finding": "simple model is as good",
                    "evidence": f"{name} scores {values[metric]:.4g} against the tuned model's "
                    f"{test_value:.4g} on {metric}.",
                    "advice": f"Prefer {name}: as accurate, easier to explain and to serve.",
                }
            )
    if cv_mean and cross_validation["std"] / abs(cv_mean) > thresholds["unstable_cv_std"]:
        found.append(
            {
                "finding": "unstable folds",
                "evidence": f"CV std {cross_validation['std']:.4g} on a mean of {cv_mean:.4g}.",
                "advice": "Use more folds or repeated CV, and check for subgroups or outliers.",
            }
        )
    worst_fold = _worst_fold(metric, task, cross_validation)
    if (
        worst_fold is not None
        and -relative_change(metric, task, worst_fold, cv_mean) > thresholds["weak_fold_gap"]
    ):
        found.append(
            {
                "finding": "weak fold",
                "evidence": f"the worst CV fold scores {metric} {worst_fold:.4g} against a mean of "
                f"{cv_mean:.4g}.",
                "advice": "Some rows are much harder than the rest: look for a subgroup or a "
                "period the model misses (the worst predictions), or use more folds.",
            }
        )
    found += curve_findings(training_info.get("learning_curves", []), thresholds)
    counts = task.get("class_counts") or {}
    if (
        counts
        and max(counts.values()) / max(min(counts.values()), 1) > thresholds["imbalance_ratio"]
    ):
        found.append(
            {
                "finding": "imbalanced classes",
                "evidence": f"class sizes in {task.get('class_counts_from', 'the data')}: "
                f"{counts}.",
                "advice": (
                    "Judge by roc_auc, pr_auc or balanced accuracy; try class weights or a "
                    "tuned decision threshold."
                    if imbalance_handling == "none"
                    else f"Already handled by model.imbalance.strategy '{imbalance_handling}' "
                    "(see the decisions); judge by roc_auc, pr_auc or balanced accuracy, and "
                    "consider a tuned decision threshold (training.decision_threshold)."
                ),
            }
        )
    for message in training_info.get("convergence_warnings", []):
        found.append(
            {
                "finding": "convergence warning",
                "evidence": message,
                "advice": "Scale inputs, raise max_iter, or strengthen regularization.",
            }
        )
    return found


# Kaufman and Rousseeuw's reading of a mean silhouette: below 0.25, no substantial structure.
WEAK_SILHOUETTE = 0.25
MIN_STABILITY = 0.8  # mean ARI of the fold refits with the fit on all rows
MAX_NOISE_SHARE = 0.2


def clustering_findings(
    metric: str,
    test_metrics: Mapping[str, float],
    baseline_metrics: Mapping[str, Mapping[str, float]],
    stability: Mapping[str, Any],
) -> list[dict[str, str]]:
    """A clustering has no target to overfit: the questions are whether there is structure,
    whether the clusters survive other rows, and whether a plain KMeans does as well."""
    found = []
    silhouette = test_metrics.get("silhouette")
    if silhouette is not None and silhouette < WEAK_SILHOUETTE:
        found.append(
            {
                "finding": "weak structure",
                "evidence": f"test silhouette {silhouette:.3g} (below {WEAK_SILHOUETTE}: no "
                "substantial structure).",
                "advice": "The rows may not fall into groups on these columns: drop columns "
                "that are noise (feature importance), or treat the clusters as segments only.",
            }
        )
    if stability["mean"] < MIN_STABILITY:
        found.append(
            {
                "finding": "unstable clusters",
                "evidence": f"fold refits agree with the full fit at ARI {stability['mean']:.3g} "
                f"(+/- {stability['std']:.2g}).",
                "advice": "Other rows give other clusters: use fewer clusters, a density method, "
                "or more rows.",
            }
        )
    if test_metrics.get("noise_share", 0.0) > MAX_NOISE_SHARE:
        found.append(
            {
                "finding": "many rows left as noise",
                "evidence": f"{test_metrics['noise_share']:.0%} of the test rows are noise (-1).",
                "advice": "Lower min_cluster_size / min_samples, or use kmeans or "
                "gaussian_mixture, which assign every row.",
            }
        )
    kmeans = baseline_metrics.get("kmeans", {}).get(metric)
    model = test_metrics.get(metric)
    greater = metric != "davies_bouldin"
    if kmeans is not None and model is not None and (kmeans > model if greater else kmeans < model):
        found.append(
            {
                "finding": "simple model is as good",
                "evidence": f"plain kmeans scores {metric} {kmeans:.4g} against {model:.4g}.",
                "advice": "Prefer kmeans: as good, and its centres explain the clusters.",
            }
        )
    if "ari" in test_metrics and test_metrics["ari"] < 0.1:
        found.append(
            {
                "finding": "clusters ignore the reference column",
                "evidence": f"ARI {test_metrics['ari']:.3g} with the target column given.",
                "advice": "The groups found are not the labelled ones: to predict them, train a "
                "classifier instead.",
            }
        )
    return found


def _worst_fold(
    metric: str, task: Mapping[str, Any], cross_validation: Mapping[str, Any]
) -> float | None:
    scores = cross_validation.get("fold_scores") or []
    if len(scores) < 2 or cross_validation.get("strategy") == "loo":  # one row per fold
        return None
    return min(scores) if get_metric(metric, task).greater_is_better else max(scores)


def curve_findings(
    curves: list[Mapping[str, Any]], thresholds: Mapping[str, float]
) -> list[dict[str, str]]:
    """Overfitting seen in a learning curve: at the step the kept model ends at, the validation
    value is worse than its best by more than `curve_overfitting` (relative) while the gap to
    the training value has grown since that best step."""
    found = []
    for curve in curves:
        train, validation = curve["train"]["values"], curve["validation"]["values"]
        sign = 1.0 if curve["validation"]["greater_is_better"] else -1.0
        best, final = curve["best_step"] - 1, min(curve["final_step"], len(validation)) - 1
        if not validation[best]:
            continue
        worse = sign * (validation[best] - validation[final]) / abs(validation[best])
        same_metric = curve["train"]["metric"] == curve["validation"]["metric"]
        gap_grew = not same_metric or (
            abs(validation[final] - train[final]) > abs(validation[best] - train[best])
        )
        if worse > thresholds["curve_overfitting"] and gap_grew:
            found.append(
                {
                    "finding": "overfitting",
                    "evidence": f"{curve['model']}: validation {curve['validation']['metric']} "
                    f"{validation[final]:.4g} at {curve['unit']} {final + 1}, {worse:.1%} worse "
                    f"than its best {validation[best]:.4g} at {curve['unit']} {best + 1}, while "
                    "the training value kept improving.",
                    "advice": "Stop earlier (training.early_stopping, or fewer rounds or epochs "
                    "in the search space), or regularize more.",
                }
            )
    return found


def diagnosis_tags(findings: list[Mapping[str, str]]) -> dict[str, str]:
    """One MLflow tag per kind of finding (`diagnosis.overfitting`: `true`), so runs can be
    searched by what went wrong."""
    return {
        f"diagnosis.{re.sub(r'[^a-z0-9]+', '_', f['finding'].lower())}": "true" for f in findings
    }


def evaluation_recommendations(
    comparison: Mapping[str, Any],
    breakdown: pd.DataFrame,
    patterns: pd.DataFrame,
    missing_fractions: Mapping[str, float],
    card: Mapping[str, Any],
    thresholds: Mapping[str, float],
) -> list[dict[str, str]]:
    """Findings of an evaluation, each with its evidence and what to try; the rules are the
    thresholds in conf (evaluation.recommendations)."""
    metric, task = comparison["metric"], {"type": card["task"]}
    value = comparison["metrics"][metric]
    found: list[dict[str, str]] = []
    overlap = comparison.get("training_overlap")
    if overlap is not None and overlap > thresholds["training_overlap"]:
        found.append(
            {
                "finding": "evaluated on training rows",
                "evidence": f"{overlap:.0%} of these rows were in the data the model was "
                "trained on, so its metrics here are optimistic.",
                "advice": "Evaluate on rows collected after training (the shipped model is "
                "refit on every row, its test split included, unless "
                "training.refit_on_all_rows is false).",
            }
        )
    trained = comparison["at_training"].get(metric)
    if trained is not None:
        change = relative_change(metric, task, value, trained)
        if change < -thresholds["degradation"]:
            found.append(
                {
                    "finding": "worse than at training",
                    "evidence": f"{metric} {value:.4g} on this data against {trained:.4g} on its "
                    f"test split at training ({-change:.1%} worse).",
                    "advice": "The data may have moved since training: compare it with the "
                    "training data (`kedro run --pipeline=inference`, drift report) and retrain "
                    "on recent labelled rows.",
                }
            )
    dummy = comparison["dummy"][metric]
    if relative_change(metric, task, value, dummy) < thresholds["baseline_margin"]:
        found.append(
            {
                "finding": "barely better than the dummy",
                "evidence": f"{metric} {value:.4g} against {dummy:.4g} for a dummy that knows "
                "only this data's class shares (or mean).",
                "advice": "Check that this data is labelled and collected like the training "
                "data, and that its features still carry signal.",
            }
        )
    for earlier in comparison["earlier_versions"]:
        if (
            "metrics" in earlier
            and relative_change(metric, task, earlier["metrics"][metric], value) > 0
        ):
            found.append(
                {
                    "finding": "an earlier version is better",
                    "evidence": f"{earlier['model']} scores {earlier['metrics'][metric]:.4g} "
                    f"against {value:.4g} on {metric}, on the same rows.",
                    "advice": f"Keep serving {earlier['model']} (point the registry alias at "
                    "it), and look at what changed in the training data or configuration.",
                }
            )
    if not patterns.empty and patterns["lift"].iloc[0] >= thresholds["error_lift"]:
        top = patterns.iloc[0]
        found.append(
            {
                "finding": "errors concentrate",
                "evidence": f"where {top['feature']} is {top['segment']} ({top['rows']} rows) the "
                f"mean error is {top['lift']:.2g} times the overall mean.",
                "advice": "Collect more labelled rows like these, add a feature that tells them "
                "apart, or check the quality of their data.",
            }
        )
    if "recall" in breakdown:
        for _, row in breakdown[breakdown["recall"] < thresholds["min_class_recall"]].iterrows():
            found.append(
                {
                    "finding": "class poorly recognised",
                    "evidence": f"recall of class {row['class']} is {row['recall']:.2f} "
                    f"({row['rows']} rows, precision {row['precision']:.2f}).",
                    "advice": "Try class weights or a decision threshold tuned for this class "
                    "(the probabilities are in the predictions file), and add examples of it.",
                }
            )
    for name, now in missing_fractions.items():
        before = card["features"][name]["missing_fraction"]
        if now - before > thresholds["missing_increase"]:
            found.append(
                {
                    "finding": "more missing values than at training",
                    "evidence": f"{name} is missing in {now:.1%} of rows, {before:.1%} at "
                    "training.",
                    "advice": f"Check the pipeline that produces {name}: the model fills the "
                    "gaps with a guess.",
                }
            )
    return found
