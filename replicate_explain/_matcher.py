"""Step two: match a :class:`Snapshot` against the rules and build an :class:`Explanation`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._common import version_in
from ._explanation import CodeFix, Explanation
from ._facts import FactValue
from ._rules import Case, ExceptionPattern, Match, Rule, RuleSet
from ._snapshot import ExceptionInfo, Snapshot, snapshot_from_data

_TRAILING = {
    "newline": "a newline (\\n) at its end",
    "crlf": "a Windows line break (\\r\\n) at its end",
    "carriage return": "a carriage return (\\r) at its end",
    "space": "a space at its end",
    "tab": "a tab at its end",
    "whitespace": "whitespace at its end",
}


def _same(actual: FactValue, expected: FactValue) -> bool:
    return type(actual) is type(expected) and actual == expected


def pattern_hit(pattern: ExceptionPattern, info: ExceptionInfo) -> bool:
    if pattern.type not in info.types:
        return False
    if pattern.message is not None and not pattern.message.search(info.message):
        return False
    return all(info.attributes.get(name) == value for name, value in pattern.attributes.items())


def _match_hit(match: Match, snapshot: Snapshot) -> ExceptionInfo | None:
    for name, allowed in match.facts.items():
        if not any(_same(snapshot.facts.get(name), value) for value in allowed):
            return None
    if not version_in(match.client, snapshot.client_version):
        return None
    if not version_in(match.python, snapshot.python_version):
        return None
    for info in snapshot.exceptions:
        if any(pattern_hit(pattern, info) for pattern in match.exceptions):
            return info
    return None


def matched(rule: Rule, snapshot: Snapshot) -> tuple[int, ExceptionInfo] | None:
    """The specificity of the rule's most specific matching alternative and its exception."""
    best: tuple[int, ExceptionInfo] | None = None
    for match in rule.matches:
        info = _match_hit(match, snapshot)
        score = match.specificity + rule.priority
        if info is not None and (best is None or score > best[0]):
            best = (score, info)
    return best


def matching_rules(snapshot: Snapshot, rules: RuleSet) -> list[tuple[Rule, ExceptionInfo]]:
    """Every rule that matches, most specific first (ties broken by id, so the order is stable).

    A rule whose ``match`` is a list counts with the specificity of the alternative that matched.
    """
    hits = []
    for rule in rules.rules:
        hit = matched(rule, snapshot)
        if hit is not None:
            hits.append((hit[0], rule, hit[1]))
    hits.sort(key=lambda hit: (-hit[0], hit[1].id))
    return [(rule, info) for _, rule, info in hits]


def token_evidence(facts: Mapping[str, FactValue]) -> list[str]:
    """Sentences about the token's state and shape; never its value."""
    state = facts.get("token.state")
    lines: list[str] = []
    if state == "unset":
        lines.append("REPLICATE_API_TOKEN is not set in this process")
    elif state == "empty":
        lines.append("REPLICATE_API_TOKEN is set to an empty string")
    elif state == "blank":
        lines.append(
            f"REPLICATE_API_TOKEN is set to {facts.get('token.length')} whitespace character(s) and nothing else"
        )
    else:
        lines.append(_set_token_sentence(facts))
    lookalike = facts.get("token.lookalike")
    if isinstance(lookalike, str):
        lines.append(f"{lookalike} is set, a name the replicate client does not read")
    sent = facts.get("token.sent")
    if sent == "differs":
        lines.append(
            "the failed request sent a different token than REPLICATE_API_TOKEN holds now (compared by digest)"
        )
    elif sent == "absent":
        lines.append("the failed request sent no token")
    if facts.get("dotenv.defines_token"):
        lines.append(f"{facts.get('dotenv.path')} defines REPLICATE_API_TOKEN")
    shell = facts.get("notebook.shell_export")
    if shell == "subshell":
        lines.append(
            "this session set REPLICATE_API_TOKEN in a shell command (!export, !set, %%bash, "
            "os.system...), which ran in a subshell that exited; the kernel did not get it"
        )
    elif shell == "profile":
        lines.append(
            "a shell profile in your home directory sets REPLICATE_API_TOKEN, but this kernel "
            "was not started from a shell that read it"
        )
    return lines


# Where an account refusal's status shows: 1.x/2.x attributes, 2.x and 1.x text, requests'
# RetryError; 0.x keeps only the API's detail, known by its words.
_STATUS_TEXT = re.compile(r"Error code: (\d{3})|^status: (\d{3})$|too many (\d{3}) error responses", re.MULTILINE)
_DETAIL_STATUS = (
    (re.compile(r"(?i)set up billing|insufficient credit"), "402"),
    (re.compile(r"Request was throttled"), "429"),
)
_ACCOUNT_REFUSALS = {"402": "402 Payment Required", "429": "429 Too Many Requests"}


def account_refusal_evidence(info: ExceptionInfo) -> str | None:
    """A sentence saying the token was accepted, when the API refused the account (402, 429)."""
    status = info.attributes.get("status") or info.attributes.get("status_code")
    found = _STATUS_TEXT.search(info.message)
    if not status and found:
        status = next(group for group in found.groups() if group)
    for pattern, code in _DETAIL_STATUS:
        if not status and pattern.search(info.message):
            status = code
    if status not in _ACCOUNT_REFUSALS:
        return None
    return (
        f"the API answered {_ACCOUNT_REFUSALS[status]}, which it sends only after accepting the "
        "token (a token it refuses gets 401): the refusal is about the account, not the token"
    )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _set_token_sentence(facts: Mapping[str, FactValue]) -> str:
    """One sentence about a set token: what surrounds it, then whether the token itself (after
    any whitespace, quotes or auth scheme) starts with r8_."""
    extras: list[str] = []
    if facts.get("token.whitespace") in ("leading", "both"):
        extras.append("whitespace before it")
    trailing = facts.get("token.trailing")
    if isinstance(trailing, str):
        extras.append(_TRAILING.get(trailing, "whitespace at its end"))
    elif facts.get("token.line_break"):
        extras.append("a line break inside it")
    if facts.get("token.quoted"):
        extras.append("quotes around it")
    if facts.get("token.scheme_prefixed"):
        extras.append("an auth scheme ('Bearer ' or 'Token ') before it")
    head = f"REPLICATE_API_TOKEN is set, {facts.get('token.length')} characters"
    if facts.get("token.well_formed"):
        return f"{head}, has the r8_ + 37 letters and digits format"
    if extras:
        head += ", with " + _and(extras)
    token = (
        "the token after the scheme" if facts.get("token.scheme_prefixed") else "the token inside" if extras else "it"
    )
    if facts.get("token.r8_prefix"):
        return f"{head}; {token} starts with r8_"
    return f"{head}; {token} does not start with r8_ (older tokens may lack it)"


def _evidence(snapshot: Snapshot, info: ExceptionInfo) -> tuple[str, ...]:
    lines = token_evidence(snapshot.facts)
    refusal = account_refusal_evidence(info)
    if refusal is not None:
        lines.append(refusal)
    if snapshot.client_version:
        lines.append(f"replicate {snapshot.client_version} is installed (Python {snapshot.python_version})")
    else:
        lines.append(f"the replicate package is not installed (Python {snapshot.python_version})")
    headline = " ".join(info.headline().split())  # one line, even for 1.x multi-line messages
    if len(headline) > 300:
        headline = headline[:297] + "..."
    lines.append(f"the error raised: {headline}")
    return tuple(lines)


def choose_example(rule: Rule, version: str | None) -> CodeFix | None:
    """The first example whose client range holds ``version``.

    ``None`` when the installed version is known and no example is for it (code for another
    generation would mislead); the first example when the version is unknown.
    """
    for example in rule.examples:
        if version_in(example.client, version) if example.client else True:
            return CodeFix(example.broken, example.fixed, example.client)
    if not rule.examples or version is not None:
        return None
    first = rule.examples[0]
    return CodeFix(first.broken, first.fixed, first.client)


def build_explanation(rule: Rule, info: ExceptionInfo, snapshot: Snapshot, also: tuple[str, ...]) -> Explanation:
    """Assemble the :class:`Explanation` of ``rule`` for ``snapshot``."""
    return Explanation(
        rule_id=rule.id,
        title=rule.title,
        severity=rule.severity,
        summary=rule.summary,
        evidence=_evidence(snapshot, info),
        why=rule.why,
        fix=rule.fix,
        code=choose_example(rule, snapshot.client_version),
        workaround=rule.workaround,
        prevention=rule.prevention,
        references=rule.references,
        also=also,
        exception=info.headline(),
        client_version=snapshot.client_version,
        call_site=snapshot.call_site,
    )


def explain_snapshot(snapshot: Snapshot, rules: RuleSet) -> Explanation | None:
    """The explanation of the most specific matching rule, or ``None``."""
    if not snapshot.relevant:
        return None
    hits = matching_rules(snapshot, rules)
    if not hits:
        return None
    rule, info = hits[0]
    return build_explanation(rule, info, snapshot, tuple(other.id for other, _ in hits[1:]))


def case_snapshot(case: Case) -> Snapshot:
    """The snapshot a rule case describes."""
    infos = [
        ExceptionInfo(
            types=(exc.type, *exc.bases),
            message=exc.message,
            attributes=exc.attributes,
            in_replicate=exc.in_replicate,
        )
        for exc in case.exceptions
    ]
    return snapshot_from_data(
        infos, case.environ, case.client, python=case.python, sent=case.sent, dotenv=case.dotenv, extra_facts=case.facts
    )
