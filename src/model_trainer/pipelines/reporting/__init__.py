"""reporting pipeline."""

from model_trainer.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
