"""The list of subcommand registrars: each adds its subparser and sets ``handler``.

A registrar is ``register(subparsers) -> None``. Modules that provide subcommands append their
registrar here (kept as one list so ``--help`` shows them in a stable order).
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

Registrar = Callable[["argparse._SubParsersAction[Any]"], None]

REGISTRARS: list[Registrar] = []


def _explain_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``explain [FILE|-]`` and ``explain --rule ID``."""
    from ._textmatch import register

    register(subparsers)


def _doctor_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``doctor [--online]``."""
    from ._doctor import register

    register(subparsers)


def _rules_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``rules list | show ID | check [PATH ...]``."""
    from ._rulescmd import register

    register(subparsers)


def _demo_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``demo``."""
    from ._demo import register

    register(subparsers)


REGISTRARS.extend([_explain_command, _doctor_command, _rules_command, _demo_command])


def _site_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``install``, ``uninstall``, ``status`` (imported only when the parser is built)."""
    from ._site import register

    register(subparsers)


REGISTRARS.append(_site_commands)
