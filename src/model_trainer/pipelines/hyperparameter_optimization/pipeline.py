from kedro.pipeline import Node, Pipeline

from .nodes import optimize_hyperparameters, plot_search


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=optimize_hyperparameters,
                inputs=[
                    "train_split",
                    "validation_split",
                    "task",
                    "feature_types",
                    "model_configuration",
                    "params:tuning",
                    "params:training.calibration",
                    "params:training.bagging",
                    "params:training.explanations",
                ],
                outputs=["study", "study_summary", "trials"],
                name="optimize_hyperparameters_node",
            ),
            Node(
                func=plot_search,
                inputs=["study", "study_summary"],
                outputs=["search_plots", "param_importances"],
                name="plot_search_node",
            ),
        ]
    )
