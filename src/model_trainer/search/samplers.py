"""How the search samples and prunes: Optuna samplers and pruners by conf name, the objectives a
study optimises, and the grid a small discrete space becomes."""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna

from model_trainer.errors import ConfigurationError
from model_trainer.search.space import PARAM_SEPARATOR

logger = logging.getLogger(__name__)


SAMPLERS = ("auto", "tpe", "random", "grid", "cmaes", "nsga2")


# Objectives besides the metric, all minimised: prediction time per row of a fold's score rows in
# microseconds, and the size of the fitted pipeline pickled, in bytes.
EXTRA_OBJECTIVES = ("latency", "model_size")


def make_sampler(
    name: str,
    seed: int,
    *,
    grid: Mapping[str, list] | None = None,
    population_size: int = 50,
) -> optuna.samplers.BaseSampler:
    """A resolved sampler name (not `auto`: see `choose_sampler`) -> the Optuna sampler."""
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(
            multivariate=True, group=True, seed=seed, warn_independent_sampling=False
        ),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "grid": lambda: optuna.samplers.GridSampler(dict(grid or {}), seed=seed),
        "cmaes": lambda: _cmaes_sampler(seed),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed),
    }
    if name not in samplers:
        raise _unknown_sampler(name)
    return samplers[name]()


def _unknown_sampler(name: str) -> ConfigurationError:
    return ConfigurationError(
        f"Unknown tuning.sampler '{name}'.", f"Use one of: {', '.join(SAMPLERS)}."
    )


def _cmaes_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's CMA-ES needs the separate `cmaes` package, which is not a dependency here."""
    if importlib.util.find_spec("cmaes") is None:
        raise ConfigurationError(
            "tuning.sampler is cmaes, but the Python package 'cmaes' that Optuna's CmaEsSampler "
            "needs is not installed.",
            "Add the package (uv add cmaes), or use tuning.sampler: tpe, which also handles "
            "continuous spaces.",
        )
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def objectives_of(settings: Mapping[str, Any], metric: str) -> list[str]:
    """`tuning.objectives` as names, the model's metric first: a list, or a string such as
    `metric+latency` (`--params` splits lists on commas). `metric` stands for the metric's name."""
    value = settings.get("objectives") or ["metric"]
    given = value.split("+") if isinstance(value, str) else list(value)
    names = [
        metric if str(name).strip() in ("metric", metric) else str(name).strip() for name in given
    ]
    if (
        names[0] != metric
        or len(set(names)) != len(names)
        or any(name not in EXTRA_OBJECTIVES for name in names[1:])
    ):
        raise ConfigurationError(
            f"tuning.objectives is {value!r}.",
            f"Start with metric (here {metric}), then any of {', '.join(EXTRA_OBJECTIVES)} once "
            "each, e.g. [metric, latency] or metric+model_size.",
        )
    return names


def grid_space(
    algorithms: Sequence[str], spaces: Mapping[str, Mapping[str, Any]], max_points: int
) -> dict[str, list] | None:
    """The grid of a small discrete space, named as `suggest` names parameters, or None. Only a
    single family qualifies: the `algorithm` choice makes the space conditional, and a grid over
    every family's parameters at once would repeat each family's points."""
    if len(algorithms) != 1:
        return None
    algorithm = algorithms[0]
    grid: dict[str, list] = {}
    for name, spec in (spaces.get(algorithm) or {}).items():
        if spec.get("type") == "categorical":
            values = list(spec["choices"])
        elif spec.get("type") == "int" and not spec.get("log", False):
            if spec["high"] - spec["low"] >= max_points:
                return None
            values = list(range(spec["low"], spec["high"] + 1))
        else:
            return None
        grid[f"{algorithm}{PARAM_SEPARATOR}{name}"] = values
    return grid if math.prod(len(v) for v in grid.values()) <= max_points else None


def choose_sampler(
    settings: Mapping[str, Any], configuration: Mapping[str, Any], objectives: Sequence[str]
) -> tuple[str, dict[str, list] | None]:
    """`tuning.sampler` resolved, with the grid when it is `grid`. `auto`: NSGA-II for several
    objectives; grid when the space is small and discrete (`grid_space`) and `n_trials` covers
    it; else TPE. Auto never picks CMA-ES: it needs the `cmaes` package and an all-numeric
    space, where multivariate TPE does as well at these budgets."""
    name = settings.get("sampler", "auto")
    if name not in SAMPLERS:
        raise _unknown_sampler(name)
    n_trials = int(settings.get("n_trials", 50))
    max_points = int(settings.get("grid_max_points", 64))
    grid = grid_space(configuration["algorithms"], configuration["search_space"], max_points)
    several = len(objectives) > 1
    if name == "auto":
        if several:
            return "nsga2", None
        if grid is not None and n_trials >= math.prod(len(v) for v in grid.values()):
            return "grid", grid
        return "tpe", None
    if name == "grid" and grid is None:
        raise ConfigurationError(
            "tuning.sampler is grid, but the search space is not a small discrete one: a "
            f"single family whose parameters are categorical or int (not log), with at most "
            f"tuning.grid_max_points={max_points} points in all.",
            "Use tuning.sampler: auto or tpe, or set model.algorithm to one family with such a "
            "search space (or raise tuning.grid_max_points).",
        )
    if name == "nsga2" and not several:
        raise ConfigurationError(
            "tuning.sampler is nsga2, which searches for several objectives, but "
            "tuning.objectives has only the metric.",
            "Set tuning.objectives: [metric, latency] (or model_size), or use tuning.sampler: "
            "auto or tpe.",
        )
    if name == "cmaes" and several:
        raise ConfigurationError(
            "tuning.sampler is cmaes, which optimises a single objective, but tuning.objectives "
            f"has {len(objectives)}.",
            "Use tuning.sampler: nsga2 (or auto) for several objectives.",
        )
    return name, grid if name == "grid" else None


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    pruners: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        "hyperband": optuna.pruners.HyperbandPruner,
        "none": optuna.pruners.NopPruner,
    }
    if name not in pruners:
        raise ConfigurationError(
            f"Unknown tuning.pruner '{name}'.", f"Use one of: {', '.join(pruners)}."
        )
    return pruners[name]()
