"""The account refusals, on real clients against the loopback API: a 402 (billing required,
insufficient credit) and a 429 (an account throttled for want of a payment method) are explained
as account problems, never as token problems, live (excepthook), logged, in IPython and pasted;
404, 422 and a 500 outage get no explanation at all.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import (
    CLIENT_VERSIONS,
    MODEL_REF,
    NO_BILLING_TOKEN,
    NO_CREDIT_TOKEN,
    REFUSALS,
    THROTTLED_TOKEN,
    VALID_TOKEN,
    run_program,
)
from commandline import cli_env, run_json
from outputs import explanations, leaks, rule_shown

from replicate_explain._loopback import LoopbackAPI

pytestmark = pytest.mark.e2e

NOT_FOUND_TOKEN = "r8_LoopbackNotFound000000000000000000000"
INVALID_INPUT_TOKEN = "r8_LoopbackInvalidInput00000000000000000"
OUTAGE_TOKEN = "r8_LoopbackOutage0000000000000000000000000"
NEGATIVES = {NOT_FOUND_TOKEN: "not-found", INVALID_INPUT_TOKEN: "invalid-input", OUTAGE_TOKEN: "server-error"}
ALL_TOKENS = (VALID_TOKEN, *REFUSALS, *NEGATIVES)

RUN = f"""
import replicate
print(replicate.run({MODEL_REF!r}, input={{"text": "hi"}}))
"""

LOGGED = f"""
import replicate_explain
import logging
import replicate
logging.basicConfig()
try:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
except Exception:
    logging.getLogger("app").exception("the call failed")
print("survived")
"""

JSON = {"REPLICATE_EXPLAIN_FORMAT": "json"}
ACCEPTED = (
    "the API answered {}, which it sends only after accepting the token (a token it refuses "
    "gets 401): the refusal is about the account, not the token"
)
TOKEN_RULES = ("token-", "dotenv-", "client-", "notebook-")

#: The last traceback line each client prints for the throttled account (measured: 0.11.0
#: retries 5 times through requests, 0.14-1.x never retry a POST, 2.x retries twice).
THROTTLED_LAST_LINE = {
    "0.11.0": "requests.exceptions.RetryError: ",
    "0.15.3": "replicate.exceptions.ReplicateError: Request was throttled.",
    "0.15.8": "replicate.exceptions.ReplicateError: Request was throttled.",
    "1.0.7": "detail: Request was throttled.",
    "2.0.0b4": "replicate.RateLimitError: Error code: 429 - {'detail': 'Request was throttled.",
}
THROTTLED_ATTEMPTS = {"0.11.0": 6, "0.15.3": 1, "0.15.8": 1, "1.0.7": 1, "2.0.0b4": 3}


@pytest.fixture(scope="module")
def refusing_api() -> Iterator[LoopbackAPI]:
    """The loopback with the account refusals and the negatives, each for its own token."""
    with LoopbackAPI(tokens={VALID_TOKEN}, refusals={**REFUSALS, **NEGATIVES}) as server:
        yield server


def _only(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    found = explanations(result.stderr)
    assert len(found) == 1, result.stderr
    return found[0]


def _no_token_rule(shown: dict[str, Any]) -> list[str]:
    """The token rules among the shown rule and the ones listed as also possible."""
    return [rule for rule in (shown["rule_id"], *shown["also"]) if rule.startswith(TOKEN_RULES)]


def _leaks(*texts: str) -> list[str]:
    return leaks("".join(texts), *ALL_TOKENS)


def _uncaught(api: LoopbackAPI, version: str, token: str) -> subprocess.CompletedProcess[str]:
    return run_program("import replicate_explain\n" + RUN, version, api, token, JSON)


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_an_uncaught_402_is_billing_required_with_the_token_accepted(refusing_api: LoopbackAPI, version: str) -> None:
    """Billing required, uncaught: exit 1, billing-required shown, its evidence says the token
    was accepted, and no token rule is shown or listed as also possible."""
    result = _uncaught(refusing_api, version, NO_BILLING_TOKEN)
    shown = _only(result)
    assert (result.returncode, shown["rule_id"], _no_token_rule(shown)) == (1, "billing-required", [])
    assert ACCEPTED.format("402 Payment Required") in shown["evidence"]
    assert "doctor --online" in " ".join(shown["fix"])
    assert _leaks(result.stdout, result.stderr) == []


@pytest.mark.parametrize("version", ["0.15.8", "1.0.7", "2.0.0b4"])
def test_insufficient_credit_is_the_same_rule(refusing_api: LoopbackAPI, version: str) -> None:
    """402 Insufficient credit (prepaid credit ran out) is explained by billing-required too."""
    result = _uncaught(refusing_api, version, NO_CREDIT_TOKEN)
    assert (result.returncode, rule_shown(result.stderr)) == (1, "billing-required")


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_a_logged_402_is_explained_under_the_log_record(refusing_api: LoopbackAPI, version: str) -> None:
    """``logger.exception`` of the 402 in a program that goes on: one billing-required
    explanation, right under the logged traceback; the program's exit status is unchanged."""
    result = run_program(LOGGED, version, refusing_api, NO_BILLING_TOKEN, JSON)
    lines = result.stderr.splitlines()
    shown = [i for i, line in enumerate(lines) if line.startswith('{"rule_id"')]
    assert (result.returncode, result.stdout, rule_shown(result.stderr)) == (0, "survived\n", "billing-required")
    assert lines[0] == "ERROR:app:the call failed"
    assert shown == [len(lines) - 1]
    assert _leaks(result.stdout, result.stderr) == []


def _pasted(api: LoopbackAPI, version: str, token: str, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """Run the client without replicate-explain; paste its traceback into ``explain``."""
    plain = run_program(RUN, version, api, token, {"REPLICATE_EXPLAIN": "0"})
    assert plain.returncode == 1 and "Traceback (most recent call last):" in plain.stderr, plain.stderr
    status, document = run_json(
        "explain", "--here", "-", stdin=plain.stderr, cwd=tmp_path, env=cli_env(REPLICATE_API_TOKEN=token)
    )
    return status, document


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_a_pasted_402_traceback_is_billing_required(refusing_api: LoopbackAPI, version: str, tmp_path: Path) -> None:
    """The real client's own traceback text, pasted into ``explain``: billing-required, with
    the accepted-token evidence, and no token rule among the candidates."""
    status, document = _pasted(refusing_api, version, NO_BILLING_TOKEN, tmp_path)
    (chain,) = document["chains"]
    explanation = chain["explanation"]
    assert (status, explanation["rule_id"], _no_token_rule(explanation)) == (0, "billing-required", [])
    assert ACCEPTED.format("402 Payment Required") in explanation["evidence"]
    assert _leaks(str(document)) == []


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_a_throttled_account_is_explained_after_the_clients_retries(refusing_api: LoopbackAPI, version: str) -> None:
    """429 with Retry-After on creating a prediction: each client retries as measured (0.11.0
    five times, 0.14-1.x never for a POST, 2.x twice), then what it raises is explained as
    account-rate-limited, with the accepted-token evidence."""
    refusing_api.clear()
    result = _uncaught(refusing_api, version, THROTTLED_TOKEN)
    shown = _only(result)
    posts = [r for r in refusing_api.requests if r.method == "POST"]
    assert (result.returncode, shown["rule_id"], _no_token_rule(shown), len(posts)) == (
        1,
        "account-rate-limited",
        [],
        THROTTLED_ATTEMPTS[version],
    )
    assert {r.status for r in posts} == {429}
    last = [line for line in result.stderr.splitlines() if not line.startswith('{"rule_id"')][-1]
    assert last.startswith(THROTTLED_LAST_LINE[version]), last
    assert ACCEPTED.format("429 Too Many Requests") in shown["evidence"]
    assert _leaks(result.stdout, result.stderr) == []


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_a_pasted_429_traceback_is_account_rate_limited(
    refusing_api: LoopbackAPI, version: str, tmp_path: Path
) -> None:
    """The throttled client's own traceback, pasted: account-rate-limited."""
    status, document = _pasted(refusing_api, version, THROTTLED_TOKEN, tmp_path)
    (chain,) = document["chains"]
    assert (status, chain["explanation"]["rule_id"], _no_token_rule(chain["explanation"])) == (
        0,
        "account-rate-limited",
        [],
    )


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
@pytest.mark.parametrize("token", list(NEGATIVES), ids=list(NEGATIVES.values()))
def test_404_422_and_an_outage_get_no_explanation(
    refusing_api: LoopbackAPI, version: str, token: str, tmp_path: Path
) -> None:
    """A misspelt model (404), bad input (422) and a genuine outage (500) are not account or
    token problems: plain Python's traceback, no explanation, live or pasted."""
    result = _uncaught(refusing_api, version, token)
    assert (result.returncode, rule_shown(result.stderr)) == (1, None), result.stderr
    status, document = run_json(
        "explain", "--here", "-", stdin=result.stderr, cwd=tmp_path, env=cli_env(REPLICATE_API_TOKEN=token)
    )
    assert (status, [chain["explanation"] for chain in document["chains"]]) == (1, [None])


@pytest.mark.parametrize("version", ["1.0.7", "2.0.0b4"])
def test_a_402_in_a_notebook_cell_shows_the_billing_panel(
    refusing_api: LoopbackAPI, version: str, tmp_path: Path
) -> None:
    """In a real kernel: the cell's error, then the billing-required panel (HTML and plain
    text); the token appears nowhere in the executed notebook."""
    from test_ipython import _kernel_env, run_notebook, summary

    cells = ["import replicate_explain", "import replicate\n" + RUN.strip()]
    env = _kernel_env(refusing_api, tmp_path, NO_BILLING_TOKEN, version)
    notebook = run_notebook(cells, env, tmp_path)
    error = "ReplicateError" if version == "1.0.7" else "APIStatusError"
    assert [summary(cell) for cell in notebook.cells] == [
        [],
        [("error", error), ("panel", "billing-required", "billing-required")],
    ]
    assert _leaks(str(notebook)) == []
