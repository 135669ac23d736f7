"""The per-record fast path of the logging integration: a record whose message was seen clean
and whose arguments are numbers costs dictionary look-ups; everything else is still masked.

Both ways in: ``ExplainFilter`` on a handler and the automatic ``Logger.makeRecord`` wrapper,
each driven on real records in this process.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import pytest
from clients import CANARY

from replicate_explain import _state
from replicate_explain import logging as integration
from replicate_explain.logging import ExplainFilter

LOGGER = logging.getLogger("fastpath.app")
MESSAGE = "request %s done in %.1f ms"


def _by_filter(msg: str, args: Any, extra: dict[str, Any] | None = None) -> logging.LogRecord:
    record = LOGGER.makeRecord(LOGGER.name, logging.INFO, __file__, 1, msg, args, None, None, extra)
    assert ExplainFilter().filter(record) is True
    return record


def _by_make_record(msg: str, args: Any, extra: dict[str, Any] | None = None) -> logging.LogRecord:
    return integration._make_record(LOGGER, LOGGER.name, logging.INFO, __file__, 1, msg, args, None, None, extra)


WAYS = [pytest.param(_by_filter, id="ExplainFilter"), pytest.param(_by_make_record, id="automatic")]


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """The automatic path active, no token in the environment, the caches empty."""
    monkeypatch.setattr(_state, "logging_active", True)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.setattr(integration, "_CLEAN", {})


def _fields(record: logging.LogRecord) -> tuple[object, object, object]:
    return record.msg, record.args, getattr(record, "token", None)


@pytest.mark.parametrize("make", WAYS)
def test_a_known_clean_message_still_gets_its_string_arguments_and_extra_fields_masked(
    make: Callable[..., logging.LogRecord],
) -> None:
    """After the message was seen clean with number arguments (the fast path), a string
    argument or an ``extra`` field carrying a token is masked all the same."""
    assert _fields(make(MESSAGE, (7, 3.5))) == (MESSAGE, (7, 3.5), None)
    assert integration._known_clean(LOGGER.name, MESSAGE, (7, 3.5)) is True
    assert _fields(make(MESSAGE, (CANARY, 3.5))) == (MESSAGE, ("[REDACTED]", 3.5), None)
    assert _fields(make(MESSAGE, (7, 3.5), {"token": CANARY})) == (MESSAGE, (7, 3.5), "[REDACTED]")
    assert _fields(make(MESSAGE, (7, 3.5))) == (MESSAGE, (7, 3.5), None)


@pytest.mark.parametrize("make", WAYS)
def test_a_clean_message_is_checked_again_when_the_token_changes(
    make: Callable[..., logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message known clean is checked again once the environment changes: a token that
    appears in it after ``REPLICATE_API_TOKEN`` is set to it is masked."""
    secret = "r8-not-token-shaped-but-the-secret-value"
    message = f"using {secret} for %d calls"
    assert _fields(make(message, (3,))) == (message, (3,), None)
    monkeypatch.setenv("REPLICATE_API_TOKEN", secret)
    assert _fields(make(message, (3,))) == ("using [REDACTED] for %d calls", (3,), None)


@pytest.mark.parametrize(
    ("args", "clean"),
    [
        ((), True),
        ((1,), True),
        ((1, 2.5), True),
        ((1, 2.5, None, True), True),
        (("x",), False),
        ((1, "x"), False),
        ((1, 2, b"x"), False),
        ({"a": 1}, False),
        ([1], False),
    ],
)
def test_only_number_arguments_take_the_fast_path(args: Any, clean: bool) -> None:
    """Numbers (and ``None``, booleans) need no masking; strings, bytes, mappings and lists
    go the slow way, whatever the message."""
    _by_make_record(MESSAGE, (1, 2.5))
    assert integration._known_clean(LOGGER.name, MESSAGE, args) is clean


def test_a_message_known_clean_for_one_logger_is_checked_again_for_replicate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path belongs to the logger that logged the message: the same message from
    replicate's logger gets the credential heuristics (``Bearer ...`` masked)."""
    message = "header Bearer abcdefghijklmnopqrstuvwxyz0123456789 and %d retries"
    plain = integration._make_record(LOGGER, LOGGER.name, logging.INFO, __file__, 1, message, (2,), None)
    assert (plain.msg, integration._known_clean(LOGGER.name, message, (2,))) == (message, True)
    replicate = logging.getLogger("replicate.client")
    record = integration._make_record(replicate, replicate.name, logging.INFO, __file__, 1, message, (2,), None)
    assert record.msg == "header Bearer [REDACTED] and %d retries"
