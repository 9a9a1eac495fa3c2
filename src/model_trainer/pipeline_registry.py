"""Project pipelines: the five stages, `train` (all of them, the default) and `tune`."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    if "train" in pipelines:
        pipelines["__default__"] = pipelines["train"]
    return pipelines
