"""Best configuration -> evaluated model, baselines, importance, and the model to ship."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.base import clone

from model_trainer.evaluation import explanations
from model_trainer.evaluation.held_out import feature_importance, holdout_metrics, predictions_table
from model_trainer.search.tuning import data_fingerprint
from model_trainer.serving.integrity import joblib_file
from model_trainer.serving.model_card import model_card
from model_trainer.tasks import clustering
from model_trainer.tasks.forecasting import sarimax_reason, seasonal_naive_reason
from model_trainer.tracking.runs import log_learning_curves, log_model, registry_name
from model_trainer.training import final_fit as training
from model_trainer.training.baselines import baseline_pipelines
from model_trainer.training.fitting import fit_quietly

logger = logging.getLogger(__name__)

# The training settings a retrain's fresh search takes from the champion (retrain.search).
SEARCHED_WITH = ("calibration", "bagging", "decision_threshold", "early_stopping")


def fit_evaluation_model(
    train_split: pd.DataFrame,
    validation_split: pd.DataFrame,
    task: dict[str, Any],
    feature_types: dict[str, Any],
    model_configuration: dict[str, Any],
    study_summary: dict[str, Any],
    settings: dict[str, Any],
) -> tuple[Any, dict[str, Any]]:
    """Fit on train + validation: the model the test split judges (with the decision threshold
    tuned on the validation split, when training.decision_threshold asks for one)."""
    if task["type"] == "clustering":
        rows = pd.concat([train_split, validation_split], ignore_index=True)
        X, _ = _features_and_reference(rows, feature_types)
        pipeline = clustering.final_pipeline(
            study_summary, feature_types, model_configuration, len(X)
        )
        model, warnings = fit_quietly(pipeline, X, None)
        info = {
            "algorithm": study_summary["algorithm"],
            "params": study_summary["best_params"],
            "early_stopping": None,
            "decision_threshold": None,
            "learning_curves": [],
            "convergence_warnings": warnings,
            "n_training_rows": len(X),
        }
        return model, info
    model, info = training.fit_chosen_configuration(
        study_summary,
        task,
        feature_types,
        model_configuration,
        train_split,
        validation_split,
        settings,
    )
    log_learning_curves(info["learning_curves"])
    return model, info


def score_test_split(
    evaluation_model: Any,
    train_split: pd.DataFrame,
    validation_split: pd.DataFrame,
    test_split: pd.DataFrame,
    task: dict[str, Any],
    feature_types: dict[str, Any],
    model_configuration: dict[str, Any],
) -> tuple[dict[str, float], dict[str, dict[str, float]], pd.DataFrame]:
    """The tuned model and the baselines, each trained without the test rows, scored on them."""
    target = feature_types["target"]
    rows = pd.concat([train_split, validation_split], ignore_index=True)
    if task["type"] == "clustering":
        X_test, reference = _features_and_reference(test_split, feature_types)
        test_metrics, baseline_metrics, predictions = clustering.holdout_scores(
            evaluation_model,
            _features_and_reference(rows, feature_types)[0],
            X_test,
            reference,
            feature_types,
            model_configuration,
        )
        logger.info(
            "Test %s: %.4g on %d clusters (random assignment %.4g, kmeans %.4g).",
            model_configuration["metric"],
            test_metrics[model_configuration["metric"]],
            test_metrics["n_clusters"],
            baseline_metrics["dummy"][model_configuration["metric"]],
            baseline_metrics["kmeans"][model_configuration["metric"]],
        )
        return test_metrics, baseline_metrics, predictions
    X_test, y_test = test_split.drop(columns=[target]), test_split[target]
    baselines = baseline_pipelines(task, feature_types, model_configuration)
    fitted = {
        name: fit_quietly(model, rows.drop(columns=[target]), rows[target])[0]
        for name, model in baselines.items()
    }
    if "seasonal_naive" in fitted:
        logger.info("Baseline %s", seasonal_naive_reason(fitted["seasonal_naive"]))
    if "sarimax" in fitted:
        logger.info("Baseline %s", sarimax_reason(fitted["sarimax"]))
    test_metrics = holdout_metrics({"model": evaluation_model}, X_test, y_test, task)["model"]
    baseline_metrics = holdout_metrics(fitted, X_test, y_test, task)
    metric = model_configuration["metric"]
    logger.info(
        "Test %s: %.5g (dummy %.5g, %s %.5g).",
        metric,
        test_metrics[metric],
        baseline_metrics["dummy"][metric],
        model_configuration["simple_baseline"],
        baseline_metrics[model_configuration["simple_baseline"]][metric],
    )
    predictions = predictions_table(evaluation_model, X_test, y_test, task)
    return test_metrics, baseline_metrics, predictions


def compute_feature_importance(
    evaluation_model: Any,
    test_split: pd.DataFrame,
    task: dict[str, Any],
    feature_types: dict[str, Any],
    model_configuration: dict[str, Any],
    settings: dict[str, Any],
) -> pd.DataFrame:
    target = feature_types["target"]
    if task["type"] == "clustering":
        return clustering.assignment_importance(
            evaluation_model,
            _features_and_reference(test_split, feature_types)[0],
            int(settings["permutation_repeats"]),
            model_configuration["seed"],
            settings.get("permutation_max_rows"),
        )
    return feature_importance(
        evaluation_model,
        test_split.drop(columns=[target]),
        test_split[target],
        model_configuration["metric"],
        task,
        int(settings["permutation_repeats"]),
        model_configuration["seed"],
        settings.get("permutation_max_rows"),
        settings.get("permutation_max_seconds"),
    )


def explain_model(
    evaluation_model: Any,
    train_split: pd.DataFrame,
    test_split: pd.DataFrame,
    task: dict[str, Any],
    feature_types: dict[str, Any],
    model_configuration: dict[str, Any],
    settings: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """SHAP values of test rows against training rows (both sampled, within a time bound), the
    partial dependence of the top features, and their mean |SHAP| as a table and as MLflow
    metrics (`shap.<column>`)."""
    return explanations.explain_model(
        evaluation_model,
        train_split,
        test_split,
        task,
        feature_types,
        settings,
        int(model_configuration["seed"]),
    )


def refit_on_all_rows(
    evaluation_model: Any,
    train_split: pd.DataFrame,
    validation_split: pd.DataFrame,
    test_split: pd.DataFrame,
    feature_types: dict[str, Any],
    settings: dict[str, Any],
) -> tuple[Any, bytes, str]:
    """The shipped model learns from every row, once the test rows have done their judging.
    Also its joblib file and that file's SHA-256, which the model card records and every
    loader checks before unpickling (the file is written from these very bytes)."""
    if not settings.get("refit_on_all_rows", True):
        return evaluation_model, *joblib_file(evaluation_model)
    rows = pd.concat([train_split, validation_split, test_split], ignore_index=True)
    X, y = _features_and_reference(rows, feature_types)
    # a clustering's estimators ignore y (its reference column, or None)
    model, _ = fit_quietly(clone(evaluation_model), X, y, settings.get("checkpoints"))
    logger.info("Refit the final model on all %d rows.", len(rows))
    return model, *joblib_file(model)


def describe_model(
    train_split: pd.DataFrame,
    validation_split: pd.DataFrame,
    test_split: pd.DataFrame,
    task: dict[str, Any],
    feature_types: dict[str, Any],
    model_configuration: dict[str, Any],
    training_info: dict[str, Any],
    test_metrics: dict[str, float],
    baseline_metrics: dict[str, dict[str, float]],
    study_summary: dict[str, Any],
    model_sha256: str,
    settings: dict[str, Any],
    dataset: dict[str, Any],
) -> dict[str, Any]:
    """The card, with the training rows that /explain explains against (none for a task that
    is not explained, or when training.explanations.in_model_card is false)."""
    rows = pd.concat([train_split, validation_split, test_split], ignore_index=True)
    return model_card(
        task=task,
        feature_types=feature_types,
        input_columns=[c for c in rows.columns if c != feature_types["target"]],
        configuration=model_configuration,
        training_info=training_info,
        test_metrics=test_metrics,
        baseline_metrics=baseline_metrics,
        cross_validation=study_summary["cross_validation"],
        data_fingerprint=data_fingerprint(rows),
        n_rows=len(rows),
        refit_on_all_rows=bool(settings.get("refit_on_all_rows", True)),
        registered_model_name=registry_name(settings["registered_model_name"], dataset),
        model_sha256=model_sha256,
        explanation_background=explanations.card_background(
            train_split,
            task,
            feature_types,
            settings["explanations"],
            int(model_configuration["seed"]),
        ),
        time_column=dataset.get("time_column"),
        training_setup={
            "task": task,
            "feature_types": feature_types,
            "configuration": model_configuration,
            "training": {key: settings.get(key) for key in SEARCHED_WITH},
        },
    )


def log_model_to_mlflow(
    model: Any,
    model_card: dict[str, Any],
    train_split: pd.DataFrame,
    feature_types: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    return log_model(
        model,
        model_card,
        _features_and_reference(train_split, feature_types)[0],
        model_card["registered_model_name"],
    )


def _features_and_reference(
    rows: pd.DataFrame, feature_types: dict[str, Any]
) -> tuple[pd.DataFrame, pd.Series | None]:
    """The model's input columns and the target; a clustering may have no target."""
    target = feature_types["target"]
    return (rows.drop(columns=[target]), rows[target]) if target else (rows, None)
