"""What ``doctor`` checks without starting anything: the token, ``.env``, client, Python, and online.

Each check gives :class:`Finding` records that name the rule they correspond to and take its fix
steps from that rule (the fix text lives in the rules only):

* the token: REPLICATE_API_TOKEN unset, empty, only whitespace, padded with whitespace or a line
  break, wrapped in quotes, prefixed with ``Bearer ``/``Token ``, a look-alike variable set
  instead, a ``.env`` nearby that defines it but was not loaded (the facts of ``_snapshot``,
  never the value);
* the client release against the ``client-outdated`` rule(s): a ``match`` alternative whose
  ``client`` range holds the installed version (and whose ``python`` range, if any, holds this
  Python) is a problem; the ranges live in the rule files, not here;
* this Python against the client's ``Requires-Python`` (package metadata);
* the token against ``GET {base}/v1/account`` (``REPLICATE_BASE_URL``, with or without ``/v1``),
  with a timeout: the only network access of the command line, asked for with ``doctor --online``.

A finding cites a rule id only if that rule is loaded (user rules included), so every id printed
can be looked up with ``replicate-explain rules show ID``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._common import CLIENT_DISTRIBUTIONS, credential_core, python_version, version_in
from ._facts import TOKEN_VARIABLE
from ._rules import RuleSet

OK = "ok"
PROBLEM = "problem"
NOTE = "note"

DEFAULT_BASE_URL = "https://api.replicate.com"
CLIENT_RULE_PREFIX = "client-outdated"


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


def problem(check: str, message: str, rule_id: str | None, rules: RuleSet, fix: Sequence[str] = ()) -> Finding:
    """A problem citing ``rule_id`` if that rule is loaded, with its fix steps.

    The fix text lives in the rules only: when the rule is not loaded (a user rule replaced it
    with a broken file), the finding says so instead of a fix.
    """
    rule = rules.get(rule_id) if rule_id else None
    if rule is not None:
        return Finding(check, PROBLEM, message, rule.id, tuple(fix) or doctor_steps(rule.id, rule.fix))
    missing = (
        f"The rule {rule_id} that explains this is not loaded, so its fix cannot be shown: "
        "see `replicate-explain rules list` for the broken rule files.",
    )
    return Finding(check, PROBLEM, message, None, tuple(fix) or missing)


def token_findings(environ: Mapping[str, str], cwd: str, rules: RuleSet) -> list[Finding]:
    """The state of REPLICATE_API_TOKEN, look-alike variables and a nearby ``.env``."""
    from ._evidence import token_evidence
    from ._facts import find_dotenv, token_facts

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
        findings.append(problem("token", described, primary, rules))
        lookalike = facts.get("token.lookalike")
        if isinstance(lookalike, str):
            findings.append(
                problem(
                    "token",
                    f"{lookalike} is set, but the replicate client reads only {TOKEN_VARIABLE}",
                    "token-lookalike-var",
                    rules,
                )
            )
        if dotenv is not None:
            findings.append(
                problem(
                    "dotenv",
                    f"{dotenv} defines {TOKEN_VARIABLE}, but this process does not have it: the file was not loaded",
                    "dotenv-not-loaded",
                    rules,
                )
            )
        return findings
    if facts.get("token.whitespace") != "none" or facts.get("token.line_break"):
        findings.append(problem("token", described, "token-whitespace", rules))
    if facts.get("token.quoted"):
        findings.append(
            problem(
                "token",
                f"{TOKEN_VARIABLE} is wrapped in quotes, which become part of the token",
                "token-quoted",
                rules,
            )
        )
    if facts.get("token.scheme_prefixed"):
        findings.append(
            problem(
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
                    problem(
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


def account_summary(data: Mapping[str, Any]) -> str:
    """What ``GET /v1/account`` tells of the token's account: `` (account: acme, "Acme", a user)``.

    The answer is ``{"type": "user" | "organization", "username", "name", "github_url"}``;
    anything missing or of another type is left out.
    """
    import json

    who, name, kind = data.get("username"), data.get("name"), data.get("type")
    if not isinstance(who, str) or not who:
        return ""
    parts = [who]
    if isinstance(name, str) and name and name != who:
        parts.append(json.dumps(name, ensure_ascii=False))
    if kind in ("user", "organization"):
        parts.append(f"{'an' if kind == 'organization' else 'a'} {kind}")
    return f" (account: {', '.join(parts)})"


BILLING_NOTE = Finding(
    "online",
    NOTE,
    "billing cannot be checked without running a prediction (which costs money): the account "
    "endpoint does not say whether billing is set up or credit is left; a 402 or 429 when you "
    "run a model is about the account named above, not the token",
)


def _fetch(request: Any, timeout: float) -> tuple[int, bytes]:
    """The status and the first 64 KiB of the answer to ``request``, within ``timeout`` seconds
    in all: connecting, each read and each redirect together (a socket timeout bounds one read
    only: a server dripping a byte at a time never trips it). Past the deadline: TimeoutError,
    and the request's daemon thread is left to end with the process."""
    import threading
    import urllib.error

    from ._redirects import urlopen  # no Authorization header to another origin

    outcome: list[Any] = []

    def run() -> None:
        try:
            with urlopen(request, timeout=timeout) as response:
                outcome.append((response.status, response.read(65536)))
        except urllib.error.HTTPError as error:
            try:
                body = error.read(65536)
            except Exception:
                body = b""
            outcome.append((error.code, body))
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run, name="replicate-explain doctor --online", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise TimeoutError(f"no answer within {timeout:g} seconds")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return int(result[0]), bytes(result[1])


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
        status, body = _fetch(request, timeout)
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
        return [Finding("online", OK, f"{shown} accepted the token{account_summary(data)}{note}"), BILLING_NOTE]
    detail = data.get("detail")
    said = f": {detail}" if isinstance(detail, str) and detail else ""
    if status in (401, 403):
        return [
            problem(
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
