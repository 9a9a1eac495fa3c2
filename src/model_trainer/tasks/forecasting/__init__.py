"""Time-series forecasting: a seasonal-naive baseline (the value one season earlier,
`seasonal_naive`), a small SARIMAX baseline (`sarimax`), and lag and rolling-mean features of
the target that a model can learn from (`lags`), all reading rows by their time column
(`time_index`).

They follow the saved-model contract: they take the raw feature table (target removed) and work
from each row's own time column, so the target history they need is stored when they are
fitted. The classes are exported here as well: models saved before this package was split
name them by this path.
"""

from model_trainer.tasks.forecasting.lags import (
    TargetLagFeatures,
    check_lag_settings,
    lag_configuration,
    lag_feature_names,
)
from model_trainer.tasks.forecasting.sarimax import SarimaxForecaster, sarimax_reason
from model_trainer.tasks.forecasting.seasonal_naive import (
    SeasonalNaiveForecaster,
    seasonal_naive_reason,
)

__all__ = [
    "SarimaxForecaster",
    "SeasonalNaiveForecaster",
    "TargetLagFeatures",
    "check_lag_settings",
    "lag_configuration",
    "lag_feature_names",
    "sarimax_reason",
    "seasonal_naive_reason",
]
