"""Explain Replicate authentication failures in log records, and mask tokens in them.

Many programs never crash: they catch the error and log it (``logger.exception(...)``,
``log.error(..., exc_info=True)``, asyncio's "Task exception was never retrieved").

:class:`ExplainFilter` is a :class:`logging.Filter` for code and for
:func:`logging.config.dictConfig`::

    handler.addFilter(replicate_explain.logging.ExplainFilter())

    {"filters": {"explain": {"()": "replicate_explain.logging.ExplainFilter"}},
     "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["explain"]}}}

It never drops a record and never raises. What it does to a record:

* A record whose ``exc_info`` is a Replicate authentication failure gets
  ``record.replicate_explain`` (the :meth:`~replicate_explain.Explanation.to_dict` dictionary:
  ``rule_id``, ``title``, ``evidence``, ``fix``...) and ``record.replicate_explain_text`` (the
  plain-text explanation), for JSON formatters and log shippers. The first record of an exception
  also gets the plain-text explanation appended under its traceback (``record.exc_text``), so
  every standard formatter prints it where the excepthook would; with
  ``REPLICATE_EXPLAIN_FORMAT=json`` it is one JSON line instead. Logs never get ANSI codes.
* One exception is explained once: after a log record explained it, the excepthook prints the
  traceback of that same exception without the explanation, should it crash the program later.
* Tokens are masked wherever the record would show them, without formatting it in advance
  (``_mask._logrecord``); a record with no token and no Replicate failure is left exactly as
  it was. What is masked where: ``docs/INTEGRATIONS.md``, "Logging: what a record shows".

How the automatic activation works (``Logger.makeRecord``, reloads, when a record counts as
explained) and its limits: ``docs/INTEGRATIONS.md``, "Logging".
"""

from __future__ import annotations

import logging
import os

from . import _state

TYPE_CHECKING = False  # importing typing (or compiling _mask's patterns) here would slow down
if TYPE_CHECKING:  # every program's ``import logging``; both wait for the first record.
    from typing import Any, Callable

    from ._mask import Redactor

__all__ = ["ExplainFilter"]

#: The record attribute holding the explanation as a dictionary (``Explanation.to_dict()``).
ATTRIBUTE = "replicate_explain"
#: The record attribute holding the explanation as plain text.
TEXT_ATTRIBUTE = "replicate_explain_text"

_TRACEBACK_FORMATTER = logging.Formatter()
_ORIGINAL_MAKE_RECORD = logging.Logger.makeRecord


class ExplainFilter(logging.Filter):
    """Attach the explanation of a Replicate authentication failure to a record; mask tokens.

    ``name`` restricts the work to the records of that logger and its children (as for
    :class:`logging.Filter`), but no record is ever dropped.
    """

    def __init__(self, name: str = "") -> None:
        if not isinstance(name, str):
            raise TypeError(
                f"ExplainFilter(name=...) must be a logger name (a string), not {name!r}; "
                "use '' (the default) to explain the records of every logger"
            )
        super().__init__(name)

    def filter(self, record: logging.LogRecord) -> bool:
        """Explain and mask ``record`` in place; always ``True``: the record is never dropped."""
        try:
            if (
                _known_clean(record.name, record.msg, record.args)  # first: it rules most records out
                and record.exc_info is None
                and record.stack_info is None
                and len(record.__dict__) == _FRESH_FIELDS  # no extra=... field, nothing added
            ):
                return True  # the common record: a clean message seen before, number arguments
            if not self.name or super().filter(record):
                from ._mask._logrecord import extra_fields

                if record.exc_info is None:
                    _mask_slowly(record, extra_fields(record))
                else:
                    _prepare(record, show=True, extra=extra_fields(record))
        except Exception:
            _state.report_internal_error("the logging filter")
        return True

    def __repr__(self) -> str:
        return f"ExplainFilter(name={self.name!r})"


# ---------------------------------------------------------------------------------------------
# The work on one record


def _prepare(record: logging.LogRecord, *, show: bool, extra: Any = None, when_emitted: bool = False) -> None:
    """Mask tokens in ``record``; explain its exception if it is a Replicate failure.

    ``show`` says whether the record will reach a handler that prints it: only then is the
    explanation appended and the exception counted as explained: right away, or with
    ``when_emitted`` (at creation, before any filter ran) once a handler formats it. Idempotent.
    """
    exc = _exception_of(record)
    relevant = exc is not None and _relevant(exc)
    redactor = _message_redactor(relevant or _touches_replicate(record))
    if exc is not None:
        from ._birth import mask_exception

        # At the source, and before the arguments (which may hold it) are masked by the floor:
        # the facts about the credential it sent are kept first. A formatter of its own sees
        # masked text too.
        mask_exception(exc, redactor)
    _mask_message(record, redactor, extra, show)
    if exc is None:
        return
    if not relevant:
        _mask_traceback(record, redactor, exc, None)
        return
    extra_text = None
    if getattr(record, TEXT_ATTRIBUTE, None) is None:
        try:
            extra_text = _attach(record, exc)
        except Exception:  # the token is still masked below
            _state.report_internal_error("explaining a log record")
    _mask_traceback(record, redactor, exc, extra_text if show else None, when_emitted)


def _attach(record: logging.LogRecord, exc: BaseException) -> str | None:
    """Set the explanation attributes; return the text to append under the traceback."""
    from ._render import render_json, render_plain
    from ._report import explain_once, warn_rule_errors

    # Not marked explained here: only when the text is appended to a record a handler shows.
    explanation = explain_once(exc, mark=False)
    if explanation is None:
        return None
    text = render_plain(explanation).rstrip("\n")
    setattr(record, ATTRIBUTE, explanation.to_dict())
    setattr(record, TEXT_ATTRIBUTE, text)
    warn_rule_errors()
    return render_json(explanation).rstrip("\n") if _wants_json() else text


def _exception_of(record: logging.LogRecord) -> BaseException | None:
    info = record.exc_info
    if isinstance(info, tuple) and len(info) == 3 and isinstance(info[1], BaseException):
        return info[1]
    return None


def _message_redactor(heuristics: bool = True) -> Redactor:
    """The redactor for this environment, rebuilt only when the environment visibly changed.

    Building one reads every variable (tens of microseconds), too slow for every record; the
    key is cheap and changes when a variable is added or removed or the token is replaced.
    ``heuristics=False``: the same secrets without the ``Bearer``/``Token`` guesswork, for
    records that do not touch replicate.
    """
    environ = os.environ
    data = _ENV_DATA  # the raw dict: no key encoding, 10x cheaper
    if data is not None:
        key: Any = (len(data), data.get(_RAW_TOKEN_KEY))
    else:
        key = (len(environ), environ.get("REPLICATE_API_TOKEN"))
    cached = _state.log_redactor
    if cached is not None and cached[0] == key:
        redactor: Redactor = cached[1]  # type: ignore[assignment]
    else:
        from ._mask import Redactor

        redactor = Redactor.from_environ(environ)
        _state.log_redactor = (key, redactor)
    return redactor if heuristics else redactor.with_heuristics(False)


_FIELDS: Any = None
_REPLICATE_LOGGERS = ("replicate", "httpx", "httpcore")
_NUMBERS = frozenset((int, float, bool, type(None)))
_ENV_DATA: Any = getattr(os.environ, "_data", None)
if not isinstance(_ENV_DATA, dict):
    _ENV_DATA = None
#: ``os.environ._data`` holds bytes keys on POSIX, upper-case str keys on Windows.
_RAW_TOKEN_KEY: Any = b"REPLICATE_API_TOKEN" if os.name != "nt" else "REPLICATE_API_TOKEN"


def _mask_message(
    record: logging.LogRecord, redactor: Callable[[str], str], extra: Any = None, show: bool = True
) -> None:
    """Mask ``msg``, each argument (keeping its type), ``stack_info`` and ``extra`` fields
    (``_mask._logrecord.mask_fields``): substring tests, no formatting, for the common record.
    ``show=False`` (no handler will emit the record): an argument of another type is not
    formatted (its ``__str__`` may be costly, and nobody will see the text)."""
    global _FIELDS
    if _FIELDS is None:
        from ._mask._logrecord import mask_fields

        _FIELDS = mask_fields
    _FIELDS(record, redactor, extra, format_opaque=show)


def _touches_replicate(record: logging.LogRecord) -> bool:
    name = record.name
    return isinstance(name, str) and name.startswith(_REPLICATE_LOGGERS)


def _mask_traceback(
    record: logging.LogRecord,
    redactor: Callable[[str], str],
    exc: BaseException,
    extra: str | None,
    when_emitted: bool = False,
) -> None:
    """Set ``record.exc_text`` to the masked traceback, plus ``extra`` under it.

    Only when that differs from what a formatter would print anyway, so records without a
    token or an explanation keep ``exc_text`` unset and every formatter formats them as usual.
    """
    text = record.exc_text
    if not text:
        info = record.exc_info
        if info is None:
            return
        text = _TRACEBACK_FORMATTER.formatException(info)
    new = redactor(text)
    if extra is not None and not _state.is_explained(exc):
        new = (new if new.endswith("\n") else new + "\n") + extra
        if when_emitted:  # at creation (makeRecord): a filter may still drop the record
            _mark_when_emitted(record, exc)
        else:  # in a handler's filter: it is being emitted
            _state.mark_explained(exc)
    if new != text:
        record.exc_text = new


class _ExplainingRecord(logging.LogRecord):
    """A record that carries an explanation: its exception counts as explained once a handler
    formats it (``Formatter.format`` calls ``getMessage`` first), not before: a filter may
    still drop it, and the crash that follows must then show the explanation."""

    def getMessage(self) -> str:
        exc = _exception_of(self)
        if exc is not None:
            _state.mark_explained(exc)
        return super().getMessage()

    def __reduce__(self) -> Any:
        # Copied or pickled (QueueHandler, multiprocessing), it is a plain record again.
        return logging.makeLogRecord, (dict(self.__dict__),)


def _mark_when_emitted(record: logging.LogRecord, exc: BaseException) -> None:
    """Count ``exc`` as explained when a handler formats ``record`` (a record of another class,
    from a custom record factory, counts it now)."""
    if type(record) is logging.LogRecord:
        record.__class__ = _ExplainingRecord
    else:
        _state.mark_explained(exc)


def _relevant(exc: BaseException) -> bool:
    """The matcher's own cheap pre-filter, run before the full snapshot (which reads the
    environment, ``.env`` files and package metadata), so logging unrelated errors stays cheap."""
    from ._snapshot import is_relevant

    return is_relevant(exc)


def _wants_json() -> bool:
    from ._render import FORMAT_ENV

    return os.environ.get(FORMAT_ENV, "").strip().lower() == "json"


# ---------------------------------------------------------------------------------------------
# Automatic activation: every logger, through ``logging.Logger.makeRecord``


def _will_show(logger: logging.Logger, record: logging.LogRecord) -> bool:
    """Whether a handler of ``logger``'s hierarchy (or ``lastResort``) will emit ``record``.

    The walk of ``Logger.callHandlers``; filters are not run (they may have side effects), so
    a record that a filter drops still counts as shown.
    """
    current: logging.Logger | None = logger
    found = False
    while current is not None:
        for handler in current.handlers:
            found = True
            if record.levelno >= handler.level and not isinstance(handler, logging.NullHandler):
                return True
        if not current.propagate:
            break
        current = current.parent
    if found:
        return False
    last = logging.lastResort
    return last is not None and record.levelno >= last.level


def _make_record(
    self: logging.Logger,
    name: str,
    level: int,
    fn: str,
    lno: int,
    msg: object,
    args: Any,
    exc_info: Any,
    func: str | None = None,
    extra: Any = None,
    sinfo: str | None = None,
) -> logging.LogRecord:
    """``logging.Logger.makeRecord`` while replicate-explain is active: make, then explain.

    The signature is the base method's, spelt out: a ``*args, **kwargs`` wrapper costs more
    than all the masking work of a common record."""
    previous = _state.previous_make_record
    if previous is None or previous is _make_record:
        previous = _ORIGINAL_MAKE_RECORD
    record: logging.LogRecord = previous(self, name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)
    if _state.logging_active:
        try:
            if exc_info is None and sinfo is None:
                # The common case, kept short (the arguments, not the record's attributes): a
                # string message without a secret, number arguments, a logger that is not
                # replicate's: nothing to do.
                if extra or not _known_clean(name, msg, args):
                    _mask_slowly(record, extra, self)
            else:
                _prepare(record, show=_will_show(self, record), extra=extra, when_emitted=True)
        except Exception:
            _state.report_internal_error("explaining a log record")
    return record


def _known_clean(name: object, msg: object, args: Any) -> bool:
    """Whether this record needs no masking: logger ``name`` (not replicate's) logged ``msg``
    before, checked with the redactor of the environment as it still is; numbers as arguments."""
    if type(msg) is not str:  # an exception, a dict... (unhashable: never cached)
        return False
    entry: Any = _CLEAN.get(msg)
    cached: Any = _state.log_redactor
    if entry is None or entry[0] is not cached or entry[1] != name:
        return False
    key = cached[0]
    data = _ENV_DATA  # not None: _CLEAN stays empty without it
    if key[0] != len(data) or data.get(_RAW_TOKEN_KEY) is not key[1]:
        return False
    if not args:
        return True
    if type(args) is not tuple:
        return False
    for item in args:
        kind = type(item)
        if kind is not int and kind is not float and kind not in _NUMBERS:
            return False
    return True


#: The attributes of a record as ``Logger.makeRecord`` makes it (more: ``extra`` fields, or
#: ``message``/``asctime`` from a handler that formatted it already).
_FRESH_FIELDS = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
#: Messages (format strings) known to hold no secret, each with the ``_state.log_redactor``
#: entry it was checked with (a new entry, after the environment changed, invalidates them)
#: and the logger (not replicate's) that logged it.
_CLEAN: dict[object, Any] = {}
_CACHE_MAX = 4096
#: The ``_CLEAN`` cache holds messages of at most this many characters (a format string is a
#: line; a megabyte message, logged once, is not worth keeping alive) ...
_CLEAN_MAX_MESSAGE = 4096
#: ... and at most this many characters in all (about 1 MiB): bounded by size, not only count.
_CLEAN_MAX_CHARS = 1 << 20
_clean_chars = 0


def _mask_slowly(record: logging.LogRecord, extra: Any, logger: logging.Logger | None = None) -> None:
    """Mask the fields of a record without an exception; remember a clean message and logger.
    ``logger``: the one making the record (``None``: a handler's filter, so it is emitted)."""
    global _clean_chars
    name = record.name
    msg = record.msg
    replicate = _touches_replicate(record) or (isinstance(msg, BaseException) and _relevant(msg))
    redactor = _message_redactor(replicate)
    if isinstance(msg, BaseException):  # ``logger.error(e)``: its facts kept before it is masked
        from ._birth import mask_exception

        mask_exception(msg, redactor)
    _mask_message(record, redactor, extra, not record.args or logger is None or _will_show(logger, record))
    if (
        not replicate
        and _ENV_DATA is not None
        and type(msg) is str
        and record.msg is msg
        and len(msg) <= _CLEAN_MAX_MESSAGE
        and "r8_" not in msg
        and redactor(msg) == msg
    ):
        if len(_CLEAN) >= _CACHE_MAX or _clean_chars + len(msg) > _CLEAN_MAX_CHARS:
            _CLEAN.clear()
            _clean_chars = 0
        if msg not in _CLEAN:
            _clean_chars += len(msg)
        _CLEAN[msg] = (_state.log_redactor, name)


def _activate() -> None:
    """Explain records of every logger (idempotent; called once ``logging`` is imported)."""
    _state.logging_active = True
    reloaded = _state.logger_class is not None and _state.logger_class is not logging.Logger
    if (_state.previous_make_record is None or reloaded) and logging.Logger.makeRecord is not _make_record:
        # ``importlib.reload(logging)`` (the notebook fix for ``basicConfig``) made a new Logger
        # class: wrap its makeRecord too (``_hook`` watches for the reload).
        _state.previous_make_record = logging.Logger.makeRecord
        logging.Logger.makeRecord = _make_record  # type: ignore[method-assign]
    _state.logger_class = logging.Logger


def _deactivate() -> None:
    """Undo :func:`_activate`: unwrap, or stay chained as a pass-through if wrapped over."""
    _state.logging_active = False
    if logging.Logger.makeRecord is _make_record:
        previous = _state.previous_make_record or _ORIGINAL_MAKE_RECORD
        logging.Logger.makeRecord = previous  # type: ignore[method-assign]
        _state.previous_make_record = None
        _state.logger_class = None
