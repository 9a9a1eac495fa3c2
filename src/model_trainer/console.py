"""`model-trainer`, the console script that runs a task JSON from any directory.

Kedro reads its logging configuration (KEDRO_LOGGING_CONFIG, relative to the working directory)
as soon as it is imported, so the project is found and its own logging.yml named first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    project = project_path(sys.argv[1:])
    logging_config = project / "conf" / "logging.yml"
    if logging_config.is_file():
        os.environ["KEDRO_LOGGING_CONFIG"] = str(logging_config)
    from model_trainer.cli import main as commands

    commands()


def project_path(arguments: list[str]) -> Path:
    """--project, else $MODEL_TRAINER_PROJECT, else the project the package is installed from
    (an editable install), else the nearest project from the working directory up."""
    for index, argument in enumerate(arguments):
        if argument == "--project" and index + 1 < len(arguments):
            return Path(arguments[index + 1]).expanduser().resolve()
        if argument.startswith("--project="):
            return Path(argument.split("=", 1)[1]).expanduser().resolve()
    if os.environ.get("MODEL_TRAINER_PROJECT"):
        return Path(os.environ["MODEL_TRAINER_PROJECT"]).expanduser().resolve()
    home = Path(__file__).resolve().parents[2]
    return home if is_project(home) else nearest_project()


def nearest_project() -> Path:
    """The nearest folder with pyproject.toml and conf/, from the working directory up."""
    here = Path.cwd()
    return next((folder for folder in (here, *here.parents) if is_project(folder)), here)


def is_project(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "conf").is_dir()
