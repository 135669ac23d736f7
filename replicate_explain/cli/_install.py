"""``replicate-explain install | uninstall | status``: activate the hook at interpreter start-up.

``install`` writes what :mod:`.._startup` describes and then asks a fresh interpreter
(:mod:`.._probe`) whether the hook is active there; before writing a ``sitecustomize`` block it
refuses when another customize module would shadow ours (or ours would shadow it). ``status``
never trusts the files: it prints the probe's verdict and, for a "no", the reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
from typing import Any

from .._probe import Probe, Status, hook_status, run_probe, user_site_off_reason
from .._startup import (
    DEFAULT_METHOD,
    METHODS,
    PTH_NAME,
    SCOPE_USER,
    Change,
    InstallError,
    Location,
    environment_location,
    install_pth,
    install_sitecustomize,
    norm_path,
    uninstall_pth,
    uninstall_sitecustomize,
    user_location,
)
from ._output import EPILOG, EXIT_OK, EXIT_PROBLEMS


def format_status(status: Status) -> str:
    """The status as text for a terminal or a log."""
    if status.active:
        lines = [
            "replicate-explain is active: a new interpreter of this environment explains "
            "Replicate authentication failures."
        ]
    else:
        lines = ["replicate-explain is NOT active in new interpreters of this environment."]
    lines.append(f"  python:      {status.python}")
    lines.append(f"  environment: {status.environment}")
    if status.installed:
        for number, item in enumerate(status.installed):
            label = "installed:  " if number == 0 else "            "
            lines.append(f"  {label} {item.method} ({item.scope}): {item.describe()}")
    else:
        lines.append("  installed:   nothing")
    if status.excepthook:
        lines.append(f"  excepthook:  {status.excepthook}")
    if status.reasons:
        lines.append("Why:" if not status.active else "Note:")
        lines += [_bullet(reason) for reason in status.reasons]
    if status.startup_output and not status.active:
        lines.append("Start-up printed:")
        lines += [f"  {line}" for line in status.startup_output.splitlines()]
    return "\n".join(lines) + "\n"


def _bullet(text: str) -> str:
    first, *rest = text.splitlines() or [""]
    return "\n".join([f"  - {first}", *(f"    {line}" for line in rest)])


def _shadow_problem(location: Location, probe: Probe) -> str | None:
    """Why a ``sitecustomize`` block in ``location`` would not run (``None``: it would)."""
    module = location.customize_module
    target = location.customize_file
    resolved = probe.resolves.get(module)
    if resolved is None or norm_path(resolved.origin) == norm_path(target):
        return None
    ours = probe.path_index(location.directory)
    advice = (
        "Python imports only the first one it finds on sys.path (Debian and Ubuntu system "
        "Pythons ship their own sitecustomize.py). Nothing was written. Use the .pth method "
        "instead, which does not depend on it:\n"
        f"    replicate-explain install{' --user' if location.scope == SCOPE_USER else ''} "
        "--method pth"
    )
    if ours is None or resolved.index < ours:
        return (
            f"another {module}.py comes first on sys.path and would shadow ours:\n"
            f"    {resolved.origin}    (runs at start-up)\n"
            f"    {target}    (where the block would go: never run)\n" + advice
        )
    return (
        f"creating {target} would hide {resolved.origin}, which Python runs at start-up "
        f"today (it comes later on sys.path). " + advice
    )


def _error(command: str, message: str) -> int:
    sys.stderr.write(f"replicate-explain {command}: {message}\n")
    return EXIT_PROBLEMS


def _target(command: str, user: bool, probe: Probe | None) -> Location:
    """Where ``command`` works; with a ``probe``, refuse a user site the interpreter ignores."""
    if not user:
        return environment_location()
    location = user_location()
    if location is None:
        raise InstallError(f"this platform has no user site directory; {command} without --user.")
    if probe is not None and probe.enable_user_site is not True:
        raise InstallError(
            f"the user site ({location.directory}) is disabled for this interpreter "
            f"({user_site_off_reason(os.environ)}): nothing there would run at start-up. "
            f"Install into the environment instead: replicate-explain {command}"
        )
    return location


def cmd_install(args: argparse.Namespace) -> int:
    """``replicate-explain install``."""
    probe = run_probe()
    if not probe.ok:
        detail = f"\n{probe.startup_output}" if probe.startup_output else ""
        return _error("install", f"a fresh interpreter failed to start: {probe.error}.{detail}")
    try:
        location = _target("install", args.user, probe)
        if args.method == "pth":
            changes = install_pth(location)
        else:
            problem = _shadow_problem(location, probe)
            if problem is not None:
                raise InstallError(problem)
            changes = install_sitecustomize(location)
    except InstallError as error:
        return _error("install", str(error))
    for change in changes:
        print(change.message)
    status = hook_status()
    if status.active:
        print(
            f"Checked: a new interpreter of this environment ({sys.executable}) now explains "
            "Replicate authentication failures under the traceback."
        )
        print(
            "Check any time with `replicate-explain status`; undo with `replicate-explain "
            f"uninstall{' --user' if args.user else ''}`. "
            "REPLICATE_EXPLAIN=0 turns it off for one run."
        )
        return EXIT_OK
    print("But a new interpreter of this environment does not have the hook active:")
    print("\n".join(_bullet(reason) for reason in status.reasons))
    if status.startup_output:
        print("Start-up printed:")
        print("\n".join(f"  {line}" for line in status.startup_output.splitlines()))
    return EXIT_PROBLEMS


def cmd_uninstall(args: argparse.Namespace) -> int:
    """``replicate-explain uninstall``."""
    try:
        location = _target("uninstall", args.user, None)
        methods = [args.method] if args.method else list(METHODS)
        changes: list[Change] = []
        if "sitecustomize" in methods:
            changes += uninstall_sitecustomize(location)
        if "pth" in methods:
            changes += uninstall_pth(location)
    except InstallError as error:
        return _error("uninstall", str(error))
    if not changes:
        what = " or ".join(
            {
                "sitecustomize": f"block in {location.customize_file}",
                "pth": f"{PTH_NAME} in {location.directory}",
            }[m]
            for m in methods
        )
        print(f"Nothing to remove: no replicate-explain {what}.")
    for change in changes:
        print(change.message)
    status = hook_status()
    if status.active:
        others = ", ".join(f"{item.method} ({item.scope}): {item.describe()}" for item in status.installed)
        print("Note: a new interpreter still has the hook active" + (f", through {others}." if others else "."))
    else:
        print("A new interpreter of this environment no longer starts the hook.")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """``replicate-explain status``."""
    status = hook_status()
    if args.format == "json":
        print(json.dumps(status.to_dict(), indent=2))
    else:
        sys.stdout.write(format_status(status))
    return EXIT_OK if status.active else EXIT_PROBLEMS


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``install``, ``uninstall`` and ``status``."""
    where = (
        f"Writes into this environment's site-packages ({sysconfig.get_paths()['purelib']}), "
        "or with --user into your user site."
    )
    install = subparsers.add_parser(
        "install",
        help="activate the hook in every interpreter of this environment",
        description="Activate the explanations at start-up in every interpreter of this "
        "environment, without `import replicate_explain` in your code. " + where,
        epilog=EPILOG,
    )
    install.add_argument("--user", action="store_true", help="install into your user site instead")
    install.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help="sitecustomize: a marked block in sitecustomize.py (default); pth: "
        "replicate_explain.pth plus a PEP 829 replicate_explain.start",
    )
    install.set_defaults(handler=cmd_install)
    uninstall = subparsers.add_parser(
        "uninstall",
        help="undo `install`",
        description="Remove what `replicate-explain install` wrote, restoring files exactly. "
        "Run it before `pip uninstall replicate-explain` (left behind, the files do nothing).",
        epilog=EPILOG,
    )
    uninstall.add_argument("--user", action="store_true", help="remove it from your user site")
    uninstall.add_argument("--method", choices=METHODS, default=None, help="remove only this method (default: both)")
    uninstall.set_defaults(handler=cmd_uninstall)
    status = subparsers.add_parser(
        "status",
        help="is the hook active in a new interpreter? and why not",
        description="Start a new interpreter of this environment and report whether the hook is "
        "active there, what is installed where, and why it is not active. Exit status 0: active.",
        epilog=EPILOG,
    )
    status.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    status.set_defaults(handler=cmd_status)
