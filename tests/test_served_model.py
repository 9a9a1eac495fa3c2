"""The MLflow model a train run logs answers labels and probabilities together through MLflow's
own pyfunc loader (what `mlflow models serve` uses), and is still the scikit-learn Pipeline for
the project's loaders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from model_trainer.tracking.runs import log_model
from tests.conftest import ROOT

CREDIT = pd.read_csv(ROOT / "data" / "01_raw" / "credit_data.csv").sample(400, random_state=0)
X, Y = CREDIT.drop(columns=["Status"]), CREDIT["Status"]


@pytest.mark.slow
def test_mlflows_pyfunc_answers_labels_and_probabilities_and_the_sklearn_flavor_stays(tmp_path):
    import mlflow
    from mlflow.models import Model

    text = [c for c in X if not pd.api.types.is_numeric_dtype(X[c])]
    columns = ColumnTransformer(
        [("text", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore")), text)],
        remainder=make_pipeline(SimpleImputer(), StandardScaler()),
    )  # fmt: skip
    model = make_pipeline(columns, LogisticRegression(max_iter=500)).fit(X, Y)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run():
            logged = log_model(model, {"target": "Status"}, X, "credit")
        served = mlflow.pyfunc.load_model(logged["model_uri"])
        answer = served.predict(X.head(20))
        flavors = Model.load(logged["model_uri"]).flavors
        pipeline = mlflow.sklearn.load_model(logged["model_uri"])
    finally:
        mlflow.set_tracking_uri(previous)
    assert list(answer.columns) == ["prediction", "proba_bad", "proba_good"]
    assert answer["prediction"].tolist() == model.predict(X.head(20)).tolist()
    np.testing.assert_allclose(answer[["proba_bad", "proba_good"]], model.predict_proba(X.head(20)))
    assert flavors["python_function"]["loader_module"] == "model_trainer.tracking.served_model"
    assert (pipeline.predict(X.head(20)) == model.predict(X.head(20))).all()
