"""What every command shares: exit codes, ``--format``, usage errors, and masked output.

This is the bottom of the command line: command modules import it and the pipeline, never each
other. No command prints a token: everything goes out through :func:`write` or
:func:`write_json`, which mask the secrets of the environment and token-shaped text.
"""

from __future__ import annotations

import argparse
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
