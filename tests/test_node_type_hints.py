"""Kedro 1.7 reads every node function's type hints when a run starts (to validate typed
parameters) and warns for each it cannot resolve: names imported only for type checkers made
ten warning lines on every run. Every node's hints resolve, in a fresh interpreter where
nothing else has imported the names they use, and without importing matplotlib."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import sys, typing
from kedro.framework.project import find_pipelines
from kedro.framework.startup import bootstrap_project
bootstrap_project(sys.argv[1])
failures = []
for name, pipeline in find_pipelines(raise_errors=True).items():
    for node in pipeline.nodes:
        try:
            typing.get_type_hints(node.func)
        except Exception as exc:
            failures.append(f"{name}/{node.name}: {exc}")
print("\\n".join(sorted(set(failures))))
print("matplotlib imported" if "matplotlib" in sys.modules else "")
"""


def test_every_node_functions_type_hints_resolve_without_matplotlib():
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT)], capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "", run.stdout
