"""Project settings: hooks, soft-merged environments, and the `today` resolver for names."""

import datetime as dt

from model_trainer.hooks import (
    ARTIFACT_RECORDER,
    BatchedMlflowHook,
    FailureReport,
    FrozenImports,
    NodeResources,
    OneRunAtATime,
    QuietRunHooks,
    TrackingServerCheck,
)

HOOKS = (
    FrozenImports(),
    OneRunAtATime(),
    TrackingServerCheck(),
    QuietRunHooks(),
    ARTIFACT_RECORDER,
    NodeResources(),
    FailureReport(ARTIFACT_RECORDER),
    # Last, so it is called first, as the plugin's own hook (registered after these) would be.
    BatchedMlflowHook(),
)
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)  # its hook is BatchedMlflowHook above

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/<env> overrides single keys, not whole top-level blocks.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft", "catalog": "soft"},
    # kedro-mlflow adds this pattern in its own hook; the tracking server check reads it first.
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
    "custom_resolvers": {"today": lambda: dt.date.today().isoformat()},
}
