"""Kedro datasets of the project."""

from model_trainer.datasets.figure_dataset import FigureDataset
from model_trainer.datasets.metrics_dataset import MlflowMetricsBatchDataset
from model_trainer.datasets.model_file_dataset import ModelFileDataset
from model_trainer.datasets.table_dataset import TableDataset

__all__ = ["FigureDataset", "MlflowMetricsBatchDataset", "ModelFileDataset", "TableDataset"]
