"""What ``replicate-explain install`` writes into a site directory, and how it writes and removes it.

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

Whether what is written actually runs is for a fresh interpreter to say: see :mod:`._probe`.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sysconfig
from dataclasses import dataclass
from pathlib import Path

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
# Paths and files


def norm_path(path: str | os.PathLike[str]) -> str:
    """``path`` as the file system compares it (real path, normalised case)."""
    return os.path.normcase(os.path.realpath(os.fspath(path)))


def read_bytes(path: Path) -> bytes | None:
    """The bytes of ``path`` (``None``: there is no such file)."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def ours(path: Path) -> bool:
    """Whether ``path`` is a file of the ``pth`` method (it contains :data:`PTH_MARK`)."""
    data = read_bytes(path)
    return data is not None and PTH_MARK.encode("ascii") in data


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


def install_sitecustomize(location: Location) -> list[Change]:
    """Add (or update) our block in ``location``'s customize module.

    The caller checks first that no other customize module shadows it (a fresh interpreter
    knows: :mod:`._probe`).
    """
    target = location.customize_file
    original = read_bytes(target)
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
        if path.exists() and not ours(path):
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
            if read_bytes(path) == data:
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
    data = read_bytes(target)
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
        if not ours(path):
            changes.append(Change(path, f"Left {path} alone: replicate-explain did not write it.", False))
            continue
        try:
            _delete(path)
        except OSError as error:
            raise _write_error(path, error, location.scope, verb="delete") from error
        changes.append(Change(path, f"Deleted {path}.", True))
    return changes
