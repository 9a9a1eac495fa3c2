"""train: the five stages, raw table to report."""

from model_trainer.pipelines.train.pipeline import create_pipeline

__all__ = ["create_pipeline"]
