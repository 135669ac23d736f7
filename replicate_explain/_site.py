"""Activation at interpreter start-up: ``replicate-explain install | uninstall | status``.

``install`` writes into one site directory: the current environment's ``purelib``
(``sysconfig.get_paths()["purelib"]``, the venv's site-packages), or the user site with
``--user``. Two methods:

* ``sitecustomize`` (default): a marked block appended to ``sitecustomize.py`` (in the user site
  ``usercustomize.py``, the module CPython's ``site`` runs from there; a Debian-family system
  Python's own ``sitecustomize`` would shadow one in the user site). The existing bytes are kept
  exactly, and ``uninstall`` restores them byte for byte (deleting the file if ``install``
  created it). CPython imports only the *first* ``sitecustomize`` on ``sys.path``, so ``install``
  refuses when another one would shadow ours (or ours would shadow it) and offers ``pth``.
* ``pth``: ``replicate_explain.pth`` with an ``import`` line (run by ``site`` up to Python 3.14),
  ``replicate_explain.start`` with a PEP 829 entry point (Python 3.15+, whose ``site`` then skips
  the import lines of the matching ``.pth``: the hook is started once), and the small module both
  name, ``_replicate_explain_startup.py``.

Whatever is written never breaks start-up: the code runs only through ``site`` (so not under
``python -S``), skips everything when ``REPLICATE_EXPLAIN`` is off, imports the package inside
``try/except Exception`` and prints nothing unless ``REPLICATE_EXPLAIN_DEBUG=1``. The startup
module lives outside the package, so after ``pip uninstall replicate-explain`` every file left
behind quietly does nothing. Its whole cost is one failed or successful ``import``.

``status`` never trusts the files: it starts a fresh interpreter of the environment and asks it
whether ``replicate_explain`` was imported during start-up and owns ``sys.excepthook``, then
explains a "no" from what that interpreter saw (which ``sitecustomize`` it loaded, what start-up
printed, where the package and our files resolve).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import stat
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._cli import EPILOG, EXIT_OK, EXIT_PROBLEMS
from ._hook import ENABLE_ENV, OFF_VALUES

METHODS = ("sitecustomize", "pth")
DEFAULT_METHOD = "sitecustomize"
SCOPE_ENVIRONMENT = "environment"
SCOPE_USER = "user"

DEBUG_ENV = "REPLICATE_EXPLAIN_DEBUG"
DEBUG_VALUES = ("1", "true", "yes", "on")  # as ``_state.debug_enabled``

BEGIN = b"# >>> replicate-explain >>>"
END = b"# <<< replicate-explain <<<"
CREATED_FLAG = b"(created this file)"
_BLOCK_RE = re.compile(
    # The begin line, then whole lines that are neither marker, then the end line: a stray
    # begin marker left in the file before ours never swallows the user's lines after it.
    rb"(?m)^# >>> replicate-explain >>>(?P<flags>[^\n]*)\n"
    rb"(?:(?!# >>> replicate-explain >>>|# <<< replicate-explain <<<)[^\n]*\n)*"
    rb"# <<< replicate-explain <<<[^\n]*(?:\n|\Z)"
)

PTH_NAME = "replicate_explain.pth"
START_NAME = "replicate_explain.start"
STARTUP_MODULE = "_replicate_explain_startup"
STARTUP_FILE = f"{STARTUP_MODULE}.py"
STARTUP_ENTRY_POINT = f"{STARTUP_MODULE}:activate"
PTH_MARK = "replicate-explain install --method pth"
"""Every file of the ``pth`` method contains this; ``uninstall`` deletes only files that do."""

PROBE_SENTINEL = "REPLICATE-EXPLAIN-PROBE:"
PROBE_TIMEOUT = 60.0


# ---------------------------------------------------------------------------------------------
# What is written


def _guard_function(name: str) -> str:
    """Source of ``def name():``, which imports replicate_explain unless turned off, silently."""
    return (
        f"def {name}():\n"
        "    import os\n"
        f"    if os.environ.get({ENABLE_ENV!r}, '').strip().lower() in {OFF_VALUES!r}:\n"
        "        return\n"
        "    try:\n"
        "        import replicate_explain  # importing it installs the excepthooks\n"
        "    except Exception:\n"
        f"        if os.environ.get({DEBUG_ENV!r}, '').strip().lower() in {DEBUG_VALUES!r}:\n"
        "            import sys\n"
        "            import traceback\n"
        "\n"
        "            sys.stderr.write('replicate-explain: the start-up hook could not import '\n"
        "                             'replicate_explain (it stays off):\\n')\n"
        "            traceback.print_exc()\n"
    )


def sitecustomize_block(created: bool) -> bytes:
    """The marked block appended to ``sitecustomize.py`` (ASCII, so any source encoding fits)."""
    begin = BEGIN + (b" " + CREATED_FLAG if created else b"")
    text = (
        "# Written by `replicate-explain install`: Replicate authentication failures are\n"
        "# explained under the traceback in every interpreter started here.\n"
        "# `replicate-explain uninstall` removes this block exactly.\n"
        "# REPLICATE_EXPLAIN=0 turns it off for one run.\n"
        + _guard_function("_replicate_explain_start")
        + "\n\n_replicate_explain_start()\ndel _replicate_explain_start\n"
    )
    return begin + b"\n" + text.encode("ascii") + END + b"\n"


def pth_files() -> dict[str, bytes]:
    """The three files of the ``pth`` method, by name, in the order they are written."""
    module = (
        f'"""replicate-explain start-up hook, written by `{PTH_MARK}`.\n'
        "\n"
        f"{PTH_NAME} (Python 3.14 and older) or {START_NAME} (PEP 829, Python 3.15\n"
        "and newer) calls activate() when the interpreter starts. This module lives outside\n"
        "the package, so it quietly does nothing after `pip uninstall replicate-explain`.\n"
        "`replicate-explain uninstall` removes all three files.\n"
        '"""\n'
        "\n"
        "_started = False\n"
        "\n\n" + _guard_function("_start") + "\n\n"
        "def activate():\n"
        "    # Once per process: in a venv, Python (3.9 to 3.14 at least) runs .pth import\n"
        "    # lines twice, from site.venv() and again from site.addsitepackages().\n"
        "    global _started\n"
        "    if not _started:\n"
        "        _started = True\n"
        "        _start()\n"
    )
    start = (
        f"# replicate-explain start-up hook (PEP 829, Python 3.15+), written by\n"
        f"# `{PTH_MARK}`; `replicate-explain uninstall` removes it.\n"
        f"# Its presence makes Python skip the import line of {PTH_NAME}.\n"
        f"{STARTUP_ENTRY_POINT}\n"
    )
    pth = (
        f"# replicate-explain start-up hook, written by `{PTH_MARK}`;\n"
        "# `replicate-explain uninstall` removes it. Python 3.14 and older run the import line\n"
        f"# below; 3.15 and newer run {START_NAME} instead (PEP 829) and skip it.\n"
        f"import {STARTUP_MODULE}; {STARTUP_MODULE}.activate()\n"
    )
    return {
        STARTUP_FILE: module.encode("ascii"),
        START_NAME: start.encode("ascii"),
        PTH_NAME: pth.encode("ascii"),
    }


# ---------------------------------------------------------------------------------------------
# The block inside sitecustomize.py: pure byte operations


@dataclass(frozen=True)
class Block:
    """Where our block sits in a file's bytes, and whether ``install`` created the file."""

    start: int
    end: int
    created: bool


def find_block(data: bytes) -> Block | None:
    """Locate our marked block in ``data`` (``None``: not there)."""
    match = _BLOCK_RE.search(data)
    if match is None:
        return None
    return Block(match.start(), match.end(), CREATED_FLAG in match.group("flags"))


def add_block(original: bytes | None) -> bytes:
    """The file content with our block in it; ``original`` is ``None`` when the file is absent.

    An existing block is replaced in place (an upgrade). Otherwise the block is appended after
    a line break, which :func:`remove_block` takes away again: nothing of ``original`` changes.
    """
    if original is None:
        return sitecustomize_block(created=True)
    block = find_block(original)
    if block is not None:
        return original[: block.start] + sitecustomize_block(block.created) + original[block.end :]
    if original == b"":
        return sitecustomize_block(created=False)
    return original + b"\n" + sitecustomize_block(created=False)


def remove_block(data: bytes) -> bytes | None:
    """The file content without our block, or ``None`` when the file should be deleted.

    Returns ``data`` itself when there is no block. The line break :func:`add_block` put in
    front of the block goes with it; a file ``install`` created and nobody added to is deleted.
    """
    block = find_block(data)
    if block is None:
        return data
    start = block.start
    if not block.created and start > 0 and data[start - 1 : start] == b"\n":
        start -= 1
    remaining = data[:start] + data[block.end :]
    if block.created and remaining == b"":
        return None
    return remaining


# ---------------------------------------------------------------------------------------------
# Locations


@dataclass(frozen=True)
class Location:
    """A site directory we install into."""

    scope: str
    directory: Path

    @property
    def customize_module(self) -> str:
        """The module ``site`` imports from here: ``sitecustomize`` or ``usercustomize``."""
        return "usercustomize" if self.scope == SCOPE_USER else "sitecustomize"

    @property
    def customize_file(self) -> Path:
        return self.directory / f"{self.customize_module}.py"


def environment_location() -> Location:
    """The current environment's site-packages (a venv's, or the interpreter's own)."""
    return Location(SCOPE_ENVIRONMENT, Path(sysconfig.get_paths()["purelib"]))


def user_location() -> Location | None:
    """The user site of this interpreter (``None`` where the platform has none)."""
    import site

    path = site.getusersitepackages()
    return Location(SCOPE_USER, Path(path)) if path else None


# ---------------------------------------------------------------------------------------------
# The probe: what a fresh interpreter of this environment really does at start-up

_PROBE_CODE = r"""
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
""".replace("__SENTINEL__", repr(PROBE_SENTINEL)).replace("__STARTUP__", repr(STARTUP_MODULE))


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
    excepthook: str = ""
    loaded: Mapping[str, str | None] = field(default_factory=dict)
    resolves: Mapping[str, Resolved | None] = field(default_factory=dict)
    sys_path: tuple[str, ...] = ()
    enable_user_site: bool | None = None
    startup_output: str = ""

    def path_index(self, directory: Path) -> int | None:
        """The index of ``directory`` on the interpreter's ``sys.path`` (``None``: absent)."""
        wanted = _norm(directory)
        for index, entry in enumerate(self.sys_path):
            if _norm(entry) == wanted:
                return index
        return None


def _norm(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.realpath(os.fspath(path)))


def _redact(text: str) -> str:
    try:
        from ._redact import Redactor

        return Redactor.from_environ(os.environ)(text)
    except Exception:
        return "(start-up output not shown: it could not be checked for tokens)"


def run_probe(python: str | None = None, environ: Mapping[str, str] | None = None) -> Probe:
    """Start ``python`` (default: this interpreter) as a user would and ask it about start-up."""
    executable = python or sys.executable
    env = dict(os.environ if environ is None else environ)
    try:
        result = subprocess.run(
            [executable, "-c", _PROBE_CODE],
            env=env,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return Probe(ok=False, error=f"could not start {executable}: {error}")
    payload: dict[str, Any] | None = None
    other_lines: list[str] = []
    for line in result.stdout.splitlines():
        if line.startswith(PROBE_SENTINEL) and payload is None:
            with contextlib.suppress(ValueError):
                payload = json.loads(line[len(PROBE_SENTINEL) :])
            continue
        other_lines.append(line)
    output = "\n".join([*other_lines, *result.stderr.splitlines()]).strip()
    if payload is None:
        return Probe(
            ok=False,
            error=f"{executable} -c ... exited with status {result.returncode}",
            startup_output=_redact(output),
        )
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


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _ours(path: Path) -> bool:
    data = _read(path)
    return data is not None and PTH_MARK.encode("ascii") in data


def installed_at(location: Location) -> list[Installed]:
    """The installs of either method found in ``location``."""
    found: list[Installed] = []
    data = _read(location.customize_file)
    if data is not None and find_block(data) is not None:
        found.append(Installed("sitecustomize", location.scope, (location.customize_file,)))
    pth_paths = tuple(location.directory / name for name in (PTH_NAME, START_NAME, STARTUP_FILE))
    if any(_ours(path) for path in pth_paths):
        found.append(Installed("pth", location.scope, pth_paths))
    return found


def _locations() -> list[Location]:
    locations = [environment_location()]
    user = user_location()
    if user is not None and _norm(user.directory) != _norm(locations[0].directory):
        locations.append(user)
    return locations


def _off_value(environ: Mapping[str, str]) -> str | None:
    value = environ.get(ENABLE_ENV)
    if value is not None and value.strip().lower() in OFF_VALUES:
        return value
    return None


def _why_not(probe: Probe, installed: Sequence[Installed], environ: Mapping[str, str]) -> list[str]:
    reasons: list[str] = []
    off = _off_value(environ)
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
                f"({_user_site_off_reason(environ)}), so nothing in {item.paths[0].parent} "
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
    if _norm(resolved.origin) != _norm(target):
        return [
            f"Another {module} comes first on sys.path: {resolved.origin}. Python imports only the "
            f"first one, so the block in {target} never runs. Use `replicate-explain install "
            f"--method pth` instead (and `replicate-explain uninstall --method sitecustomize`)."
        ]
    loaded = probe.loaded.get(module)
    if loaded is None or _norm(loaded) != _norm(target):
        return [
            f"{target} failed while Python imported it at start-up (its own code raised before "
            f"our block ran, or the block could not run); start-up printed what went wrong."
        ]
    return []


def _user_site_off_reason(environ: Mapping[str, str]) -> str:
    if sys.prefix != sys.base_prefix:
        return "it runs in a virtual environment"
    if environ.get("PYTHONNOUSERSITE"):
        return "PYTHONNOUSERSITE is set"
    if sys.flags.no_user_site:
        return "python -s"
    return "disabled by the interpreter, e.g. for a set-uid process"


def hook_status(environ: Mapping[str, str] | None = None) -> Status:
    """Start a fresh interpreter of this environment and report whether the hook is active there."""
    env = os.environ if environ is None else environ
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


def format_status(status: Status) -> str:
    """The status as text for a terminal or a log."""
    if status.active:
        lines = [
            "replicate-explain is active: a new interpreter of this environment explains "
            "Replicate authentication failures."
        ]
    else:
        lines = ["replicate-explain is NOT active in new interpreters of this environment."]
    lines.append(f"  python:      {status.python}")
    lines.append(f"  environment: {status.environment}")
    if status.installed:
        for number, item in enumerate(status.installed):
            label = "installed:  " if number == 0 else "            "
            lines.append(f"  {label} {item.method} ({item.scope}): {item.describe()}")
    else:
        lines.append("  installed:   nothing")
    if status.excepthook:
        lines.append(f"  excepthook:  {status.excepthook}")
    if status.reasons:
        lines.append("Why:" if not status.active else "Note:")
        lines += [_bullet(reason) for reason in status.reasons]
    if status.startup_output and not status.active:
        lines.append("Start-up printed:")
        lines += [f"  {line}" for line in status.startup_output.splitlines()]
    return "\n".join(lines) + "\n"


def _bullet(text: str) -> str:
    first, *rest = text.splitlines() or [""]
    return "\n".join([f"  - {first}", *(f"    {line}" for line in rest)])


# ---------------------------------------------------------------------------------------------
# Writing files


class InstallError(Exception):
    """A clear, user-facing reason why nothing (more) was changed."""


def _write_error(path: Path, error: OSError, scope: str, verb: str = "write") -> InstallError:
    reason = error.strerror or str(error)
    hint = (
        "Install for your user only with `--user`, or run the command as the owner of this "
        "environment (for a system Python: with sudo)."
        if scope == SCOPE_ENVIRONMENT
        else f"Check the permissions of {path.parent}."
    )
    return InstallError(f"cannot {verb} {path} ({reason}). {hint}")


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``: a new file honours the umask, an existing one is replaced
    atomically with its permission bits kept (a symlink's target is written)."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        with open(path, "xb") as handle:
            handle.write(data)
        return
    temporary = path.with_name(f".{path.name}.replicate-explain-{os.getpid()}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
        os.chmod(temporary, stat.S_IMODE(info.st_mode))
        if hasattr(os, "chown"):
            with contextlib.suppress(OSError):
                os.chown(temporary, info.st_uid, info.st_gid)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _delete(path: Path) -> None:
    """Delete ``path`` and the bytecode Python cached for it."""
    path.unlink()
    cache = path.parent / "__pycache__"
    for pyc in cache.glob(f"{path.stem}.*.pyc") if path.suffix == ".py" else ():
        with contextlib.suppress(OSError):
            pyc.unlink()


@dataclass(frozen=True)
class Change:
    """One thing install or uninstall did (or found already done), as a sentence."""

    path: Path
    message: str
    changed: bool


def _shadow_problem(location: Location, probe: Probe) -> str | None:
    """Why a ``sitecustomize`` block in ``location`` would not run (``None``: it would)."""
    module = location.customize_module
    target = location.customize_file
    resolved = probe.resolves.get(module)
    if resolved is None or _norm(resolved.origin) == _norm(target):
        return None
    ours = probe.path_index(location.directory)
    advice = (
        "Python imports only the first one it finds on sys.path (Debian and Ubuntu system "
        "Pythons ship their own sitecustomize.py). Nothing was written. Use the .pth method "
        "instead, which does not depend on it:\n"
        f"    replicate-explain install{' --user' if location.scope == SCOPE_USER else ''} "
        "--method pth"
    )
    if ours is None or resolved.index < ours:
        return (
            f"another {module}.py comes first on sys.path and would shadow ours:\n"
            f"    {resolved.origin}    (runs at start-up)\n"
            f"    {target}    (where the block would go: never run)\n" + advice
        )
    return (
        f"creating {target} would hide {resolved.origin}, which Python runs at start-up "
        f"today (it comes later on sys.path). " + advice
    )


def install_sitecustomize(location: Location, probe: Probe) -> list[Change]:
    """Add (or update) our block in ``location``'s customize module."""
    problem = _shadow_problem(location, probe)
    if problem is not None:
        raise InstallError(problem)
    target = location.customize_file
    original = _read(target)
    updated = add_block(original)
    if updated == original:
        return [
            Change(
                target,
                f"The replicate-explain block in {target} is up to date: nothing changed.",
                False,
            )
        ]
    try:
        location.directory.mkdir(parents=True, exist_ok=True)
        _write_bytes(target, updated)
    except OSError as error:
        raise _write_error(target, error, location.scope) from error
    if original is None:
        message = f"Created {target} with the replicate-explain block."
    elif find_block(original) is not None:
        message = f"Updated the replicate-explain block in {target}."
    else:
        message = (
            f"Appended the replicate-explain block to {target} (its {len(original)} existing bytes are unchanged)."
        )
    return [Change(target, message, True)]


def install_pth(location: Location) -> list[Change]:
    """Write the three files of the ``pth`` method into ``location``."""
    files = pth_files()
    for name in files:
        path = location.directory / name
        if path.exists() and not _ours(path):
            raise InstallError(
                f"{path} exists and was not written by replicate-explain: nothing was changed. "
                "Move it away, or use the default method (`--method sitecustomize`)."
            )
    changes: list[Change] = []
    path = location.directory
    try:
        location.directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = location.directory / name
            if _read(path) == data:
                continue
            _write_bytes(path, data)
            changes.append(Change(path, f"Wrote {path}.", True))
    except OSError as error:
        raise _write_error(path, error, location.scope) from error
    if not changes:
        changes.append(
            Change(
                location.directory,
                f"The .pth hook in {location.directory} is up to date: nothing changed.",
                False,
            )
        )
    return changes


def uninstall_sitecustomize(location: Location) -> list[Change]:
    """Remove our block from ``location``'s customize module, restoring its previous bytes."""
    target = location.customize_file
    data = _read(target)
    if data is None or find_block(data) is None:
        return []
    remaining = remove_block(data)
    try:
        if remaining is None:
            _delete(target)
            return [
                Change(
                    target,
                    f"Deleted {target}: replicate-explain had created it and nothing else is in it.",
                    True,
                )
            ]
        _write_bytes(target, remaining)
    except OSError as error:
        raise _write_error(target, error, location.scope, verb="change") from error
    return [
        Change(
            target,
            f"Removed the replicate-explain block from {target} (restored its previous {len(remaining)} bytes).",
            True,
        )
    ]


def uninstall_pth(location: Location) -> list[Change]:
    """Delete the ``pth`` method's files from ``location`` (only the ones we wrote)."""
    changes: list[Change] = []
    for name in reversed(list(pth_files())):
        path = location.directory / name
        if not path.exists():
            continue
        if not _ours(path):
            changes.append(Change(path, f"Left {path} alone: replicate-explain did not write it.", False))
            continue
        try:
            _delete(path)
        except OSError as error:
            raise _write_error(path, error, location.scope, verb="delete") from error
        changes.append(Change(path, f"Deleted {path}.", True))
    return changes


# ---------------------------------------------------------------------------------------------
# The commands


def _error(command: str, message: str) -> int:
    sys.stderr.write(f"replicate-explain {command}: {message}\n")
    return EXIT_PROBLEMS


def _target(command: str, user: bool, probe: Probe | None) -> Location:
    """Where ``command`` works; with a ``probe``, refuse a user site the interpreter ignores."""
    if not user:
        return environment_location()
    location = user_location()
    if location is None:
        raise InstallError(f"this platform has no user site directory; {command} without --user.")
    if probe is not None and probe.enable_user_site is not True:
        raise InstallError(
            f"the user site ({location.directory}) is disabled for this interpreter "
            f"({_user_site_off_reason(os.environ)}): nothing there would run at start-up. "
            f"Install into the environment instead: replicate-explain {command}"
        )
    return location


def cmd_install(args: argparse.Namespace) -> int:
    """``replicate-explain install``."""
    probe = run_probe()
    if not probe.ok:
        detail = f"\n{probe.startup_output}" if probe.startup_output else ""
        return _error("install", f"a fresh interpreter failed to start: {probe.error}.{detail}")
    try:
        location = _target("install", args.user, probe)
        if args.method == "pth":
            changes = install_pth(location)
        else:
            changes = install_sitecustomize(location, probe)
    except InstallError as error:
        return _error("install", str(error))
    for change in changes:
        print(change.message)
    status = hook_status()
    if status.active:
        print(
            f"Checked: a new interpreter of this environment ({sys.executable}) now explains "
            "Replicate authentication failures under the traceback."
        )
        print(
            "Check any time with `replicate-explain status`; undo with `replicate-explain "
            f"uninstall{' --user' if args.user else ''}`. "
            "REPLICATE_EXPLAIN=0 turns it off for one run."
        )
        return EXIT_OK
    print("But a new interpreter of this environment does not have the hook active:")
    print("\n".join(_bullet(reason) for reason in status.reasons))
    if status.startup_output:
        print("Start-up printed:")
        print("\n".join(f"  {line}" for line in status.startup_output.splitlines()))
    return EXIT_PROBLEMS


def cmd_uninstall(args: argparse.Namespace) -> int:
    """``replicate-explain uninstall``."""
    try:
        location = _target("uninstall", args.user, None)
        methods = [args.method] if args.method else list(METHODS)
        changes: list[Change] = []
        if "sitecustomize" in methods:
            changes += uninstall_sitecustomize(location)
        if "pth" in methods:
            changes += uninstall_pth(location)
    except InstallError as error:
        return _error("uninstall", str(error))
    if not changes:
        what = " or ".join(
            {
                "sitecustomize": f"block in {location.customize_file}",
                "pth": f"{PTH_NAME} in {location.directory}",
            }[m]
            for m in methods
        )
        print(f"Nothing to remove: no replicate-explain {what}.")
    for change in changes:
        print(change.message)
    status = hook_status()
    if status.active:
        others = ", ".join(f"{item.method} ({item.scope}): {item.describe()}" for item in status.installed)
        print("Note: a new interpreter still has the hook active" + (f", through {others}." if others else "."))
    else:
        print("A new interpreter of this environment no longer starts the hook.")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """``replicate-explain status``."""
    status = hook_status()
    if args.format == "json":
        print(json.dumps(status.to_dict(), indent=2))
    else:
        sys.stdout.write(format_status(status))
    return EXIT_OK if status.active else EXIT_PROBLEMS


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``install``, ``uninstall`` and ``status``."""
    where = (
        f"Writes into this environment's site-packages ({sysconfig.get_paths()['purelib']}), "
        "or with --user into your user site."
    )
    install = subparsers.add_parser(
        "install",
        help="activate the hook in every interpreter of this environment",
        description="Activate the explanations at start-up in every interpreter of this "
        "environment, without `import replicate_explain` in your code. " + where,
        epilog=EPILOG,
    )
    install.add_argument("--user", action="store_true", help="install into your user site instead")
    install.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help="sitecustomize: a marked block in sitecustomize.py (default); pth: "
        "replicate_explain.pth plus a PEP 829 replicate_explain.start",
    )
    install.set_defaults(handler=cmd_install)
    uninstall = subparsers.add_parser(
        "uninstall",
        help="undo `install`",
        description="Remove what `replicate-explain install` wrote, restoring files exactly. "
        "Run it before `pip uninstall replicate-explain` (left behind, the files do nothing).",
        epilog=EPILOG,
    )
    uninstall.add_argument("--user", action="store_true", help="remove it from your user site")
    uninstall.add_argument("--method", choices=METHODS, default=None, help="remove only this method (default: both)")
    uninstall.set_defaults(handler=cmd_uninstall)
    status = subparsers.add_parser(
        "status",
        help="is the hook active in a new interpreter? and why not",
        description="Start a new interpreter of this environment and report whether the hook is "
        "active there, what is installed where, and why it is not active. Exit status 0: active.",
        epilog=EPILOG,
    )
    status.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    status.set_defaults(handler=cmd_status)
