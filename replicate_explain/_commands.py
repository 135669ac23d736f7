"""The list of subcommand registrars: each adds its subparser and sets ``handler``.

A registrar is ``register(subparsers) -> None``. Modules that provide subcommands append their
registrar here (kept as one list so ``--help`` shows them in a stable order).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

Registrar = Callable[["argparse._SubParsersAction[Any]"], None]

REGISTRARS: list[Registrar] = []


def _site_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``install``, ``uninstall``, ``status`` (imported only when the parser is built)."""
    from ._site import register

    register(subparsers)


REGISTRARS.append(_site_commands)
