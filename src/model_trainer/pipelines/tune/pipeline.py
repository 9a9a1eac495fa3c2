from kedro.pipeline import Pipeline

from model_trainer.pipelines import train


def create_pipeline(**kwargs) -> Pipeline:
    return train.create_pipeline().to_nodes("optimize_hyperparameters_node")
