"""The integrations on every major version users install: the in-process integration tests run
again, in a subprocess, with another major release of the library first on ``PYTHONPATH``.

The test environment holds one release of each library (``.ci/constraints.txt`` pins it: sentry-sdk
3.x today); the other majors users still have are installed once into ``.cache/extras/`` and tested
here with the same tests, so a major's difference (sentry-sdk 3.0 attaches the current thread's
stack, with its frames' variables, to ``capture_message``) is found by both.

Which majors: sentry-sdk 2.x (3.0 is weeks old; most programs still pin 2.x). structlog numbers
its releases by year, so each year is a potential major: 24.4.0 is the last release for Python
3.8 and what many lock files still hold. Not here: loguru (0.7 has been the only line since 2023),
opentelemetry-sdk (one major, 1.x; its instrumentations follow it in lock-step). The end-to-end
programs with real clients run sentry-sdk 2.x too (``tests/test_secrets.py``, ``sentry-2``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from clients import REPO_ROOT, extra_path

#: The other majors, pinned (a release cannot change what CI tests): library -> requirement.
OTHER_MAJORS = {
    "sentry-sdk 2": ("sentry-sdk", "sentry-sdk==2.75.0", "sentry"),
    "structlog 24": ("structlog", "structlog==24.4.0", "structlog"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(OTHER_MAJORS))
def test_integration_tests_pass_on_the_other_major(name: str) -> None:
    """``tests/test_integrations.py``'s in-process tests of the library pass with the other major
    release imported (checked: the subprocess prints the version it finds first on the path)."""
    distribution, requirement, keyword = OTHER_MAJORS[name]
    path = extra_path(requirement)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(path), str(REPO_ROOT), str(REPO_ROOT / "tests")])
    version = subprocess.run(
        [sys.executable, "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=True,
    ).stdout.strip()
    assert version == requirement.split("==")[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-q",
            "tests/test_integrations.py",
            "-m",
            "not e2e",
            "-k",
            keyword,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
