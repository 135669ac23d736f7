"""The list of subcommand registrars: each adds its subparser and sets ``handler``.

A registrar is ``register(subparsers) -> None``. Modules that provide subcommands append their
registrar here (kept as one list so ``--help`` shows them in a stable order).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

Registrar = Callable[["argparse._SubParsersAction[Any]"], None]

REGISTRARS: list[Registrar] = []
