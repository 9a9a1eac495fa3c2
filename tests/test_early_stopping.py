"""Boosting rounds chosen on held-out rows: the fit every early-stopped model goes through, and
which metric it watches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_trainer.models.early_stopping import fit_stopping_early, watched_curve, watched_metric
from model_trainer.models.estimators import make_pipeline
from model_trainer.table.feature_types import infer_feature_types

ROOT = Path(__file__).resolve().parents[1]
TABLE = pd.read_csv(ROOT / "data" / "01_raw" / "credit_data.csv").head(1200)
X, Y = TABLE.drop(columns=["Status"]), TABLE["Status"]
FEATURE_TYPES = infer_feature_types(TABLE, "Status")
REGISTRY = {
    "lightgbm": {
        "classification": "lightgbm.LGBMClassifier",
        "native_missing": True,
        "defaults": {"verbosity": -1, "n_jobs": 1},
    },
    "xgboost": {
        "classification": "xgboost.XGBClassifier",
        "encode_labels": True,
        "native_missing": True,
        "defaults": {"n_jobs": 1, "tree_method": "hist", "verbosity": 0},
    },
}
ENCODING = {"high_cardinality": "auto", "max_onehot_levels": 15}


def pipeline(family: str, rounds: int):
    return make_pipeline(
        REGISTRY, family, "classification", {"n_estimators": rounds, "learning_rate": 0.3},
        FEATURE_TYPES, ENCODING, 0,
    )  # fmt: skip


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])  # xgboost: string class labels
def test_a_fit_stops_past_its_best_round_by_the_patience_and_predicts_with_it(family):
    fit_rows, score_rows = X.iloc[:900], X.iloc[900:]
    model, rounds, history = fit_stopping_early(
        pipeline(family, 2000), family, fit_rows, Y.iloc[:900], [(score_rows, Y.iloc[900:])],
        patience=10, watched=None,
    )  # fmt: skip
    name, curve, greater = watched_curve(history[0], family, None)
    assert "logloss" in name and not greater
    assert len(curve) == rounds + 10 < 2000
    assert int(np.argmin(curve)) + 1 == rounds
    fewer = pipeline(family, rounds).fit(fit_rows, Y.iloc[:900])
    np.testing.assert_allclose(
        model.predict_proba(score_rows), fewer.predict_proba(score_rows), rtol=1e-6
    )


def test_early_stopping_watches_the_tuned_metric_only_where_the_library_scores_the_same_thing():
    binary, three = pd.Series(["a", "b"] * 5), pd.Series(["a", "b", "c"] * 4)
    assert watched_metric("lightgbm", "roc_auc", binary) == "auc"
    assert watched_metric("lightgbm", "roc_auc", three) is None  # LightGBM's auc is binary only
    assert watched_metric("xgboost", "rmse", binary) == "rmse"
    # the libraries' average precision is of their class 1, not the project's positive class
    # (and LightGBM's is binary only: a multiclass pr_auc run failed every early-stopped fit)
    assert watched_metric("lightgbm", "pr_auc", three) is None
    assert watched_metric("xgboost", "pr_auc", binary) is None
