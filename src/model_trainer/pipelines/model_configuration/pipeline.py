from kedro.pipeline import Node, Pipeline

from .nodes import configure_model, smoke_test_configuration


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
                outputs="draft_model_configuration",
                name="configure_model_node",
            ),
            Node(
                func=smoke_test_configuration,
                inputs=[
                    "draft_model_configuration",
                    "train_split",
                    "validation_split",
                    "task",
                    "feature_types",
                    "params:smoke_test",
                ],
                outputs="model_configuration",
                name="smoke_test_node",
            ),
        ]
    )
