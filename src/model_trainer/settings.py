"""Project settings: hooks, soft-merged environments, and the `today` resolver for names."""

import datetime as dt

from model_trainer.hooks import ARTIFACT_RECORDER, NodeResources, QuietRunHooks

HOOKS = (QuietRunHooks(), ARTIFACT_RECORDER, NodeResources())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/<env> overrides single keys, not whole top-level blocks.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft", "catalog": "soft"},
    "custom_resolvers": {"today": lambda: dt.date.today().isoformat()},
}
