"""evaluate pipeline."""

from model_trainer.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
