"""The documentation: the MkDocs site builds in strict mode (a broken link, a missing page or a
docstring mkdocstrings cannot render fails it), and the README stays short with working links."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).parent / "mkdocs"
README_MAX_LINES = 160
# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.e2e
def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [
            str(MKDOCS),
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert (site / "index.html").is_file()
    api = site / "api" / "index.html"
    assert api.is_file()
    # mkdocstrings rendered the modules, not the `:::` lines.
    html = api.read_text(encoding="utf-8")
    assert 'id="model_trainer.contract.task_json"' in html
    assert ":::" not in html


def test_the_readme_is_short_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    relative = [
        target.split("#", 1)[0]
        for target in LINK.findall(text)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")
    ]
    assert relative, "the README links to the docs by relative path"
    broken = [target for target in relative if not (ROOT / target).exists()]
    assert not broken, f"README.md links to missing files: {broken}"
