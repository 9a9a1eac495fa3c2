"""model-trainer: tabular models trained the way a careful ML engineer would, as a Kedro project."""

import warnings

# Library warnings a user cannot act on, kept out of every command's output. The package is
# imported when the Kedro CLI loads project commands, before these would be printed.
for _pattern in (
    "register_new_resolver",  # OmegaConf deprecation inside Kedro and kedro-mlflow
    ".*is experimental",  # Optuna heartbeat and grouped TPE
    "Argument ``.*`` is an experimental feature",
):
    warnings.filterwarnings("ignore", message=_pattern)

from model_trainer import moved_modules  # noqa: E402  (models saved before the packages load)

moved_modules.install()


def __getattr__(name: str) -> object:  # PEP 562: the Python API, imported when first used
    """`from model_trainer import train, evaluate` without importing Kedro and MLflow for every
    user of the package (a saved model unpickles its classes from it)."""
    if name in ("train", "evaluate"):
        from model_trainer import api

        return getattr(api, name)
    raise AttributeError(f"module 'model_trainer' has no attribute '{name}'")
