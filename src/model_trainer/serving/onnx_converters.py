"""The skl2onnx converters the project registers: LightGBM and XGBoost (from onnxmltools), the
project's label-encoding wrapper, the missing indicator and the iterative imputer, which
skl2onnx lacks or gets wrong; `onnx_export` registers them before a conversion."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, MissingIndicator
from sklearn.linear_model._base import LinearModel

from model_trainer.models.estimators import LabelEncodedClassifier


@functools.cache
def register_converters() -> None:
    """Once per process: LightGBM and XGBoost (onnxmltools), the project's XGBoost label wrapper,
    the missing indicator and the iterative imputer; HistGradientBoosting's leaves fixed."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBClassifier, XGBRegressor

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for model_class, alias, shape, converter, options in (
        (LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
         convert_lightgbm, classifier_options),
        (LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
         convert_lightgbm, None),
        (XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
         convert_xgboost, classifier_options),
        (XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
         convert_xgboost, None),
        (LabelEncodedClassifier, "ModelTrainerLabelEncodedClassifier",
         calculate_linear_classifier_output_shapes, _convert_label_encoded, classifier_options),
        (MissingIndicator, "ModelTrainerMissingIndicator", _missing_indicator_shape,
         _convert_missing_indicator, None),
    ):  # fmt: skip
        update_registered_converter(model_class, alias, shape, converter, options=options)
    # The project's subclass only quiets fit, so it converts as its base does.
    for imputer_class in (IterativeImputer, *IterativeImputer.__subclasses__()):
        update_registered_converter(
            imputer_class,
            "ModelTrainerIterativeImputer",
            _iterative_imputer_shape,
            _convert_iterative_imputer,
        )
    _cast_missing_flags_of_tree_nodes()


def _cast_missing_flags_of_tree_nodes() -> None:
    """skl2onnx 1.20 gives HistGradientBoosting's leaves the missing-value flag `False`, a bool
    that onnx's list of int attributes refuses ("Expected an int, got a boolean"); the flag is
    cast to the int it stands for, so those models convert (their splits' flags already are)."""
    from skl2onnx.common import tree_ensemble

    add_node = tree_ensemble.add_node

    @functools.wraps(add_node)
    def add_node_with_int_flag(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kw: Any):
        flag = int(nodes_missing_value_tracks_true)
        return add_node(*args, nodes_missing_value_tracks_true=flag, **kw)

    tree_ensemble.add_node = add_node_with_int_flag


def _convert_label_encoded(scope: Any, operator: Any, container: Any) -> None:
    """The inner classifier's graph (labels 0..k-1), its indices mapped back to the labels."""
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxGather, OnnxIdentity

    wrapper = operator.raw_operator
    opset = container.target_opset
    inner = OnnxSubEstimator(
        wrapper.estimator_, operator.inputs[0], op_version=opset, options={"zipmap": False}
    )
    labels = OnnxGather(
        np.asarray(wrapper.classes_), inner[0], op_version=opset, output_names=operator.outputs[:1]
    )
    probabilities = OnnxIdentity(inner[1], op_version=opset, output_names=operator.outputs[1:])
    labels.add_to(scope, container)
    probabilities.add_to(scope, container)


def _missing_indicator_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([rows, len(operator.raw_operator.features_)])


def _convert_missing_indicator(scope: Any, operator: Any, container: Any) -> None:
    """1.0 where a tracked column is NaN: the columns SimpleImputer(add_indicator=True) adds."""
    from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxGather, OnnxIsNaN
    from skl2onnx.proto import onnx_proto

    opset = container.target_opset
    tracked = OnnxGather(
        operator.inputs[0],
        np.asarray(operator.raw_operator.features_, dtype=np.int64),
        axis=1,
        op_version=opset,
    )
    flags = OnnxCast(
        OnnxIsNaN(tracked, op_version=opset),
        to=onnx_proto.TensorProto.FLOAT,
        op_version=opset,
        output_names=operator.outputs[:1],
    )
    flags.add_to(scope, container)


def _iterative_imputer_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    imputer = operator.raw_operator
    indicator = imputer.indicator_.features_ if imputer.add_indicator else []
    width = imputer.n_features_in_ + len(indicator)
    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), width])


def _convert_iterative_imputer(scope: Any, operator: Any, container: Any) -> None:
    """IterativeImputer.transform with linear estimators: the initial fill, then each fitted
    regression in turn (a linear function of the current filled matrix, clipped) replaces the
    gaps of its column; the missing indicator, when asked for, is appended."""
    from skl2onnx.algebra.onnx_ops import (
        OnnxAdd,
        OnnxAnd,
        OnnxCast,
        OnnxClip,
        OnnxConcat,
        OnnxGather,
        OnnxIdentity,
        OnnxIsNaN,
        OnnxMatMul,
        OnnxWhere,
    )
    from skl2onnx.proto import onnx_proto

    imputer = operator.raw_operator
    opset = container.target_opset
    if imputer.sample_posterior:
        raise NotImplementedError("IterativeImputer(sample_posterior=True) draws at random.")
    n_features = imputer.n_features_in_
    X = operator.inputs[0]
    missing = OnnxIsNaN(X, op_version=opset)
    statistics = imputer.initial_imputer_.statistics_.astype(np.float32).reshape(1, -1)
    filled: Any = OnnxWhere(missing, statistics, X, op_version=opset)
    for step in imputer.imputation_sequence_:
        estimator = step.estimator
        if not isinstance(estimator, LinearModel):
            raise NotImplementedError(
                f"IterativeImputer with a {type(estimator).__name__} (only linear estimators)."
            )
        weights = np.zeros((n_features, 1), dtype=np.float32)
        weights[step.neighbor_feat_idx, 0] = np.ravel(estimator.coef_)
        intercept = np.asarray([estimator.intercept_], dtype=np.float32)
        predicted: Any = OnnxAdd(
            OnnxMatMul(filled, weights, op_version=opset), intercept, op_version=opset
        )
        # the per-column bounds fit resolved from min_value/max_value
        low, high = imputer._min_value[step.feat_idx], imputer._max_value[step.feat_idx]
        if np.isfinite(low) or np.isfinite(high):
            predicted = OnnxClip(
                predicted,
                np.asarray(low, dtype=np.float32),
                np.asarray(high, dtype=np.float32),
                op_version=opset,
            )
        this_column = np.zeros((1, n_features), dtype=bool)
        this_column[0, step.feat_idx] = True
        gaps = OnnxAnd(missing, this_column, op_version=opset)
        filled = OnnxWhere(gaps, predicted, filled, op_version=opset)
    if imputer.add_indicator:
        flags = OnnxCast(
            OnnxGather(
                missing,
                np.asarray(imputer.indicator_.features_, dtype=np.int64),
                axis=1,
                op_version=opset,
            ),
            to=onnx_proto.TensorProto.FLOAT,
            op_version=opset,
        )
        result: Any = OnnxConcat(
            filled, flags, axis=1, op_version=opset, output_names=operator.outputs[:1]
        )
    else:
        result = OnnxIdentity(filled, op_version=opset, output_names=operator.outputs[:1])
    result.add_to(scope, container)
