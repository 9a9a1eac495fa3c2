from kedro.pipeline import Node, Pipeline

from model_trainer.serving.model_card import model_card_markdown

from .nodes import (
    compute_feature_importance,
    describe_model,
    explain_model,
    fit_evaluation_model,
    log_model_to_mlflow,
    refit_on_all_rows,
    score_test_split,
)

MODEL_INPUTS = ["task", "feature_types", "model_configuration"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=fit_evaluation_model,
                inputs=[
                    "train_split",
                    "validation_split",
                    *MODEL_INPUTS,
                    "study_summary",
                    "params:training",
                ],
                outputs=["evaluation_model", "training_info"],
                name="fit_evaluation_model_node",
            ),
            Node(
                func=score_test_split,
                inputs=[
                    "evaluation_model",
                    "train_split",
                    "validation_split",
                    "test_split",
                    *MODEL_INPUTS,
                ],
                outputs=["test_metrics", "baseline_metrics", "test_predictions"],
                name="score_test_split_node",
            ),
            Node(
                func=compute_feature_importance,
                inputs=["evaluation_model", "test_split", *MODEL_INPUTS, "params:training"],
                outputs="feature_importance",
                name="compute_feature_importance_node",
            ),
            Node(
                func=explain_model,
                inputs=[
                    "evaluation_model",
                    "train_split",
                    "test_split",
                    "task",
                    "feature_types",
                    "model_configuration",
                    "params:training.explanations",
                ],
                outputs=["model_explanation", "shap_importance", "shap_metrics"],
                name="explain_model_node",
            ),
            Node(
                func=refit_on_all_rows,
                inputs=[
                    "evaluation_model",
                    "train_split",
                    "validation_split",
                    "test_split",
                    "feature_types",
                    "params:training",
                ],
                outputs=["fitted_model", "model", "model_sha256"],
                name="refit_on_all_rows_node",
            ),
            Node(
                func=describe_model,
                inputs=[
                    "train_split",
                    "validation_split",
                    "test_split",
                    *MODEL_INPUTS,
                    "training_info",
                    "test_metrics",
                    "baseline_metrics",
                    "study_summary",
                    "model_sha256",
                    "params:training",
                    "params:dataset",
                ],
                outputs="model_card",
                name="describe_model_node",
            ),
            Node(
                func=model_card_markdown,
                inputs="model_card",
                outputs="model_card_markdown",
                name="write_model_card_markdown_node",
            ),
            Node(
                func=log_model_to_mlflow,
                inputs=[
                    "fitted_model",
                    "model_card",
                    "train_split",
                    "feature_types",
                    "params:training",
                ],
                outputs="model_registration",
                name="log_model_to_mlflow_node",
            ),
        ]
    )
