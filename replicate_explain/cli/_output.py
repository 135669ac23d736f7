"""What every command shares: exit codes, ``--format``, usage errors, and masked output.

This is the bottom of the command line: command modules import it and the pipeline, never each
other. No command prints a token: everything goes out through :func:`write` or
:func:`write_json`, which mask the secrets of the environment and token-shaped text.
:func:`shorten_traceback_paths` fits the ``File "..."`` lines of a traceback that a command
shows (``demo`` shows its programs') to the width.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import IO, Any, Callable

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

EPILOG = "Exit status: 0 healthy or done, 1 problems found, 2 usage error."

FORMAT_CHOICES = ("auto", "rich", "plain", "json")
"""``--format`` of the commands that print explanations (``auto``: the terminal decides)."""
DATA_FORMAT_CHOICES = ("plain", "json")
"""``--format`` of the commands that print reports and listings."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help with descriptions and epilogs fitted to the width (``COLUMNS``): a prose
    paragraph is refilled; an indented line (an example, a row of a table) keeps its place and
    is folded, under its own text, only when it is too wide."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if all(line[:1] not in (" ", "\t") for line in lines):
                prose = " ".join(line.strip() for line in lines)
                paragraphs.append(
                    textwrap.fill(prose, width, initial_indent=indent, subsequent_indent=indent, **_UNBROKEN)
                )
                continue
            rows: list[list[str]] = []  # a row of a table, with the lines that continue it
            for line in lines:
                column = _row_column(rows[-1][0]) if rows else 0
                if column and len(line) - len(line.lstrip()) >= column:
                    rows[-1].append(line.strip())
                else:
                    rows.append([line])
            folded = []
            for first, *more in rows:
                line = " ".join([first, *more])
                hanging = " " * (_row_column(first) or len(first) - len(first.lstrip()) + 4)
                folded.append(
                    textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent + hanging, **_UNBROKEN)
                    if len(indent + line) > width
                    else indent + line
                )
            paragraphs.append("\n".join(folded))
        return "\n\n".join(paragraphs)


#: A command, a flag or a URL is never cut: at its hyphens or inside it.
_UNBROKEN: dict[str, Any] = {"break_on_hyphens": False, "break_long_words": False}


def _row_column(line: str) -> int:
    """Where the text of a table row (``  list   0 all rule files loaded``) starts; 0: not a row."""
    found = re.match(r"\s*\S+\s{2,}(?=\S)", line)
    return found.end() if found else 0


class UsageError(Exception):
    """Bad input on the command line: the message says what is wrong and what to do (exit 2)."""


def add_format(parser: argparse.ArgumentParser, choices: Sequence[str] = DATA_FORMAT_CHOICES) -> None:
    """Add ``--format`` with ``choices`` (the first one is the default)."""
    parser.add_argument(
        "--format",
        choices=list(choices),
        default=choices[0],
        help=f"output format (default: {choices[0]}); json prints one JSON document",
    )


def _redactor() -> Callable[[str], str]:
    import os

    from .._mask import Redactor

    return Redactor.from_environ(os.environ)


def write(text: str, stream: IO[str] | None = None) -> None:
    """Write ``text`` to ``stream`` (default stdout) with every token masked."""
    from .._render import write_safely

    write_safely(sys.stdout if stream is None else stream, _redactor()(text))


def masked_data(data: Any, redactor: Callable[[str], str] | None = None) -> Any:
    """``data`` (JSON-ready) with every string masked; keys and structure unchanged."""
    mask = redactor or _redactor()
    if isinstance(data, str):
        return mask(data)
    if isinstance(data, dict):
        return {key: masked_data(value, mask) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [masked_data(value, mask) for value in data]
    return data


def write_json(data: object, stream: IO[str] | None = None) -> None:
    """Write ``data`` as indented JSON, every string in it masked.

    The strings are masked before serialising: masking the serialised text could cut an
    escape sequence in half and break the JSON.
    """
    import json

    from .._render import write_safely

    text = json.dumps(masked_data(data), indent=2, ensure_ascii=False) + "\n"
    write_safely(sys.stdout if stream is None else stream, text)


ELLIPSIS = "\u2026"
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_SGR = r"(?:\x1b\[[0-9;]*m)*"  # Python 3.13+ colours the quoted path (FORCE_COLOR)
_FILE_LINE = re.compile(rf'^(?P<head>[ |]*File {_SGR}")(?P<path>.+?)(?P<tail>"{_SGR}, line .*)$')
_PACKAGE_ROOT = re.compile(r"[/\\](?:site|dist)-packages(?=[/\\])")
PATHS_NOTE = '(paths under site-packages and the standard library shortened to "\u2026{0}" to fit {1} columns)'
"""Said once after a traceback whose paths were shortened: ``.format(os.sep, width)``, wrapped to
``width - 2``: its ellipsis is 3 bytes in UTF-8, and byte-counting tools (mawk's ``length``) then
see it fit too."""


def visible_length(line: str) -> int:
    """The columns ``line`` takes on a terminal: its length without ANSI escape sequences."""
    return len(_ESCAPE.sub("", line))


def stdlib_roots() -> list[str]:
    """The standard library directory of this interpreter (``sysconfig``), as given and resolved."""
    import os
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"]
    return list(dict.fromkeys([stdlib, os.path.realpath(stdlib)]))


def shorten_path(path: str, roots: Sequence[str]) -> str | None:
    """``path`` with the part up to its ``sys.path``-style root replaced by ``…``, the separator kept:
    the deepest ``site-packages`` or ``dist-packages`` directory in it, or one of ``roots``
    (directories, such as the standard library). ``None``: it lives under none of them."""
    cut = max((match.end() for match in _PACKAGE_ROOT.finditer(path)), default=0)
    for root in roots:
        root = root.rstrip("/\\")
        if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", "\\"):
            cut = max(cut, len(root))
    return ELLIPSIS + path[cut:] if cut else None


def shorten_traceback_line(line: str, width: int, roots: Sequence[str]) -> str:
    """A traceback's ``File "PATH", line N, in F`` line wider than ``width`` with PATH shortened
    (:func:`shorten_path`); any other line, or one that fits, unchanged. Escape codes stay whole."""
    match = _FILE_LINE.match(line) if visible_length(line) > width else None
    short = shorten_path(match["path"], roots) if match else None
    return line if match is None or short is None else match["head"] + short + match["tail"]


def shorten_traceback_paths(text: str, width: int, roots: Sequence[str] | None = None) -> tuple[str, bool]:
    """``text`` with each of its traceback ``File`` lines wider than ``width`` shortened
    (:func:`shorten_traceback_line`; ``roots`` default: :func:`stdlib_roots`), and whether any was."""
    lines, under = text.split("\n"), stdlib_roots() if roots is None else roots
    short = [shorten_traceback_line(line, width, under) for line in lines]
    return "\n".join(short), short != lines
