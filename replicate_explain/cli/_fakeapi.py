"""``replicate-explain fake-api --accept TOKEN``: serve the fake Replicate API until Ctrl-C.

The server is :class:`replicate_explain.testing.FakeReplicateAPI` on 127.0.0.1 and a free port.
The command prints the URL and the variables a program sets to use it (for the installed client,
or ``--client VERSION``), then serves until interrupted. The token is never printed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._output import EXIT_OK, UsageError, write

EPILOG = "Exit status: 0 stopped with Ctrl-C, 2 usage error."


def _fake_api(args: argparse.Namespace) -> int:
    from ..testing import FakeReplicateAPI, base_url_env

    token: str = args.accept
    try:
        server = FakeReplicateAPI(token)
        base_url_env("http://127.0.0.1", args.client)  # checks --client before serving
    except ValueError as error:
        raise UsageError(str(error).replace("the accepted token", "--accept")) from None
    with server:
        variables = base_url_env(server.url, args.client)
        client = f"replicate {args.client}" if args.client else "the installed replicate client"
        lines = [
            f"Fake Replicate API on {server.url} (Ctrl-C stops it).",
            "It accepts the token given with --accept and answers like the real API: a missing",
            "or wrong token gets 401; predictions succeed at once.",
            f"Point a program ({client}) at it with:",
            *(f"  export {name}={value}" for name, value in variables.items()),
            "  export REPLICATE_API_TOKEN=<the token given with --accept>",
        ]
        write("\n".join(lines) + "\n")
        sys.stdout.flush()
        try:
            import threading

            threading.Event().wait()
        except KeyboardInterrupt:
            write("Stopped.\n")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``fake-api`` subcommand."""
    parser = subparsers.add_parser(
        "fake-api",
        help="serve a fake Replicate API on 127.0.0.1 for your own tests",
        description=(
            "Serve a fake Replicate API on 127.0.0.1 until Ctrl-C: it accepts the token given "
            "with --accept, answers a missing or wrong token with the API's real 401, and runs "
            "predictions at once. Prints the URL and the variables to set. In pytest, use the "
            "replicate_api fixture instead (docs/TESTING-YOUR-CODE.md)."
        ),
        epilog=EPILOG,
    )
    parser.add_argument("--accept", required=True, metavar="TOKEN", help="the token the fake API accepts")
    parser.add_argument(
        "--client",
        metavar="VERSION",
        default=None,
        help="the replicate release the program uses, for the base-URL variable (default: the installed one)",
    )
    parser.set_defaults(handler=_fake_api)
