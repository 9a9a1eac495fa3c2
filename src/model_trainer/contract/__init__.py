"""The agent's task JSON: typed requests, their parsing and runtime parameters, the results
and their JSON Schema. What the CLI uses, from the modules that hold it."""

from model_trainer.contract.parsing import check_algorithms, parse_request
from model_trainer.contract.requests import MODE_PIPELINES, TrainRequest
from model_trainer.contract.runtime_params import ml_task_of, runtime_params
from model_trainer.contract.task_json import (
    deploy_output,
    evaluate_output,
    failure_output,
    json_schema,
    retrain_output,
    train_output,
    tune_output,
)

__all__ = [
    "MODE_PIPELINES",
    "TrainRequest",
    "check_algorithms",
    "deploy_output",
    "evaluate_output",
    "failure_output",
    "json_schema",
    "ml_task_of",
    "parse_request",
    "retrain_output",
    "runtime_params",
    "train_output",
    "tune_output",
]
