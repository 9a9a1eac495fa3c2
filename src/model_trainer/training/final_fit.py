"""The final model: refit the best configuration, with early stopping where the family has it."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from model_trainer.errors import ConfigurationError
from model_trainer.models.calibration import CalibratedClassifier, calibrated, calibrator_from
from model_trainer.models.early_stopping import fit_stopping_early, watched_curve, watched_metric
from model_trainer.models.ensemble import (
    FoldBag,
    WeightedEnsemble,
    predict_output,
    score_output,
)
from model_trainer.models.estimators import (
    pipeline_from_configuration,
    predicted_labels,
    with_decision_threshold,
)
from model_trainer.models.metrics import classification_metrics, evaluate, get_metric
from model_trainer.search.tuning import sample_for_search
from model_trainer.tasks.forecasting import SarimaxForecaster, SeasonalNaiveForecaster
from model_trainer.tasks.ranking import RankingPipeline, by_group, misplacement, rank_within_groups
from model_trainer.training import checkpoints as checkpointing

logger = logging.getLogger(__name__)

PERMUTATION_BATCH_ROWS = 20_000
MIN_PERMUTATION_ROWS = 200  # fewer held-out rows make the drops mostly noise
THRESHOLD_OBJECTIVES = ("none", "f1", "balanced_accuracy")
THRESHOLD_CANDIDATES = 101  # quantiles of the validation scores tried as cut-offs


def fit_quietly(
    model: Any, X: pd.DataFrame, y: pd.Series, checkpoints: Mapping[str, Any] | None = None
) -> tuple[Any, list[str]]:
    """Fit and return the convergence warnings instead of printing them and forgetting them.
    With `checkpoints` (training.checkpoints) enabled, a Pipeline whose estimator trains in
    rounds is fit in saved chunks, so a killed run started again resumes the fit. OpenMP runs
    one thread, as every family's n_jobs does: HistGradientBoosting has no n_jobs, and its
    threads spin when another process holds a core (10 fits of 2,000 rows: 6-25 s against 2.2 s
    on one thread, on 2 cores shared with a test run)."""
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(1, user_api="openmp"):
        warnings.simplefilter("always", ConvergenceWarning)
        if checkpoints and checkpoints.get("enabled"):
            model = _checkpointed_fit(model, X, y, checkpoints)
        else:
            model.fit(X, y)
    messages = sorted(
        {str(w.message)[:300] for w in caught if issubclass(w.category, ConvergenceWarning)}
    )
    return model, messages


def _checkpointed_fit(
    model: Any, X: pd.DataFrame, y: pd.Series, checkpoints: Mapping[str, Any]
) -> Any:
    """A final model wrapped in a decision threshold or made of an ensemble's members gets each
    of its Pipelines checkpointed, each under its own fingerprint."""
    wrapper = model.steps[-1][1] if isinstance(model, Pipeline) and len(model.steps) == 1 else None
    if isinstance(wrapper, FixedThresholdClassifier):
        wrapper.estimator_ = _checkpointed_fit(clone(wrapper.estimator), X, y, checkpoints)
        return model
    if isinstance(wrapper, CalibratedClassifier):
        wrapper.estimator_ = _checkpointed_fit(clone(wrapper.estimator), X, y, checkpoints)
        wrapper.classes_ = np.asarray(wrapper.estimator_.classes_)
        return model
    if isinstance(wrapper, FoldBag):
        wrapper.fit_with(
            X,
            y,
            lambda member, X_part, y_part: _checkpointed_fit(member, X_part, y_part, checkpoints),
        )
        return model
    if isinstance(wrapper, WeightedEnsemble):
        wrapper.with_fitted(
            [_checkpointed_fit(clone(member), X, y, checkpoints) for member in wrapper.estimators]
        )
        return model
    if not checkpointing.supports(model):
        steps = [name for name, _ in getattr(model, "steps", [])]
        logger.info(
            "No checkpoints for a model with steps %s: they apply to a preprocess + model "
            "Pipeline whose model trains in rounds (LightGBM, XGBoost, neural network).",
            steps,
        )
        return model.fit(X, y)
    fitted, info = checkpointing.checkpointed_fit(
        model,
        X,
        y,
        int(checkpoints.get("every", 100)),
        checkpoints["folder"],
        keep=bool(checkpoints.get("keep", False)),
    )
    logger.info(
        "Checkpointed fit %s: %d rounds, resumed from round %d.",
        info["fingerprint"], info["rounds"], info["resumed_from"],
    )  # fmt: skip
    return fitted


def validation_fit(
    pipeline: Pipeline,
    style: str,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_validation: pd.DataFrame,
    y_validation: pd.Series,
    patience: int | None,
    metric: str | None = None,
    k: int = 10,
) -> tuple[int | None, dict[str, Any]]:
    """Fit on the train split, scored at each boosting round on itself and the validation split
    (the preprocessor is fit on train only). With `patience`, rounds stop early on the validation
    score of `metric` (the tuned one, where the library has it: BOOSTING_METRICS; NDCG@k per
    group for a ranker) and the chosen count is returned. The curve is what the report plots and
    MLflow logs."""
    fit_args: dict[str, Any] = {}
    if isinstance(pipeline, RankingPipeline):
        group, levels = pipeline.group_column, pipeline.relevance_values
        X_train, y_train, train_codes = by_group(X_train, y_train, group, levels)
        X_validation, y_validation, validation_codes = by_group(
            X_validation, y_validation, group, levels
        )
        if style == "lightgbm":
            sizes = [np.bincount(train_codes), np.bincount(validation_codes)]
            fit_args = {"group": sizes[0], "eval_group": sizes, "eval_at": [k]}
        else:
            fit_args = {"qid": train_codes, "eval_qid": [train_codes, validation_codes]}
    watched = watched_metric(style, metric, y_train)
    if fit_args:  # a ranker: NDCG at the task's k (LightGBM names it from eval_at)
        watched = f"ndcg@{k}"
    _, rounds, history = fit_stopping_early(
        pipeline,
        style,
        X_train,
        y_train,
        [(X_validation, y_validation)],
        patience,
        None if fit_args and style == "lightgbm" else watched,
        fit_args,
        train_first=True,
    )
    name, train_values, greater = watched_curve(history[0], style, watched)
    validation_values = watched_curve(history[1], style, watched)[1]
    curve = learning_curve(
        "boosting round",
        (name, train_values, greater),
        (name, validation_values, greater),
        final_step=rounds or len(validation_values),
        source="fit on the train split, scored on the validation split",
    )
    return rounds, curve


def learning_curve(
    unit: str,
    train: tuple[str, list[float], bool],
    validation: tuple[str, list[float], bool],
    final_step: int | None,
    source: str,
) -> dict[str, Any]:
    """Train and validation values per step (1-based), each as (metric, values, greater is
    better); `final_step` is the step the kept model ends at (None: the validation best),
    `best_step` the validation best."""
    name, values, greater = validation
    best = int(np.argmax(values) if greater else np.argmin(values)) + 1
    return {
        "unit": unit,
        "source": source,
        "train": {"metric": train[0], "values": train[1], "greater_is_better": train[2]},
        "validation": {"metric": name, "values": values, "greater_is_better": greater},
        "best_step": best,
        "final_step": final_step or best,
    }


def epoch_curves(model: Any) -> list[dict[str, Any]]:
    """Per-epoch curves of the neural networks inside a fitted model: training loss, and the
    score on the share of rows the network held out for its own early stopping."""
    curves = []
    for name, estimator in _fitted_estimators(model):
        scores = getattr(estimator, "validation_scores_", None)
        if not hasattr(estimator, "loss_curve_") or not scores:
            continue
        score = "accuracy" if hasattr(estimator, "classes_") else "r2"
        curve = learning_curve(
            "epoch",
            ("loss", list(map(float, estimator.loss_curve_)), False),
            (score, list(map(float, scores)), True),
            final_step=None,  # early stopping restores the best epoch's weights
            source="fit on the train and validation splits, scored on the share it held out "
            f"(validation_fraction {estimator.validation_fraction})",
        )
        curves.append({"model": name, **curve})
    return curves


def _fitted_estimators(model: Any) -> list[tuple[str, Any]]:
    """(family step name, fitted estimator) of a saved model: a Pipeline, a threshold wrapper
    around one, or an ensemble of them."""
    if isinstance(model, Pipeline):
        return [e for _, step in model.steps for e in _fitted_estimators(step)]
    if isinstance(model, WeightedEnsemble):
        return [e for member in model.estimators_ for e in _fitted_estimators(member)]
    if hasattr(model, "estimator_"):  # FixedThresholdClassifier, LabelEncodedClassifier
        return _fitted_estimators(model.estimator_)
    return [(type(model).__name__, model)]


def build_final_pipeline(
    best: Mapping[str, Any],
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    settings: Mapping[str, Any],
) -> tuple[Pipeline, dict[str, Any]]:
    """The best trial's configuration, or the ensemble of trials when it scored better in CV,
    its probabilities calibrated when the search chose so (`calibration`). `info` names
    the (heaviest) family and its parameters, and the members with their weights."""
    members = (best.get("ensemble") or {}).get("members") or [
        {"algorithm": best["algorithm"], "params": best["best_params"], "weight": 1.0}
    ]
    built = [
        member_pipeline(
            m["algorithm"], m["params"], task, feature_types, configuration, train, validation,
            settings,
        )
        for m in members
    ]  # fmt: skip
    curves = [member_info.pop("learning_curve") for _, member_info in built]
    if len(built) > 1:  # each member's curve under its own family, numbered as in the ensemble
        curves = [
            curve and {**curve, "model": f"{curve['model']} member {number}"}
            for number, curve in enumerate(curves, start=1)
        ]
    pipeline, first = built[0]
    # a copy: the members' own entries below must not carry the whole ensemble's curves
    info = {**first, "learning_curves": [curve for curve in curves if curve]}
    if len(built) > 1:
        weights = [m["weight"] for m in members]
        ensemble = WeightedEnsemble([p for p, _ in built], weights)
        pipeline = Pipeline([("ensemble", ensemble)])
        info["ensemble"] = [
            {**member_info, "weight": weight}
            for (_, member_info), weight in zip(built, weights, strict=True)
        ]
    bagging = best.get("bagging") or {}
    info["bagging"] = bagging or None
    if int(bagging.get("folds", 1)) > 1:
        bag = FoldBag(pipeline, bagging["folds"], int(configuration["seed"]), bagging["jobs"])
        pipeline = Pipeline([("bag", bag)])
    calibration = best.get("calibration") or {}
    info["calibration"] = calibration or None
    calibrator = calibrator_from(calibration)
    if calibrator is not None:
        pipeline = calibrated(pipeline, calibrator)
    return pipeline, info


def fit_chosen_configuration(
    best: Mapping[str, Any],
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    settings: Mapping[str, Any],
) -> tuple[Any, dict[str, Any]]:
    """The search's choice built (`build_final_pipeline`), its decision threshold tuned on the
    validation rows when training.decision_threshold asks for one, and fit on train +
    validation: the model a test split judges. `info` adds the threshold, the convergence
    warnings, the rows and the learning curves."""
    target = feature_types["target"]
    pipeline, info = build_final_pipeline(
        best, task, feature_types, configuration, train, validation, settings
    )
    pipeline, info["decision_threshold"] = apply_decision_threshold(
        pipeline, task, train, validation, target, settings.get("decision_threshold", "none")
    )
    rows = pd.concat([train, validation], ignore_index=True)
    model, info["convergence_warnings"] = fit_quietly(
        pipeline, rows.drop(columns=[target]), rows[target], settings.get("checkpoints")
    )
    info["n_training_rows"] = len(rows)
    info["learning_curves"] += epoch_curves(model)
    return model, info


def member_pipeline(
    algorithm: str,
    params: Mapping[str, Any],
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    settings: Mapping[str, Any],
) -> tuple[Pipeline, dict[str, Any]]:
    """One configuration, its boosting rounds set by early stopping when enabled, and the
    learning curve of that fit (also without early stopping, unless training.learning_curves
    is false: it costs one more fit of the train split)."""
    target = feature_types["target"]
    params = dict(params)
    pipeline = pipeline_from_configuration(
        configuration, algorithm, params, task["type"], feature_types
    )
    info: dict[str, Any] = {
        "algorithm": algorithm,
        "params": params,
        "early_stopping": None,
        "learning_curve": None,
    }
    style = configuration["registry"][algorithm].get("early_stopping")
    if not style or not len(validation):
        return pipeline, info
    stopping = settings.get("early_stopping", {})
    patience = int(stopping.get("patience", 50))
    min_rows = int(stopping.get("min_validation_rows", 0))
    ranker = task["type"] == "ranking"
    stops = stopping.get("enabled", True) and len(validation) >= min_rows and not ranker
    if stopping.get("enabled", True) and ranker:
        # NDCG@k moves in steps as rows swap places: its best round on one validation split is
        # mostly luck (a ranker of 300 CV-tuned rounds once stopped at 3)
        logger.info(
            "Kept the %d boosting rounds of %s tuned by CV: a ranking metric is too uneven "
            "from round to round to stop early on.",
            params.get("n_estimators", 0), algorithm,
        )  # fmt: skip
    elif stopping.get("enabled", True) and not stops:
        logger.info(
            "Kept the %d boosting rounds of %s tuned by CV: %d validation rows are too few to "
            "stop early on (training.early_stopping.min_validation_rows = %d).",
            params.get("n_estimators", 0), algorithm, len(validation), min_rows,
        )  # fmt: skip
    if not stops and not settings.get("learning_curves", True):
        return pipeline, info
    rounds, curve = validation_fit(
        pipeline,
        style,
        train.drop(columns=[target]),
        train[target],
        validation.drop(columns=[target]),
        validation[target],
        patience if stops else None,
        configuration["metric"],
        int(task.get("k", 10)),
    )
    info["learning_curve"] = {"model": algorithm, **curve}
    if rounds:
        params["n_estimators"] = rounds
        pipeline = pipeline_from_configuration(
            configuration, algorithm, params, task["type"], feature_types
        )
        info["early_stopping"] = {"n_estimators": rounds, "patience": patience}
        logger.info(
            "Early stopping of %s on the validation split chose %d rounds.", algorithm, rounds
        )
    return pipeline, info


def apply_decision_threshold(
    pipeline: Pipeline,
    task: Mapping[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    target: str,
    objective: str,
) -> tuple[Pipeline, dict[str, Any] | None]:
    """For a binary task, the positive-class probability cut-off that maximises `objective`
    (f1 or balanced_accuracy) on the validation split, for a model fit on the train split: the
    test split never takes part. The returned pipeline predicts with it; none keeps argmax."""
    if objective not in THRESHOLD_OBJECTIVES:
        raise ConfigurationError(
            f"Unknown training.decision_threshold '{objective}'.",
            f"Use one of: {', '.join(THRESHOLD_OBJECTIVES)}.",
        )
    if objective == "none":
        return pipeline, None
    if task["type"] != "classification" or len(task["classes"]) != 2:
        logger.info("No decision threshold: it applies to binary classification only.")
        return pipeline, None
    if validation.empty:
        raise ConfigurationError(
            "training.decision_threshold is tuned on the validation split, which is empty.",
            "Set split.validation_fraction above 0, or training.decision_threshold to none.",
        )
    model, _ = fit_quietly(clone(pipeline), train.drop(columns=[target]), train[target])
    y = validation[target]
    classes, positive = list(task["classes"]), task["positive_class"]
    negative = classes[1 - classes.index(positive)]
    scores = predict_output(model, validation.drop(columns=[target]), task)[
        :, classes.index(positive)
    ]
    candidates = np.unique(np.quantile(scores, np.linspace(0, 1, THRESHOLD_CANDIDATES)))

    def value_at(threshold: float) -> float:
        predicted = np.where(scores >= threshold, positive, negative)
        return classification_metrics(y, predicted, None, classes, task, (objective,))[objective]

    values = [value_at(threshold) for threshold in candidates]
    best = int(np.argmax(values))
    chosen = {
        "threshold": float(candidates[best]),
        "objective": objective,
        "positive_class": positive,
        "validation_score": float(values[best]),
        "validation_score_at_0.5": value_at(0.5),
        "validation_rows": len(validation),
    }
    logger.info(
        "Decision threshold %.4g for '%s' maximises validation %s: %.4g (%.4g at 0.5).",
        chosen["threshold"], positive, objective, values[best], chosen["validation_score_at_0.5"],
    )  # fmt: skip
    return with_decision_threshold(pipeline, chosen["threshold"], positive), chosen


def baseline_pipelines(
    task: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    configuration: Mapping[str, Any],
) -> dict[str, Any]:
    """A dummy that ignores the features, and a simple linear model with default parameters;
    for a regression ordered by a time column, also the seasonal-naive forecast (the value one
    season before), the bar any forecaster must clear, and a small SARIMAX on the target alone
    (the classical statistical forecast; it falls back to the seasonal naive if it cannot fit)."""
    dummy = (
        DummyClassifier(strategy="prior")
        if task["type"] == "classification"
        else DummyRegressor(strategy="mean")  # for ranking, one score: a random order
    )
    simple = configuration["simple_baseline"]
    baselines = {
        "dummy": dummy,
        simple: pipeline_from_configuration(configuration, simple, {}, task["type"], feature_types),
    }
    time_column = configuration["cv"].get("time_column")
    if task["type"] == "regression" and time_column:
        baselines["seasonal_naive"] = SeasonalNaiveForecaster(time_column)
        baselines["sarimax"] = SarimaxForecaster(time_column)
    return baselines


def feature_importance(
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    metric: str,
    task: Mapping[str, Any],
    repeats: int,
    seed: int,
    max_rows: int | None = None,
    max_seconds: float | None = None,
) -> pd.DataFrame:
    """Permutation importance on held-out rows, per raw input column, in metric units: the drop
    in score when the column is shuffled. Shuffled copies are stacked and predicted in a few
    large batches (a predict's fixed cost dominates on small tables); `max_rows` bounds it, and
    `max_seconds` too: a model that predicts slowly (an ensemble, a bag, categorical splits) is
    shuffled on fewer rows, as many as the baseline prediction's pace says fit in the time."""
    if max_rows and len(X) > max_rows:
        X = X.sample(max_rows, random_state=seed)
        y = y.loc[X.index]
    X, y = X.reset_index(drop=True), y.reset_index(drop=True)
    sign = 1.0 if get_metric(metric, task).greater_is_better else -1.0
    ranking = task["type"] == "ranking"
    # The group column says which rows are ranked together: it is no feature to shuffle.
    columns = [c for c in X.columns if not ranking or c != task["group_column"]]
    started = time.perf_counter()
    output = predict_output(model, X, task)
    seconds_per_row = (time.perf_counter() - started) / max(len(X), 1)
    affordable = (
        int(max_seconds / (seconds_per_row * len(columns) * repeats))
        if max_seconds and columns and seconds_per_row > 0
        else len(X)
    )
    rows = max(affordable, MIN_PERMUTATION_ROWS)
    if rows < len(X):  # stratified by class; a ranking's whole groups
        held_out = len(X)
        X, y = sample_for_search(X, y, rows, task, {}, seed)
        output = predict_output(model, X, task)
        logger.info(
            "Permutation importance on %d of %d held-out rows, to keep within "
            "training.permutation_max_seconds (%gs): the model predicts %.0f rows a second.",
            len(X), held_out, max_seconds, 1.0 / seconds_per_row,
        )  # fmt: skip
    groups = X[task["group_column"]].to_numpy() if ranking else None
    baseline = score_output(output, y, metric, task, groups)
    rng = np.random.default_rng(seed)
    # repeat by repeat, so that stopping at the time bound leaves every column shuffled alike
    shuffles = [(column, rng.permutation(len(X))) for _ in range(repeats) for column in columns]
    per_batch = max(1, PERMUTATION_BATCH_ROWS // len(X))
    drops: dict[str, list[float]] = {column: [] for column in columns}
    for start in range(0, len(shuffles), per_batch):
        # copying the shuffled tables costs what the prediction pace does not show: past the
        # bound, once every column has been shuffled, no further batch starts
        if max_seconds and start >= len(columns) and time.perf_counter() - started > max_seconds:
            break
        batch = shuffles[start : start + per_batch]
        copies = []
        for column, order in batch:
            copy = X.copy()
            copy[column] = X[column].to_numpy()[order]
            copies.append(copy)
        outputs = predict_output(model, pd.concat(copies, ignore_index=True), task)
        for index, (column, _) in enumerate(batch):
            output = outputs[index * len(X) : (index + 1) * len(X)]
            drops[column].append(sign * (baseline - score_output(output, y, metric, task, groups)))
    done = min((len(v) for v in drops.values()), default=repeats)
    if done < repeats:
        logger.info(
            "Permutation importance stopped after %d of %d repeats, at %.1f s: over "
            "training.permutation_max_seconds (%gs).",
            done, repeats, time.perf_counter() - started, max_seconds,
        )  # fmt: skip
        drops = {column: values[:done] for column, values in drops.items()}
    table = pd.DataFrame(
        {
            "feature": list(drops),
            "importance": [float(np.mean(v)) for v in drops.values()],
            "importance_std": [float(np.std(v)) for v in drops.values()],
        }
    )
    return table.sort_values("importance", ascending=False).reset_index(drop=True)


def holdout_metrics(
    models: Mapping[str, Any], X: pd.DataFrame, y: pd.Series, task: Mapping[str, Any]
) -> dict[str, dict[str, float]]:
    return {name: evaluate(model, X, y, task) for name, model in models.items()}


def predictions_table(
    model: Any, X: pd.DataFrame, y: pd.Series, task: Mapping[str, Any]
) -> pd.DataFrame:
    """Every held-out row with its actual value, prediction and error (then the rank or the
    class probabilities, then the inputs), worst first."""
    table = X.copy()
    table["actual"] = y.to_numpy()
    if task["type"] == "ranking":
        groups = X[task["group_column"]]
        table["predicted"] = model.predict(X)
        table["rank"] = rank_within_groups(table["predicted"], groups)
        table["error"] = misplacement(table["rank"], y, groups, task)
    elif task["type"] == "regression":
        table["predicted"] = model.predict(X)
        table["error"] = np.abs(table["predicted"] - table["actual"])
    else:
        proba = model.predict_proba(X)
        classes = list(model.classes_)
        table["predicted"] = predicted_labels(model, proba)
        actual_index = [classes.index(v) for v in y]
        table["probability_of_actual"] = proba[np.arange(len(y)), actual_index]
        for index, label in enumerate(classes):
            table[f"proba_{label}"] = proba[:, index]
        table["error"] = 1.0 - table["probability_of_actual"]
    outcome = [column for column in table.columns if column not in X.columns]
    first = ["actual", "predicted", "error"]  # what a reader looks at first, then the inputs
    table = table[[*first, *(c for c in outcome if c not in first), *X.columns]]
    return table.sort_values("error", ascending=False).reset_index(drop=True)
