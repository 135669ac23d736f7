"""Run the installed ``replicate-explain`` console script in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).parent / ("replicate-explain.exe" if os.name == "nt" else "replicate-explain")
"""The console script of the environment running the tests."""


def script() -> str:
    """The console script's path; a clear failure if the package is not installed."""
    if not SCRIPT.is_file():
        raise AssertionError(
            f"{SCRIPT} does not exist: install the package into this environment first "
            f"({sys.executable} -m pip install -e .)"
        )
    return str(SCRIPT)


def cli_env(extra: dict[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """This process's environment without any REPLICATE_* variable, plain output, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("REPLICATE_")}
    env.pop("FORCE_COLOR", None)
    env.update({"NO_COLOR": "1", "COLUMNS": "100", "PYTHONIOENCODING": "utf-8"})
    env.update(extra or {})
    env.update(overrides)
    return env


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: os.PathLike[str] | str | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run ``replicate-explain ARGS``; return the finished process (whatever its exit status)."""
    return subprocess.run(
        [script(), *args],
        env=cli_env() if env is None else env,
        input=stdin,
        cwd=None if cwd is None else str(cwd),
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )


def run_json(*args: str, **kwargs: Any) -> tuple[int, Any]:
    """Run a command with ``--format json``; return its exit status and the parsed document."""
    done = run_cli(*args, "--format", "json", **kwargs)
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError as error:
        raise AssertionError(f"not JSON ({error}):\n{done.stdout}\nstderr:\n{done.stderr}") from None
