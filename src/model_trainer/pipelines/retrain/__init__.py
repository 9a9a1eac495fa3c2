"""retrain pipeline."""

from model_trainer.pipelines.retrain.pipeline import create_pipeline

__all__ = ["create_pipeline"]
