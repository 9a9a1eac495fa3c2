from kedro.pipeline import Node, Pipeline

from .nodes import configure_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=configure_model,
                inputs=[
                    "task",
                    "train_split",
                    "validation_split",
                    "params:metric",
                    "params:model",
                    "params:validation",
                    "params:dataset",
                    "params:seed",
                ],
                outputs="model_configuration",
                name="configure_model_node",
            )
        ]
    )
