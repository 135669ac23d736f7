"""The house rules CI enforces on the code itself: ruff (lint and format) and mypy --strict."""

from __future__ import annotations

import subprocess
import sys

import pytest
from clients import REPO_ROOT

CHECKS = [
    ("ruff lint", [sys.executable, "-m", "ruff", "check", "--no-cache", "."]),
    ("ruff format", [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."]),
    ("mypy --strict", [sys.executable, "-m", "mypy", "--no-incremental"]),
]


@pytest.mark.parametrize(("name", "command"), CHECKS, ids=[c[0] for c in CHECKS])
def test_the_code_passes(name: str, command: list[str]) -> None:
    """Each checker exits 0 on the whole repository (its configuration is in pyproject.toml)."""
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
