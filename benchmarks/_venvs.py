"""Fresh virtual environments with replicate-explain installed from a wheel (not editable).

An editable install adds a ``.pth`` file that every interpreter of the environment processes at
start-up, which is not what users of the released package pay; so the benchmarks build a wheel of
the checkout and install it, with its dependencies from the package index, into new venvs made
with ``python -m venv`` from the base interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: What the simulated start-up install writes when ``replicate_explain._startup`` is not available:
#: the guarded block the issue describes (an import that can never break the interpreter).
SIMULATED_SITECUSTOMIZE = """\
# >>> replicate-explain (benchmark simulation of the start-up install) >>>
try:
    import replicate_explain
except Exception:
    pass
# <<< replicate-explain <<<
"""


@dataclass(frozen=True)
class Venv:
    """A virtual environment: its directory and its interpreter."""

    root: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    def site_packages(self) -> Path:
        out = subprocess.run(
            [self.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(out.stdout.strip())


def base_python() -> str:
    """The interpreter the running venv was made from (``sys.base_prefix``)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys.base_prefix) / "bin" / version, Path(sys.base_prefix) / "bin" / "python3"):
        if candidate.exists():
            return str(candidate)
    return sys.executable


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{result.stdout}\n{result.stderr}"
        )


def build_wheel(out_dir: Path) -> Path:
    """Build a wheel of the checkout into ``out_dir``; return its path."""
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "-w",
            str(out_dir),
            str(REPO_ROOT),
        ],
        "building the replicate-explain wheel",
    )
    wheels = sorted(out_dir.glob("replicate_explain-*.whl"))
    if not wheels:
        raise RuntimeError(f"no wheel was built in {out_dir}")
    return wheels[-1]


def make_venv(root: Path, wheel: Path) -> Venv:
    """A new venv at ``root`` with ``wheel`` and its dependencies installed."""
    _run([base_python(), "-m", "venv", str(root)], f"creating the venv {root}")
    venv = Venv(root)
    _run(
        [venv.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input", str(wheel)],
        f"installing {wheel.name} into {root}",
    )
    return venv


def has_site_module(venv: Venv) -> bool:
    """Whether the installed package has the real start-up install (``replicate_explain._startup``)."""
    result = subprocess.run(
        [venv.python, "-c", "import importlib.util as u; print(u.find_spec('replicate_explain._startup') is not None)"],
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    return result.stdout.strip() == "True"


def install_startup(venv: Venv) -> str:
    """Activate replicate-explain in every interpreter of ``venv``; return how it was done.

    The real ``replicate-explain install`` when the package has it, else the simulated guarded
    ``sitecustomize.py`` block (:data:`SIMULATED_SITECUSTOMIZE`).
    """
    why = "replicate_explain._startup is not in the package"
    if has_site_module(venv):
        command = [venv.python, "-m", "replicate_explain", "install"]
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=clean_env())
        if result.returncode == 0:
            return "real: `replicate-explain install` (default method)"
        why = (
            f"`replicate-explain install` failed with exit status {result.returncode}: "
            + ((result.stderr.strip() or result.stdout.strip()).splitlines() or [""])[-1]
        )
    target = venv.site_packages() / "sitecustomize.py"
    target.write_text(SIMULATED_SITECUSTOMIZE, encoding="utf-8")
    return f"simulated: a guarded `import replicate_explain` block in sitecustomize.py ({why})"


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every measured interpreter: this one without Python, Replicate or
    colour settings that would change what the interpreter does at start-up."""
    drop_prefixes = ("PYTHON", "REPLICATE_", "VIRTUAL_ENV", "PIP_")
    drop = {"FORCE_COLOR", "NO_COLOR", "TERM", "COLUMNS", "LINES"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes) and k not in drop}
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    if extra:
        env.update(extra)
    return env


def describe() -> dict[str, str]:
    """The machine and interpreter the numbers come from."""
    return {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "platform": sysconfig.get_platform(),
        "cpus": str(os.cpu_count()),
        "base_python": base_python(),
    }
