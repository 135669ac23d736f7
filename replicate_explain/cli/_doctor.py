"""``replicate-explain doctor``: check the environment before running, for people and for CI.

The checks of :mod:`.._checks` (token, ``.env``, client release, Python, and with ``--online`` the
token against the API), then two that ask one fresh interpreter of this environment
(:mod:`.._probe`): whether ``import replicate`` works there, and whether the hook is active there
(a note, not a problem). Every finding names its rule and that rule's fix.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._checks import (
    NOTE,
    OK,
    PROBLEM,
    Finding,
    client_findings,
    online_findings,
    problem,
    python_findings,
    token_findings,
)
from .._common import python_version
from .._hook import ENABLE_ENV
from .._probe import Probe, hook_status, off_value, run_probe
from .._rules import RuleSet
from ._output import (
    DATA_FORMAT_CHOICES,
    EXIT_OK,
    EXIT_PROBLEMS,
    HelpFormatter,
    UsageError,
    add_format,
    write,
    write_json,
)

EPILOG = """\
Exit status: 0 healthy, 1 problems found, 2 usage error. Notes (e.g. the hook is not active)
do not change the exit status, so `replicate-explain doctor || exit 1` suits CI.

Only --online touches the network: GET <REPLICATE_BASE_URL or https://api.replicate.com>/v1/account
with the token. The token itself is never printed.
"""


def import_findings(probe: Probe, version: str | None, outdated: Sequence[Finding], rules: RuleSet) -> list[Finding]:
    """Whether ``import replicate`` works in a fresh interpreter."""
    if version is None:
        return []
    if not probe.ok or not probe.client_checked:
        return [
            Finding(
                "import",
                NOTE,
                f"a fresh interpreter could not check `import replicate`: {probe.error}",
            )
        ]
    if probe.client_error is None:
        return [Finding("import", OK, "`import replicate` works in a fresh interpreter")]
    cited = next((f.rule for f in outdated if f.rule), None)
    message = f"`import replicate` fails in a fresh interpreter: {probe.client_error}"
    if cited:
        return [problem("import", message, cited, rules)]
    return [Finding("import", PROBLEM, message, None, ("pip install --upgrade replicate",))]


def hook_findings(probe: Probe, environ: Mapping[str, str]) -> list[Finding]:
    """Whether new interpreters here start with the hook (a note, never a problem)."""
    fix = (
        "Run `replicate-explain install` (every interpreter of this environment), or add "
        "`import replicate_explain` at the top of your program.",
    )
    off = off_value(environ)
    if off is not None:
        return [Finding("hook", NOTE, f"the hook is switched off by {ENABLE_ENV}={off.strip()}")]
    if probe.ok and probe.hook_installed:
        return [Finding("hook", OK, "the hook is active in new interpreters of this environment")]
    reason = ""
    if probe.ok:
        reasons = hook_status(environ, probe).reasons
        if reasons:
            reason = ": " + reasons[0].splitlines()[0].rstrip(".")
    return [
        Finding(
            "hook",
            NOTE,
            f"the hook is not active in new interpreters of this environment{reason}",
            None,
            fix,
        )
    ]


def run_checks(
    environ: Mapping[str, str] | None = None,
    *,
    rules: RuleSet | None = None,
    cwd: str | None = None,
    online: bool = False,
    timeout: float = 10.0,
) -> list[Finding]:
    """Every check, in the order they are printed."""
    from .._snapshot import client_version

    env: Mapping[str, str] = os.environ if environ is None else environ
    if rules is None:
        from .._rules import load_rules

        rules = load_rules(environ=env)
    version = client_version()
    findings = token_findings(env, os.getcwd() if cwd is None else cwd, rules)
    outdated = client_findings(version, rules)
    findings += outdated
    findings += python_findings(version)
    probe = run_probe(environ=env, client=version is not None)
    findings += import_findings(probe, version, [f for f in outdated if f.status == PROBLEM], rules)
    findings += hook_findings(probe, env)
    if online:
        findings += online_findings(env, rules, timeout)
    return findings


def format_findings(findings: Sequence[Finding]) -> str:
    """The plain-text report."""
    from .._common import wrap

    out = [f"replicate-explain doctor (Python {python_version()})", ""]
    for finding in findings:
        label = f"[{finding.status}]"
        rule = f" ({finding.rule})" if finding.rule else ""
        out.append(wrap(f"{label:<10}{finding.check}: {finding.message}{rule}", width=0, hanging=10))
        if finding.status != OK:
            for number, step in enumerate(finding.fix, 1):
                mark = "fix:" if number == 1 else "    "
                count = f"{number}. " if len(finding.fix) > 1 else ""
                out.append(wrap(f"{mark} {count}{step}", width=10, hanging=5 + len(count)))
            if finding.rule:
                out.append(f"{'':10}more: replicate-explain rules show {finding.rule}")
    problems = sum(1 for f in findings if f.status == PROBLEM)
    out.append("")
    out.append("No problems found." if not problems else f"{problems} problem{'s' if problems != 1 else ''} found.")
    return "\n".join(out) + "\n"


#: The longest ``--timeout`` accepted (socket timeouts overflow beyond about 1e9 seconds).
MAX_TIMEOUT = 3600.0


def _doctor(args: argparse.Namespace) -> int:
    import math

    if not (math.isfinite(args.timeout) and 0 < args.timeout <= MAX_TIMEOUT):
        raise UsageError(
            f"--timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, got {args.timeout:g}"
        )
    try:
        cwd = os.getcwd()
    except OSError:
        raise UsageError(
            "the current working directory no longer exists (it was deleted or moved); "
            "cd into your project directory and run doctor again"
        ) from None
    from .._api import rules

    findings = run_checks(rules=rules(), cwd=cwd, online=args.online, timeout=args.timeout)
    problems = sum(1 for f in findings if f.status == PROBLEM)
    if args.format == "json":
        from .._snapshot import client_version

        write_json(
            {
                "healthy": problems == 0,
                "problems": problems,
                "python": python_version(),
                "client_version": client_version(),
                "findings": [f.to_dict() for f in findings],
            }
        )
    else:
        write(format_findings(findings))
    return EXIT_PROBLEMS if problems else EXIT_OK


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``doctor`` subcommand."""
    parser = subparsers.add_parser(
        "doctor",
        help="check the token, the client and the hook before running",
        description=(
            "Check this environment for the causes of Replicate authentication failures: the "
            "token variable, look-alike variables, an unloaded .env, the installed client "
            "release and Python, and whether the hook is active. Each problem names its rule and "
            "fix."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--online",
        action="store_true",
        help="also verify the token with the API (the only network access)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="deadline of the whole online check: connecting, reading, redirects (default: 10)",
    )
    add_format(parser, DATA_FORMAT_CHOICES)
    parser.set_defaults(handler=_doctor)
