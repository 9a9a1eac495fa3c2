"""hyperparameter optimization pipeline."""

from model_trainer.pipelines.hyperparameter_optimization.pipeline import create_pipeline

__all__ = ["create_pipeline"]
