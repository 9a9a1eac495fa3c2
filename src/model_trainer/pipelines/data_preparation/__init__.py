"""data preparation pipeline."""

from model_trainer.pipelines.data_preparation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
