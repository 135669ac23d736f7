"""The ``replicate-explain`` command line (also ``python -m replicate_explain``): parser and ``main``.

Exit codes: 0 healthy / done, 1 problems found, 2 usage error. Each command lives in its own
module with ``register(subparsers)``, which adds its subparser and sets ``handler``; a handler
returns the exit code. Command modules share only :mod:`._output` (exit codes, masked output):
they never import each other, and nothing outside this package imports it. An internal error
prints its traceback masked like all other output (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Callable

from . import _demo, _doctor, _explain, _fakeapi, _install, _rules
from ._output import EPILOG, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError, write

Handler = Callable[[argparse.Namespace], int]

COMMANDS = (_explain, _doctor, _rules, _demo, _install, _fakeapi)
"""The command modules, in the order ``--help`` lists their commands."""


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
    parser = argparse.ArgumentParser(
        prog="replicate-explain",
        description=("Explains Replicate authentication failures: what happened, the evidence, the fix."),
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # an unknown flag: the usage of the (sub)command it was given to, not the top level's
        _innermost_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.version:
        from .. import __getattr__ as package_attr

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


def _innermost_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the subcommand ``args`` chose (``rules check``: the ``check`` parser)."""
    while True:
        chosen = None
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(args, action.dest, None) or "")
        if chosen is None:
            return parser
        parser = chosen


def _silence_stdout() -> None:
    """After a closed pipe (``| head``), keep Python from failing again while flushing at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except Exception:
        pass
