"""deploy pipeline."""

from model_trainer.pipelines.deploy.pipeline import create_pipeline

__all__ = ["create_pipeline"]
