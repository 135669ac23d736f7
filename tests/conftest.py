"""Shared fixtures: one loopback Replicate API per test module, one wheel per session."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clients import REFUSALS, REPO_ROOT, VALID_TOKEN

from replicate_explain._loopback import LoopbackAPI


@pytest.fixture(scope="module")
def api() -> Iterator[LoopbackAPI]:
    """A loopback stand-in for the Replicate API that accepts ``VALID_TOKEN`` (and answers the
    account refusals of ``clients.REFUSALS`` for their tokens)."""
    with LoopbackAPI(tokens={VALID_TOKEN}, refusals=REFUSALS) as server:
        yield server


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once per session (offline: hatchling is installed here)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "--disable-pip-version-check", "-w", str(out), str(REPO_ROOT)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (built,) = out.glob("replicate_explain-*.whl")
    return built


@pytest.fixture(autouse=True)
def _no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain text wraps to COLUMNS when set (else 80): tests see the same width wherever they run."""
    monkeypatch.delenv("COLUMNS", raising=False)
