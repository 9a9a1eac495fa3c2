"""tune: up to and including the study, for extra workers on a shared storage."""

from model_trainer.pipelines.tune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
