"""The ``replicate-explain`` command line (also ``python -m replicate_explain``).

Exit codes: 0 healthy / done, 1 problems found, 2 usage error. Subcommands live in their own
modules and register themselves through ``add_parser(subparsers)``; their handlers return the
exit code. No subcommand ever prints a token: everything goes out through :func:`write`, which
masks the secrets of the environment and token-shaped text, and an internal error prints its
traceback masked the same way (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import IO, Any, Callable

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

EPILOG = "Exit status: 0 healthy or done, 1 problems found, 2 usage error."

Handler = Callable[[argparse.Namespace], int]

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

    from ._redact import Redactor

    return Redactor.from_environ(os.environ)


def write(text: str, stream: IO[str] | None = None) -> None:
    """Write ``text`` to ``stream`` (default stdout) with every token masked."""
    from ._render import write_safely

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

    from ._render import write_safely

    text = json.dumps(masked_data(data), indent=2, ensure_ascii=False) + "\n"
    write_safely(sys.stdout if stream is None else stream, text)


def _internal_error() -> int:
    import traceback

    with contextlib.suppress(Exception):  # stderr itself may be broken
        write(
            "replicate-explain: internal error (please report it with the text below; tokens are "
            "masked):\n" + traceback.format_exc(),
            sys.stderr,
        )
    return EXIT_PROBLEMS


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand."""
    from . import _commands

    parser = argparse.ArgumentParser(
        prog="replicate-explain",
        description=("Explains Replicate authentication failures: what happened, the evidence, the fix."),
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _commands.REGISTRARS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __getattr__ as package_attr

        print(f"replicate-explain {package_attr('__version__')}")
        return EXIT_OK
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except UsageError as error:
        write(f"replicate-explain {args.command}: error: {error}\n", sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception:
        return _internal_error()


def _silence_stdout() -> None:
    """After a closed pipe (``| head``), keep Python from failing again while flushing at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except Exception:
        pass


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
