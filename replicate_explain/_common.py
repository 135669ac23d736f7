"""Small helpers shared by the pipeline, the adapters and the command line (stdlib only)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

CLIENT_DISTRIBUTIONS = ("replicate", "replicate-stainless")
"""The distributions that install the ``replicate`` client package, in lookup order."""

AUTH_SCHEMES = ("Bearer", "Token")
"""The schemes the clients put before the token in the ``Authorization`` header."""

PLAIN_WIDTH = 80
"""The width plain-text output wraps prose to when ``COLUMNS`` does not say (a pipe, a log)."""
MIN_PLAIN_WIDTH = 40
"""The narrowest plain text (``COLUMNS=1`` would put every word on its own line)."""
MAX_PLAIN_WIDTH = 200
"""The widest plain text (``COLUMNS=99999``: one line per paragraph is no longer readable)."""


def python_version() -> str:
    """This interpreter's version as ``major.minor.micro``."""
    return ".".join(str(part) for part in sys.version_info[:3])


_RELEASE = r"(\d+(?:\.\d+)*)(?:(a|b|rc)(\d+))?"
_PHASES = {"a": 0, "b": 1, "rc": 2}


def _release_key(text: str) -> tuple[tuple[int, ...], tuple[int, int]] | None:
    """The sort key of a plain version ``N(.N)*`` with an optional ``aN``/``bN``/``rcN``
    pre-release, in PEP 440 order (trailing zeros do not count); ``None`` for anything else."""
    import re

    found = re.fullmatch(_RELEASE, text)
    if found is None:
        return None
    release = tuple(int(part) for part in found[1].split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    pre = (_PHASES[found[2]], int(found[3])) if found[2] else (3, 0)
    return release, pre


def _simple_version_in(spec: str, version: str) -> bool | None:
    """:func:`version_in` without packaging, for the specifiers rules use (``>=``, ``<=``,
    ``>``, ``<``, ``==``, ``!=`` of plain and pre-release versions) and such a version;
    ``None``: leave it to packaging (wildcards, ``~=``, post, dev, local or epoch versions)."""
    have = _release_key(version.strip())
    if have is None:
        return None
    for clause in spec.split(","):
        clause = clause.strip()
        operator = clause[:2] if clause[:2] in (">=", "<=", "==", "!=") else clause[:1]
        if operator not in (">=", "<=", "==", "!=", ">", "<"):
            return None
        want = _release_key(clause[len(operator) :].strip())
        if want is None:
            return None
        holds = {
            ">=": have >= want,
            "<=": have <= want,
            ">": have > want,
            # PEP 440: "<V" excludes V's own pre-releases unless V is one.
            "<": have < want and not (want[1] == (3, 0) and have[1] != (3, 0) and have[0] == want[0]),
            "==": have == want,
            "!=": have != want,
        }[operator]
        if not holds:
            return False
    return True


def version_in(spec: str, version: str | None) -> bool:
    """Whether ``version`` is in the packaging specifier ``spec`` (an empty spec holds every
    version; a missing or invalid version is in none). Pre-releases count. The specifiers
    rules use are decided without importing packaging (``_simple_version_in``)."""
    if not spec:
        return True
    if version is None:
        return False
    simple = _simple_version_in(spec, version)
    if simple is not None:
        return simple
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return SpecifierSet(spec).contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def split_credential(value: str) -> tuple[str | None, str]:
    """The auth scheme a credential starts with (``"Bearer"``, ``"Token"`` or ``None``) and its
    core: the value without surrounding whitespace, quotes or that scheme."""
    core = value.strip().strip("'\"").strip()
    lowered = core.lower()
    for scheme in AUTH_SCHEMES:
        if lowered.startswith(scheme.lower() + " "):
            return scheme, core[len(scheme) + 1 :].strip().strip("'\"").strip()
    return None, core


def credential_core(value: str) -> str:
    """The token inside ``value``: see :func:`split_credential`."""
    return split_credential(value)[1]


def same_secret(left: str, right: str) -> bool:
    """Whether two secrets are equal, compared as SHA-256 digests in constant time (so neither
    value is ever compared, kept or printed as such)."""
    import hashlib
    import hmac

    def digest(value: str) -> bytes:
        return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()

    return hmac.compare_digest(digest(left), digest(right))


def rule_files(directory: Path) -> list[Path]:
    """The rule files (``*.yaml``, ``*.yml``, not hidden) of ``directory``, sorted by name.

    Every entry so named is listed, even one that is not a regular file (a directory, a FIFO):
    the loader reports those without opening them (reading a FIFO would block)."""
    import os

    with os.scandir(directory) as entries:
        names = [entry.path for entry in entries if entry.name.endswith((".yaml", ".yml"))]
    return sorted(Path(name) for name in names if not Path(name).name.startswith("."))


class NotARegularFileError(OSError):
    """Raised by :func:`read_regular_file` for a FIFO, a device, a socket or a directory."""


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``path`` (one more than ``limit``, so the
    caller can tell a file over the limit).

    Anything else is never read: a FIFO (1Password mounts ``.env`` files as FIFOs; reading one
    blocks until a writer comes), a device, a socket, a directory raise
    :class:`NotARegularFileError`. The file is opened non-blocking and checked again once open
    (it may have been replaced between the two looks). Other failures raise :class:`OSError`.
    """
    import stat

    if not stat.S_ISREG(os.stat(path).st_mode):
        raise NotARegularFileError(f"{os.fspath(path)} is not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise NotARegularFileError(f"{os.fspath(path)} is not a regular file")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def plain_width(environ: Mapping[str, str] | None = None) -> int:
    """The width plain text wraps to: ``COLUMNS`` when it holds a number (held to 40-200), else
    :data:`PLAIN_WIDTH` (80): piped and logged output has no terminal to ask."""
    value = (os.environ if environ is None else environ).get("COLUMNS", "").strip()
    if not value.isdigit() or len(value) > 5:
        return PLAIN_WIDTH
    return min(MAX_PLAIN_WIDTH, max(MIN_PLAIN_WIDTH, int(value)))


def wrap(text: str, width: int = 2, hanging: int = 0, columns: int | None = None) -> str:
    """Indent ``text`` by ``width`` and wrap prose to ``columns`` (default :func:`plain_width`),
    keeping its own line breaks; continuation lines get ``hanging`` more spaces."""
    import textwrap

    columns = plain_width() if columns is None else columns
    pad = " " * width
    out = []
    for number, line in enumerate(text.splitlines() or [""]):
        first = pad if number == 0 else pad + " " * hanging
        out.append(
            textwrap.fill(
                line,
                columns,
                initial_indent=first,
                subsequent_indent=pad + " " * hanging,
                break_long_words=False,
                break_on_hyphens=False,
            )
            if line.strip()
            else ""
        )
    return "\n".join(out)


def indent(text: str, width: int = 2, hanging: int = 0) -> str:
    """Indent ``text`` by ``width`` (later lines by ``hanging`` more) without wrapping it."""
    pad = " " * width
    lines = text.splitlines() or [""]
    return "\n".join(
        (pad if index == 0 else pad + " " * hanging) + line if line else "" for index, line in enumerate(lines)
    )


def replicate_dirs() -> tuple[str, ...]:
    """The directories of the installed ``replicate`` package, each ending with a separator.

    Read from the imported package, or located without importing it (``find_spec`` on a
    top-level name runs no code). A user's own folder named ``replicate`` is not among them.
    """
    module = sys.modules.get("replicate")
    paths: list[str] = list(getattr(module, "__path__", None) or [])
    if not paths:
        try:
            from importlib.util import find_spec

            spec = find_spec("replicate")
            paths = list(spec.submodule_search_locations or []) if spec is not None else []
        except Exception:
            paths = []
    return tuple(os.path.join(os.path.abspath(path), "") for path in paths)


def in_replicate_package(filename: str, dirs: tuple[str, ...]) -> bool:
    """Whether ``filename`` is a file of the installed replicate package."""
    return bool(filename) and os.path.abspath(filename).startswith(dirs) if dirs else False
