from kedro.pipeline import Node, Pipeline

from .nodes import (
    compare_with_previous_version,
    plot_evaluation,
    profile_clusters,
    recommend,
    record_decisions,
    render_report,
    select_worst_predictions,
    summarize_metrics,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=summarize_metrics,
                inputs=[
                    "test_metrics",
                    "baseline_metrics",
                    "study_summary",
                    "training_info",
                    "model_configuration",
                ],
                outputs=["metrics", "training_metrics", "mlflow_metrics"],
                name="summarize_metrics_node",
            ),
            Node(
                func=compare_with_previous_version,
                inputs=["test_split", "model_card", "model_registration", "params:evaluation"],
                outputs="previous_version",
                name="compare_with_previous_version_node",
            ),
            Node(
                func=profile_clusters,
                inputs=["test_predictions", "task", "feature_types"],
                outputs="cluster_profiles",
                name="profile_clusters_node",
            ),
            Node(
                func=plot_evaluation,
                inputs=[
                    "test_predictions",
                    "feature_importance",
                    "model_explanation",
                    "task",
                    "training_info",
                ],
                outputs="evaluation_plots",
                name="plot_evaluation_node",
            ),
            Node(
                func=select_worst_predictions,
                inputs=["test_predictions", "params:reporting"],
                outputs="worst_predictions",
                name="select_worst_predictions_node",
            ),
            Node(
                func=recommend,
                inputs=[
                    "test_metrics",
                    "baseline_metrics",
                    "study_summary",
                    "training_info",
                    "task",
                    "model_configuration",
                    "leak_audit",
                    "params:reporting",
                ],
                outputs="recommendations",
                name="recommend_node",
            ),
            Node(
                func=record_decisions,
                inputs=[
                    "task",
                    "feature_types",
                    "model_configuration",
                    "study_summary",
                    "training_info",
                    "params:tuning",
                    "params:metric",
                    "leak_audit",
                ],
                outputs="decisions",
                name="record_decisions_node",
            ),
            Node(
                func=render_report,
                inputs=[
                    "test_metrics",
                    "baseline_metrics",
                    "study_summary",
                    "model_configuration",
                    "task",
                    "feature_types",
                    "evaluation_plots",
                    "search_plots",
                    "feature_importance",
                    "shap_importance",
                    "worst_predictions",
                    "recommendations",
                    "decisions",
                    "node_resources",
                    "model_registration",
                    "params:dataset",
                    "cluster_profiles",
                    "previous_version",
                ],
                outputs="report",
                name="render_report_node",
            ),
        ]
    )
