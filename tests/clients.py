"""Real ``replicate`` client releases for the tests, run as subprocesses against the loopback API.

``client_path(version)`` installs one release with its dependencies into
``<repo>/.cache/clients/<version>-py<major><minor>`` (once; later runs and other pytest-xdist
workers reuse it), ``client_env`` builds the environment a program needs to use that release
against a :class:`~replicate_explain._loopback.LoopbackAPI`, and ``run_program`` runs a snippet.

Each release reads its base URL from a different variable (field notes, section 1):
``REPLICATE_API_BASE_URL`` before 0.18, ``REPLICATE_BASE_URL`` without ``/v1`` from 0.18 to 1.x,
``REPLICATE_BASE_URL`` with ``/v1`` in 2.x.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from packaging.version import Version

from replicate_explain._loopback import LoopbackAPI

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache" / "clients"

CLIENT_VERSIONS: tuple[str, ...] = ("0.11.0", "0.15.3", "0.15.8", "1.0.7", "2.0.0b4")
"""One release per client generation.

0.11.0: requests, ``Token`` header, token read at every request.
0.15.3: httpx, token read when ``import replicate`` builds the default client.
0.15.8: httpx, token read at the first request, still ``Token`` and ``REPLICATE_API_BASE_URL``.
1.0.7: httpx, ``Bearer``, ``REPLICATE_BASE_URL``, ``ReplicateError`` with problem details.
2.0.0b4: the Stainless rewrite (``replicate.Replicate``, ``AuthenticationError``...).
"""

VERSION_ID = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
MODEL_REF = f"acme/hello-world:{VERSION_ID}"

CANARY = "r8_CANARY0DoNotLeakThis0Token00000000000"
"""A well-formed token the loopback rejects; search any output for it to find a leak."""

VALID_TOKEN = "r8_LoopbackValidToken0000000000000000000"
"""The token the tests' loopback accepts."""

NO_BILLING_TOKEN = "r8_AccountWithoutBilling0000000000000000"
"""Accepted, but creating a prediction answers 402 Billing required (rules' examples use it)."""

NO_CREDIT_TOKEN = "r8_AccountWithoutCredit00000000000000000"
"""Accepted, but creating a prediction answers 402 Insufficient credit."""

THROTTLED_TOKEN = "r8_AccountThrottled000000000000000000000"
"""Accepted, but creating a prediction answers 429 with ``Retry-After`` (rules' examples use it)."""

REFUSALS = {
    NO_BILLING_TOKEN: "billing-required",
    NO_CREDIT_TOKEN: "insufficient-credit",
    THROTTLED_TOKEN: "rate-limited",
}
"""The refusals the tests' loopback answers (``LoopbackAPI(refusals=...)``)."""

# Extra requirements installed beside a release. None are needed on Python 3.9-3.13 today:
# 0.11.0 takes the newest requests and pydantic 2 (it imports ``pydantic.v1``), and the 0.15
# releases work with httpx 0.28. Pin here (with the reason) when a new dependency release breaks
# an old client, e.g. ``"0.11.0": ("pydantic<2",)`` should ``pydantic.v1`` stop importing.
_EXTRA_REQUIREMENTS: dict[str, tuple[str, ...]] = {}

_MARKER = ".installed"
_DEFAULT_BASE_URL_FLOOR = Version("0.18.0")


def _generation_needs_v1(version: str) -> bool:
    return Version(version).major >= 2


def _install_once(requirements: tuple[str, ...], target: Path) -> Path:
    """Install ``requirements`` with their dependencies into ``target`` once; return it.

    They go into a private staging directory, the marker file is written last, and the
    directory is renamed into place: a rename onto an existing directory fails, so two
    pytest-xdist workers racing here both end up using one complete copy.
    """
    if (target / _MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        str(staging),
        "--no-compile",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        *requirements,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(
                f"could not install {' '.join(requirements)} for the tests "
                f"(exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        (staging / _MARKER).write_text("\n".join(requirements) + "\n", encoding="utf-8")
        if target.exists() and not (target / _MARKER).is_file():
            # An incomplete copy left by something else: replace it.
            shutil.rmtree(target, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:
            if not (target / _MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _python_tag() -> str:
    return f"py{sys.version_info.major}{sys.version_info.minor}"


def client_path(version: str) -> Path:
    """Install ``replicate==version`` and its dependencies once; return the directory."""
    requirements = (f"replicate=={version}", *_EXTRA_REQUIREMENTS.get(version, ()))
    return _install_once(requirements, CACHE_DIR / f"{version}-{_python_tag()}")


EXTRAS_DIR = REPO_ROOT / ".cache" / "extras"


def extra_path(requirement: str) -> Path:
    """Install a package a snippet needs (e.g. ``python-dotenv``) once; return its directory.

    Put it on ``PYTHONPATH`` beside the client's directory.
    """
    return _install_once((requirement,), EXTRAS_DIR / f"{requirement}-{_python_tag()}")


def base_url_env(version: str, api: LoopbackAPI) -> dict[str, str]:
    """Return the variable (name and value) that points ``version`` at the loopback."""
    if _generation_needs_v1(version):
        return {"REPLICATE_BASE_URL": f"{api.url}/v1"}
    if Version(version) >= _DEFAULT_BASE_URL_FLOOR:
        return {"REPLICATE_BASE_URL": api.url}
    return {"REPLICATE_API_BASE_URL": api.url}


def client_env(
    version: str,
    api: LoopbackAPI,
    token: str | None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Return a complete environment for a subprocess using client ``version`` on ``api``.

    No ``REPLICATE_*`` variable of the calling process leaks in; ``REPLICATE_API_TOKEN`` is set
    to ``token`` unless it is ``None`` (unset). ``extra`` is applied last.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("REPLICATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(client_path(version)), str(REPO_ROOT)])
    env.update(base_url_env(version, api))
    if token is not None:
        env["REPLICATE_API_TOKEN"] = token
    env["REPLICATE_POLL_INTERVAL"] = "0.01"
    # A proxy configured for the package index must not swallow loopback traffic.
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    env["NO_COLOR"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env["COLUMNS"] = "100"
    env.pop("FORCE_COLOR", None)
    env.pop("PYTHONSTARTUP", None)
    if extra:
        env.update(extra)
    return env


def run_program(
    code: str,
    version: str,
    api: LoopbackAPI,
    token: str | None,
    extra_env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script with client ``version`` against ``api``; return the result.

    The code is written to ``program.py`` in a fresh temporary directory (so tracebacks show
    its lines), which is also the working directory unless ``cwd`` is given.
    """
    env = client_env(version, api, token, extra_env)
    with tempfile.TemporaryDirectory(prefix="replicate-explain-") as workdir:
        script = Path(workdir) / "program.py"
        script.write_text(code, encoding="utf-8")
        return subprocess.run(
            [sys.executable, str(script)],
            env=env,
            cwd=str(cwd) if cwd is not None else workdir,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )


WRAPPER_VERSIONS: dict[str, str] = {
    "litellm": "litellm==1.110.2",
    "langchain": "langchain-community==0.4.2",
    "llama_index": "llama-index-llms-replicate==0.7.0",
}
"""The wrapper releases the tests run (docs/WRAPPERS.md): the newest of each on 2026-12-07."""

WRAPPER_SITE = REPO_ROOT / "tests" / "wrapper_site"


def wrapper_env(requirements: tuple[str, ...], api: LoopbackAPI, version: str) -> dict[str, str]:
    """The variables a program using these packages (wrappers among them) needs against ``api``.

    ``PYTHONPATH`` holds the client release ``version``, the packages and the repository. A
    program using LiteLLM also gets the start-up file that sends its requests to the loopback
    (``tests/wrapper_site``) and reads LiteLLM's model price map from its own package instead of
    the network (``LITELLM_LOCAL_MODEL_COST_MAP``).
    """
    paths = [client_path(version), *(extra_path(req) for req in requirements), REPO_ROOT]
    env: dict[str, str] = {}
    if any(req.startswith("litellm") for req in requirements):
        paths.insert(0, WRAPPER_SITE)
        env["LITELLM_TEST_REPLICATE_URL"] = api.url
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        env["DEFAULT_REPLICATE_POLLING_DELAY_SECONDS"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(str(path) for path in paths)
    return env
