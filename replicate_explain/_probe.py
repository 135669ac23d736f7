"""Ask a fresh interpreter of this environment about its start-up: is the hook active there, and why not.

One probe serves ``status``, ``install`` and ``doctor``: :func:`run_probe` starts the interpreter
as a user would and asks whether ``replicate_explain`` was imported during start-up and owns
``sys.excepthook`` (``replicate_explain.is_installed()``: the one meaning of "the hook is
active"), which ``sitecustomize`` it loaded, what start-up printed, and where the package and our
files resolve. With ``client=True`` the same interpreter then tries ``import replicate`` (for
``doctor``), after it has reported on start-up, so one run starts one interpreter.

:func:`hook_status` turns a probe and what is installed on disk into a :class:`Status`: the
verdict and, for a "no", the reasons, from what that interpreter saw (the files are never
trusted on their own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._hook import ENABLE_ENV, OFF_VALUES
from ._startup import (
    DEBUG_ENV,
    PTH_NAME,
    SCOPE_USER,
    START_NAME,
    STARTUP_FILE,
    STARTUP_MODULE,
    Location,
    environment_location,
    find_block,
    norm_path,
    ours,
    read_bytes,
    user_location,
)

PROBE_SENTINEL = "REPLICATE-EXPLAIN-PROBE:"
PROBE_TIMEOUT = 120.0
CLIENT_ARGUMENT = "client"
"""The probe's argument that asks it to try ``import replicate`` after reporting on start-up."""


# ---------------------------------------------------------------------------------------------
# The probe: what a fresh interpreter of this environment really does at start-up

_PROBE_CODE = (
    r"""
import sys
_loaded = {
    n: getattr(sys.modules.get(n), "__file__", None) for n in ("sitecustomize", "usercustomize")
}
_module = sys.modules.get("replicate_explain")
try:
    _installed = bool(_module.is_installed()) if _module is not None else False
except Exception:
    _installed = False
_hook = sys.excepthook
_hook_name = "{}.{}".format(
    getattr(_hook, "__module__", "?"), getattr(_hook, "__qualname__", type(_hook).__name__)
)
import json
from importlib.machinery import PathFinder
_path = list(sys.path)
if _path and _path[0] == "" and not getattr(sys.flags, "safe_path", False):
    del _path[0]  # the -c working directory: inserted after start-up, so not searched by it
def _resolve(name):
    for index, entry in enumerate(_path):
        try:
            spec = PathFinder.find_spec(name, [entry])
        except Exception:
            continue
        if spec is not None and spec.origin not in (None, "namespace"):
            return {"origin": spec.origin, "index": index}
    return None
try:
    import site
    _user_site = site.ENABLE_USER_SITE
except Exception:
    _user_site = None
print(__SENTINEL__ + json.dumps({
    "imported": _module is not None,
    "hook_installed": _installed,
    "excepthook": _hook_name,
    "loaded": _loaded,
    "resolves": {
        n: _resolve(n)
        for n in ("sitecustomize", "usercustomize", "replicate_explain", __STARTUP__)
    },
    "sys_path": _path,
    "enable_user_site": _user_site,
}))
if sys.argv[1:] == [__CLIENT__]:
    sys.stdout.flush()
    sys.stderr.write(__SENTINEL__ + "\n")  # what start-up printed ends here
    sys.stderr.flush()
    try:
        import replicate
        _error = None
    except BaseException as exc:
        _error = "{}.{}: {}".format(type(exc).__module__, type(exc).__qualname__, exc)
    print(__SENTINEL__ + json.dumps({"client_error": _error}))
""".replace("__SENTINEL__", repr(PROBE_SENTINEL))
    .replace("__STARTUP__", repr(STARTUP_MODULE))
    .replace("__CLIENT__", repr(CLIENT_ARGUMENT))
)


@dataclass(frozen=True)
class Resolved:
    """Where a fresh interpreter finds a module: its file and the ``sys.path`` index."""

    origin: str
    index: int


@dataclass(frozen=True)
class Probe:
    """What a fresh interpreter of this environment reported about its own start-up."""

    ok: bool
    error: str = ""
    imported: bool = False
    hook_installed: bool = False
    """``replicate_explain.is_installed()`` there: the hook is active."""
    excepthook: str = ""
    loaded: Mapping[str, str | None] = field(default_factory=dict)
    resolves: Mapping[str, Resolved | None] = field(default_factory=dict)
    sys_path: tuple[str, ...] = ()
    enable_user_site: bool | None = None
    startup_output: str = ""
    client_checked: bool = False
    """It tried ``import replicate`` (``run_probe(client=True)``) and said how that went."""
    client_error: str | None = None
    """``module.Type: message`` of the exception ``import replicate`` raised (``None``: it worked)."""

    def path_index(self, directory: Path) -> int | None:
        """The index of ``directory`` on the interpreter's ``sys.path`` (``None``: absent)."""
        wanted = norm_path(directory)
        for index, entry in enumerate(self.sys_path):
            if norm_path(entry) == wanted:
                return index
        return None


def _redact(text: str) -> str:
    try:
        from ._mask import Redactor

        return Redactor.from_environ(os.environ)(text)
    except Exception:
        return "(start-up output not shown: it could not be checked for tokens)"


def _split(lines: list[str]) -> tuple[list[str], str | None, list[str]]:
    """The lines before the first sentinel line (start-up's), that line, and the lines after it."""
    for index, line in enumerate(lines):
        if line.startswith(PROBE_SENTINEL):
            return lines[:index], line, lines[index + 1 :]
    return lines, None, []


def _payload(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line[len(PROBE_SENTINEL) :])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def run_probe(python: str | None = None, environ: Mapping[str, str] | None = None, *, client: bool = False) -> Probe:
    """Start ``python`` (default: this interpreter) as a user would and ask it about start-up;
    with ``client``, it then tries ``import replicate``."""
    executable = python or sys.executable
    env = dict(os.environ if environ is None else environ)
    try:
        result = subprocess.run(
            [executable, "-c", _PROBE_CODE, *([CLIENT_ARGUMENT] if client else [])],
            env=env,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return Probe(ok=False, error=f"could not start {executable}: {error}")
    stdout, reported, later = _split(result.stdout.splitlines())
    stderr, _, client_stderr = _split(result.stderr.splitlines())
    payload = None if reported is None else _payload(reported)
    output = "\n".join([*stdout, *stderr]).strip()
    if payload is None:
        return Probe(
            ok=False,
            error=f"{executable} -c ... exited with status {result.returncode}",
            startup_output=_redact(output),
        )
    client_error: str | None = None
    if client:
        answer = next((_payload(line) for line in later if line.startswith(PROBE_SENTINEL)), None)
        if answer is not None:
            raised = answer.get("client_error")
            client_error = None if raised is None else _redact(str(raised))
        else:
            tail = (client_stderr or ["no output"])[-1]
            client_error = _redact(f"exit status {result.returncode}: {tail}")
    resolves: dict[str, Resolved | None] = {}
    for name, value in payload.get("resolves", {}).items():
        resolves[name] = Resolved(str(value["origin"]), int(value["index"])) if value else None
    enable = payload.get("enable_user_site")
    return Probe(
        ok=True,
        imported=bool(payload.get("imported")),
        hook_installed=bool(payload.get("hook_installed")),
        excepthook=str(payload.get("excepthook", "")),
        loaded=dict(payload.get("loaded", {})),
        resolves=resolves,
        sys_path=tuple(str(entry) for entry in payload.get("sys_path", [])),
        enable_user_site=enable if isinstance(enable, bool) else None,
        startup_output=_redact(output),
        client_checked=client,
        client_error=client_error,
    )


# ---------------------------------------------------------------------------------------------
# What is installed where, and the verdict


@dataclass(frozen=True)
class Installed:
    """One install found on disk."""

    method: str
    scope: str
    paths: tuple[Path, ...]

    def describe(self) -> str:
        if self.method == "sitecustomize":
            return f"block in {self.paths[0]}"
        return f"{PTH_NAME} + {START_NAME} + {STARTUP_FILE} in {self.paths[0].parent}"


@dataclass(frozen=True)
class Status:
    """Whether a fresh interpreter has the hook active, what is installed, and why not."""

    active: bool
    python: str
    environment: str
    installed: tuple[Installed, ...]
    reasons: tuple[str, ...]
    excepthook: str
    startup_output: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "python": self.python,
            "environment": self.environment,
            "installed": [
                {"method": item.method, "scope": item.scope, "paths": [str(p) for p in item.paths]}
                for item in self.installed
            ],
            "reasons": list(self.reasons),
            "excepthook": self.excepthook,
            "startup_output": self.startup_output,
        }


def installed_at(location: Location) -> list[Installed]:
    """The installs of either method found in ``location``."""
    found: list[Installed] = []
    data = read_bytes(location.customize_file)
    if data is not None and find_block(data) is not None:
        found.append(Installed("sitecustomize", location.scope, (location.customize_file,)))
    pth_paths = tuple(location.directory / name for name in (PTH_NAME, START_NAME, STARTUP_FILE))
    if any(ours(path) for path in pth_paths):
        found.append(Installed("pth", location.scope, pth_paths))
    return found


def _locations() -> list[Location]:
    locations = [environment_location()]
    user = user_location()
    if user is not None and norm_path(user.directory) != norm_path(locations[0].directory):
        locations.append(user)
    return locations


def off_value(environ: Mapping[str, str]) -> str | None:
    """The value of REPLICATE_EXPLAIN when it switches the hook off (``None``: it does not)."""
    value = environ.get(ENABLE_ENV)
    if value is not None and value.strip().lower() in OFF_VALUES:
        return value
    return None


def _why_not(probe: Probe, installed: Sequence[Installed], environ: Mapping[str, str]) -> list[str]:
    reasons: list[str] = []
    off = off_value(environ)
    if off is not None:
        reasons.append(
            f"{ENABLE_ENV}={off} is set in this environment: it turns the hook off (unset it to turn it back on)."
        )
    if not installed:
        reasons.append(
            "Nothing is installed: run `replicate-explain install` "
            "(or `replicate-explain install --user` for your user site)."
        )
    package = probe.resolves.get("replicate_explain")
    if package is None:
        reasons.append(
            "replicate_explain is not installed in this environment (a new interpreter cannot "
            "import it at start-up: run from a checkout, or uninstalled with pip?): "
            "`pip install replicate-explain` into it."
        )
    for item in installed:
        if item.scope == SCOPE_USER and probe.enable_user_site is not True:
            reasons.append(
                "The user site is disabled for this interpreter "
                f"({user_site_off_reason(environ)}), so nothing in {item.paths[0].parent} "
                "runs at start-up."
            )
            continue
        if item.method == "sitecustomize":
            reasons.extend(_why_not_customize(probe, item))
        elif probe.resolves.get(STARTUP_MODULE) is None:
            reasons.append(
                f"{item.paths[0].parent} is not on this interpreter's sys.path, so Python never reads {PTH_NAME} there."
            )
    if probe.imported and not probe.hook_installed and off is None:
        reasons.append(
            f"replicate_explain was imported at start-up, but sys.excepthook is now "
            f"{probe.excepthook}: something set its own hook afterwards without chaining to ours."
        )
    if not reasons:
        reasons.append(
            f"No cause found. Run `{DEBUG_ENV}=1 replicate-explain status` to see what the start-up hook reports."
        )
    return reasons


def _why_not_customize(probe: Probe, item: Installed) -> list[str]:
    target = item.paths[0]
    module = target.stem
    resolved = probe.resolves.get(module)
    if resolved is None:
        return [f"{target.parent} is not on this interpreter's sys.path, so {target.name} never runs."]
    if norm_path(resolved.origin) != norm_path(target):
        return [
            f"Another {module} comes first on sys.path: {resolved.origin}. Python imports only the "
            f"first one, so the block in {target} never runs. Use `replicate-explain install "
            f"--method pth` instead (and `replicate-explain uninstall --method sitecustomize`)."
        ]
    loaded = probe.loaded.get(module)
    if loaded is None or norm_path(loaded) != norm_path(target):
        return [
            f"{target} failed while Python imported it at start-up (its own code raised before "
            f"our block ran, or the block could not run); start-up printed what went wrong."
        ]
    return []


def user_site_off_reason(environ: Mapping[str, str]) -> str:
    """Why this interpreter ignores the user site, in a few words."""
    if sys.prefix != sys.base_prefix:
        return "it runs in a virtual environment"
    if environ.get("PYTHONNOUSERSITE"):
        return "PYTHONNOUSERSITE is set"
    if sys.flags.no_user_site:
        return "python -s"
    return "disabled by the interpreter, e.g. for a set-uid process"


def hook_status(environ: Mapping[str, str] | None = None, probe: Probe | None = None) -> Status:
    """Whether the hook is active in a fresh interpreter of this environment, and why not.

    ``probe`` is what such an interpreter reported (default: start one now with ``environ``).
    """
    env = os.environ if environ is None else environ
    if probe is None:
        probe = run_probe(environ=env)
    installed = [item for location in _locations() for item in installed_at(location)]
    return _status(probe, installed, env)


def _status(probe: Probe, installed: Sequence[Installed], environ: Mapping[str, str]) -> Status:
    if not probe.ok:
        reasons: list[str] = [f"A fresh interpreter failed to start: {probe.error}."]
        if probe.startup_output:
            reasons.append("It printed:\n" + probe.startup_output)
        active = False
    else:
        active = probe.hook_installed
        reasons = [] if active else _why_not(probe, installed, environ)
        if active and not installed:
            reasons.append(
                "Active, but not through `replicate-explain install`: something else imports "
                "replicate_explain at start-up (your own sitecustomize.py or a .pth file)."
            )
    return Status(
        active=active,
        python=sys.executable,
        environment=sys.prefix,
        installed=tuple(installed),
        reasons=tuple(reasons),
        excepthook=probe.excepthook,
        startup_output=probe.startup_output,
    )
