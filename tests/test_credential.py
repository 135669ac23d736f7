"""The credential a failure actually used, read from real exception objects in-process.

httpx exceptions carrying a real ``httpx.Request``, the messages httpx/h11 and requests print,
``UnicodeEncodeError`` from encoding a real header, and client objects in a frame: each gives
the ``sent.*`` facts, with the value never kept. No client release and no network involved.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from replicate_explain._credential import describe, message_credential, sent_facts
from replicate_explain._evidence import sent_evidence
from replicate_explain._shape import char_class, value_facts
from replicate_explain._snapshot import iter_chain

TOKEN = "r8_CANARY0DoNotLeakThis0Token00000000000"
SENT_KEYS = ("sent.source", "sent.origin", "sent.state", "sent.problem", "sent.non_ascii", "sent.non_ascii_at")


def picked(facts: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(facts[key] for key in SENT_KEYS)


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("unset", "unset", None, None)),
        ("", ("empty", "empty", None, None)),
        ("  ", ("blank", "blank", None, None)),
        (TOKEN, ("set", "none", None, None)),
        (TOKEN + "\n", ("set", "whitespace", None, None)),
        (f'"{TOKEN}"', ("set", "quoted", None, None)),
        (f"Bearer {TOKEN}", ("set", "scheme", None, None)),
        ("\u200b" + TOKEN, ("set", "non_ascii", "zero-width space (U+200B)", "leading")),
        (TOKEN + "\u00a0", ("set", "non_ascii", "no-break space (U+00A0)", "trailing")),
        (TOKEN[:10] + "\u2028" + TOKEN[10:], ("set", "non_ascii", "line separator (U+2028)", "inside")),
        ("\ufeff" + TOKEN, ("set", "non_ascii", "byte order mark (U+FEFF)", "leading")),
        ("\u201c" + TOKEN + "\u201d", ("set", "non_ascii", "curly double quote (U+201C)", "both ends")),
    ],
)
def test_value_facts_name_the_problem(value: str | None, expected: tuple[Any, ...]) -> None:
    """state, first problem, and the class and place of a non-ASCII character."""
    facts = value_facts(value)
    assert (facts["sent.state"], facts["sent.problem"], facts["sent.non_ascii"], facts["sent.non_ascii_at"]) == expected


def test_a_letter_of_another_script_is_named_by_class_only() -> None:
    """A look-alike letter could be part of the token: no code point, no name."""
    assert (char_class("\u0430"), char_class("\u0663"), char_class("\u2003")) == (
        "non-ASCII letter",
        "non-ASCII digit",
        "Unicode space (U+2003)",
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"Illegal header value b'Bearer {TOKEN}\\n'", TOKEN + "\n"),
        ("Illegal header value b'Bearer '", ""),
        (f"Illegal header value b'Token Bearer {TOKEN}'", f"Bearer {TOKEN}"),
        (f"Invalid header value b'Token {TOKEN}\\r\\n'", TOKEN + "\r\n"),
        (
            "Invalid leading whitespace, reserved character(s), or return character(s) in header value: "
            f"'Token {TOKEN}\\r\\n'",
            TOKEN + "\r\n",
        ),
        ("Illegal header value b'text/html\\n'", None),
        ('Illegal header value b\'Bearer __import__("os")', None),
        ("Connection error.", None),
    ],
)
def test_message_credential_reads_only_the_literal(message: str, expected: str | None) -> None:
    """The printed header value is evaluated as a literal, and only when it is an auth header."""
    assert message_credential(message) == expected


def _connection_error(header: str) -> BaseException:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/predictions", headers={"Authorization": header})
    return raised(httpx.LocalProtocolError("Illegal header value", request=request))


def test_the_request_in_the_chain_is_read_first() -> None:
    """An httpx exception's request gives the header: source header, compared with the variable
    (with the variable unset, a token sent can only come from code)."""
    exc = _connection_error(f"Bearer {TOKEN} ")
    assert picked(sent_facts(iter_chain(exc), {})) == ("header", "code", "set", "whitespace", None, None)
    assert picked(sent_facts(iter_chain(exc), {"REPLICATE_API_TOKEN": TOKEN + " "}))[:2] == ("header", "variable")


def test_a_request_without_authorization_sent_no_token() -> None:
    """A request known to carry no header: the credential sent is unset."""
    request = httpx.Request("GET", "http://127.0.0.1:9/v1/account")
    exc = raised(httpx.ConnectError("[Errno 111] Connection refused", request=request))
    assert picked(sent_facts(iter_chain(exc), {"REPLICATE_API_TOKEN": TOKEN})) == (
        "header",
        "unknown",
        "unset",
        "unset",
        None,
        None,
    )


def test_an_encoding_error_of_a_header_is_read() -> None:
    """httpx cannot encode a header with a zero-width space: the error object holds the header."""
    try:
        httpx.Headers({"Authorization": f"Bearer \u200b{TOKEN}"})
    except UnicodeEncodeError as exc:
        facts = sent_facts(iter_chain(exc), {})
    assert picked(facts) == ("header", "code", "set", "non_ascii", "zero-width space (U+200B)", "leading")


class _FakeReplicateModule:
    pass


def test_a_client_in_a_frame_says_the_token_came_from_code() -> None:
    """A replicate client object in a frame (its own attributes, read from ``vars``) with a
    token the variable does not hold: origin code, named by the keyword."""
    cls = type("Client", (), {"__module__": "replicate.client"})
    client = cls()
    client._api_token = TOKEN + "\n"

    def failing(self: object) -> None:
        raise ValueError("boom")

    try:
        failing(client)
    except ValueError as exc:
        facts = sent_facts(iter_chain(exc), {})
    assert picked(facts) == ("client", "code", "set", "whitespace", None, None)
    assert facts["sent.where"] == "the token your code passed to Client(api_token=...)"
    assert sent_evidence(facts) == [
        "the token your code passed to Client(api_token=...): 41 characters, with a newline (\\n) at its end; "
        "the token inside starts with r8_"
    ]


def test_nothing_observed_falls_back_to_the_variable() -> None:
    """No request, message or client: the credential is presumed to be the variable's."""
    facts = describe(None, None, {"REPLICATE_API_TOKEN": "\u200b" + TOKEN})
    assert picked(facts) == ("variable", "variable", "set", "non_ascii", "zero-width space (U+200B)", "leading")
    assert sent_evidence(facts) == ["REPLICATE_API_TOKEN has a zero-width space (U+200B) at the start"]


def test_no_fact_holds_the_value() -> None:
    """No fact value contains the token or a piece of it."""
    for value in (TOKEN, TOKEN + "\n", f'"{TOKEN}"', "\u200b" + TOKEN):
        facts = describe(value, "client", {}, client_label="Client(api_token=...)")
        assert [v for v in facts.values() if isinstance(v, str) and "CANARY" in v] == []


def test_another_librarys_failure_is_not_relevant() -> None:
    """openai's APIConnectionError over an httpx header error is that library's failure."""
    from replicate_explain._snapshot import ExceptionInfo, snapshot_from_data

    infos = [
        ExceptionInfo(("openai.APIConnectionError", "openai.APIError", "builtins.Exception"), "Connection error."),
        ExceptionInfo(("httpx.LocalProtocolError", "httpx.HTTPError"), "Illegal header value b'Bearer '"),
    ]
    snapshot = snapshot_from_data(infos, {"REPLICATE_API_TOKEN": ""}, "1.0.7")
    assert snapshot.relevant is False


def test_the_facts_observed_before_masking_at_the_source_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Masking an exception at the source (``_birth.mask_exception``, before any printer sees it) removes the
    credential's shape from its message; the ``sent.*`` facts observed just before are kept on
    the exception (facts only), so the explanation still describes the token that was sent."""
    from replicate_explain._birth import mask_exception as scrub_exception

    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    exc = httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}\\n'")
    before = sent_facts([exc], {})
    scrub_exception(exc)
    assert TOKEN not in str(exc)
    assert (before["sent.length"], before["sent.trailing"], before["sent.r8_prefix"]) == (41, "newline", True)
    assert sent_facts([exc], {}) == before
    assert TOKEN not in repr(vars(exc))
