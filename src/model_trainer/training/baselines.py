"""The baselines every model is scored against on the test split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.dummy import DummyClassifier, DummyRegressor

from model_trainer.models.estimators import pipeline_from_configuration
from model_trainer.tasks.forecasting import SarimaxForecaster, SeasonalNaiveForecaster


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
