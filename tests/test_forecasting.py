"""The seasonal-naive baseline and the target lag features on real daily data (Chicago L
ridership: a strong weekly pattern), plus the time formats and failures a task can bring."""

from __future__ import annotations

import json
import shutil

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from model_trainer.errors import ConfigurationError, DataValidationError
from model_trainer.tasks.forecasting import (
    SarimaxForecaster,
    SeasonalNaiveForecaster,
    TargetLagFeatures,
    sarimax_reason,
    seasonal_naive_reason,
)
from tests.conftest import BENCH, run_kedro, run_task

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

CHICAGO = BENCH / "chicago"
TARGET, TIME = "ridership", "date"


def rmse(actual: object, predicted: object) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


@pytest.fixture(scope="module")
def chicago() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train is the first 80% of days, test the last 20%; dates are read as strings."""
    return pd.read_csv(CHICAGO / "train.csv"), pd.read_csv(CHICAGO / "test.csv")


@pytest.fixture(scope="module")
def fitted(chicago: tuple[pd.DataFrame, pd.DataFrame]) -> SeasonalNaiveForecaster:
    train, _ = chicago
    return SeasonalNaiveForecaster(TIME).fit(train.drop(columns=TARGET), train[TARGET])


def test_beats_the_training_mean_on_later_days(chicago, fitted) -> None:
    # Measured: seasonal naive RMSE 3.066 vs training mean RMSE 7.343 on the 1140 test days.
    train, test = chicago
    assert (fitted.step_, fitted.season_) == (pd.Timedelta(days=1), 7)
    seasonal = rmse(test[TARGET], fitted.predict(test.drop(columns=TARGET)))
    mean = rmse(test[TARGET], np.full(len(test), train[TARGET].mean()))
    assert seasonal < 0.6 * mean
    assert seasonal == pytest.approx(3.066, abs=0.01)
    assert mean == pytest.approx(7.343, abs=0.01)
    reason = seasonal_naive_reason(fitted)
    assert "7 days before" in reason and "weekday" in reason


def test_rows_in_the_history_get_the_value_one_week_earlier(chicago, fitted) -> None:
    train, _ = chicago
    by_date = train.set_index(pd.to_datetime(train[TIME]))[TARGET]
    rows = train.iloc[[7, 100, 2500, len(train) - 1]]
    predicted = fitted.predict(rows.drop(columns=TARGET))
    earlier = [by_date[day - pd.Timedelta(days=7)] for day in pd.to_datetime(rows[TIME])]
    np.testing.assert_array_equal(predicted, earlier)
    # The first week has no week before it: the nearest earlier day, and the mean for day one.
    first = fitted.predict(train.iloc[[0, 3]].drop(columns=TARGET))
    np.testing.assert_array_equal(first, [train[TARGET].mean(), train[TARGET].iloc[2]])


def test_later_rows_repeat_the_last_observed_week(chicago, fitted) -> None:
    train, test = chicago
    last_week = train[TARGET].to_numpy()[-7:]  # train ends 2013-07-15, test starts the 16th
    predicted = fitted.predict(test.iloc[:21].drop(columns=TARGET))
    np.testing.assert_array_equal(predicted, np.tile(last_week, 3))


def test_string_and_datetime_times_give_identical_predictions(chicago, fitted) -> None:
    train, test = chicago
    as_dates = train.assign(date=pd.to_datetime(train[TIME]))
    model = SeasonalNaiveForecaster(TIME).fit(as_dates.drop(columns=TARGET), as_dates[TARGET])
    X_test = test.drop(columns=TARGET)
    expected = fitted.predict(X_test)
    np.testing.assert_array_equal(model.predict(X_test), expected)
    np.testing.assert_array_equal(
        model.predict(X_test.assign(date=pd.to_datetime(X_test[TIME]))), expected
    )


def test_a_missing_time_gets_the_training_mean(chicago, fitted) -> None:
    train, test = chicago
    rows = test.iloc[:3].drop(columns=TARGET).astype({TIME: object})
    rows.iloc[1, rows.columns.get_loc(TIME)] = None
    predicted = fitted.predict(rows)
    assert predicted[1] == pytest.approx(train[TARGET].mean())
    assert predicted[0] == train[TARGET].iloc[-7]


def test_clone_refit_and_joblib_round_trip(chicago, fitted, tmp_path) -> None:
    train, test = chicago
    X_test = test.drop(columns=TARGET)
    head = train.iloc[:1000]
    refit = clone(fitted).fit(head.drop(columns=TARGET), head[TARGET])
    assert refit.history_times_.size == 1000 and fitted.history_times_.size == len(train)
    assert refit.get_params() == {"time_column": TIME, "season": None}
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    np.testing.assert_array_equal(joblib.load(path).predict(X_test), fitted.predict(X_test))


def test_a_missing_time_column_or_too_few_times_is_a_clear_error(chicago, fitted) -> None:
    train, _ = chicago
    X, y = train.drop(columns=TARGET), train[TARGET]
    with pytest.raises(DataValidationError, match="'date' is not among") as raised:
        SeasonalNaiveForecaster(TIME).fit(X.drop(columns=TIME), y)
    assert "Keep 'date'" in str(raised.value)
    with pytest.raises(DataValidationError, match="'date'"):
        fitted.predict(X.drop(columns=TIME))
    one_day = X.iloc[:5].assign(date="2001-01-22")
    with pytest.raises(DataValidationError, match="'date' has 1 distinct usable") as raised:
        SeasonalNaiveForecaster(TIME).fit(one_day, y.iloc[:5])
    assert "Fix:" in str(raised.value)


def test_monthly_numeric_and_duplicate_times() -> None:
    """Month-end dates line up across leap years; numeric times use a plain naive lag; the
    duplicates of one time are averaged."""
    months = pd.date_range("2000-01-31", periods=60, freq="ME")
    monthly = SeasonalNaiveForecaster("t").fit(pd.DataFrame({"t": months}), np.arange(60.0))
    assert monthly.season_ == 12 and "1 year before" in seasonal_naive_reason(monthly)
    later = pd.DataFrame({"t": pd.date_range("2004-11-30", periods=16, freq="ME")})
    np.testing.assert_array_equal(monthly.predict(later), [*range(46, 60), 48, 49])

    numeric = SeasonalNaiveForecaster("t").fit(
        pd.DataFrame({"t": [1, 2, 2, 3, 5]}), [10.0, 20.0, 40.0, 50.0, 70.0]
    )
    assert numeric.season_ == 1
    # 2 -> the mean of its duplicates; 4 and 6 -> 3 and 5; 0 (before the start) -> the mean.
    np.testing.assert_allclose(numeric.predict(pd.DataFrame({"t": [3, 4, 6, 0]})), [30, 50, 70, 38])


@pytest.mark.e2e
def test_a_time_ordered_regression_is_compared_with_the_seasonal_naive_forecast(project):
    shutil.copy(CHICAGO / "train.csv", project / "data/01_raw/chicago.csv")

    result = run_kedro(
        project,
        "run",
        "--pipeline=train",
        "--params=dataset.path=data/01_raw/chicago.csv,dataset.target=ridership,"
        "dataset.time_column=date,tuning.n_trials=3,model.algorithm=lightgbm",
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Baseline Seasonal naive: the value 7 days before" in result.stdout + result.stderr
    assert "Baseline SARIMAX(" in result.stdout + result.stderr
    training = json.loads((project / "data/08_reporting/training_metrics.json").read_text())
    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    baselines = training["baselines"]
    # the last tenth of the days: the weekly pattern beats the mean, the model beats both
    assert metrics["rmse"] < baselines["seasonal_naive"]["rmse"] < baselines["dummy"]["rmse"]
    assert np.isfinite(baselines["sarimax"]["rmse"])
    assert baselines["sarimax"]["rmse"] < baselines["dummy"]["rmse"]
    decisions = json.loads((project / "data/08_reporting/decisions.json").read_text())
    assert any(d["choice"] == "5-fold timeseries" for d in decisions)
    [series] = [d for d in decisions if d["decision"] == "time series"]
    assert series["choice"].startswith("rows ordered by 'date'; no target lags")


@pytest.fixture(scope="module")
def sarimax(chicago: tuple[pd.DataFrame, pd.DataFrame]) -> SarimaxForecaster:
    train, _ = chicago
    return SarimaxForecaster(TIME).fit(train.drop(columns=TARGET), train[TARGET])


@pytest.mark.slow
def test_sarimax_forecasts_later_days_better_than_the_mean(chicago, sarimax) -> None:
    # Measured: SARIMAX(2,0,1)x(0,1,1,7) (AIC 19440.3) RMSE 2.817 vs training mean RMSE 7.343
    # (seasonal naive 3.066) on the 1140 test days; the fit takes about 4 s.
    train, test = chicago
    assert (sarimax.order_, sarimax.seasonal_order_) == ((2, 0, 1), (0, 1, 1, 7))
    assert sarimax.fallback_reason_ is None and sarimax.n_candidates_ == 3
    predicted = sarimax.predict(test.drop(columns=TARGET))
    mean = rmse(test[TARGET], np.full(len(test), train[TARGET].mean()))
    assert rmse(test[TARGET], predicted) < 0.45 * mean
    assert rmse(test[TARGET], predicted) == pytest.approx(2.817, abs=0.05)
    reason = sarimax_reason(sarimax)
    assert reason.startswith("SARIMAX(2,0,1)x(0,1,1,7): lowest AIC 19440") and "1 day" in reason
    # A later row is forecast by its position after the end, whatever the rows around it.
    rows = test.drop(columns=TARGET).iloc[[30, 0, 500]]
    np.testing.assert_allclose(sarimax.predict(rows), predicted[[30, 0, 500]])


@pytest.mark.slow
def test_sarimax_in_the_training_span_is_one_step_ahead_not_the_actuals(chicago, sarimax) -> None:
    train, _ = chicago
    X, actual = train.drop(columns=TARGET), train[TARGET].to_numpy()
    predicted = sarimax.predict(X)
    later = slice(sarimax.burn_, None)
    error = rmse(actual[later], predicted[later])
    assert 1.0 < error < 3.0  # about 2.05: close, but not the day's own value
    assert not np.allclose(predicted[later], actual[later])
    # The first days (the filter's burn-in) get the seasonal naive; days before the start the mean.
    np.testing.assert_array_equal(
        predicted[: sarimax.burn_], sarimax.naive_.predict(X.iloc[: sarimax.burn_])
    )
    before = X.iloc[:2].assign(date=["1999-01-01", None])
    np.testing.assert_allclose(sarimax.predict(before), train[TARGET].mean())


@pytest.mark.slow
def test_sarimax_clone_and_joblib_round_trip(chicago, sarimax, tmp_path) -> None:
    _, test = chicago
    X_test = test.drop(columns=TARGET)
    assert clone(sarimax).get_params() == {
        "time_column": TIME,
        "exog_columns": None,
        "season": None,
        "max_fit_rows": 5000,
        "maxiter": 50,
    }
    path = tmp_path / "sarimax.joblib"
    joblib.dump(sarimax, path)
    assert path.stat().st_size < 1_000_000  # the grid and parameters, not statsmodels' results
    np.testing.assert_array_equal(joblib.load(path).predict(X_test), sarimax.predict(X_test))


def test_sarimax_falls_back_to_the_seasonal_naive_when_it_cannot_fit(chicago, monkeypatch) -> None:
    train, test = chicago
    head = train.iloc[-200:]
    X, y, X_test = head.drop(columns=TARGET), head[TARGET], test.drop(columns=TARGET)

    def singular(*args: object) -> object:
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr("model_trainer.tasks.forecasting.sarimax._sarimax", singular)
    model = SarimaxForecaster(TIME).fit(X, y)
    assert model.fallback_reason_ == "LinAlgError: Singular matrix"
    assert "could not be fitted (LinAlgError: Singular matrix)" in sarimax_reason(model)
    naive = SeasonalNaiveForecaster(TIME).fit(X, y)
    np.testing.assert_array_equal(model.predict(X_test), naive.predict(X_test))


@pytest.mark.slow
def test_sarimax_with_an_exogenous_column_and_monthly_times() -> None:
    """A numeric exogenous column moves the forecast with the rows' own values; a missing or
    non-numeric one is a clear error. Monthly data gets a 12-month season."""
    rng = np.random.default_rng(0)
    months = pd.date_range("2000-01-31", periods=120, freq="ME")
    driver = rng.normal(size=132)
    target = 10 + 3 * np.sin(np.arange(132) * np.pi / 6) + 2 * driver + rng.normal(0, 0.1, 132)
    frame = pd.DataFrame({"t": months.append(pd.date_range("2010-01-31", periods=12, freq="ME"))})
    frame["driver"] = driver
    model = SarimaxForecaster("t", exog_columns=["driver"]).fit(frame.iloc[:120], target[:120])
    assert model.fallback_reason_ is None and model.seasonal_order_[3] == 12
    forecast = model.predict(frame.iloc[120:])
    assert rmse(target[120:], forecast) < 0.5
    assert "1 exogenous column" in sarimax_reason(model)
    with pytest.raises(DataValidationError, match=r"\['nope'\]"):
        SarimaxForecaster("t", exog_columns=["nope"]).fit(frame.iloc[:120], target[:120])
    with pytest.raises(ConfigurationError, match="must be numeric"):
        SarimaxForecaster("t", exog_columns="t").fit(frame.iloc[:120], target[:120])


@pytest.fixture(scope="module")
def lagged(chicago: tuple[pd.DataFrame, pd.DataFrame]) -> TargetLagFeatures:
    train, _ = chicago
    features = TargetLagFeatures(TIME, lags=[7, 14], windows=[7], horizon=1)
    return features.fit(train.drop(columns=TARGET), train[TARGET])


def test_a_lag_is_the_stored_target_k_days_before_or_nan(chicago, lagged) -> None:
    train, _ = chicago
    X = train.drop(columns=TARGET)
    out = lagged.transform(X)
    assert list(out.columns) == [
        *X.columns,
        "target_lag_7",
        "target_lag_14",
        "target_rolling_mean_7",
    ]
    by_date = train.set_index(pd.to_datetime(train[TIME]))[TARGET]
    for row in (7, 100, 2500, len(train) - 1):
        day = pd.Timestamp(train[TIME].iloc[row])
        assert out["target_lag_7"].iloc[row] == by_date[day - pd.Timedelta(days=7)]
        window = by_date[day - pd.Timedelta(days=7) : day - pd.Timedelta(days=1)]
        assert out["target_rolling_mean_7"].iloc[row] == pytest.approx(window.mean())
    assert out["target_lag_7"].iloc[:7].isna().all() and out["target_lag_7"].iloc[7:].notna().all()
    # A day missing from the training history: the row a week later has no lag_7.
    gap = train.drop(index=1000)
    refit = clone(lagged).fit(gap.drop(columns=TARGET), gap[TARGET])
    rows = refit.transform(X.iloc[[1000 + 7, 1000 + 8]])
    assert np.isnan(rows["target_lag_7"].iloc[0]) and not np.isnan(rows["target_lag_7"].iloc[1])
    # The 7-day mean ending the day before: the window of day 1007 holds day 1000, 1008's not.
    assert np.isnan(rows["target_rolling_mean_7"].iloc[0])
    assert not np.isnan(rows["target_rolling_mean_7"].iloc[1])
    assert lagged.get_params() == {
        "time_column": TIME,
        "lags": [7, 14],
        "windows": [7],
        "horizon": 1,
    }


def test_no_leakage_later_rows_only_see_the_training_history(chicago, lagged) -> None:
    train, test = chicago  # train: the first 80% of the days, test: the last 20%
    out = lagged.transform(test.drop(columns=TARGET))
    end = pd.Timestamp(train[TIME].iloc[-1])
    days = pd.to_datetime(test[TIME])
    for k in (7, 14):
        known = (days - pd.Timedelta(days=k)) <= end
        assert out.loc[~known, f"target_lag_{k}"].isna().all()
        assert known.sum() == k  # the test days directly follow the training days
        np.testing.assert_array_equal(
            out.loc[known, f"target_lag_{k}"], train[TARGET].to_numpy()[-k:]
        )
    # The rolling mean ends 1 day (the horizon) before the row: only the first test day has it.
    assert out["target_rolling_mean_7"].iloc[0] == pytest.approx(train[TARGET].iloc[-7:].mean())
    assert out["target_rolling_mean_7"].iloc[1:].isna().all()


def test_a_lag_shorter_than_the_horizon_is_refused(chicago) -> None:
    train, _ = chicago
    X, y = train.drop(columns=TARGET).head(50), train[TARGET].head(50)
    with pytest.raises(ConfigurationError, match=r"lags \[3\] are shorter than the horizon") as e:
        TargetLagFeatures(TIME, lags=[3, 7], horizon=7).fit(X, y)
    assert "not known yet" in str(e.value) and "Fix: Use lags >= 7" in str(e.value)
    with pytest.raises(ConfigurationError, match="horizon must be a whole number"):
        TargetLagFeatures(TIME, lags=[7], horizon=0).fit(X, y)
    with pytest.raises(ConfigurationError, match="whole numbers of steps"):
        TargetLagFeatures(TIME, windows=[1.5]).fit(X, y)


@pytest.mark.e2e
def test_target_lags_from_conf_reach_the_saved_model(project):
    """model.time_series from a conf env: the saved Pipeline adds the lag features to the raw
    columns (a step of "preprocess"), the model uses them, and permutation importance (per raw
    column) credits them to the time column they are looked up by."""
    shutil.copy(CHICAGO / "train.csv", project / "data/01_raw/chicago.csv")
    (project / "conf/lags").mkdir()
    (project / "conf/lags/parameters.yml").write_text(
        "model:\n  time_series:\n    target_lags: [7, 14]\n    rolling_windows: [7]\n"
    )

    result = run_kedro(
        project,
        "run",
        "--pipeline=train",
        "--env=lags",
        "--params=dataset.path=data/01_raw/chicago.csv,dataset.target=ridership,"
        "dataset.time_column=date,tuning.n_trials=3,model.algorithm=lightgbm,"
        "tuning.ensemble.enabled=false",  # one Pipeline, whose steps are inspected below
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (
        "Target lag features: lags [7, 14], rolling means over [7]" in result.stdout + result.stderr
    )
    model = joblib.load(next((project / "data/06_models/model.joblib").glob("*/model.joblib")))
    preprocess = model.named_steps["preprocess"]
    assert list(preprocess.named_steps) == ["target_lags", "columns"]
    names = list(preprocess.get_feature_names_out())
    used = dict(zip(names, model.named_steps["model"].feature_importances_, strict=True))
    for column in ("target_lag_7", "target_lag_14", "target_rolling_mean_7"):
        assert used[f"numeric__{column}"] > 0  # LightGBM splits on it
    importance = json.loads((project / "data/08_reporting/feature_importance.json").read_text())
    assert importance[0]["feature"] == TIME
    # Raw columns in, from the stored history: the last training week gives next week's lag_7.
    train = pd.read_csv(CHICAGO / "train.csv")
    later = pd.read_csv(CHICAGO / "test.csv").drop(columns=TARGET).head(8)
    lags = preprocess.named_steps["target_lags"].transform(later)["target_lag_7"]
    np.testing.assert_array_equal(lags[:7], train[TARGET].to_numpy()[-7:])
    assert np.isnan(lags.iloc[7])
    assert np.isfinite(model.predict(later)).all()
    assert list(clone(model).named_steps) == ["preprocess", "model"]


@pytest.mark.e2e
def test_kedro_task_with_a_time_column_orders_the_rows_and_forecasts_the_last_slice(project):
    shutil.copy(CHICAGO / "train.csv", project / "data/01_raw/chicago.csv")
    spec = {
        "trainDataPath": "data/01_raw/chicago.csv",
        "targetColumn": TARGET,
        "timeColumn": TIME,
        "algorithm": "ridge",
        "hyperparameterSearch": {"nTrials": 2},
    }

    output = run_task(project, spec)
    assert set(output["metrics"]) == {"rmse", "mae", "r2"}
    test_split = pd.read_parquet(next((project / "data/05_model_input").glob("test_split.*/*/*")))
    train_split = pd.read_parquet(next((project / "data/05_model_input").glob("train_split.*/*/*")))
    assert pd.to_datetime(test_split[TIME]).min() > pd.to_datetime(train_split[TIME]).max()
    baselines = json.loads((project / "data/08_reporting/training_metrics.json").read_text())
    assert {"dummy", "ridge", "seasonal_naive", "sarimax"} <= set(baselines["baselines"])
