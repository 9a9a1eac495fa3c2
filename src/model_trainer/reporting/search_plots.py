"""The search's own figures, for MLflow and the report: how the trials went, which parameters
and families mattered, and the Pareto front when there are several objectives.

Nodes import this module when they draw, so matplotlib is not loaded at start-up."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import optuna
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)


def search_figures(
    study: optuna.Study, objectives: Sequence[str] = (), chosen_trial: int | None = None
) -> dict[str, Figure]:
    """History and parameter importance (of the metric, the first objective); the trials'
    scores by family when several were searched, else parallel coordinates of the one family's
    parameters; with several objectives the Pareto front. Plots that need more trials than ran
    are left out.

    Parallel coordinates over several families are unreadable (each family's parameters are
    empty axes for the others' trials) and took 0.7 s to draw; MLflow's run comparison gives
    them interactively, per family, from the trials' runs."""
    from optuna.visualization import matplotlib as optuna_plots

    several = len(study.directions) > 1
    on_metric = {"target": lambda t: t.values[0], "target_name": objectives[0]} if several else {}
    makers = {
        "optimization_history.png": optuna_plots.plot_optimization_history,
        "param_importances.png": optuna_plots.plot_param_importances,
    }
    families = trials_by_family(study)
    if len(families) <= 1:
        makers["parallel_coordinate.png"] = optuna_plots.plot_parallel_coordinate
    figures: dict[str, Figure] = {}
    for name, make in makers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                axes = make(study, **on_metric)
            except (ValueError, RuntimeError) as exc:
                logger.info("Search plot %s left out: %s", name, exc)
                continue
        axes = axes.flat[0] if isinstance(axes, np.ndarray) else axes
        figure = axes.get_figure()
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figures[name] = figure
    if len(families) > 1:
        figures["scores_by_family.png"] = scores_by_family_figure(
            families, objectives[0] if objectives else "objective", study.directions[0]
        )
    if several:
        figures["pareto_front.png"] = pareto_front_figure(study, objectives, chosen_trial)
    return figures


def trials_by_family(study: optuna.Study) -> dict[str, list[float]]:
    """The metric (first objective) of each complete trial, by the family it fitted."""
    families: dict[str, list[float]] = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        family = trial.params.get("algorithm") or trial.user_attrs.get("algorithm")
        if family:
            families.setdefault(str(family), []).append(trial.values[0])
    return families


def scores_by_family_figure(
    families: Mapping[str, Sequence[float]], metric: str, direction: optuna.study.StudyDirection
) -> Figure:
    """Each family's trial scores side by side, best family first, its best trial ringed: which
    families the search found worth its time, and how far apart they ended."""
    maximize = direction == optuna.study.StudyDirection.MAXIMIZE
    best = {name: (max if maximize else min)(scores) for name, scores in families.items()}
    order = sorted(families, key=best.get, reverse=maximize)
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(order) + 1.6))
    jitter = np.random.default_rng(0)
    for row, name in enumerate(order):
        scores = np.asarray(families[name], dtype=float)
        axes.scatter(
            scores, row + jitter.uniform(-0.18, 0.18, len(scores)), s=14, alpha=0.6, color="#4c72b0"
        )
        axes.scatter(best[name], row, s=120, facecolors="none", edgecolors="#dd8452", lw=2)
    axes.set_yticks(range(len(order)), [f"{n} ({len(families[n])})" for n in order])
    axes.invert_yaxis()
    axes.set(xlabel=f"{metric} ({'higher' if maximize else 'lower'} is better)")
    axes.set_title("Trials by family (count), best ringed")
    figure.tight_layout()
    return figure


def pareto_front_figure(
    study: optuna.Study, objectives: Sequence[str], chosen_trial: int | None
) -> Figure:
    """The metric against each other objective: every complete trial, the Pareto front (over
    all objectives) joined, and the trial the final model is built from starred."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    others = list(objectives[1:])
    figure, panels = plt.subplots(1, len(others), figsize=(6 * len(others), 4.5), squeeze=False)
    for index, (axes, name) in enumerate(zip(panels[0], others, strict=True), start=1):
        front = sorted(study.best_trials, key=lambda t, i=index: t.values[i])
        axes.scatter(
            [t.values[index] for t in complete],
            [t.values[0] for t in complete],
            color="#bbbbbb",
            s=18,
            label="trial",
        )
        axes.plot(
            [t.values[index] for t in front],
            [t.values[0] for t in front],
            "o-",
            color="#4c72b0",
            label="Pareto front",
        )
        for trial in complete:
            if trial.number == chosen_trial:
                axes.scatter(
                    trial.values[index],
                    trial.values[0],
                    marker="*",
                    s=260,
                    color="#dd8452",
                    zorder=3,
                    label=f"chosen (trial {trial.number})",
                )
        unit = {"latency": "µs per row", "model_size": "bytes"}.get(name, "")
        axes.set(xlabel=f"{name} ({unit})" if unit else name, ylabel=objectives[0])
        axes.legend(fontsize="small")
    figure.suptitle("Pareto front of the search")
    figure.tight_layout()
    return figure
