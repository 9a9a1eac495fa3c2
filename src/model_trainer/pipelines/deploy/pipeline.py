from kedro.pipeline import Node, Pipeline

from .nodes import (
    check_model,
    export_onnx,
    load_candidate,
    promote_if_passed,
    stop_if_failed,
    summarize_deployment,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=load_candidate,
                inputs="params:deploy",
                outputs="deploy_candidate",
                name="load_candidate_node",
            ),
            Node(
                func=check_model,
                inputs=["deploy_candidate", "params:deploy"],
                outputs="deploy_checks",
                name="check_model_node",
            ),
            Node(
                func=export_onnx,
                inputs=["deploy_candidate", "params:deploy"],
                outputs=["deploy_onnx_model", "deploy_onnx_check"],
                name="export_onnx_node",
            ),
            Node(
                func=promote_if_passed,
                inputs=["deploy_candidate", "deploy_checks", "deploy_onnx_check", "params:deploy"],
                outputs="deploy_registration",
                name="promote_if_passed_node",
            ),
            Node(
                func=summarize_deployment,
                inputs=[
                    "deploy_candidate",
                    "deploy_checks",
                    "deploy_onnx_check",
                    "deploy_registration",
                    "params:deploy",
                ],
                outputs=["deployment", "deployment_mlflow_metrics"],
                name="summarize_deployment_node",
            ),
            Node(
                func=stop_if_failed,
                inputs=["deployment", "params:deploy"],
                outputs=None,
                name="stop_if_failed_node",
            ),
        ]
    )
