"""The credential a failure used, live: real clients of each generation against the loopback.

A token passed in code (the variable unset, or clean) is explained by the rule for the token
that was sent, and the evidence names where it came from; a token keyword given to
``replicate.run()`` has its own rule; a network failure (a closed port, a host that does not
resolve) is never explained as a token problem, whatever the variable holds.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from clients import CANARY, CLIENT_VERSIONS, MODEL_REF, VALID_TOKEN, run_program
from outputs import explanations, leaks

from replicate_explain._loopback import LoopbackAPI

pytestmark = pytest.mark.e2e

JSON = {"REPLICATE_EXPLAIN_FORMAT": "json"}


def passed_in_code(value: str) -> Callable[[str], str]:
    """A program that builds the client of the generation with ``value`` as its token."""

    def program(version: str) -> str:
        cls, keyword = ("Replicate", "bearer_token") if version.startswith("2.") else ("Client", "api_token")
        return (
            "import replicate_explain\nimport replicate\n"
            f"client = replicate.{cls}({keyword}={value!r})\n"
            f"print(client.run({MODEL_REF!r}, input={{'text': 'hi'}}))\n"
        )

    return program


def keyword(version: str) -> str:
    """replicate.run() given the token as a keyword."""
    call = f"replicate.run({MODEL_REF!r}, input={{}}, api_token={VALID_TOKEN!r})"
    return f"import replicate_explain\nimport replicate\n{call}\n"


def where(version: str, variable: str | None = None) -> str:
    """How the evidence names a token passed in code. 0.15.3 keeps no token on the client: it
    is seen in the request only, and known to come from code only when the variable is unset."""
    if version == "0.15.3" and variable is not None:
        return "the Authorization header sent"
    if version == "0.15.3":
        return "the token your code passed to the client (seen in the Authorization header)"
    label = "Replicate(bearer_token=...)" if version.startswith("2.") else "Client(api_token=...)"
    return f"the token your code passed to {label}"


CASES = [
    # (name, program, REPLICATE_API_TOKEN, rule, what the first evidence line says after the source)
    (
        "newline, variable unset",
        passed_in_code(CANARY + "\n"),
        None,
        "token-whitespace",
        ": 41 characters, with a newline (\\n) at its end; the token inside starts with r8_",
    ),
    (
        "quotes, variable clean",
        passed_in_code(f'"{CANARY}"'),
        VALID_TOKEN,
        "token-quoted",
        ": 42 characters, with quotes around it; the token inside starts with r8_",
    ),
    (
        "Bearer inside, variable unset",
        passed_in_code(f"Bearer {CANARY}"),
        None,
        "token-scheme-prefixed",
        ": 47 characters, with an auth scheme ('Bearer ' or 'Token ') before it; "
        "the token after the scheme starts with r8_",
    ),
    (
        "zero-width space, variable unset",
        passed_in_code(CANARY + "\u200b"),
        None,
        "token-non-ascii",
        ": 41 characters, with a zero-width space (U+200B) at the end; the token inside starts with r8_",
    ),
]


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
@pytest.mark.parametrize(("name", "program", "variable", "rule", "shape"), CASES, ids=[c[0] for c in CASES])
def test_a_token_passed_in_code_is_explained_by_what_was_sent(
    api: LoopbackAPI,
    version: str,
    name: str,
    program: Callable[[str], str],
    variable: str | None,
    rule: str,
    shape: str,
) -> None:
    """The rule of the token sent, and evidence that names its source; the token never shows."""
    result = run_program(program(version), version, api, variable, JSON)
    shown = explanations(result.stderr)
    assert [(e["rule_id"], e["evidence"][0]) for e in shown] == [(rule, where(version, variable) + shape)], (
        result.stderr
    )
    assert leaks(result.stdout + result.stderr, CANARY) == []


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_a_clean_token_passed_in_code_and_refused_is_rejected(api: LoopbackAPI, version: str) -> None:
    """With the variable unset, a clean token from code that the API refuses is token-rejected."""
    result = run_program(passed_in_code(CANARY)(version), version, api, None, JSON)
    assert [e["rule_id"] for e in explanations(result.stderr)] == ["token-rejected"], result.stderr


@pytest.mark.parametrize("version", [v for v in CLIENT_VERSIONS if v != "0.15.3"])
def test_an_empty_token_passed_in_code_is_empty_not_unset(api: LoopbackAPI, version: str) -> None:
    """Client(api_token="") with the variable unset: token-empty, naming the code (0.14-1.x
    drop "" and send nothing; 0.15.3 keeps no token on the client, so it cannot be told)."""
    result = run_program(passed_in_code("")(version), version, api, None, JSON)
    shown = explanations(result.stderr)
    assert [(e["rule_id"], e["evidence"][0]) for e in shown] == [
        ("token-empty", where(version) + " is an empty string")
    ], result.stderr


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_a_token_keyword_given_to_run_has_its_rule(api: LoopbackAPI, version: str) -> None:
    """replicate.run(..., api_token=...) with the variable unset: token-passed-to-call, named."""
    result = run_program(keyword(version), version, api, None, JSON)
    shown = explanations(result.stderr)
    assert [(e["rule_id"], e["evidence"][0]) for e in shown] == [
        ("token-passed-to-call", "api_token= was passed to a replicate call that takes no token keyword")
    ], result.stderr


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


HTTPX_VERSIONS = [v for v in CLIENT_VERSIONS if v != "0.11.0"]
"""0.11.0 (requests) checks the token before connecting, so its token errors are real ones."""


@pytest.mark.parametrize("version", HTTPX_VERSIONS)
@pytest.mark.parametrize("host", ["closed port", "http://nonexistent.invalid"])
@pytest.mark.parametrize("token", ["", CANARY + "\n", "  "], ids=["empty", "newline", "blank"])
def test_a_network_failure_is_never_a_token_problem(api: LoopbackAPI, version: str, host: str, token: str) -> None:
    """No connection at all: whatever the variable holds, nothing is explained."""
    base = _closed_port() if host == "closed port" else host
    base += "/v1" if version.startswith("2.") else ""
    env = {**JSON, "REPLICATE_BASE_URL": base, "REPLICATE_API_BASE_URL": base}
    code = f"import replicate_explain\nimport replicate\nreplicate.run({MODEL_REF!r}, input={{}})\n"
    result = run_program(code, version, api, token, env)
    assert (result.returncode, explanations(result.stderr)) == (1, []), result.stderr
