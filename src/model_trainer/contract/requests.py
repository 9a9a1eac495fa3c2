"""The requests an agent writes in its task JSON, as strict pydantic models.

The seed writes `"task": "train_model"`; the skill's other modes (`tune_model`, `evaluate_model`,
`deploy_model`), `retrain_model`, and the short names (`train`, `tune`, `evaluate`, `deploy`,
`retrain`) are accepted too.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

TRAIN_MODES = ("train_model", "train")
TUNE_MODES = ("tune_model", "tune")
EVALUATE_MODES = ("evaluate_model", "evaluate")
DEPLOY_MODES = ("deploy_model", "deploy")
RETRAIN_MODES = ("retrain_model", "retrain")
MODES = (*TRAIN_MODES, *TUNE_MODES, *EVALUATE_MODES, *DEPLOY_MODES, *RETRAIN_MODES)
MODE_PIPELINES = {
    **dict.fromkeys(TRAIN_MODES, "train"),
    **dict.fromkeys(TUNE_MODES, "tune"),
    **dict.fromkeys(EVALUATE_MODES, "evaluate"),
    **dict.fromkeys(DEPLOY_MODES, "deploy"),
    **dict.fromkeys(RETRAIN_MODES, "retrain"),
}
ModelType = Literal["classification", "regression", "ranking", "clustering", "auto"]
# validationStrategy names -> validation.strategy: the project's own, and scikit-learn's
# splitter names as the seed writes them (stratified_kfold).
VALIDATION_STRATEGIES = {
    **{name: name for name in (
        "kfold", "stratified", "timeseries", "group_timeseries", "group", "repeated_kfold",
        "repeated_stratified", "loo", "auto",
    )},
    "stratified_kfold": "stratified",
    "group_kfold": "group",
    "time_series_split": "timeseries",
    "timeseries_split": "timeseries",
    "repeated_stratified_kfold": "repeated_stratified",
    "leave_one_out": "loo",
}  # fmt: skip
ValidationStrategy = Literal[tuple(VALIDATION_STRATEGIES)]
Label = str | int | float | bool
NonEmpty = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    """Strict types (no "false" for false, no "10" for 10) and no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True)


class HyperparameterSearch(_Strict):
    enabled: bool = True
    nTrials: int | None = Field(None, ge=1, description="Trials in the whole study.")
    timeout: float | None = Field(
        None, gt=0, description="Seconds from the command's start to the end of its final fits."
    )
    sampler: Literal["auto", "tpe", "random", "grid", "cmaes", "nsga2"] | None = None
    pruner: Literal["median", "hyperband", "none"] | None = None


class ExperimentTracking(_Strict):
    enabled: Literal[True] = Field(
        True, description="Runs are always tracked (a local sqlite store by default)."
    )
    experimentName: NonEmpty | None = None
    trackingUri: NonEmpty | None = Field(None, description="sqlite:///… or http(s)://…")


class Validation(_Strict):
    """The seed's object form of validationStrategy."""

    type: ValidationStrategy = "auto"
    folds: int | None = Field(None, ge=2)
    shuffle: bool = Field(True, description="false keeps each fold a contiguous block of rows.")


class Options(_Strict):
    earlyStoppingRounds: int | None = Field(
        None, ge=1, description="Boosting rounds without improvement before a final fit stops."
    )
    verbosity: int | None = Field(
        None, ge=0, le=2, description="0: warnings only, 1: one line per step, 2: debug."
    )


class TrainRequest(_Strict):
    """train_model: the whole pipeline; tune_model: the search only (no model registered)."""

    task: Literal["train_model", "train", "tune_model", "tune"]
    modelType: ModelType = "auto"
    algorithm: NonEmpty | list[NonEmpty] = "auto"
    trainDataPath: NonEmpty
    targetColumn: NonEmpty | None = None
    features: list[NonEmpty] | None = None
    validationStrategy: ValidationStrategy | Validation = "auto"
    hyperparameterSearch: HyperparameterSearch = HyperparameterSearch()
    experimentTracking: ExperimentTracking = ExperimentTracking()
    options: Options = Options()
    metric: NonEmpty | None = Field(None, description="Default: the task's (roc_auc, …).")
    timeColumn: NonEmpty | None = None
    groupColumn: NonEmpty | None = None
    itemColumn: NonEmpty | None = Field(
        None, description="Ranking: the column naming what is ranked; the model then learns "
        "each group's history with each item.",
    )  # fmt: skip
    positiveClass: Label | None = Field(
        None, description="Binary metrics describe this class. Default: the larger of two "
        "numeric labels, true of booleans, else the minority class.",
    )  # fmt: skip
    registeredModelName: NonEmpty | None = Field(
        None, description="Default: experimentName, else data folder, file and target."
    )


class MetricBounds(_Strict):
    min: float | None = None
    max: float | None = None


class EvaluateRequest(_Strict):
    task: Literal["evaluate_model", "evaluate"]
    modelPath: NonEmpty | None = Field(None, description="Default: the latest trained model.")
    modelUri: NonEmpty | None = Field(None, description="models:/name/3, runs:/<id>/model, …")
    testDataPath: NonEmpty
    targetColumn: NonEmpty | None = None
    trustUnverified: bool = Field(
        False,
        description="Load a model file that does not match the SHA-256 recorded at training.",
    )
    experimentTracking: ExperimentTracking = ExperimentTracking()


class DeployRequest(_Strict):
    task: Literal["deploy_model", "deploy"]
    modelPath: NonEmpty | None = None
    modelUri: NonEmpty | None = None
    testDataPath: NonEmpty | None = Field(None, description="Default: the model's test split.")
    thresholds: dict[str, MetricBounds] | None = Field(
        None, description="Per metric, a min and/or max on its held-out value."
    )
    registeredModelName: NonEmpty | None = None
    alias: NonEmpty | None = None
    trustUnverified: bool = Field(
        False,
        description="Load a model file that does not match the SHA-256 recorded at training.",
    )
    experimentTracking: ExperimentTracking = ExperimentTracking()


class RetrainRequest(_Strict):
    """The champion's configuration (or a fresh search) trained on new labelled rows, promoted
    only when it beats the champion by the margin on held-out new rows."""

    task: Literal["retrain_model", "retrain"]
    newDataPath: NonEmpty = Field(description="Labelled CSV or Parquet: the model's columns.")
    modelPath: NonEmpty | None = Field(None, description="The champion. Default: the latest.")
    modelUri: NonEmpty | None = None
    margin: float | None = Field(
        None, ge=0, description="Relative improvement needed to promote (0.01: 1%)."
    )
    search: bool = Field(False, description="A fresh search instead of the champion's setup.")
    hyperparameterSearch: HyperparameterSearch = Field(
        HyperparameterSearch(), description="The fresh search's budget (with search: true)."
    )
    addChampionRows: bool = Field(False, description="Train also on the champion's rows.")
    timeColumn: NonEmpty | None = Field(None, description="Hold out the latest new rows.")
    alias: NonEmpty | None = Field(None, description="A registry alias to move on promotion.")
    trustUnverified: bool = Field(
        False,
        description="Load a model file that does not match the SHA-256 recorded at training.",
    )
    experimentTracking: ExperimentTracking = ExperimentTracking()


Request = TrainRequest | EvaluateRequest | DeployRequest | RetrainRequest
TaskRequest = Annotated[Request, Field(discriminator="task")]
REQUEST = TypeAdapter(TaskRequest)
