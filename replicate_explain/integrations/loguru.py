"""loguru: a patcher that explains Replicate failures in records and masks tokens in them.

Explicitly (either form)::

    from loguru import logger
    from replicate_explain.integrations.loguru import ExplainPatcher

    logger.configure(patcher=ExplainPatcher())     # every record
    log = logger.patch(ExplainPatcher())            # the records of this logger

What a record gets (never dropped, never raising):

* When its exception is a Replicate authentication failure: ``record["extra"]["replicate_explain"]``,
  the dictionary of :meth:`~replicate_explain.Explanation.to_dict` (the same as every other
  integration; ``serialize=True`` ships it), and, for the first record of that exception, the
  plain-text explanation under loguru's traceback (one JSON line with
  ``REPLICATE_EXPLAIN_FORMAT=json``); the excepthook then does not repeat it.
* Tokens masked in the message, in ``extra``, and in the exception: the record carries a copy
  of the exception (and of its chain) with masked arguments, so ``serialize=True``'s
  ``exception.value`` and loguru's last traceback line hide the token; and loguru's own
  traceback text, including the variable values ``diagnose=True`` prints and the frames
  ``backtrace=True`` adds, is masked line by line as loguru formats it. loguru has no public hook
  for that text, so the patcher wraps ``ExceptionFormatter.format_exception`` (the method every
  sink calls) the first time it runs. An unrelated exception is masked only for this
  environment's secrets and ``r8_`` tokens, and only copied when its text shows one.

Automatically, after ``import replicate_explain``: importing ``loguru`` installs the patcher on
``logger`` (chained after a patcher given to ``logger.configure``, before or after), so
``logger.exception(...)`` of a failure prints the explanation under its traceback with no
configuration. ``REPLICATE_EXPLAIN=0`` or ``uninstall()`` turns that off.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import _state
from . import _common

__all__ = ["ExplainPatcher"]

#: Attribute of the masked copy: the text to print under its traceback (first record only).
TEXT_ATTR = "__replicate_explain_text__"
#: Attribute of the masked copy: whether the original touches replicate (masking strength).
RELEVANT_ATTR = "__replicate_explain_relevant__"


class ExplainPatcher:
    """The loguru patcher: explain a Replicate failure, mask tokens (see the module)."""

    def __init__(self, *, automatic: bool = False) -> None:
        self._automatic = automatic

    def __call__(self, record: Any) -> None:
        if self._automatic and not _state.installed:
            return
        try:
            _wrap_formatter(explicit=not self._automatic)
            _patch(record)
        except Exception:
            _state.report_internal_error("the loguru patcher")

    def __repr__(self) -> str:
        return "ExplainPatcher()"


def _patch(record: Any) -> None:
    found = record.get("exception")
    exc = getattr(found, "value", None)
    exc = exc if isinstance(exc, BaseException) else None
    redact = _common.redactor(exc)
    message = record.get("message")
    if isinstance(message, str):
        record["message"] = redact(message)
    extra = record.get("extra")
    if isinstance(extra, dict):
        for key, value in list(extra.items()):
            masked = _common.mask_deep(value, redact, reprs=True)
            if masked is not value:
                extra[key] = masked
    if exc is None or getattr(exc, RELEVANT_ATTR, None) is not None:
        return  # no exception, or already patched (a patcher configured twice)
    explanation = _common.explain(exc)
    if explanation is not None and isinstance(extra, dict):
        extra[_common.KEY] = explanation.to_dict()
    relevant = _common.relevant(exc)
    text = None
    if explanation is not None and _common.mark_explained(exc):
        text = _common.text_under_traceback(explanation)
    copy = _masked_copy(exc, redact)
    if copy is exc and not relevant and text is None:
        return
    if copy is exc:
        copy = _masked_copy(exc, redact, force=True)
    if copy is exc:
        return
    setattr(copy, RELEVANT_ATTR, relevant)
    if text is not None:
        setattr(copy, TEXT_ATTR, text)
    record["exception"] = type(found)(found.type, copy, found.traceback)


def _masked_copy(exc: BaseException, redact: _common.Redact, *, force: bool = False, depth: int = 0) -> Any:
    """A copy of ``exc`` (and its chain) with tokens masked in its arguments and string
    attributes, the same class and traceback; ``exc`` itself when nothing needs masking (unless
    ``force``) or the class cannot be copied."""
    args = _common.mask_deep(exc.args, redact, reprs=True)
    attributes = _common.mask_deep(dict(getattr(exc, "__dict__", {})), redact)
    cause = exc.__cause__
    context = exc.__context__
    if depth < 16:
        cause = cause if cause is None else _masked_copy(cause, redact, depth=depth + 1)
        context = context if context is None else _masked_copy(context, redact, depth=depth + 1)
    unchanged = args is exc.args and cause is exc.__cause__ and context is exc.__context__
    if unchanged and not force and attributes == dict(getattr(exc, "__dict__", {})):
        return exc
    try:
        copy = type(exc).__new__(type(exc), *args)
        copy.args = args
        copy.__dict__.update(attributes)
        copy.__cause__ = cause
        copy.__context__ = context
        copy.__suppress_context__ = exc.__suppress_context__
        copy.__traceback__ = exc.__traceback__
    except Exception:
        return exc
    return copy


# ---------------------------------------------------------------------------------------------
# loguru's traceback text


def _wrap_formatter(*, explicit: bool) -> None:
    """Mask what every sink's ``ExceptionFormatter`` writes (once per process)."""
    state = _state.integrations.setdefault("loguru", {})
    if explicit:
        state["explicit"] = True
    if "format_exception" in state:
        return
    from loguru._better_exceptions import ExceptionFormatter

    original: Any = ExceptionFormatter.format_exception
    state["format_exception"] = original

    def format_exception(self: Any, type_: Any, value: Any, tb: Any, *args: Any, **kwargs: Any) -> Any:
        lines = original(self, type_, value, tb, *args, **kwargs)
        if not (_state.installed or state.get("explicit")):
            yield from lines
            return
        yield from _masked_lines(lines, value)

    format_exception.__wrapped__ = original  # type: ignore[attr-defined]
    ExceptionFormatter.format_exception = format_exception  # type: ignore[method-assign]


def _masked_lines(lines: Any, value: Any) -> Any:
    try:
        relevant = getattr(value, RELEVANT_ATTR, None)
        if relevant is None:
            relevant = _common.relevant(value) if isinstance(value, BaseException) else False
        redact = _common.redactor_with(heuristics=bool(relevant))
    except Exception:
        _state.report_internal_error("masking a loguru traceback")
        yield from lines
        return
    for line in lines:
        try:
            yield redact(line) if isinstance(line, str) else line
        except Exception:
            yield line
    text = getattr(value, TEXT_ATTR, None)
    if isinstance(text, str):
        yield text + "\n"


# ---------------------------------------------------------------------------------------------
# Automatic activation


class _Chained:
    """``logger``'s patcher when activated automatically: the configured one, then ours."""

    def __init__(self, configured: Callable[[Any], None] | None) -> None:
        self.configured = configured
        self.ours = ExplainPatcher(automatic=True)

    def __call__(self, record: Any) -> None:
        if self.configured is not None:
            self.configured(record)
        self.ours(record)


def _chain(core: Any) -> None:
    if not isinstance(core.patcher, _Chained):
        core.patcher = _Chained(core.patcher)


def _activate(module: Any) -> None:
    """Automatic activation (``replicate_explain.integrations.activate``): once per process."""
    state = _state.integrations.setdefault("loguru", {})
    if "configure" in state:
        return
    from loguru._logger import Logger

    _wrap_formatter(explicit=False)
    configure: Any = Logger.configure
    state["configure"] = configure

    def configure_then_chain(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = configure(self, *args, **kwargs)
        try:
            _chain(self._core)
        except Exception:
            _state.report_internal_error("chaining the loguru patcher")
        return result

    configure_then_chain.__wrapped__ = configure  # type: ignore[attr-defined]
    configure_then_chain.__doc__ = configure.__doc__
    Logger.configure = configure_then_chain  # type: ignore[method-assign]
    _chain(module.logger._core)
