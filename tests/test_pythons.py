"""The oldest and newest supported Pythons: the import stays free and the hook explains.

Runs on the interpreters pyenv provides on our machines (3.9 and 3.13), each in a venv built
once under ``.cache/pythons/`` with replicate 1.0.7 and our runtime dependencies; the package
itself comes from the checkout.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from clients import CANARY, MODEL_REF, REPO_ROOT, base_url_env
from outputs import leaks

from replicate_explain._loopback import LoopbackAPI

pytestmark = pytest.mark.e2e

PYTHONS = ("3.9", "3.13")
CACHE = REPO_ROOT / ".cache" / "pythons"


def _interpreter(version: str) -> str | None:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(root.glob(f"{version}.*"), reverse=True):
        if (candidate / "bin" / "python").is_file():
            return str(candidate / "bin" / "python")
    found = shutil.which(f"python{version}")
    if found and "shims" not in found:  # a pyenv shim fails for a version that is not selected
        return found
    return None


def _venv(version: str) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers build each venv once
        return _build(version)


def _build(version: str) -> Path:
    target = CACHE / version
    python = target / "bin" / "python"
    if (target / ".ready").is_file():
        return python
    interpreter = _interpreter(version)
    if interpreter is None:
        pytest.skip(f"Python {version} is not installed here (pyenv install {version})")
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([interpreter, "-m", "venv", str(target)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "rich",
            "PyYAML",
            "packaging",
            "replicate==1.0.7",
        ],
        check=True,
        capture_output=True,
    )
    (target / ".ready").write_text("ok\n", encoding="utf-8")
    return python


def _env(api: LoopbackAPI, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REPLICATE_", "PYTHON"))}
    env.update(base_url_env("1.0.7", api), PYTHONPATH=str(REPO_ROOT), NO_COLOR="1", **extra)
    return env


@pytest.mark.parametrize("version", PYTHONS)
def test_the_import_is_free_on_every_supported_python(version: str) -> None:
    """No heavy module is imported, and the hook is installed."""
    python = _venv(version)
    code = (
        "import sys, replicate_explain\n"
        "heavy = {'rich', 'yaml', 'packaging', 'replicate', 'httpx', 'typing', 'threading', 'logging'}\n"
        "print(sorted(heavy & set(sys.modules)), sys.excepthook.__module__)\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    done = subprocess.run(
        [str(python), "-c", code], env={**env, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[] replicate_explain._hook\n", "")


@pytest.mark.parametrize("version", PYTHONS)
def test_a_real_failure_is_explained_on_every_supported_python(api: LoopbackAPI, version: str) -> None:
    """replicate 1.0.7 with a token ending in a newline: masked traceback, then token-whitespace."""
    python = _venv(version)
    code = f"import replicate_explain, replicate\nreplicate.run({MODEL_REF!r}, input={{}})\n"
    env = _env(api, REPLICATE_API_TOKEN=CANARY + "\n", REPLICATE_EXPLAIN_FORMAT="json")
    done = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True)
    last = done.stderr.splitlines()[-1]
    assert done.returncode == 1
    assert "httpx.LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'" in done.stderr
    assert json.loads(last)["rule_id"] == "token-whitespace"
    assert leaks(done.stderr, CANARY) == []
