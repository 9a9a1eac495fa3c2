"""The estimator registry: one entry per algorithm, read from conf (`model.algorithms`).

An entry names the estimator class per task, what preprocessing it needs, its fixed defaults,
its search space and a portfolio of strong configurations to try first. Adding an algorithm is
adding an entry in conf; this module only turns entries into fitted-ready objects.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Tags, get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from model_trainer.errors import ConfigurationError
from model_trainer.models.preprocessing import build_preprocessor
from model_trainer.tasks.forecasting import TargetLagFeatures, check_lag_settings, lag_feature_names
from model_trainer.tasks.ranking import HISTORY_COLUMNS, GroupItemHistory, RankingPipeline

TASKS = ("classification", "regression", "ranking")
IMBALANCE_STRATEGIES = ("auto", "none", "class_weight", "smote")


class Wrapper:
    """A wrapper hands X unchanged to the estimators it wraps, so what it accepts (sparse
    data, missing values) and the features it was fit on are theirs. Properties, not
    attributes set in fit: checkpointed final fits set the fitted estimators themselves."""

    def _wrapped(self) -> list[Any]:
        return [self.estimator]

    def _fitted(self) -> Any:
        return self.estimator_

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        inner = [get_tags(estimator).input_tags for estimator in self._wrapped()]
        tags.input_tags.sparse = all(t.sparse for t in inner)
        tags.input_tags.allow_nan = all(t.allow_nan for t in inner)
        return tags

    @property
    def n_features_in_(self) -> int:
        return self._fitted().n_features_in_

    @property
    def feature_names_in_(self) -> np.ndarray:
        return self._fitted().feature_names_in_


class LabelEncodedClassifier(Wrapper, ClassifierMixin, BaseEstimator):
    """Lets estimators that only accept 0..k-1 labels (XGBoost) keep the user's class labels."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> LabelEncodedClassifier:
        check_classification_targets(y)  # a LabelEncoder would make classes of a regression
        self.label_encoder_ = LabelEncoder().fit(y)
        if "eval_set" in fit_params:
            fit_params["eval_set"] = [
                (X_eval, self.label_encoder_.transform(y_eval))
                for X_eval, y_eval in fit_params["eval_set"]
            ]
        self.estimator_ = clone(self.estimator).fit(
            X, self.label_encoder_.transform(y), **fit_params
        )
        self.classes_ = self.label_encoder_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.label_encoder_.inverse_transform(self.estimator_.predict(X).astype(int))

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)


def algorithm_entry(registry: Mapping[str, Any], name: str, task: str) -> Mapping[str, Any]:
    if name not in registry:
        raise ConfigurationError(
            f"Unknown algorithm '{name}'.",
            f"Use 'auto' or one of: {', '.join(sorted(registry))} (model.algorithms in conf).",
        )
    entry = registry[name]
    if not entry.get(task):
        supported = [t for t in TASKS if entry.get(t)]
        raise ConfigurationError(
            f"Algorithm '{name}' does not support {task} (only {', '.join(supported)}).",
            "Choose another algorithm for this task, or 'auto'.",
        )
    return entry


def supports(registry: Mapping[str, Any], name: str, task: str) -> bool:
    return bool(registry.get(name, {}).get(task))


def make_estimator(
    registry: Mapping[str, Any], name: str, task: str, params: Mapping[str, Any], seed: int
) -> Any:
    entry = algorithm_entry(registry, name, task)
    arguments = {
        **(entry.get("defaults") or {}),
        **((entry.get("defaults_by_task") or {}).get(task) or {}),
        **params,
    }
    estimator = instantiate(
        entry[task],
        arguments,
        seed,
        name,
        f"Fix model.algorithms.{name}.defaults or its search_space in conf.",
    )
    if task == "classification" and entry.get("encode_labels"):
        return LabelEncodedClassifier(estimator)
    return estimator


def make_pipeline(
    registry: Mapping[str, Any],
    name: str,
    task: str,
    params: Mapping[str, Any],
    feature_types: Mapping[str, Any],
    encoding: Mapping[str, Any],
    seed: int,
    imbalance: Mapping[str, Any] | None = None,
    ranking: Mapping[str, Any] | None = None,
    time_series: Mapping[str, Any] | None = None,
) -> Pipeline:
    """Preprocessing + estimator as one object: what CV refits per fold and what gets saved.
    A SMOTE step sits between them (imblearn's Pipeline), so synthetic rows are made from each
    fold's training rows only and never at predict time. `ranking` (the ranking task) makes it
    a RankingPipeline, which fits the estimator with the rows' groups; with an item column,
    its "preprocess" step first adds each group's history with the item (GroupItemHistory).
    `time_series` (a
    regression with a time column and target lags or rolling windows set) makes the
    "preprocess" step a Pipeline of TargetLagFeatures, which adds the lag columns from the
    target history it stores at fit, then the column transforms, which treat them as numeric."""
    entry = algorithm_entry(registry, name, task)
    lagged = task == "regression" and _lags_on(time_series)
    if lagged:
        lags, windows, _ = check_lag_settings(
            time_series.get("target_lags"),
            time_series.get("rolling_windows"),
            time_series.get("horizon", 1),
        )
        feature_types = _with_numeric_columns(feature_types, lag_feature_names(lags, windows))
    history = task == "ranking" and bool((ranking or {}).get("item_column"))
    if history:
        feature_types = _with_numeric_columns(feature_types, HISTORY_COLUMNS)
    preprocessor = build_preprocessor(
        feature_types,
        scale=bool(entry.get("scale", False)),
        impute=not entry.get("native_missing", False),
        encoding=encoding,
        task=task,
        # SMOTE interpolates between rows: it has no meaning for a category
        native_categories=bool(entry.get("native_categorical"))
        and (imbalance or {}).get("by_algorithm", {}).get(name) != "smote",
    )
    if lagged:
        lag_step = TargetLagFeatures(
            time_series["time_column"],
            lags=list(time_series.get("target_lags") or []),
            windows=list(time_series.get("rolling_windows") or []),
            horizon=time_series.get("horizon", 1),
        )
        # Inside "preprocess": every caller that fits or applies the preprocessing on its own
        # (early stopping, checkpointed fits) takes raw columns and passes the target through.
        preprocessor = Pipeline([("target_lags", lag_step), ("columns", preprocessor)])
    if history:  # inside "preprocess" too, so early stopping's fits cross-fit it as well
        history_step = _group_item_history(ranking, seed)
        preprocessor = Pipeline([("group_item_history", history_step), ("columns", preprocessor)])
    balancing = (imbalance or {}).get("by_algorithm", {}).get(name, "none")
    estimator = make_estimator(
        registry, name, task, {**_weighting_params(balancing, imbalance), **params}, seed
    )
    if balancing == "smote":
        # Imported here: imblearn takes 0.2 s to import, and most runs never resample.
        from imblearn.over_sampling import SMOTE
        from imblearn.pipeline import Pipeline as SamplingPipeline

        sampler = SMOTE(k_neighbors=imbalance["smote_k_neighbors"], random_state=seed)
        return SamplingPipeline(
            [("preprocess", preprocessor), ("balance", sampler), ("model", estimator)]
        )
    if ranking:
        return RankingPipeline(
            [("preprocess", preprocessor), ("model", estimator)],
            group_column=ranking["group_column"],
            relevance_values=ranking.get("relevance_values"),
        )
    return Pipeline([("preprocess", preprocessor), ("model", estimator)])


def _group_item_history(ranking: Mapping[str, Any], seed: int) -> GroupItemHistory:
    """The ranker's history step, with model.group_item_history's settings."""
    settings = dict(ranking.get("history") or {})
    accepted = ("factors", "shrinkage", "cv", "cold_share")
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise ConfigurationError(
            f"model.group_item_history has unknown keys {unknown}.",
            f"Use only {', '.join(accepted)}.",
        )
    return GroupItemHistory(
        ranking["group_column"], ranking["item_column"], **settings, random_state=seed
    )


def _with_numeric_columns(feature_types: Mapping[str, Any], names: Any) -> dict[str, Any]:
    """Feature types with columns a step adds before the column transforms (read as numbers)."""
    new = {"type": "numeric", "n_unique": None, "missing_fraction": None, "dtype": "float64"}
    return {
        **feature_types,
        "columns": {**feature_types["columns"], **{column: dict(new) for column in names}},
    }


def prediction_steps(pipeline: Pipeline) -> Pipeline:
    """The steps that act at prediction time, as a plain Pipeline: a sampler (SMOTE) only
    resamples training rows, and a Pipeline ending in one has no `transform`."""
    return Pipeline([(n, s) for n, s in pipeline.steps if not hasattr(s, "fit_resample")])


def _lags_on(time_series: Mapping[str, Any] | None) -> bool:
    return bool(
        time_series
        and time_series.get("time_column")
        and (time_series.get("target_lags") or time_series.get("rolling_windows"))
    )


def _weighting_params(balancing: str, imbalance: Mapping[str, Any] | None) -> dict[str, Any]:
    """Searched parameters override these (logistic_regression searches class_weight itself)."""
    if balancing == "class_weight":
        return {"class_weight": "balanced"}
    if balancing == "scale_pos_weight":
        return {"scale_pos_weight": imbalance["scale_pos_weight"]}
    return {}


def pipeline_from_configuration(
    configuration: Mapping[str, Any],
    algorithm: str,
    params: Mapping[str, Any],
    task: str,
    feature_types: Mapping[str, Any],
) -> Pipeline:
    """make_pipeline with the registry, encoding and seed the model configuration chose."""
    return make_pipeline(
        configuration["registry"],
        algorithm,
        task,
        params,
        feature_types,
        configuration["encoding"],
        configuration["seed"],
        configuration.get("imbalance"),
        configuration.get("ranking"),
        configuration.get("time_series"),
    )


def instantiate(dotted: str, arguments: Mapping[str, Any], seed: int, name: str, fix: str) -> Any:
    """The class at `dotted` made with `arguments`, and the seed as its random_state when it
    takes one; parameters it refuses are a ConfigurationError with `fix`."""
    estimator_class = _import(dotted)
    arguments = dict(arguments)
    if "random_state" in estimator_class().get_params():
        arguments.setdefault("random_state", seed)
    try:
        return estimator_class(**arguments)
    except TypeError as exc:
        raise ConfigurationError(
            f"Parameters {sorted(arguments)} do not fit {dotted} (algorithm '{name}'): {exc}", fix
        ) from exc


def _import(dotted: str) -> type:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"Cannot import estimator class '{dotted}': {exc}",
            "Check the class path in model.algorithms, or install the package that provides it.",
        ) from exc


def choose_algorithms(
    registry: Mapping[str, Any],
    requested: str | list[str],
    auto_rules: list[Mapping[str, Any]],
    task: str,
    n_rows: int,
) -> tuple[list[str], str]:
    """The candidate families and why: by name, or by the first auto rule that fits the size."""
    if requested != "auto":
        names = [requested] if isinstance(requested, str) else list(requested)
        for name in names:
            algorithm_entry(registry, name, task)
        return names, "set by model.algorithm"
    for rule in auto_rules:
        if rule.get("max_rows") is None or n_rows <= rule["max_rows"]:
            names = [name for name in rule["algorithms"] if supports(registry, name, task)]
            limit = "any size" if rule.get("max_rows") is None else f"<= {rule['max_rows']} rows"
            return names, f"auto rule for {task} with {n_rows} rows ({limit})"
    raise ConfigurationError(
        f"No model.auto_rules entry covers {n_rows} rows.",
        "End model.auto_rules with an entry whose max_rows is null.",
    )


def choose_imbalance(
    task: Mapping[str, Any],
    settings: Mapping[str, Any],
    registry: Mapping[str, Any],
    algorithms: list[str],
    folds: int,
) -> dict[str, Any]:
    """How each family meets imbalanced classes, and why. `auto` acts when the largest class
    outnumbers the smallest more than `imbalance_ratio_above` times: the search tries each
    family with and without class weights (XGBoost's scale_pos_weight for two classes), since
    weights trade ranking and calibration for minority recall and the metric should decide;
    families without weights get SMOTE. Every count is the train split's (task["class_counts"]):
    the validation and test rows judge the model, so they must not shape it."""
    strategy = settings.get("strategy", "auto")
    if strategy not in IMBALANCE_STRATEGIES:
        raise ConfigurationError(
            f"Unknown model.imbalance.strategy '{strategy}'.",
            f"Use one of: {', '.join(IMBALANCE_STRATEGIES)}.",
        )
    if task["type"] != "classification":
        return {"strategy": "none", "reason": task["type"], "minority_share": None}
    counts = [task["class_counts"][str(label)] for label in task["classes"]]
    share = min(counts) / sum(counts)
    ratio = max(counts) / max(min(counts), 1)  # a class may be missing from the train split
    limit = float(settings.get("imbalance_ratio_above", 3.0))
    rows = task.get("class_counts_from", "the rows")
    sizes = f"the largest class is {ratio:.3g} times the smallest, {share:.1%} of {rows}"
    if strategy != "auto":
        reason = "set by model.imbalance.strategy"
    elif ratio <= limit:
        strategy, reason = "none", f"{sizes}: at most {limit:g} is balanced enough"
    else:
        reason = (
            f"{sizes}, above {limit:g}: class weights searched (on or off) where the family has "
            "them, else SMOTE"
        )
    by_algorithm = {
        name: _balancing(registry[name], strategy, binary=len(counts) == 2) for name in algorithms
    }
    imbalance = {
        "strategy": strategy,
        "reason": reason,
        "minority_share": round(share, 4),
        "by_algorithm": by_algorithm,
        "searched": strategy == "auto",
        "scale_pos_weight": counts[0] / max(counts[1], 1) if len(counts) == 2 else None,
    }
    if "smote" in by_algorithm.values():
        imbalance["smote_k_neighbors"] = _smote_neighbours(min(counts), settings, folds)
    return imbalance


def weighting_search_space(imbalance: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The search-space entry that lets the search turn a family's class weights on or off."""
    if not imbalance.get("searched"):
        return {}
    balancing = imbalance.get("by_algorithm", {}).get(name)
    if balancing == "class_weight":
        return {"class_weight": {"type": "categorical", "choices": [None, "balanced"]}}
    if balancing == "scale_pos_weight":
        ratio = imbalance["scale_pos_weight"]
        return {"scale_pos_weight": {"type": "categorical", "choices": [1.0, ratio]}}
    return {}


def _balancing(entry: Mapping[str, Any], strategy: str, binary: bool) -> str:
    if strategy in ("none", "smote"):
        return strategy
    params = _import(entry["classification"])().get_params()
    if "class_weight" in params:
        return "class_weight"
    if binary and "scale_pos_weight" in params:
        return "scale_pos_weight"
    return "smote" if strategy == "auto" else "none"


def _smote_neighbours(smallest_class: int, settings: Mapping[str, Any], folds: int) -> int:
    """SMOTE interpolates between a minority row and its neighbours of the same class: a CV fit
    set must hold more of them than `k_neighbors`. `smallest_class` is counted in the train
    split, which the CV rows (train and validation) include, so a fit set (all but one fold)
    holds at least (folds - 1) / folds of it."""
    in_fit = int(smallest_class * (folds - 1) / folds)
    if in_fit < 2:
        raise ConfigurationError(
            f"SMOTE needs at least 2 rows of the smallest class in each CV training fold; it has "
            f"{smallest_class} rows in the train split.",
            "Set model.imbalance.strategy to class_weight or none, or collect more rows of it.",
        )
    return min(int(settings.get("smote_k_neighbors", 5)), in_fit - 1)


def with_decision_threshold(model: Any, threshold: float, positive_class: Any) -> Pipeline:
    """The model (to be fit), predicting the positive class when its probability reaches
    `threshold`; predict_proba and classes_ unchanged. A Pipeline, as every saved model is."""
    wrapper = FixedThresholdClassifier(model, threshold=threshold, pos_label=positive_class)
    return Pipeline([("threshold", wrapper)])


def decision_threshold(model: Any) -> FixedThresholdClassifier | None:
    last = model.steps[-1][1] if isinstance(model, Pipeline) else model
    return last if isinstance(last, FixedThresholdClassifier) else None


def predicted_labels(model: Any, proba: np.ndarray) -> np.ndarray:
    """What `model.predict` returns, from probabilities already computed: the argmax, or the
    positive class at or above a tuned decision threshold."""
    classes = np.asarray(model.classes_)
    thresholded = decision_threshold(model)
    if thresholded is None:
        return classes[proba.argmax(axis=1)]
    positive = list(classes).index(thresholded.pos_label)
    return np.where(
        proba[:, positive] >= thresholded.threshold, classes[positive], classes[1 - positive]
    )
