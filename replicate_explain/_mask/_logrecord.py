"""Mask tokens in a log record's fields at creation, without formatting the record.

A record keeps ``msg`` and ``args`` apart until a handler formats it, and the handler does
that itself. So at creation we only look at the pieces: ``msg`` (a string; or an exception,
masked in place; a dict, list or tuple, by a masked copy; another object, by a stand-in that
masks its ``str()`` when formatted) and every string (or bytes)
argument are masked one by one, keeping their types (``('Bearer [REDACTED]',)``, never
``("'Bearer [REDACTED]'",)``), tuple and dict arguments alike; numbers cost one type check;
an exception argument is masked at the source (``_scrub``: its text only). Only an argument of another type
(whose ``str()`` we cannot know without calling it) makes us format the message once, as
before. ``extra={...}`` fields are masked the same way.

The ``Bearer``/``Token``/``Authorization`` heuristics apply to records that touch replicate
(a logger of replicate, httpx or httpcore, or a record whose exception is relevant); every
other record is masked for the environment's secrets and ``r8_`` tokens only, as the
excepthook does for unrelated errors.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ._scrub import scrub_exception, scrub_value

_PLAIN = (int, float, bool, type(None))
_PLAIN_TYPES = frozenset(_PLAIN)


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def extra_fields(record: logging.LogRecord) -> list[str]:
    """The names of ``record``'s fields that ``extra={...}`` (or a filter) added."""
    return [key for key in record.__dict__ if key not in _STANDARD and not key.startswith("replicate_explain")]


def mask_fields(
    record: logging.LogRecord, redactor: Callable[[str], str], extra: Any = None, *, format_opaque: bool = True
) -> None:
    """Mask ``record.msg``, ``record.args``, ``stack_info`` and the ``extra`` fields in place.

    ``format_opaque=False``: a record no handler will emit; an argument of another type is left
    as it is rather than formatted (its ``__str__`` may be costly; nobody sees the text)."""
    msg = record.msg
    if isinstance(msg, str):
        masked = redactor(msg)
        if masked != msg:
            record.msg = masked
    elif msg is not None and not isinstance(msg, _PLAIN):
        record.msg = _mask_message_object(msg, redactor)
    args = record.args
    if type(args) is tuple:
        for item in args:
            if type(item) not in _PLAIN_TYPES:
                break
        else:  # only numbers (the usual record): nothing to mask, nothing to format
            args = ()
    opaque = False
    if (args and isinstance(args, tuple)) or isinstance(args, dict):
        items = args.items() if isinstance(args, dict) else enumerate(args)
        changed: dict[Any, Any] = {}
        for key, item in items:
            if isinstance(item, _PLAIN):
                continue
            new, is_opaque = _mask_argument(item, redactor)
            opaque = opaque or is_opaque
            if new is not item:
                changed[key] = new
        if changed and isinstance(args, dict):
            record.args = {**args, **changed}
        elif changed:
            record.args = tuple(changed.get(number, item) for number, item in enumerate(args))
    if opaque and format_opaque:
        _mask_formatted(record, redactor)
    stack = record.stack_info
    if stack and isinstance(stack, str):
        masked = redactor(stack)
        if masked != stack:
            record.stack_info = masked
    if extra and isinstance(extra, (dict, list)):
        for key in extra:
            value = record.__dict__.get(key)
            if value is None or isinstance(value, _PLAIN):
                continue
            new = scrub_value(value, redactor)
            if new is not value:
                record.__dict__[key] = new
            elif isinstance(value, BaseException):
                scrub_exception(value, redactor)


def _mask_message_object(msg: Any, redactor: Callable[[str], str]) -> Any:
    """A ``msg`` that is not a string (``logger.error(e)``, ``logger.info({...})``), masked
        without formatting it: an exception's text in place (the same object); a tuple, list or dict
        by a masked copy for the record (the program's own is never modified), of the same type; an
    object of another type by a
        stand-in whose ``str()`` masks the object's own ``str()`` when a handler formats it."""
    if isinstance(msg, BaseException):
        scrub_exception(msg, redactor)
        return msg
    if isinstance(msg, (bytes, bytearray)) or type(msg) in (tuple, list, dict):
        return scrub_value(msg, redactor)  # the same type: a formatter may read its items
    return _Lazy(msg, redactor)


class _Lazy:
    """A log message object whose text is masked when (and only if) a handler formats it."""

    def __init__(self, value: Any, redactor: Callable[[str], str]) -> None:
        self.value = value
        self._redactor = redactor

    def __str__(self) -> str:
        return self._redactor(str(self.value))

    def __repr__(self) -> str:
        return self._redactor(repr(self.value))


def _mask_argument(item: Any, redactor: Callable[[str], str]) -> tuple[Any, bool]:
    """The masked argument, and whether it is opaque (its text is known only by formatting)."""
    if isinstance(item, (str, bytes, bytearray)):
        return scrub_value(item, redactor), False
    if isinstance(item, BaseException):
        scrub_exception(item, redactor)
        return item, False
    if type(item) in (tuple, list, dict):
        new = scrub_value(item, redactor)
        return new, new is item and _holds_opaque(item)
    return item, True


def _holds_opaque(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return any(not isinstance(item, (str, bytes, *_PLAIN)) for item in items)


def _mask_formatted(record: logging.LogRecord, redactor: Callable[[str], str]) -> None:
    """An argument of another type: format the message once; keep the masked text if it changed."""
    try:
        message = record.getMessage()
    except Exception:
        # A broken format string: the handler reports it with ``repr(msg)`` and ``args``; mask
        # the text of the opaque arguments (strings were masked already, keeping their type).
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_masked_repr(arg, redactor) for arg in args)
        elif isinstance(args, dict):
            record.args = {key: _masked_repr(arg, redactor) for key, arg in args.items()}
        return
    masked = redactor(message)
    if masked != message:
        record.msg = masked
        record.args = ()


class _Shown:
    """An argument whose ``repr`` held a secret, shown masked in "--- Logging error ---"."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text

    __str__ = __repr__


def _masked_repr(value: Any, redactor: Callable[[str], str]) -> Any:
    if isinstance(value, (str, bytes, bytearray, *_PLAIN)):
        return value
    try:
        text = repr(value)
    except Exception:
        return value
    masked = redactor(text)
    return value if masked == text else _Shown(masked)
