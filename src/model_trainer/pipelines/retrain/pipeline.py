from kedro.pipeline import Node, Pipeline

from model_trainer.serving.model_card import model_card_markdown

from .nodes import (
    check_new_rows,
    compare_with_champion,
    describe_challenger,
    fit_challenger,
    gather_challenger_rows,
    load_champion,
    log_challenger,
    render_retrain_report,
    ship_challenger,
    split_new_rows,
    track_retraining,
)

SPLITS = ["retrain_train_split", "retrain_validation_split", "retrain_test_split"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=load_champion,
                inputs="params:retrain",
                outputs="champion",
                name="load_champion_node",
            ),
            Node(
                func=check_new_rows,
                inputs=["champion", "retrain_table", "params:retrain"],
                outputs="retrain_rows",
                name="check_new_rows_node",
            ),
            Node(
                func=split_new_rows,
                inputs=["retrain_rows", "champion", "params:retrain"],
                outputs=SPLITS,
                name="split_new_rows_node",
            ),
            Node(
                func=gather_challenger_rows,
                inputs=["champion", "retrain_train_split", "params:retrain"],
                outputs="challenger_train_rows",
                name="gather_challenger_rows_node",
            ),
            Node(
                func=fit_challenger,
                inputs=[
                    "champion",
                    "challenger_train_rows",
                    "retrain_validation_split",
                    "params:retrain",
                    "params:tuning",
                    "params:training",
                ],
                outputs=["challenger", "challenger_configuration"],
                name="fit_challenger_node",
            ),
            Node(
                func=compare_with_champion,
                inputs=[
                    "champion",
                    "challenger",
                    "challenger_configuration",
                    "challenger_train_rows",
                    "retrain_validation_split",
                    "retrain_test_split",
                    "params:retrain",
                ],
                outputs="retrain_comparison",
                name="compare_with_champion_node",
            ),
            Node(
                func=ship_challenger,
                inputs=[
                    "challenger",
                    "retrain_comparison",
                    "challenger_train_rows",
                    "retrain_validation_split",
                    "retrain_test_split",
                    "champion",
                    "params:retrain",
                    "params:training.checkpoints",
                ],
                outputs=["fitted_model", "model", "model_sha256"],
                name="ship_challenger_node",
            ),
            Node(
                func=describe_challenger,
                inputs=[
                    "champion",
                    "fitted_model",
                    "retrain_comparison",
                    "challenger_train_rows",
                    "retrain_validation_split",
                    "retrain_test_split",
                    "model_sha256",
                    "params:retrain",
                ],
                outputs="model_card",
                name="describe_challenger_node",
            ),
            Node(
                func=model_card_markdown,
                inputs="model_card",
                outputs="model_card_markdown",
                name="write_model_card_markdown_node",
            ),
            Node(
                func=log_challenger,
                inputs=[
                    "fitted_model",
                    "model_card",
                    "retrain_comparison",
                    "retrain_train_split",
                    "params:retrain",
                ],
                outputs="retrain_registration",
                name="log_challenger_node",
            ),
            Node(
                func=track_retraining,
                inputs="retrain_comparison",
                outputs="retrain_mlflow_metrics",
                name="track_retraining_node",
            ),
            Node(
                func=render_retrain_report,
                inputs=["retrain_comparison", "retrain_registration"],
                outputs="retrain_report",
                name="render_retrain_report_node",
            ),
        ]
    )
