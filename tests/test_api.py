"""``_api.explain`` and ``_api.rules`` in this process, on real exception objects.

The exceptions are the installed replicate client's own (``ReplicateError`` of 1.0.7, the test
environment's client) and httpx's; the environment is passed as ``environ``, the working
directory is an empty temporary one (no ``.env`` to find).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clients import CANARY, REPO_ROOT
from outputs import leaks

from replicate_explain import _state
from replicate_explain._api import explain, rules
from replicate_explain._common import python_version, version_in
from replicate_explain._explanation import Explanation


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No cached rules, no user rules, an empty working directory; caches forgotten after."""
    monkeypatch.delenv("REPLICATE_EXPLAIN_RULES", raising=False)
    monkeypatch.chdir(tmp_path)
    _state.reset()
    yield
    _state.reset()


def unauthenticated() -> BaseException:
    """The 1.x client's error for the API's 401 without a token, raised and caught."""
    from replicate.exceptions import ReplicateError

    try:
        raise ReplicateError(status=401, title="Unauthenticated", detail="You did not pass an authentication token")
    except ReplicateError as exc:
        return exc


def illegal_header() -> BaseException:
    """httpx's error for a token with a trailing newline, under the error the program raised."""
    import httpx

    try:
        try:
            raise httpx.LocalProtocolError(f"Illegal header value b'Bearer {CANARY}\\n'")
        except httpx.LocalProtocolError as exc:
            raise RuntimeError("the prediction failed") from exc
    except RuntimeError as outer:
        return outer


def summary(explanation: Explanation | None) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
    """The rule, the other candidates and the evidence sentences."""
    if explanation is None:
        return None
    return (explanation.rule_id, explanation.also, explanation.evidence)


def installed() -> str:
    from importlib.metadata import version

    return f"replicate {version('replicate')} is installed (Python {python_version()})"


HEADLINE_401 = (
    "the error raised: replicate.exceptions.ReplicateError: ReplicateError Details: title: Unauthenticated "
    "status: 401 detail: You did not pass an authentication token"
)


def test_environ_decides_the_explanation() -> None:
    """The same exception explains by the environment passed: an unset token, then a token
    kept under a name the client does not read."""
    exc = unauthenticated()
    assert summary(explain(exc, {})) == (
        "token-unset",
        (),
        ("REPLICATE_API_TOKEN is not set in this process", installed(), HEADLINE_401),
    )
    assert summary(explain(exc, {"REPLICATE_API_KEY": CANARY})) == (
        "token-lookalike-var",
        ("token-unset",),
        (
            "REPLICATE_API_TOKEN is not set in this process",
            "REPLICATE_API_KEY is set, a name the replicate client does not read",
            installed(),
            HEADLINE_401,
        ),
    )


def test_extra_facts_from_an_adapter_change_the_explanation() -> None:
    """``extra_facts`` carries what only an adapter sees: the IPython session exported the token
    in a subshell, so that cause wins over the plain unset token."""
    exc = unauthenticated()
    explanation = explain(exc, {}, extra_facts={"notebook.shell_export": "subshell"})
    assert summary(explanation) == (
        "notebook-shell-export",
        ("token-unset",),
        (
            "REPLICATE_API_TOKEN is not set in this process",
            "this session set REPLICATE_API_TOKEN in a shell command (!export, !set, %%bash, "
            "os.system...), which ran in a subshell that exited; the kernel did not get it",
            installed(),
            HEADLINE_401,
        ),
    )
    assert summary(explain(exc, {}, extra_facts={"notebook.shell_export": None})) == summary(explain(exc, {}))


def test_extra_facts_accept_only_adapter_facts() -> None:
    """A fact the pipeline computes itself cannot be overridden: ``ValueError`` names the allowed ones."""
    with pytest.raises(ValueError) as raised:
        explain(unauthenticated(), {}, extra_facts={"token.state": "set"})
    assert str(raised.value) == (
        "unknown extra fact 'token.state'; expected one of: notebook.shell_export "
        "(the other facts are computed from the exception and the environment)"
    )


def test_a_chained_httpx_failure_explains_and_holds_no_token() -> None:
    """The cause is found down the chain; the explanation (as JSON) holds no token."""
    explanation = explain(illegal_header(), {"REPLICATE_API_TOKEN": CANARY + "\n"})
    assert explanation is not None
    assert (explanation.rule_id, explanation.exception) == (
        "token-whitespace",
        "httpx.LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'",
    )
    assert leaks(json.dumps(explanation.to_dict()), CANARY) == []


def test_unrelated_errors_are_not_explained() -> None:
    """An error that does not touch replicate or its HTTP stack gives ``None``, extra facts or not."""
    try:
        {}["REPLICATE_API_TOKEN"]
    except KeyError as exc:
        error = exc
    assert [explain(error, {}), explain(error, {}, extra_facts={"notebook.shell_export": "subshell"})] == [None, None]


def test_the_rule_set_is_loaded_once_and_forgotten_on_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rules()`` caches the rule set; a user rule directory set later counts only after
    ``_state.reset()``, and then its rule overrides the bundled one of the same id."""
    first = rules()
    assert first is rules()
    user = tmp_path / "my-rules"
    user.mkdir()
    text = (REPO_ROOT / "rules" / "token-unset.yaml").read_text(encoding="utf-8")
    (user / "token-unset.yaml").write_text(text.replace("title: ", "title: Mine, ", 1), encoding="utf-8")
    monkeypatch.setenv("REPLICATE_EXPLAIN_RULES", str(user))
    assert rules() is first
    _state.reset()
    second = rules()
    assert second is not first
    assert (dict(second.overridden), second.errors) == ({"token-unset": str(user / "token-unset.yaml")}, ())
    mine, bundled = second.get("token-unset"), first.get("token-unset")
    assert mine is not None and bundled is not None
    assert mine.title == "Mine, " + bundled.title
    explanation = explain(unauthenticated(), {})
    assert explanation is not None
    assert (explanation.rule_id, explanation.title) == ("token-unset", mine.title)


def test_version_ranges_are_read_from_package_metadata() -> None:
    """The snapshot's client version is the installed release (1.x in the test environment)."""
    explanation = explain(unauthenticated(), {})
    assert explanation is not None
    assert explanation.client_version is not None and version_in(">=1,<2", explanation.client_version)
