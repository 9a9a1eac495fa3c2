from kedro.pipeline import Node, Pipeline

from .nodes import (
    audit_leaks,
    count_classes,
    detect_task_type,
    split_table,
    type_features,
    validate_raw_table,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=validate_raw_table,
                inputs=["raw_table", "params:dataset"],
                outputs="validated_table",
                name="validate_raw_table_node",
            ),
            Node(
                func=detect_task_type,
                inputs=["validated_table", "params:dataset", "params:task"],
                outputs="detected_task",
                name="detect_task_type_node",
            ),
            Node(
                func=type_features,
                inputs=["validated_table", "params:dataset", "params:feature_typing"],
                outputs="column_types",
                name="type_features_node",
            ),
            Node(
                func=split_table,
                inputs=[
                    "validated_table",
                    "detected_task",
                    "column_types",
                    "params:dataset",
                    "params:split",
                    "params:validation",
                ],
                outputs=["train_split", "validation_split", "test_split"],
                name="split_table_node",
            ),
            Node(
                func=audit_leaks,
                inputs=[
                    "train_split",
                    "validation_split",
                    "test_split",
                    "column_types",
                    "detected_task",
                    "params:dataset",
                    "params:validation",
                ],
                outputs=["feature_types", "leak_audit"],
                name="audit_leaks_node",
            ),
            Node(
                func=count_classes,
                inputs=["detected_task", "train_split", "params:dataset", "params:task"],
                outputs="task",
                name="count_classes_node",
            ),
        ]
    )
