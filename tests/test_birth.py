"""Masked at birth: an exception leaving httpx (or requests) shows no credential to any code.

In-process tests drive the real httpx transports against the loopback API (a header value with
a line break makes h11 raise ``Illegal header value b'Bearer r8_...\\n'``, as the clients do);
the e2e tests drive the real clients (0.11.0 through requests, 1.0.7 and 2.0.0b4 through
httpx). Also here: text only, never behaviour (a program retries from what it logged), log
messages that are not strings, a reloaded ``logging``, rich's ``show_locals``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from clients import CANARY, MODEL_REF, VALID_TOKEN, run_program
from outputs import leaks

from replicate_explain import _hook, _state
from replicate_explain._credential import sent_facts
from replicate_explain._loopback import LoopbackAPI
from replicate_explain._loopback_routes import header_digest
from replicate_explain._mask import MASK
from replicate_explain._snapshot import iter_chain

HEADER = f"Bearer {CANARY}\n"
MASKED_MESSAGE = f"Illegal header value b'Bearer {MASK}\\n'"


@pytest.fixture
def birth(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Birth masking on (as ``install()`` turns it on), the canary in the environment."""
    monkeypatch.setenv("REPLICATE_API_TOKEN", CANARY)
    was_on = _state.birth_masking
    _state.reset()
    _hook.install_birth_masking()
    yield
    if not was_on:
        _hook.uninstall_birth_masking()
    _state.reset()


def _texts(error: BaseException, formatted: str) -> str:
    """Everything a program can print of ``error``: str, repr, f-string, args, each exception of
    the chain and its notes, and the traceback formatted in its own ``except``."""
    parts = [formatted, f"{error}", repr(error.args)]
    for member in iter_chain(error):
        parts += [str(member), repr(member), repr(getattr(member, "__notes__", None))]
    return "\n".join(parts)


def _send(api: LoopbackAPI) -> tuple[BaseException, str]:
    try:
        httpx.Client().get(f"{api.url}/v1/account", headers={"Authorization": HEADER})
    except Exception as error:
        return error, traceback.format_exc()
    raise AssertionError("the request was sent")


def test_an_httpx_error_is_masked_before_the_program_sees_it(api: LoopbackAPI, birth: None) -> None:
    """The program's own ``except`` gets httpx's own exception (same class, ``e.request`` kept
    with the real header) whose message, args, chain and formatted traceback are masked."""
    error, formatted = _send(api)
    assert (type(error), str(error), error.args) == (httpx.LocalProtocolError, MASKED_MESSAGE, (MASKED_MESSAGE,))
    assert error.request.headers["authorization"] == HEADER  # type: ignore[attr-defined]
    assert MASKED_MESSAGE in formatted
    assert leaks(_texts(error, formatted), CANARY) == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.9 and 3.10 re-raise the traceback they caught")
def test_the_traceback_is_the_one_plain_python_prints(api: LoopbackAPI, birth: None) -> None:
    """No frame of ours in the masked exception's traceback: the same frames, in the same order,
    as the same failure with birth masking off."""

    def frames(error: BaseException) -> list[tuple[str, str]]:
        return [(frame.filename, frame.name) for frame in traceback.extract_tb(error.__traceback__)]

    masked, _ = _send(api)
    _state.birth_masking = False
    try:
        plain, _ = _send(api)
    finally:
        _state.birth_masking = True
    ours = [name for filename, name in frames(masked) if "replicate_explain" in filename]
    assert (frames(masked) == frames(plain), ours, "handle_request" in [name for _, name in frames(masked)]) == (
        True,
        [],
        True,
    )


def test_an_async_httpx_error_is_masked_before_the_program_sees_it(api: LoopbackAPI, birth: None) -> None:
    """The same through ``httpx.AsyncClient`` (``AsyncHTTPTransport.handle_async_request``)."""

    async def send() -> tuple[BaseException, str]:
        async with httpx.AsyncClient() as client:
            try:
                await client.get(f"{api.url}/v1/account", headers={"Authorization": HEADER})
            except Exception as error:
                return error, traceback.format_exc()
        raise AssertionError("the request was sent")

    error, formatted = asyncio.run(send())
    assert (type(error), str(error)) == (httpx.LocalProtocolError, MASKED_MESSAGE)
    assert leaks(_texts(error, formatted), CANARY) == []


def test_a_header_value_httpx_cannot_encode_is_masked(birth: None) -> None:
    """A token with a zero-width space: httpx raises ``UnicodeEncodeError`` whose ``args`` (and so
    ``repr(e)``) hold the whole header value; they are masked, the encoder's message (which
    names the character, the user's actual problem) is left as it is."""
    try:
        httpx.Client(headers={"Authorization": f"Bearer {CANARY}\u200b"})
    except UnicodeEncodeError as error:
        raised: UnicodeEncodeError = error
    assert (raised.args, str(raised)) == (
        ("ascii", f"Bearer {MASK}\u200b", 47, 48, "ordinal not in range(128)"),
        "'ascii' codec can't encode character '\\u200b' in position 47: ordinal not in range(128)",
    )
    assert leaks(repr(raised) + traceback.format_exception_only(type(raised), raised)[0], CANARY) == []


def test_without_birth_masking_httpx_shows_the_token(api: LoopbackAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario is real: with birth masking off, httpx's message holds the canary."""
    monkeypatch.setattr(_state, "birth_masking", False)
    error, formatted = _send(api)
    assert str(error) == f"Illegal header value b'Bearer {CANARY}\\n'"
    assert leaks(formatted, CANARY) == [CANARY]


class _Pool:
    """A connection pool that fails with what a test gives it (the transport's real code runs)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def handle_request(self, request: Any) -> Any:
        raise self.error


def _through_transport(error: BaseException) -> BaseException:
    transport = httpx.HTTPTransport()
    transport._pool = _Pool(error)  # type: ignore[assignment]
    try:
        transport.handle_request(httpx.Request("GET", "http://127.0.0.1:9/"))
    except BaseException as raised:
        return raised
    raise AssertionError("no error")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups and add_note are Python 3.11+")
def test_exception_groups_notes_and_contexts_are_masked(birth: None) -> None:
    """An exception group's message (a C field) is masked by a masked copy of the same class
    with the same members; its members, their notes and their contexts are masked in place."""
    context = OSError(5, f"read Bearer {CANARY}")
    member = ValueError(f"Illegal header value b'Bearer {CANARY}'")
    member.add_note(f"header was Bearer {CANARY}")
    member.__context__ = context
    group = ExceptionGroup(f"2 failures, token {CANARY}", [member, KeyError("k")])  # noqa: F821
    raised = _through_transport(group)
    assert (type(raised), raised.message, raised.exceptions) == (  # type: ignore[attr-defined]
        ExceptionGroup,  # noqa: F821
        f"2 failures, token {MASK}",
        group.exceptions,
    )
    assert (str(member), member.__notes__, context.strerror) == (
        f"Illegal header value b'Bearer {MASK}'",
        [f"header was Bearer {MASK}"],
        f"read Bearer {MASK}",
    )
    formatted = "".join(traceback.format_exception(raised))
    assert leaks(formatted + _texts(raised, ""), CANARY) == []


def test_the_facts_of_the_credential_are_observed_before_the_message_is_masked(
    birth: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message is the only place a failure without ``e.request`` shows the credential: its
    ``sent.*`` facts are kept at birth (facts, never the value) and are exactly the facts of
    the same failure unmasked (here: the variable's value with a trailing line break)."""
    monkeypatch.setenv("REPLICATE_API_TOKEN", CANARY + "\n")

    def failure() -> BaseException:
        import httpcore

        return _through_transport(httpcore.LocalProtocolError(f"Illegal header value b'Bearer {CANARY}\\n'"))

    masked = failure()
    monkeypatch.setattr(_state, "birth_masking", False)
    plain = failure()
    assert (str(masked), str(plain)) == (MASKED_MESSAGE, f"Illegal header value b'Bearer {CANARY}\\n'")
    facts = sent_facts(list(iter_chain(masked)), {"REPLICATE_API_TOKEN": CANARY + "\n"})
    expected = sent_facts(list(iter_chain(plain)), {"REPLICATE_API_TOKEN": CANARY + "\n"})
    assert (facts, facts["sent.source"], facts["sent.origin"], facts["sent.trailing"]) == (
        expected,
        "message",
        "variable",
        "newline",
    )
    assert leaks(repr(vars(masked)), CANARY) == []


# ---------------------------------------------------------------------------------------------
# Text only, never behaviour


class QuotaError(Exception):
    """A program's own exception that keeps what it needs to retry."""

    def __init__(self, message: str, request: httpx.Request, headers: dict[str, str], tried: list[str]) -> None:
        super().__init__(message)
        self.request = request
        self.headers = headers
        self.tried = tried


@pytest.fixture
def hooked_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger through the automatic logging integration, writing to a string."""
    import replicate_explain
    from replicate_explain import logging as rel

    monkeypatch.setenv("REPLICATE_API_TOKEN", CANARY)
    _state.reset()
    replicate_explain.install()
    rel._activate()
    logger = logging.getLogger("birth-test")
    logger.propagate = False
    stream = io.StringIO()
    logger.handlers[:] = [logging.StreamHandler(stream)]
    yield logger, stream
    logger.handlers.clear()
    _state.reset()


def test_a_program_retries_with_the_real_token_after_logging_the_exception(
    api: LoopbackAPI, hooked_logger: tuple[logging.Logger, io.StringIO]
) -> None:
    """Logging masks text only: after ``logger.exception``, the exception's request, its dict and
    list attributes are the program's own objects, unchanged; retrying from ``e.request`` and
    from ``e.headers`` sends the real token (the loopback receives it and answers 200)."""
    logger, stream = hooked_logger
    header = f"Bearer {VALID_TOKEN}"
    headers = {"Authorization": header}
    tried = [header]
    request = httpx.Request("GET", f"{api.url}/v1/account", headers=headers)
    try:
        raise QuotaError(f"refused with {header}", request, headers, tried)
    except QuotaError as error:
        logger.exception("call failed")
        assert (error.request, error.headers, error.tried, str(error)) == (
            request,
            headers,
            tried,
            f"refused with Bearer {MASK}",
        )
        assert (error.headers is headers, error.tried is tried, error.tried) == (True, True, [header])
        api.clear()
        with httpx.Client() as client:
            statuses = [
                client.send(error.request).status_code,
                client.get(request.url, headers=error.headers).status_code,
            ]
    assert statuses == [200, 200]
    assert [r.authorization_sha256 for r in api.requests] == [header_digest(header)] * 2
    assert leaks(stream.getvalue(), VALID_TOKEN) == []


# ---------------------------------------------------------------------------------------------
# Log records whose msg is not a string


class _Shows:
    def __str__(self) -> str:
        return f"client with Bearer {CANARY}"


def test_log_messages_that_are_not_strings_are_masked(hooked_logger: tuple[logging.Logger, io.StringIO]) -> None:
    """``logger.error(e)``, ``logger.info({...})``, a list and any object: the output is masked;
    the program's exception keeps its class, its dict and list are not modified."""
    logger, stream = hooked_logger
    logger.setLevel(logging.INFO)
    error = ValueError(f"Illegal header value b'Bearer {CANARY}\\n'")
    mapping = {"authorization": f"Bearer {CANARY}"}
    items = [CANARY]
    logger.error(error)
    logger.info(mapping)
    logger.info(items)
    logger.info(_Shows())
    assert stream.getvalue().splitlines() == [
        f"Illegal header value b'Bearer {MASK}\\n'",
        f"{{'authorization': 'Bearer {MASK}'}}",
        f"['{MASK}']",
        f"client with Bearer {MASK}",
    ]
    assert (mapping, items) == ({"authorization": f"Bearer {CANARY}"}, [CANARY])


@pytest.mark.e2e
def test_a_reloaded_logging_is_still_masked(api: LoopbackAPI) -> None:
    """``importlib.reload(logging)`` (the notebook fix for ``basicConfig``) makes a new Logger
    class; records of the reloaded module are masked all the same."""
    program = """\
import importlib, logging, os, sys
import replicate_explain
logging.getLogger("early").warning("before the reload %s", os.environ["REPLICATE_API_TOKEN"])
importlib.reload(logging)
logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
logging.getLogger("app").error("after the reload %s", os.environ["REPLICATE_API_TOKEN"])
logging.getLogger("app").error({"authorization": "Bearer " + os.environ["REPLICATE_API_TOKEN"]})
"""
    result = run_program(program, "1.0.7", api, CANARY)
    assert (result.stdout, result.stderr, result.returncode) == (
        f"ERROR after the reload {MASK}\nERROR {{'authorization': 'Bearer {MASK}'}}\n",
        f"before the reload {MASK}\n",
        0,
    )


# ---------------------------------------------------------------------------------------------
# rich tracebacks with frame locals


def test_rich_print_exception_with_locals_is_masked(birth: None) -> None:
    """``console.print_exception(show_locals=True)`` in the program's own ``except``: the frame's
    locals (a token, a headers dict) and the message are masked; the names still show."""
    import rich.traceback
    from rich.console import Console

    from replicate_explain import _channels

    _channels.hook_rich_traceback(rich.traceback, _hook.excepthook)
    console = Console(file=io.StringIO(), width=100, color_system=None)
    token = CANARY
    headers = {"Authorization": f"Bearer {token}"}
    try:
        raise ValueError(f"Illegal header value b'Bearer {token}'")
    except ValueError:
        console.print_exception(show_locals=True)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert ("headers" in out, "token" in out, len(headers), leaks(out, CANARY)) == (True, True, 1, [])


# ---------------------------------------------------------------------------------------------
# Real clients


FACTS_PROGRAM = f"""\
import json, os, sys, traceback
import replicate_explain
import replicate
from replicate_explain._snapshot import take_snapshot

try:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
except Exception as error:
    facts = take_snapshot(error, os.environ).facts
    sent = {{k: v for k, v in sorted(facts.items()) if k.startswith("sent.")}}
    print(json.dumps({{"facts": sent, "text": str(error) + repr(error) + traceback.format_exc()}}))
"""


@pytest.mark.e2e
@pytest.mark.parametrize("version", ["0.11.0", "1.0.7", "2.0.0b4"])
def test_real_clients_fail_masked_with_the_facts_of_the_unmasked_failure(api: LoopbackAPI, version: str) -> None:
    """A real client with a token ending in a line break: the program's own ``except`` sees no
    token (``str``, ``repr``, ``traceback.format_exc()``), and the ``sent.*`` facts are those
    of the same failure without birth masking (``REPLICATE_EXPLAIN=0``: the text shows the
    canary, so the facts there were read from the unmasked failure)."""
    masked = run_program(FACTS_PROGRAM, version, api, CANARY + "\n")
    plain = run_program(FACTS_PROGRAM, version, api, CANARY + "\n", {"REPLICATE_EXPLAIN": "0"})
    found, expected = json.loads(masked.stdout), json.loads(plain.stdout)
    assert (leaks(found["text"], CANARY), leaks(expected["text"], CANARY)) == ([], [CANARY])
    assert (found["facts"], found["facts"]["sent.trailing"]) == (expected["facts"], "newline")
