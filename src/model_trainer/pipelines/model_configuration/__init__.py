"""model configuration pipeline."""

from model_trainer.pipelines.model_configuration.pipeline import create_pipeline

__all__ = ["create_pipeline"]
