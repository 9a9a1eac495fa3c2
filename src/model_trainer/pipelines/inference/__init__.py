"""inference pipeline."""

from model_trainer.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
