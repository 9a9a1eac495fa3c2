"""Serving the ONNX export instead of the joblib file: nothing is unpickled, so no code from a
file runs. The deploy pipeline saves the export (data/06_models/model.onnx/<version>/) only when
it agrees with the model on held-out rows within deploy.onnx.tolerance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model_trainer.errors import ConfigurationError
from model_trainer.serving.model_store import (
    CARD_FILE,
    MLFLOW_SCHEMES,
    MODEL_FILE,
    StoredModel,
    card_of_version,
    served_version,
    versioned_file,
)
from model_trainer.serving.onnx_export import CATEGORY, NUMBER, ONNX_FILE, TEXT, OnnxPredictor

DEPLOY_HINT = (
    "Run `kedro run --pipelines=deploy` for that model: it saves the ONNX export when the "
    "export agrees with the model (see deployment.json's onnx_agreement check)."
)


class OnnxModel:
    """The export behind the calls serving makes of a scikit-learn model: `predict`,
    `predict_proba` and `classes_`, on the raw DataFrame."""

    def __init__(self, graph: Any, card: dict[str, Any]) -> None:
        self.predictor = OnnxPredictor(graph, input_kinds(graph, card))
        if card["task"] == "classification":
            self.classes_ = np.asarray(card["classes"])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if hasattr(self, "classes_"):  # the label of the largest probability, as the model's
            return self.classes_[self.predictor(X).argmax(axis=1)]
        return self.predictor(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.predictor(X)


def input_kinds(graph: Any, card: dict[str, Any]) -> dict[str, str]:
    """How each graph input takes its column: a float tensor a number; a string tensor text for
    a column the card types as text, else a category (as the export formats them)."""
    from onnx import TensorProto

    kinds = {}
    for graph_input in graph.graph.input:
        if graph_input.type.tensor_type.elem_type == TensorProto.FLOAT:
            kinds[graph_input.name] = NUMBER
        else:
            feature = card["features"].get(graph_input.name, {})
            kinds[graph_input.name] = TEXT if feature.get("type") == "text" else CATEGORY
    return kinds


def load_onnx_model(reference: str | None, models_dir: Path) -> StoredModel:
    """The ONNX export of the model named by `reference` (nothing for the latest model under
    `models_dir`, or a model.joblib or model.onnx path in the versioned layout of any
    project's data/06_models), with that version's card."""
    models_dir, version = _located(reference, models_dir)
    path = versioned_file(models_dir / ONNX_FILE, version)
    if not path.is_file():
        raise ConfigurationError(
            f"Model version {version} has no ONNX export ({path}).", DEPLOY_HINT
        )
    card = card_of_version(models_dir, version)
    if card is None:
        raise ConfigurationError(
            f"No model card for version {version} "
            f"({versioned_file(models_dir / CARD_FILE, version)}).",
            "Keep the model_card.json the train pipeline saved beside the model.",
        )
    import onnx

    model = OnnxModel(onnx.load_model(str(path)), card)
    return StoredModel(model=model, card=card, source=str(path.resolve()), save_version=version)


def _located(reference: str | None, models_dir: Path) -> tuple[Path, str]:
    """The models folder and the save version `reference` names."""
    if reference is None or str(reference).strip() in ("", "latest"):
        return models_dir, served_version(models_dir)
    reference = str(reference).strip()
    path = Path(reference).expanduser().resolve()
    if reference.startswith(MLFLOW_SCHEMES) or path.parent.parent.name not in (
        MODEL_FILE,
        ONNX_FILE,
    ):
        raise ConfigurationError(
            f"--onnx serves the export the deploy pipeline saved under "
            f"data/06_models/{ONNX_FILE}/<version>/, and cannot place '{reference}' among "
            "those versions.",
            "Name the model by its versioned path (data/06_models/model.joblib/<version>/"
            "model.joblib, or the model.onnx beside it), or leave --model out for the latest.",
        )
    if not path.is_file():
        raise ConfigurationError(
            f"The model file {path} does not exist.",
            "Give the path of a model the train pipeline saved, or leave --model out.",
        )
    return path.parents[2], path.parent.name
