"""ONNX export of a saved model, and the proof that the export predicts what the model predicts.

The saved Pipeline takes a pandas DataFrame; the ONNX graph takes one [n, 1] tensor per raw
column it uses: float for numbers, string for categories and text. Two project steps are done by
whoever feeds the graph (`onnx_inputs` here), because ONNX has no operator for them and they
are plain formatting: a category is its string (`to_category_strings`: a missing value is the
string "__missing__", a whole float prints as an integer) and a text is its string ("" when
missing). What ONNX cannot express at all (parsing dates, an unknown transformer) makes the
model `NotConvertible`, with the reason, instead of an export that silently predicts otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import IO, Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder, OneHotEncoder

from model_trainer.models.calibration import CalibratedClassifier
from model_trainer.models.ensemble import WeightedEnsemble
from model_trainer.models.estimators import LabelEncodedClassifier, prediction_steps
from model_trainer.models.preprocessing import (
    DatetimeFeatures,
    NativeCategories,
    to_category_strings,
    to_text,
)
from model_trainer.serving.onnx_converters import register_converters

NUMBER, CATEGORY, TEXT = "number", "category", "text"
ONNX_FILE = "model.onnx"  # saved as <models_dir>/model.onnx/<model version>/model.onnx
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
TEXT_LOCALE = "C.UTF-8"


class NotConvertible(Exception):
    """The model holds a step ONNX cannot express; the message says which and why."""


def input_kinds(model: Any) -> dict[str, str]:
    """Each raw column the model uses, and how the graph takes it (number, category, text)."""
    kinds: dict[str, str] = {}
    transformers = [s for s in _every_step(model) if isinstance(s, ColumnTransformer)]
    for transformer in transformers:
        for _, step, columns in transformer.transformers_:
            if isinstance(step, str):
                if step == "drop":
                    continue
                kind = NUMBER
            else:
                kind = _kind_of(step)
            for column in columns:
                kinds[column] = kind
    if not kinds:
        raise NotConvertible(
            f"{type(model).__name__} has no ColumnTransformer that names its input columns."
        )
    return kinds


def onnx_inputs(frame: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The graph's inputs for a DataFrame of raw columns, formatted as the saved model sees them."""
    by_kind = {
        kind: [c for c, k in kinds.items() if k == kind] for kind in (NUMBER, CATEGORY, TEXT)
    }
    blocks = {
        NUMBER: frame[by_kind[NUMBER]].astype("float64").to_numpy(np.float32, na_value=np.nan),
        CATEGORY: to_category_strings(frame[by_kind[CATEGORY]]).to_numpy(object),
        TEXT: frame[by_kind[TEXT]].fillna("").astype(str).to_numpy(object),
    }
    return {
        column: blocks[kind][:, [by_kind[kind].index(column)]] for column, kind in kinds.items()
    }


def to_onnx(model: Any, kinds: Mapping[str, str]) -> Any:
    """The ONNX graph of `model` (an onnx.ModelProto), or NotConvertible with the reason."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    register_converters()
    initial_types = [
        (column, FloatTensorType([None, 1]) if kind == NUMBER else StringTensorType([None, 1]))
        for column, kind in kinds.items()
    ]
    convertible = _convertible_copy(model)
    try:
        return convert_sklearn(
            convertible,
            initial_types=initial_types,
            options=_conversion_options(convertible),
            target_opset=TARGET_OPSET,
        )
    except Exception as exc:  # skl2onnx raises every kind of error for what it cannot express
        message = (str(exc).strip().splitlines() or [""])[0][:400]
        raise NotConvertible(
            f"skl2onnx cannot convert the {_estimator_names(model)} model: "
            f"{type(exc).__name__}: {message}"
        ) from exc


class OnnxPredictor:
    """An onnxruntime session that takes the raw DataFrame, as the saved model does, and returns
    what the saved model's predict_proba (classifiers) or predict (regressors) returns."""

    def __init__(self, onnx_model: Any, kinds: Mapping[str, str]) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # not the notes about initializers it prunes
        self.session = onnxruntime.InferenceSession(
            onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.kinds = dict(kinds)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        outputs = self.session.run(None, onnx_inputs(frame, self.kinds))
        if len(outputs) > 1:  # label, probabilities
            return np.asarray(outputs[1], dtype=np.float64)
        return np.asarray(outputs[0], dtype=np.float64).reshape(len(frame))


def agreement(
    model: Any,
    predictor: OnnxPredictor,
    X: pd.DataFrame,
    is_classifier: bool,
    absolute: float,
    relative: float,
) -> dict[str, Any]:
    """How far the graph is from the model on `X`: the largest absolute difference, and the rows
    where some output differs by more than absolute + relative * max |model's outputs| (NaN
    counts). The scale is the outputs' largest, not each row's own: float32 rounding grows with
    the terms summed, and a regression output near 0 can be a sum of large terms."""
    expected = model.predict_proba(X) if is_classifier else model.predict(X)
    expected = np.asarray(expected, dtype=np.float64)
    difference = np.abs(predictor(X) - expected)
    within = difference <= absolute + relative * np.abs(expected).max()
    if within.ndim > 1:
        within = within.all(axis=1)
    return {
        "max_abs_diff": float(difference.max()) if np.isfinite(difference).all() else None,
        "rows_outside_tolerance": int((~within).sum()),
        "rows": len(X),
    }


def dump(onnx_model: Any, file: IO[bytes]) -> None:
    """With `load`, lets kedro's PickleDataset (backend: model_trainer.serving.onnx_export)
    store the graph as a plain .onnx file."""
    file.write(onnx_model.SerializeToString())


def load(file: IO[bytes]) -> Any:
    import onnx

    return onnx.load_model(file)


def _kind_of(step: Any) -> str:
    first = step.steps[0][1] if isinstance(step, Pipeline) else step
    if isinstance(first, FunctionTransformer) and first.func is to_category_strings:
        return CATEGORY
    if isinstance(first, FunctionTransformer) and first.func is to_text:
        return TEXT
    if isinstance(first, DatetimeFeatures):
        raise NotConvertible(
            "DatetimeFeatures parses date strings into calendar parts; ONNX has no operator "
            "that parses dates."
        )
    return NUMBER


def _estimator_names(model: Any) -> str:
    """The final estimators, by class: what a reader recognises of a failed conversion."""
    if isinstance(model, Pipeline):
        return _estimator_names(model.steps[-1][1])
    if isinstance(model, WeightedEnsemble):
        return " + ".join(_estimator_names(member) for member in model.estimators_)
    if isinstance(model, LabelEncodedClassifier):
        return _estimator_names(model.estimator_)
    return type(model).__name__


def _conversion_options(model: Any) -> dict[int, dict[str, Any]]:
    """Per step: a classifier's probabilities stay one tensor (no ZipMap of dicts); a text
    vectorizer lowercases in a locale every Linux host has (onnxruntime's default, en_US.UTF-8,
    often is not installed, and the session then refuses to start)."""
    options: dict[int, dict[str, Any]] = {}
    for step in _every_step(model):
        if isinstance(step, TfidfVectorizer):
            options[id(step)] = {"locale": TEXT_LOCALE}
        elif is_classifier(step):
            options[id(step)] = {"zipmap": False}
    return options


def _every_step(model: Any) -> Iterator[Any]:
    """The model and the steps and members inside it, depth first."""
    yield model
    inner: list[Any] = []
    if isinstance(model, Pipeline):
        inner = [step for _, step in model.steps]
    elif isinstance(model, ColumnTransformer):
        inner = [step for _, step, _ in model.transformers_]
    elif isinstance(model, FeatureUnion):
        inner = [step for _, step in model.transformer_list]
    elif isinstance(model, (WeightedEnsemble, VotingClassifier, VotingRegressor)):
        inner = list(model.estimators_)
    elif isinstance(model, (FixedThresholdClassifier, CalibratedClassifier)):
        inner = [model.estimator_]
    for step in inner:
        if not isinstance(step, str):
            yield from _every_step(step)


def _convertible_copy(model: Any) -> Any:
    """The same fitted model, rewritten into steps skl2onnx knows, each computing the same thing:
    formatting functions become identities (the inputs arrive formatted), a WeightedEnsemble
    becomes a soft VotingClassifier/VotingRegressor with its weights, an imputer's missing
    indicator a FeatureUnion branch, an encoder's 'infrequent_if_exist' without infrequent
    categories its equivalent 'ignore'."""
    return _rewrite(copy.deepcopy(model))


def _rewrite(step: Any) -> Any:
    if isinstance(step, str):
        return FunctionTransformer() if step == "passthrough" else step
    if isinstance(step, Pipeline):
        return Pipeline([(name, _rewrite(inner)) for name, inner in prediction_steps(step).steps])
    if isinstance(step, CalibratedClassifier):
        raise NotConvertible(
            f"The model's probabilities are calibrated ({step.calibrator}, "
            "training.calibration); skl2onnx has no converter for that. "
            "training.calibration: none trains a convertible model."
        )
    if isinstance(step, FixedThresholdClassifier):
        raise NotConvertible(
            f"The model predicts the positive class from probability {step.threshold:.4g} "
            "(training.decision_threshold); skl2onnx's classifiers label at 0.5."
        )
    if isinstance(step, ColumnTransformer):
        step.transformers_ = [
            (name, inner if inner == "drop" else _rewrite(inner), columns)
            for name, inner, columns in step.transformers_
        ]
        return step
    if isinstance(step, FunctionTransformer) and step.func in (to_category_strings, to_text):
        return FunctionTransformer()
    if isinstance(step, NativeCategories):  # the codes themselves: the trees test level sets
        return FunctionTransformer()
    if isinstance(step, BaseHistGradientBoosting) and np.any(step.is_categorical_):
        raise NotConvertible(
            "HistGradientBoosting splits on sets of a category's levels, which skl2onnx's "
            "converter reads as thresholds on their codes (it predicts otherwise). "
            "model.encoding.high_cardinality: ordinal trains a convertible model."
        )
    if isinstance(step, SimpleImputer) and step.add_indicator:
        imputer = copy.copy(step)
        imputer.add_indicator = False
        imputer.indicator_ = None
        return FeatureUnion([("imputed", imputer), ("missing", step.indicator_)])
    if isinstance(step, OneHotEncoder) and step.handle_unknown == "infrequent_if_exist":
        if all(c is None for c in (step.infrequent_categories_ or [None])):
            step.handle_unknown = "ignore"
        return step
    if isinstance(step, WeightedEnsemble):
        return _voting(step)
    return step


def _voting(ensemble: WeightedEnsemble) -> VotingClassifier | VotingRegressor:
    members = [(f"member{i}", _rewrite(m)) for i, m in enumerate(ensemble.estimators_)]
    weights = np.asarray(ensemble.weights, dtype=float)
    if hasattr(ensemble, "classes_"):
        voting: Any = VotingClassifier(
            members, voting="soft", weights=weights, flatten_transform=False
        )
        voting.le_ = LabelEncoder().fit(ensemble.classes_)
        voting.classes_ = voting.le_.classes_
    else:
        voting = VotingRegressor(members, weights=weights)
    voting.estimators_ = [m for _, m in members]
    return voting
