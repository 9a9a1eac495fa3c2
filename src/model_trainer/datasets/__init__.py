"""Kedro datasets of the project."""

from model_trainer.datasets.table_dataset import TableDataset

__all__ = ["TableDataset"]
