"""The search space over families: one categorical choice of algorithm, then that family's
parameters (named `<algorithm>__<param>`), and the portfolio configurations tried first."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from itertools import zip_longest
from typing import Any

import optuna

from model_trainer.errors import ConfigurationError

logger = logging.getLogger(__name__)


PARAM_SEPARATOR = "__"


def suggest(
    trial: optuna.Trial, algorithms: Sequence[str], spaces: Mapping[str, Mapping[str, Any]]
) -> tuple[str, dict[str, Any]]:
    algorithm = (
        trial.suggest_categorical("algorithm", list(algorithms))
        if len(algorithms) > 1
        else algorithms[0]
    )
    params = {}
    for name, spec in (spaces.get(algorithm) or {}).items():
        key = f"{algorithm}{PARAM_SEPARATOR}{name}"
        kind = spec.get("type")
        if kind == "int":
            value: Any = trial.suggest_int(
                key, spec["low"], spec["high"], log=spec.get("log", False)
            )
        elif kind == "float":
            value = trial.suggest_float(key, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "categorical":
            value = trial.suggest_categorical(key, spec["choices"])
        else:
            raise ConfigurationError(
                f"Search space entry model.algorithms.{algorithm}.search_space.{name} has "
                f"type '{kind}'.",
                "Use type int, float (with low, high, optional log) or categorical (with choices).",
            )
        params[name] = value
    return algorithm, params


def split_params(params: Mapping[str, Any], algorithms: Sequence[str]) -> tuple[str, dict]:
    """A trial's flat Optuna params -> (algorithm, estimator params)."""
    algorithm = params.get("algorithm", algorithms[0])
    prefix = f"{algorithm}{PARAM_SEPARATOR}"
    return algorithm, {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


def portfolio_trials(
    algorithms: Sequence[str], registry: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Each family's strong configurations, interleaved so a small budget tries every family."""
    per_family = [
        [
            {
                **({"algorithm": name} if len(algorithms) > 1 else {}),
                **{f"{name}{PARAM_SEPARATOR}{k}": v for k, v in config.items()},
            }
            for config in registry[name].get("portfolio") or [{}]
        ]
        for name in algorithms
    ]
    return [config for group in zip_longest(*per_family) for config in group if config]
