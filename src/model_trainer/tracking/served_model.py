"""The MLflow model a train run logs: scikit-learn's flavor (the Pipeline, which every loader of
the project reads and checks), whose python_function flavor answers labels and probabilities
together, as `kedro serve` does. So `mlflow models serve` and `mlflow.pyfunc.load_model` give a
classifier's probabilities too, not only its labels (scikit-learn's pyfunc calls one method).

Passed to `mlflow.models.Model.log` as the flavor module: `save_model` saves the sklearn flavor
and points its python_function flavor at `_load_pyfunc` here (the package travels with the model
in its code paths, so the loader imports wherever the model is served).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

LABEL_COLUMN = "prediction"


def save_model(sk_model: Any, path: str, mlflow_model: Any, **kwargs: Any) -> None:
    import mlflow

    mlflow.sklearn.save_model(sk_model, path, mlflow_model=mlflow_model, **kwargs)
    mlflow_model.flavors["python_function"]["loader_module"] = __name__
    mlflow_model.save(os.path.join(path, "MLmodel"))


def _load_pyfunc(path: str) -> LabelsAndProbabilities:
    """Called by mlflow.pyfunc.load_model (and `mlflow models serve`)."""
    import mlflow.sklearn

    return LabelsAndProbabilities(mlflow.sklearn._load_pyfunc(path).get_raw_model())


def served_output(model: Any, data: pd.DataFrame) -> pd.DataFrame:
    """`prediction`, and for a classifier `proba_<class>` per class, one row per input row."""
    output = pd.DataFrame({LABEL_COLUMN: np.asarray(model.predict(data))})
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        probabilities = np.asarray(model.predict_proba(data), dtype=float)
        for index, label in enumerate(model.classes_):
            output[f"proba_{label}"] = probabilities[:, index]
    return output


class LabelsAndProbabilities:
    """The python_function model: the Pipeline's labels with its probabilities."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def get_raw_model(self) -> Any:
        return self.model

    def predict(self, data: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return served_output(self.model, data)
