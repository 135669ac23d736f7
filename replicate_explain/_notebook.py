"""IPython session facts: did the session set the token where the kernel never sees it?

That is the ``notebook.shell_export`` fact: a subshell (``!export``, ``%%bash``...) set
REPLICATE_API_TOKEN, or a shell profile the kernel did not read sets it.

Read from the session's own input history; the result never holds a value from the history
or the environment. The IPython adapter passes it to ``explain(..., extra_facts=...)``.
Standard library only; IPython is never imported (the shell is handed to us).
"""

from __future__ import annotations

import os
import re

from ._common import read_regular_file
from ._facts import TOKEN_VARIABLE

TYPE_CHECKING = False  # typing itself costs milliseconds
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = ["session_facts", "shell_export"]


#: Cells run by a shell: %%bash, %%sh, %%script, %%cmd, %%powershell, %%system, %%! ...
_SHELL_CELL = re.compile(r"^\s*%%(?:bash|sh|zsh|ksh|fish|script|cmd|powershell|pwsh|system|sx|!)\b|^\s*%%!")
#: Lines run by a shell: !cmd, !!cmd, x = !cmd, %sx/%system (also without %), os.system(...),
#: os.popen(...), subprocess.*(...), get_ipython().system(...)/getoutput(...).
_SHELL_LINE = re.compile(
    r"^\s*(?:[\w.]+\s*=\s*)?(?:!|%(?:sx|system)\b|(?:sx|system)\s)"
    r"|\b(?:os\.system|os\.popen|subprocess\.\w+|get_ipython\(\)\.(?:system|getoutput))\s*\("
)
#: How shells set a variable: export/declare -x/typeset -x (sh), setenv (csh), set [-gx] (fish,
#: cmd), setx (Windows, for future shells only), $env: (PowerShell), or NAME=value.
_SETS_TOKEN = re.compile(
    r"(?i)\b(?:export|declare\s+-x|typeset\s+-x|setenv|setx|set(?:\s+-[a-z]+)*)\s+[\"']?"
    + TOKEN_VARIABLE
    + r"\b|\$env:"
    + TOKEN_VARIABLE
    + r"\s*=|(?:^|[\s;&|(!\"'`])"
    + TOKEN_VARIABLE
    + "="
)
_LITERAL = re.compile(TOKEN_VARIABLE + r"""\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s;&|"'`)]+)""")
#: Shell start-up files a kernel's environment may be expected to come from.
PROFILE_FILES = (
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".config/fish/config.fish",
)
_PROFILE_READ_LIMIT = 262144


def _shell_lines(cell: str) -> Iterable[str]:
    """The lines of ``cell`` that a shell runs rather than the kernel."""
    lines = cell.splitlines()
    if lines and _SHELL_CELL.match(lines[0]):
        yield from lines[1:]
        return
    for line in lines:
        if _SHELL_LINE.search(line):
            yield line


def _literal(line: str) -> str | None:
    """The value a shell line assigns to the token, if it is a plain literal (else ``None``)."""
    found = _LITERAL.search(line)
    if found is None:
        return None
    value = found.group("value")
    if value[:1] in "\"'":
        value = value[1:-1]
    if "$" in value or "`" in value or "%" in value:
        return None  # expanded by the shell: $(cat file), ${VAR}, %VAR%
    return value


def _differs(value: str, current: str) -> bool:
    from ._common import same_secret

    return not same_secret(value, current)


def _profile_sets_token(home: str | None) -> bool:
    if not home:
        return False
    for name in PROFILE_FILES:
        try:  # a regular file only: a FIFO would block for ever
            data = read_regular_file(os.path.join(home, name), _PROFILE_READ_LIMIT)
        except OSError:
            continue
        text = data[:_PROFILE_READ_LIMIT].decode("utf-8", "replace")
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("#") or TOKEN_VARIABLE not in stripped:
                continue
            if _SETS_TOKEN.search(stripped):
                return True
    return False


def shell_export(cells: Iterable[str], environ: Mapping[str, str], home: str | None = None) -> str | None:
    """The ``notebook.shell_export`` fact for a session whose input cells are ``cells``.

    ``"subshell"``: a shell command of the session (``!export``, ``!set``, ``%%bash``,
    ``os.system``...) set REPLICATE_API_TOKEN, and the kernel does not have that value (it has
    none, or the literal value set there differs, compared by digest). ``"profile"``: the kernel
    has no token, but a shell profile under ``home`` sets one. ``None`` otherwise. The result never
    contains a value from the history or the environment.
    """
    current = environ.get(TOKEN_VARIABLE)
    missing = current is None or not current.strip()
    found = False
    for cell in cells:
        if not isinstance(cell, str) or TOKEN_VARIABLE not in cell:
            continue
        for line in _shell_lines(cell):
            if TOKEN_VARIABLE not in line or not _SETS_TOKEN.search(line):
                continue
            found = True
            if missing:
                return "subshell"
            value = _literal(line)
            if value is not None and current is not None and _differs(value, current):
                return "subshell"
    if not found and missing and _profile_sets_token(home):
        return "profile"
    return None


def _history(shell: Any) -> list[str]:
    """The raw input cells of the current session (``In``), current cell included."""
    manager = getattr(shell, "history_manager", None)
    cells = getattr(manager, "input_hist_raw", None)
    if not isinstance(cells, list):
        namespace = getattr(shell, "user_ns", None)
        cells = namespace.get("In") if isinstance(namespace, dict) else None
    return [cell for cell in cells if isinstance(cell, str)] if isinstance(cells, list) else []


def session_facts(shell: Any, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The adapter facts of ``shell``'s session, for ``take_snapshot(extra_facts=...)``."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    home = env.get("HOME") or env.get("USERPROFILE")
    return {"notebook.shell_export": shell_export(_history(shell), env, home)}
