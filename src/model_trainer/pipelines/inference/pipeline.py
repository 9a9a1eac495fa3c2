from kedro.pipeline import Node, Pipeline

from .nodes import (
    load_model_for_inference,
    measure_drift,
    plot_drift,
    predict_batch,
    render_inference_report,
    track_inference,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=load_model_for_inference,
                inputs="params:inference",
                outputs="inference_stored_model",
                name="load_model_for_inference_node",
            ),
            Node(
                func=predict_batch,
                inputs=["inference_stored_model", "inference_table", "params:inference"],
                outputs=["inference_predictions", "inference_features"],
                name="predict_batch_node",
            ),
            Node(
                func=measure_drift,
                inputs=[
                    "inference_stored_model",
                    "inference_features",
                    "inference_predictions",
                    "params:inference",
                ],
                outputs="inference_drift",
                name="measure_drift_node",
            ),
            Node(
                func=track_inference,
                inputs=["inference_predictions", "inference_drift", "inference_stored_model"],
                outputs="inference_mlflow_metrics",
                name="track_inference_node",
            ),
            Node(
                func=plot_drift,
                inputs=["inference_drift", "params:inference"],
                outputs="inference_drift_plots",
                name="plot_drift_node",
            ),
            Node(
                func=render_inference_report,
                inputs=[
                    "inference_drift",
                    "inference_drift_plots",
                    "inference_predictions",
                    "inference_stored_model",
                    "params:inference",
                ],
                outputs="inference_report",
                name="render_inference_report_node",
            ),
        ]
    )
