"""The evidence sentences: what the panel says was observed, from the facts; never a value.

Each sentence names where its fact was observed: the credential the failure sent (``sent.*``,
from ``_credential``), the variable (``token.*``), the account refusal in the answer, a keyword
passed to a call. ``_matcher`` puts them in an :class:`Explanation`; ``_checks`` reuses the
variable's sentence for ``doctor``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._facts import TOKEN_VARIABLE, FactValue
from ._snapshot import ExceptionInfo
from ._wrappers import BY_NAME

_TRAILING = {
    "newline": "a newline (\\n) at its end",
    "crlf": "a Windows line break (\\r\\n) at its end",
    "carriage return": "a carriage return (\\r) at its end",
    "space": "a space at its end",
    "tab": "a tab at its end",
    "whitespace": "whitespace at its end",
}


_AT = {"leading": "at the start", "trailing": "at the end", "both ends": "at both ends", "inside": "inside it"}
_PROBLEM = {
    "empty": "is an empty string",
    "blank": "holds only whitespace",
}


def sent_evidence(facts: Mapping[str, FactValue]) -> list[str]:
    """Sentences about the credential sent, naming where it was observed; never its value."""
    source = facts.get("sent.source")
    if source == "text":  # pasted text that says what was sent: sent.where is the sentence
        return [str(facts["sent.where"])] if facts.get("sent.where") else []
    if source in (None, "variable") or facts.get("sent.origin") == "variable":
        # The variable's own sentences say the rest; they do not look for non-ASCII characters.
        kind = facts.get("sent.non_ascii")
        return (
            [f"{TOKEN_VARIABLE} has a {kind} {_AT.get(str(facts.get('sent.non_ascii_at')), '')}".rstrip()]
            if kind
            else []
        )
    where = str(facts.get("sent.where"))
    state = facts.get("sent.state")
    if state == "unset":  # the variable's sentences say "the failed request sent no token"
        return [] if source == "header" else [f"{where}: no token"]
    if state in _PROBLEM:
        return [f"{where} {_PROBLEM[str(state)]}"]
    lines = [_set_token_sentence(facts, "sent", f"{where}: {facts.get('sent.length')} characters")]
    if facts.get("sent.origin") == "code" and facts.get("token.state") not in (None, "unset"):
        lines.append("it is not the value of REPLICATE_API_TOKEN (compared by digest)")
    return lines


def text_evidence(
    facts: Mapping[str, FactValue],
    info: ExceptionInfo,
    generation: str | None = None,
    here: bool = False,
    installed: str | None = None,
) -> list[str]:
    """Sentences about what pasted text shows of the client: ``generation`` (default: the
    ``client.generation`` fact), read on its own or, ``here``, with this shell's environment
    (whose ``installed`` client the sentence names as this shell's, not the failure's)."""
    generation = generation or (None if here else str(facts.get("client.generation") or "") or None)
    python = None if here else facts.get("python.version")  # with --here, the fact is this shell's
    on = f" on Python {python}" if python else ""
    wrapper = BY_NAME.get(str(facts.get("wrapper.name")))
    if wrapper is not None and not wrapper.uses_client:  # the replicate release plays no part
        return [f"{wrapper.title} calls Replicate's HTTP API itself{on}; no environment was read"]
    if here:
        shell = f"replicate {installed} is installed here" if installed else "replicate is not installed here"
        shown = (
            f"the text shows replicate {generation}{on}"
            if generation
            else "the text does not show which replicate release failed"
        )
        lines = [f"{shown}; this shell's environment was read too (--here): {shell}"]
    elif generation:
        lines = [f"the text shows replicate {generation}{on}; no environment was read (--here reads this shell's)"]
    else:
        lines = [f"the text does not show which replicate release failed{on}; no environment was read"]
    if facts.get("client.reads_token_at_import") and "specified version does not exist" in info.message:
        lines.append(
            "replicate 0.14.0-0.15.3 (which these frames show) read REPLICATE_API_TOKEN once at import; "
            "in 2023 the API answered their requests without a usable token with this 422, not a 401"
        )
    return lines


def wrapper_evidence(facts: Mapping[str, FactValue]) -> list[str]:
    """Sentences about the wrapper library the failure came through; never a value."""
    wrapper = BY_NAME.get(str(facts.get("wrapper.name")))
    if wrapper is None:
        return []
    state = facts.get("wrapper.token_state")
    variables = " or ".join(wrapper.variables)
    if state == "unknown":
        lines = [f"the failure came through {wrapper.title}, which reads {variables}"]
    elif state == "unset":
        lines = [f"the failure came through {wrapper.title}; none of the variables it reads ({variables}) is set"]
    else:
        lines = [
            f"the failure came through {wrapper.title}, which took its token from {facts.get('wrapper.token_variable')}"
        ]
        if facts.get("wrapper.variable_shadowed"):
            lines.append(f"it holds another value than {TOKEN_VARIABLE} (compared by digest)")
    if facts.get("wrapper.token_ignored") is True:
        given = f"{wrapper.keyword}=" if wrapper.keyword else "its settings"
        lines.append(
            f"the token {wrapper.title} was given ({given}) is not the one the request carried (compared by digest)"
        )
    passed = facts.get("wrapper.token_passed")
    if wrapper.keyword is not None and passed is True:
        lines.append(f"the code passed {wrapper.keyword}= to {wrapper.title}")
    elif wrapper.keyword is not None and passed is False:
        lines.append(f"the code passed no {wrapper.keyword}= to {wrapper.title}")
    return lines


def keyword_evidence(facts: Mapping[str, FactValue]) -> list[str]:
    """A sentence for a token keyword passed to a call that takes none."""
    keyword = facts.get("call.token_keyword")
    return [f"{keyword}= was passed to a replicate call that takes no token keyword"] if keyword else []


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
    if state in ("unset", "empty", "blank") and facts.get("ci.fork_pull_request") is True:
        lines.append(
            "this is a GitHub Actions run of a pull request from a fork, and GitHub gives those no "
            "repository secrets, so the workflow's REPLICATE_API_TOKEN is empty here: skip the steps "
            "that need it when it is empty, or test against a fake API (replicate-explain fake-api)"
        )
    lookalike = facts.get("token.lookalike")
    if isinstance(lookalike, str):
        lines.append(f"{lookalike} is set, a name the replicate client does not read")
    sent = facts.get("token.sent")
    if sent == "differs" and facts.get("sent.origin") != "code":  # else the sent.* sentences say it
        lines.append(
            "the failed request sent a different token than REPLICATE_API_TOKEN holds now (compared by digest)"
        )
    elif sent == "absent" and facts.get("sent.source") != "text":  # else the text's sentence says it
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


def _set_token_sentence(facts: Mapping[str, FactValue], prefix: str = "token", head: str = "") -> str:
    """One sentence about a set token (the variable's ``token.*`` facts, or the credential
    sent, ``sent.*``): what surrounds it, then whether the token itself (after any whitespace,
    quotes or auth scheme) starts with r8_."""
    extras: list[str] = []
    kind = facts.get(f"{prefix}.non_ascii")
    if kind:
        extras.append(f"a {kind} {_AT.get(str(facts.get(f'{prefix}.non_ascii_at')), '')}".rstrip())
    if facts.get(f"{prefix}.whitespace") in ("leading", "both"):
        extras.append("whitespace before it")
    trailing = facts.get(f"{prefix}.trailing")
    if isinstance(trailing, str):
        extras.append(_TRAILING.get(trailing, "whitespace at its end"))
    elif facts.get(f"{prefix}.line_break"):
        extras.append("a line break inside it")
    if facts.get(f"{prefix}.quoted"):
        extras.append("quotes around it")
    if facts.get(f"{prefix}.scheme_prefixed"):
        extras.append("an auth scheme ('Bearer ' or 'Token ') before it")
    head = head or f"REPLICATE_API_TOKEN is set, {facts.get(f'{prefix}.length')} characters"
    if facts.get(f"{prefix}.well_formed"):
        return f"{head}, has the r8_ + 37 letters and digits format"
    if extras:
        head += ", with " + _and(extras)
    token = (
        "the token after the scheme"
        if facts.get(f"{prefix}.scheme_prefixed")
        else "the token inside"
        if extras
        else "it"
    )
    if facts.get(f"{prefix}.r8_prefix"):
        return f"{head}; {token} starts with r8_"
    return f"{head}; {token} does not start with r8_ (older tokens may lack it)"
