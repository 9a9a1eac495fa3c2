"""training pipeline."""

from model_trainer.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
