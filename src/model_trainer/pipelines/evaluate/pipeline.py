from kedro.pipeline import Node, Pipeline

from .nodes import (
    analyse_errors,
    check_evaluation_data,
    compare_models,
    load_model_to_evaluate,
    plot_evaluation_charts,
    predict_evaluation_rows,
    recommend_after_evaluation,
    render_evaluation_report,
    track_evaluation,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=load_model_to_evaluate,
                inputs="params:evaluation",
                outputs="evaluation_stored_model",
                name="load_model_to_evaluate_node",
            ),
            Node(
                func=check_evaluation_data,
                inputs=["evaluation_stored_model", "evaluation_table", "params:evaluation"],
                outputs="evaluation_rows",
                name="check_evaluation_data_node",
            ),
            Node(
                func=predict_evaluation_rows,
                inputs=["evaluation_stored_model", "evaluation_rows"],
                outputs="evaluation_predictions",
                name="predict_evaluation_rows_node",
            ),
            Node(
                func=compare_models,
                inputs=["evaluation_stored_model", "evaluation_rows", "params:evaluation"],
                outputs="evaluation_comparison",
                name="compare_models_node",
            ),
            Node(
                func=analyse_errors,
                inputs=["evaluation_predictions", "evaluation_stored_model", "params:evaluation"],
                outputs=[
                    "evaluation_breakdown",
                    "evaluation_error_patterns",
                    "evaluation_worst_predictions",
                ],
                name="analyse_errors_node",
            ),
            Node(
                func=plot_evaluation_charts,
                inputs=[
                    "evaluation_predictions",
                    "evaluation_error_patterns",
                    "evaluation_stored_model",
                ],
                outputs="evaluation_charts",
                name="plot_evaluation_charts_node",
            ),
            Node(
                func=recommend_after_evaluation,
                inputs=[
                    "evaluation_comparison",
                    "evaluation_breakdown",
                    "evaluation_error_patterns",
                    "evaluation_rows",
                    "evaluation_stored_model",
                    "params:evaluation",
                ],
                outputs="evaluation_findings",
                name="recommend_after_evaluation_node",
            ),
            Node(
                func=track_evaluation,
                inputs="evaluation_comparison",
                outputs="evaluation_mlflow_metrics",
                name="track_evaluation_node",
            ),
            Node(
                func=render_evaluation_report,
                inputs=[
                    "evaluation_comparison",
                    "evaluation_breakdown",
                    "evaluation_error_patterns",
                    "evaluation_worst_predictions",
                    "evaluation_findings",
                    "evaluation_charts",
                ],
                outputs="evaluation_report",
                name="render_evaluation_report_node",
            ),
        ]
    )
