"""A checkpointed final fit, interrupted and started again, resumes from its last checkpoint and
ends with the model an uninterrupted fit makes; a different fit never picks its checkpoints up."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from model_trainer.models.ensemble import FoldBag, WeightedEnsemble
from model_trainer.models.estimators import LabelEncodedClassifier, with_decision_threshold
from model_trainer.models.preprocessing import build_preprocessor
from model_trainer.table.feature_types import infer_feature_types
from model_trainer.training.checkpoints import checkpointed_fit, latest_checkpoint, supports
from model_trainer.training.fitting import fit_quietly
from tests.checkpoint_worker import EVERY, ROUNDS, diamonds, lightgbm_pipeline
from tests.conftest import BENCH, ROOT

pytestmark = pytest.mark.usefixtures("bench_data_is_beside_the_project")

WORKER = Path(__file__).with_name("checkpoint_worker.py")


class Interrupted(Exception):
    """Stands in for a kill: raised by the after-chunk hook once enough rounds are saved."""


def interrupt_after(rounds: int):
    def hook(done: int) -> None:
        if done >= rounds:
            raise Interrupted

    return hook


@pytest.fixture(scope="module")
def credit() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    train = pd.read_csv(BENCH / "credit_data" / "train.csv")
    test = pd.read_csv(BENCH / "credit_data" / "test.csv")
    return train.drop(columns=["Status"]), train["Status"], test.drop(columns=["Status"])


def credit_pipeline(model) -> Pipeline:
    categorical = ["Home", "Marital", "Records", "Job"]
    preprocess = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)],
        remainder=Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
        sparse_threshold=0,
    )
    return Pipeline([("preprocess", preprocess), ("model", model)])


def start_worker(folder: Path, output: Path, pause: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(folder), str(output), str(pause)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.e2e
def test_a_killed_lightgbm_fit_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one(
    tmp_path,
):
    folder, output = tmp_path / "checkpoints", tmp_path / "predictions.npy"
    worker = start_worker(folder, output, pause=0.5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.poll() is None:
        if list(folder.glob("*/round-*.joblib")):
            worker.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    out, _ = worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGKILL, out
    saved = sorted(p.name for p in folder.glob("*/round-*.joblib"))
    assert saved and not output.exists(), saved

    rerun = start_worker(folder, output, pause=0.0)
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out
    assert "Resuming the fit of LGBMRegressor from its checkpoint at round" in out, out
    resumed_from = int(out.split("resumed_from=")[1].split()[0])
    assert 0 < resumed_from < ROUNDS, out
    assert not list(folder.glob("*/round-*.joblib")), "checkpoints of a finished fit are removed"

    X, y = diamonds("train")
    uninterrupted, _ = checkpointed_fit(lightgbm_pipeline(), X, y, EVERY, tmp_path / "fresh")
    X_test, y_test = diamonds("test")
    expected = uninterrupted.predict(X_test)
    np.testing.assert_allclose(np.load(output), expected, rtol=0, atol=1e-9)
    # as good as one fit in a single call (bagging draws differ, so the trees do too)
    rmse = np.sqrt(np.mean((expected - y_test) ** 2))
    single = clone(lightgbm_pipeline()).fit(X, y).predict(X_test)
    assert rmse <= 1.02 * np.sqrt(np.mean((single - y_test) ** 2))


def test_without_random_draws_a_checkpointed_lightgbm_fit_equals_a_single_fit(tmp_path):
    X, y = diamonds("train")
    X, y = X.head(5000), y.head(5000)
    pipeline = lightgbm_pipeline(rounds=60)
    pipeline.set_params(model__subsample=1.0, model__colsample_bytree=1.0)
    with pytest.raises(Interrupted):
        checkpointed_fit(pipeline, X, y, 20, tmp_path, after_chunk=interrupt_after(20))
    resumed, info = checkpointed_fit(pipeline, X, y, 20, tmp_path)
    assert info["resumed_from"] == 20 and info["rounds"] == 60
    single = clone(pipeline).fit(X, y)
    assert resumed.named_steps["model"].booster_.current_iteration() == 60
    np.testing.assert_allclose(resumed.predict(X), single.predict(X), rtol=0, atol=1e-9)


@pytest.mark.slow
def test_a_checkpointed_fit_trains_on_the_matrix_pipeline_fit_makes_without_target_leakage(
    tmp_path, monkeypatch
):
    """A seeded random 0/1 target and a 1,550-level applicant column that is target-encoded:
    the estimator must see the cross-fitted encoding Pipeline.fit gives it, not each row
    encoded with its own label."""
    table = pd.read_csv(BENCH / "credit_data" / "train.csv").drop(columns=["Status"])
    table["applicant"] = table["Age"].astype(str) + "/" + table["Amount"].astype(str)
    y = pd.Series(np.random.default_rng(0).integers(0, 2, len(table)), name="noise")
    preprocess = build_preprocessor(
        infer_feature_types(table.assign(noise=y), "noise"),
        scale=False,
        impute=True,
        encoding={"high_cardinality": "target"},
    )
    model = lightgbm.LGBMClassifier(n_estimators=40, n_jobs=1, verbose=-1, random_state=0)
    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])
    X, y, X_test = table.iloc[:2400], y.iloc[:2400], table.iloc[2400:]
    seen: list[np.ndarray] = []
    original = lightgbm.LGBMClassifier.fit

    def recording_fit(self, X, y, *args, **kwargs):
        seen.append(X)
        return original(self, X, y, *args, **kwargs)

    monkeypatch.setattr(lightgbm.LGBMClassifier, "fit", recording_fit)
    fitted, _ = checkpointed_fit(pipeline, X, y, 20, tmp_path)
    monkeypatch.undo()
    np.testing.assert_array_equal(seen[0], clone(preprocess).fit_transform(X, y))
    single = clone(pipeline).fit(X, y)  # no bagging: the chunks' seeds draw nothing
    np.testing.assert_allclose(
        fitted.predict_proba(X_test), single.predict_proba(X_test), rtol=0, atol=1e-9
    )
    booster = lightgbm.LGBMClassifier(n_estimators=50, n_jobs=1, verbose=-1, random_state=0)
    auc = cross_val_score(booster, seen[0], y, cv=5, scoring="roc_auc").mean()
    assert auc < 0.57  # fit then transform: 0.89 on this noise target


@pytest.mark.slow
def test_an_interrupted_xgboost_fit_resumes_and_keeps_the_class_labels(tmp_path, credit):
    X, y, X_test = credit
    model = xgboost.XGBClassifier(
        n_estimators=40, max_depth=3, subsample=0.8, n_jobs=1, random_state=3, verbosity=0
    )
    pipeline = credit_pipeline(LabelEncodedClassifier(model))
    assert supports(pipeline)
    uninterrupted, _ = checkpointed_fit(pipeline, X, y, 10, tmp_path / "uninterrupted")
    with pytest.raises(Interrupted):
        checkpointed_fit(pipeline, X, y, 10, tmp_path / "run", after_chunk=interrupt_after(20))
    resumed, info = checkpointed_fit(pipeline, X, y, 10, tmp_path / "run")
    assert info["resumed_from"] == 20 and info["rounds"] == 40
    assert list(resumed.classes_) == ["bad", "good"]
    assert resumed.named_steps["model"].estimator_.get_booster().num_boosted_rounds() == 40
    np.testing.assert_allclose(
        resumed.predict_proba(X_test), uninterrupted.predict_proba(X_test), rtol=0, atol=1e-7
    )


@pytest.mark.slow
def test_an_interrupted_neural_network_resumes_with_its_optimizer_state(tmp_path, credit):
    X, y, X_test = credit
    network = MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, early_stopping=True)
    pipeline = credit_pipeline(network.set_params(random_state=0))
    uninterrupted, _ = checkpointed_fit(pipeline, X, y, 5, tmp_path / "uninterrupted")
    with pytest.raises(Interrupted):
        checkpointed_fit(pipeline, X, y, 5, tmp_path / "run", after_chunk=interrupt_after(10))
    resumed, info = checkpointed_fit(pipeline, X, y, 5, tmp_path / "run")
    assert info["resumed_from"] == 10 and info["rounds"] > 10
    assert resumed.named_steps["model"].get_params()["max_iter"] == 30
    np.testing.assert_allclose(
        resumed.predict_proba(X_test), uninterrupted.predict_proba(X_test), rtol=0, atol=1e-12
    )


def test_a_fit_resumed_from_its_complete_checkpoint_still_warns_it_did_not_converge(
    tmp_path, credit
):
    """Killed after its last checkpoint (or kept with keep: true), a network that hit max_iter
    warns again when the fit is resumed, as the uninterrupted fit did."""
    X, y, _ = credit
    pipeline = credit_pipeline(MLPClassifier(hidden_layer_sizes=(8,), max_iter=6, random_state=0))
    settings = {"enabled": True, "every": 3, "folder": str(tmp_path), "keep": True}
    first = fit_quietly(clone(pipeline), X, y, settings)[1]
    again = fit_quietly(clone(pipeline), X, y, settings)[1]
    assert first and again == first


def test_a_different_fit_never_resumes_from_anothers_checkpoints(tmp_path, credit):
    X, y, _ = credit
    network = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    pipeline = credit_pipeline(network)
    with pytest.raises(Interrupted):
        checkpointed_fit(pipeline, X, y, 5, tmp_path, after_chunk=interrupt_after(5))
    (kept,) = tmp_path.iterdir()
    other_rows, other_params = (
        checkpointed_fit(pipeline, X.iloc[1:], y.iloc[1:], 5, tmp_path, keep=True)[1],
        checkpointed_fit(pipeline.set_params(model__alpha=0.01), X, y, 5, tmp_path, keep=True)[1],
    )
    assert other_rows["resumed_from"] == 0 and other_params["resumed_from"] == 0
    assert latest_checkpoint(kept).name == "round-0000005.joblib"
    assert len(list(tmp_path.iterdir())) == 3


def test_training_checkpoints_setting_makes_the_final_fit_resume(tmp_path, credit, caplog):
    X, y, X_test = credit
    model = xgboost.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1, verbosity=0)
    pipeline = credit_pipeline(LabelEncodedClassifier(model))
    with pytest.raises(Interrupted):
        checkpointed_fit(pipeline, X, y, 10, tmp_path, after_chunk=interrupt_after(10))
    settings = {"enabled": True, "every": 10, "folder": str(tmp_path)}
    with caplog.at_level("INFO", logger="model_trainer"):
        fitted, warnings = fit_quietly(clone(pipeline), X, y, settings)
    assert "30 rounds, resumed from round 10" in caplog.text
    assert warnings == [] and not list(tmp_path.glob("*/round-*"))
    plain = clone(pipeline).fit(X, y)
    np.testing.assert_allclose(
        fitted.predict_proba(X_test), plain.predict_proba(X_test), rtol=0, atol=1e-6
    )


@pytest.mark.slow
def test_an_ensemble_a_bag_and_a_thresholded_model_checkpoint_each_of_their_pipelines(
    tmp_path, credit
):
    X, y, X_test = credit
    members = [
        credit_pipeline(
            LabelEncodedClassifier(
                xgboost.XGBClassifier(n_estimators=n, max_depth=3, n_jobs=1, verbosity=0)
            )
        )
        for n in (20, 30)
    ]
    ensemble = Pipeline([("ensemble", WeightedEnsemble(members, [0.5, 0.5]))])
    thresholded = with_decision_threshold(members[0], 0.3, "bad")
    bag = Pipeline([("bag", FoldBag(members[0], folds=3, seed=0, jobs=2))])

    for model, folders in ((ensemble, 2), (thresholded, 1), (bag, 3)):
        folder = tmp_path / str(folders)
        settings = {"enabled": True, "every": 10, "folder": str(folder), "keep": True}
        fitted, _ = fit_quietly(clone(model), X, y, settings)
        plain = clone(model).fit(X, y)
        np.testing.assert_allclose(
            fitted.predict_proba(X_test), plain.predict_proba(X_test), rtol=0, atol=1e-6
        )
        assert (fitted.predict(X_test) == plain.predict(X_test)).all()
        assert len(list(folder.iterdir())) == folders  # one fingerprint per member Pipeline
