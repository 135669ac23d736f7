"""``replicate-explain doctor``: check the environment before running, for people and for CI.

Checks, each giving :class:`Finding` records that name the rule they correspond to and its fix:

* the token: REPLICATE_API_TOKEN unset, empty, only whitespace, padded with whitespace or a line
  break, wrapped in quotes, prefixed with ``Bearer ``/``Token ``, a look-alike variable set
  instead, a ``.env`` nearby that defines it but was not loaded (the facts of ``_snapshot``,
  never the value);
* the client release against the ``client-outdated`` rule(s): a ``match`` alternative whose
  ``client`` range holds the installed version (and whose ``python`` range, if any, holds this
  Python) is a problem; the ranges live in the rule files, not here;
* this Python against the client's ``Requires-Python`` (package metadata), and whether
  ``import replicate`` works in a fresh interpreter;
* whether the hook is active in new interpreters of this environment (a note, not a problem);
* with ``--online`` only: the token against ``GET {base}/v1/account`` (``REPLICATE_BASE_URL``,
  with or without ``/v1``), with a timeout. No other command touches the network.

A finding cites a rule id only if that rule is loaded (user rules included), so every id printed
can be looked up with ``replicate-explain rules show ID``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._common import CLIENT_DISTRIBUTIONS, credential_core, python_version, version_in
from ._rules import RuleSet
from ._snapshot import TOKEN_VARIABLE

OK = "ok"
PROBLEM = "problem"
NOTE = "note"

DEFAULT_BASE_URL = "https://api.replicate.com"
TOKENS_PAGE = "https://replicate.com/account/api-tokens"
CLIENT_RULE_PREFIX = "client-outdated"
PROBE_MARK = "\x00replicate-explain-doctor:"

#: Fixes used when the rule a finding corresponds to is not loaded (a user removed or broke it).
FALLBACK_FIXES: Mapping[str, tuple[str, ...]] = {
    "token-unset": (f"Set REPLICATE_API_TOKEN to your token from {TOKENS_PAGE}.",),
    "token-empty": (f"Give REPLICATE_API_TOKEN your token from {TOKENS_PAGE}; it is set but empty.",),
    "token-whitespace": ("Remove the whitespace or line break around the value (echo -n, printf %s, .strip()).",),
    "token-quoted": ("Remove the quotes from the value: set REPLICATE_API_TOKEN=r8_... without quotes.",),
    "token-scheme-prefixed": (
        "Remove the 'Bearer '/'Token ' prefix: the client adds it; the variable holds only r8_...",
    ),
    "token-lookalike-var": ("Rename the variable to REPLICATE_API_TOKEN (the client reads no other name).",),
    "dotenv-not-loaded": (
        "Load the .env file before `import replicate` (from dotenv import load_dotenv; load_dotenv()).",
    ),
    "token-rejected": (f"Create a new token at {TOKENS_PAGE} and set REPLICATE_API_TOKEN to it.",),
}

EPILOG = """\
Exit status: 0 healthy, 1 problems found, 2 usage error. Notes (e.g. the hook is not active)
do not change the exit status, so `replicate-explain doctor || exit 1` suits CI.

Only --online touches the network: GET <REPLICATE_BASE_URL or https://api.replicate.com>/v1/account
with the token. The token itself is never printed.
"""


@dataclass(frozen=True)
class Finding:
    """One result of a check."""

    check: str
    """What was checked: token, dotenv, client, python, import, hook or online."""
    status: str
    """ok, problem (exit status 1) or note (informational)."""
    message: str
    rule: str | None = None
    """The id of the rule that explains this problem (a loaded rule), if any."""
    fix: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "rule": self.rule,
            "message": self.message,
            "fix": list(self.fix),
        }


def doctor_steps(rule_id: str, steps: Sequence[str]) -> tuple[str, ...]:
    """A rule's fix steps as doctor says them: without "run doctor" (the user just did, and
    ``--online`` is suggested by the online check itself), and pointing at the fixed code that
    the panel shows beside the steps but doctor does not."""
    shown = f"the fixed code in `replicate-explain rules show {rule_id}`"
    return tuple(
        step.replace("the fixed example", shown)
        for step in steps
        if not step.startswith("Run `replicate-explain doctor")
    )


def _problem(check: str, message: str, rule_id: str | None, rules: RuleSet, fix: Sequence[str] = ()) -> Finding:
    """A problem citing ``rule_id`` if that rule is loaded, with its fix steps."""
    rule = rules.get(rule_id) if rule_id else None
    if rule is not None:
        return Finding(check, PROBLEM, message, rule.id, tuple(fix) or doctor_steps(rule.id, rule.fix))
    fallback = FALLBACK_FIXES.get(rule_id or "", ())
    return Finding(check, PROBLEM, message, None, tuple(fix) or fallback)


def token_findings(environ: Mapping[str, str], cwd: str, rules: RuleSet) -> list[Finding]:
    """The state of REPLICATE_API_TOKEN, look-alike variables and a nearby ``.env``."""
    from ._matcher import token_evidence
    from ._snapshot import find_dotenv, token_facts

    facts = token_facts(environ)
    try:
        dotenv = find_dotenv(cwd)
    except OSError:
        dotenv = None
    state = facts["token.state"]
    described = token_evidence(facts)[0]
    findings: list[Finding] = []
    if state in ("unset", "empty", "blank"):
        primary = "token-unset" if state == "unset" else "token-empty"
        findings.append(_problem("token", described, primary, rules))
        lookalike = facts.get("token.lookalike")
        if isinstance(lookalike, str):
            findings.append(
                _problem(
                    "token",
                    f"{lookalike} is set, but the replicate client reads only {TOKEN_VARIABLE}",
                    "token-lookalike-var",
                    rules,
                )
            )
        if dotenv is not None:
            findings.append(
                _problem(
                    "dotenv",
                    f"{dotenv} defines {TOKEN_VARIABLE}, but this process does not have it: the file was not loaded",
                    "dotenv-not-loaded",
                    rules,
                )
            )
        return findings
    if facts.get("token.whitespace") != "none" or facts.get("token.line_break"):
        findings.append(_problem("token", described, "token-whitespace", rules))
    if facts.get("token.quoted"):
        findings.append(
            _problem(
                "token",
                f"{TOKEN_VARIABLE} is wrapped in quotes, which become part of the token",
                "token-quoted",
                rules,
            )
        )
    if facts.get("token.scheme_prefixed"):
        findings.append(
            _problem(
                "token",
                f"{TOKEN_VARIABLE} starts with an auth scheme ('Bearer ' or 'Token '); the client adds its own",
                "token-scheme-prefixed",
                rules,
            )
        )
    if findings:
        return findings
    findings.append(Finding("token", OK, described))
    if not facts.get("token.r8_prefix"):
        findings.append(
            Finding(
                "token",
                NOTE,
                "current tokens start with r8_; an older token without it still works if it was not revoked",
            )
        )
    elif not facts.get("token.well_formed"):
        findings.append(
            Finding(
                "token",
                NOTE,
                "current tokens are r8_ and 37 letters and digits (40 characters); this one has "
                f"{facts.get('token.length')}",
            )
        )
    return findings


def client_findings(version: str | None, rules: RuleSet, python: str | None = None) -> list[Finding]:
    """The installed client release against the ``client-outdated`` rule(s)."""
    python = python or python_version()
    if version is None:
        return [
            Finding(
                "client",
                PROBLEM,
                "the replicate package is not installed in this environment",
                None,
                ("pip install replicate",),
            )
        ]
    findings: list[Finding] = []
    for rule in sorted(rules.rules, key=lambda r: r.id):
        if rule.id != CLIENT_RULE_PREFIX and not rule.id.startswith(CLIENT_RULE_PREFIX + "-"):
            continue
        for match in rule.matches:
            if match.client and version_in(match.client, version) and version_in(match.python, python):
                where = f" on Python {match.python}" if match.python else ""
                findings.append(
                    _problem(
                        "client",
                        f"replicate {version} is in a release range known to break authentication "
                        f"({match.client}{where}): {rule.title}",
                        rule.id,
                        rules,
                    )
                )
                break
    if not findings:
        findings.append(Finding("client", OK, f"replicate {version} is installed; no rule flags this release"))
    return findings


def _requires_python() -> tuple[str | None, str | None]:
    """The installed client's distribution name and its Requires-Python (``None`` if absent)."""
    from importlib import metadata

    for dist in CLIENT_DISTRIBUTIONS:
        try:
            meta = metadata.metadata(dist)
        except Exception:
            continue
        values = meta.get_all("Requires-Python") or []
        return dist, str(values[0]) if values else None
    return None, None


def python_findings(version: str | None, python: str | None = None) -> list[Finding]:
    """This Python against the client's ``Requires-Python``."""
    if version is None:
        return []
    python = python or python_version()
    dist, requires = _requires_python()
    if not requires:
        return [Finding("python", OK, f"Python {python}; replicate {version} declares no Python requirement")]
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        spec = SpecifierSet(requires)
    except InvalidSpecifier:
        return [
            Finding(
                "python",
                NOTE,
                f"replicate {version} declares an unreadable Python requirement {requires!r}",
            )
        ]
    if spec.contains(python, prereleases=True):
        return [
            Finding(
                "python",
                OK,
                f"Python {python} satisfies replicate {version} (Requires-Python {requires})",
            )
        ]
    return [
        Finding(
            "python",
            PROBLEM,
            f"Python {python} does not satisfy replicate {version}'s Requires-Python {requires}",
            None,
            (f"Use a Python that matches {requires}, or install a {dist} release that supports Python {python}.",),
        )
    ]


_PROBE = """
import json, sys
hooked = getattr(sys.excepthook, "__module__", "") == "replicate_explain._hook"
result = {"hook": hooked, "preloaded": "replicate_explain" in sys.modules}
try:
    import replicate
    result["import"] = None
except BaseException as exc:
    result["import"] = type(exc).__module__ + "." + type(exc).__qualname__ + ": " + str(exc)
print(MARK + json.dumps(result))
""".replace("MARK", repr(PROBE_MARK))


@dataclass(frozen=True)
class Probe:
    """What a fresh interpreter of this environment reported."""

    ok: bool
    hook: bool
    import_error: str | None
    error: str = ""


def run_probe(environ: Mapping[str, str]) -> Probe:
    """Start ``sys.executable`` as a user would; ask about the hook and ``import replicate``."""
    import json
    import subprocess

    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE],
            env=dict(environ),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return Probe(False, False, None, f"{type(error).__name__}: {error}")
    for line in done.stdout.splitlines():
        if line.startswith(PROBE_MARK):
            data = json.loads(line[len(PROBE_MARK) :])
            return Probe(True, bool(data.get("hook")), data.get("import"))
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return Probe(False, False, None, f"exit status {done.returncode}: {tail}")


def import_findings(probe: Probe, version: str | None, outdated: Sequence[Finding], rules: RuleSet) -> list[Finding]:
    """Whether ``import replicate`` works in a fresh interpreter."""
    if version is None:
        return []
    if not probe.ok:
        return [
            Finding(
                "import",
                NOTE,
                f"could not start a fresh interpreter to check `import replicate`: {probe.error}",
            )
        ]
    if probe.import_error is None:
        return [Finding("import", OK, "`import replicate` works in a fresh interpreter")]
    cited = next((f.rule for f in outdated if f.rule), None)
    message = f"`import replicate` fails in a fresh interpreter: {probe.import_error}"
    if cited:
        return [_problem("import", message, cited, rules)]
    return [Finding("import", PROBLEM, message, None, ("pip install --upgrade replicate",))]


def hook_findings(probe: Probe, environ: Mapping[str, str]) -> list[Finding]:
    """Whether new interpreters here start with the hook (a note, never a problem)."""
    from ._hook import OFF_VALUES

    fix = (
        "Run `replicate-explain install` (every interpreter of this environment), or add "
        "`import replicate_explain` at the top of your program.",
    )
    if environ.get("REPLICATE_EXPLAIN", "").strip().lower() in OFF_VALUES:
        return [
            Finding(
                "hook",
                NOTE,
                "the hook is switched off by REPLICATE_EXPLAIN=" + environ["REPLICATE_EXPLAIN"].strip(),
            )
        ]
    if probe.ok and probe.hook:
        return [Finding("hook", OK, "the hook is active in new interpreters of this environment")]
    reason = ""
    if probe.ok:
        try:
            from ._site import hook_status

            status = hook_status(environ)
            reasons = [r for r in getattr(status, "reasons", ()) if isinstance(r, str)]
            if reasons:
                reason = ": " + reasons[0].splitlines()[0].rstrip(".")
        except Exception:
            reason = ""
    return [
        Finding(
            "hook",
            NOTE,
            f"the hook is not active in new interpreters of this environment{reason}",
            None,
            fix,
        )
    ]


def _display_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def account_url(environ: Mapping[str, str]) -> str:
    """``{base}/v1/account`` from ``REPLICATE_BASE_URL`` (with or without ``/v1``)."""
    base = (environ.get("REPLICATE_BASE_URL") or environ.get("REPLICATE_API_BASE_URL") or DEFAULT_BASE_URL).strip()
    base = base.rstrip("/")
    return f"{base}/account" if base.endswith("/v1") else f"{base}/v1/account"


def _credential(raw: str) -> tuple[str, bool]:
    """The token without whitespace, quotes or an auth scheme, and whether anything was removed."""
    core = credential_core(raw)
    return core, core != raw


def online_findings(environ: Mapping[str, str], rules: RuleSet, timeout: float) -> list[Finding]:
    """Ask the API's account endpoint whether it accepts the token."""
    import json
    import socket
    import urllib.error
    import urllib.request

    raw = environ.get(TOKEN_VARIABLE)
    if raw is None or not raw.strip():
        return [Finding("online", NOTE, "skipped the online check: there is no token to verify")]
    credential, cleaned = _credential(raw)
    if not credential or any(ch.isspace() for ch in credential):
        return [
            Finding(
                "online",
                NOTE,
                "skipped the online check: the value cannot be sent as a token (it contains whitespace inside)",
            )
        ]
    url = account_url(environ)
    shown = _display_url(url)
    if not url.startswith(("http://", "https://")):
        return [
            Finding(
                "online",
                PROBLEM,
                f"the base URL {shown!r} is not an http(s) URL",
                None,
                ("Set REPLICATE_BASE_URL to e.g. https://api.replicate.com, or unset it.",),
            )
        ]
    note = " (sent with the problems above removed)" if cleaned else ""
    request = urllib.request.Request(
        url,
        headers={
            "Authorization": f"Bearer {credential}",
            "Accept": "application/json",
            "User-Agent": "replicate-explain-doctor",
        },
    )
    try:
        from ._redirects import urlopen  # no Authorization header to another origin

        with urlopen(request, timeout=timeout) as response:
            body = response.read(65536)
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
        try:
            body = error.read(65536)
        except Exception:
            body = b""
    except (urllib.error.URLError, socket.timeout, TimeoutError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        if isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in str(reason):
            why = f"no answer within {timeout:g} seconds"
        else:
            why = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
        return [
            Finding(
                "online",
                PROBLEM,
                f"could not reach {shown} to verify the token: {why}",
                None,
                (
                    "Check the network connection and any proxy (HTTPS_PROXY, NO_PROXY), or "
                    "REPLICATE_BASE_URL; then run doctor --online again.",
                ),
            )
        ]
    try:
        data = json.loads(body.decode("utf-8", "replace")) if body else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if status == 200:
        who = data.get("username")
        account = f" (account: {who})" if isinstance(who, str) and who else ""
        return [Finding("online", OK, f"{shown} accepted the token{account}{note}")]
    detail = data.get("detail")
    said = f": {detail}" if isinstance(detail, str) and detail else ""
    if status in (401, 403):
        return [
            _problem(
                "online",
                f"{shown} refused the token with {status}{said}{note}",
                "token-rejected",
                rules,
            )
        ]
    return [
        Finding(
            "online",
            PROBLEM,
            f"{shown} answered {status}{said}; expected 200 or 401",
            None,
            ("Check REPLICATE_BASE_URL, or try again later.",),
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
    from ._snapshot import client_version

    env: Mapping[str, str] = os.environ if environ is None else environ
    if rules is None:
        from ._rules import load_rules

        rules = load_rules(environ=env)
    version = client_version()
    findings = token_findings(env, os.getcwd() if cwd is None else cwd, rules)
    outdated = client_findings(version, rules)
    findings += outdated
    findings += python_findings(version)
    probe = run_probe(env)
    findings += import_findings(probe, version, [f for f in outdated if f.status == PROBLEM], rules)
    findings += hook_findings(probe, env)
    if online:
        findings += online_findings(env, rules, timeout)
    return findings


def format_findings(findings: Sequence[Finding]) -> str:
    """The plain-text report."""
    from ._common import wrap

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

    from ._cli import EXIT_OK, EXIT_PROBLEMS, UsageError, write, write_json

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
    from ._api import rules

    findings = run_checks(rules=rules(), cwd=cwd, online=args.online, timeout=args.timeout)
    problems = sum(1 for f in findings if f.status == PROBLEM)
    if args.format == "json":
        from ._snapshot import client_version

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
    from ._cli import DATA_FORMAT_CHOICES, add_format

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
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        help="timeout of the online check (default: 10)",
    )
    add_format(parser, DATA_FORMAT_CHOICES)
    parser.set_defaults(handler=_doctor)
