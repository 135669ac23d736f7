"""The ``replicate-explain`` command line (also ``python -m replicate_explain``).

Exit codes: 0 healthy / done, 1 problems found, 2 usage error. Subcommands live in their own
modules and register themselves through ``add_parser(subparsers)``; their handlers return the
exit code. No subcommand ever prints a token.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Callable, Optional

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

EPILOG = "Exit status: 0 healthy or done, 1 problems found, 2 usage error."

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand."""
    from . import _commands

    parser = argparse.ArgumentParser(
        prog="replicate-explain",
        description="Explains Replicate authentication failures: what happened, the evidence, the fix.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _commands.REGISTRARS:
        register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __getattr__ as package_attr

        print(f"replicate-explain {package_attr('__version__')}")
        return EXIT_OK
    handler: Optional[Handler] = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
