from kedro.pipeline import Pipeline

from model_trainer.pipelines import (
    data_preparation,
    hyperparameter_optimization,
    model_configuration,
    reporting,
    training,
)


def create_pipeline(**kwargs) -> Pipeline:
    return (
        data_preparation.create_pipeline()
        + model_configuration.create_pipeline()
        + hyperparameter_optimization.create_pipeline()
        + training.create_pipeline()
        + reporting.create_pipeline()
    )
