"""structlog: a processor that explains Replicate failures in event dicts and masks tokens.

Place :class:`ExplainProcessor` before the renderer and before any processor that formats
exceptions (``format_exc_info``, ``dict_tracebacks``, ``ExceptionRenderer``)::

    import structlog
    from replicate_explain.integrations.structlog import ExplainProcessor

    structlog.configure(processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        ExplainProcessor(),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),   # or structlog.dev.ConsoleRenderer()
    ])

What it does to an event dict (never drops one, never raises):

* When ``exc_info`` (an exception, a tuple, or ``True`` inside ``except``) is a Replicate
  authentication failure, the event gets ``replicate_explain``: the dictionary of
  :meth:`~replicate_explain.Explanation.to_dict`, the same as every other integration.
* That exception, or any exception whose traceback text or string locals show a token, is
  formatted here, masked, into ``exception`` (the key ``format_exc_info`` writes, which
  ``JSONRenderer`` ships and ``ConsoleRenderer`` prints) and ``exc_info`` is removed, so no
  later formatter (rich's, with local variables) sees the token. The first event of a
  Replicate failure has the plain-text explanation under the traceback, as in stdlib logging
  (one JSON line with ``REPLICATE_EXPLAIN_FORMAT=json``), and the excepthook does not repeat it.
  Any other exception is left to your formatters, untouched.
* Tokens are masked in every other value and in keys: strings in nested dicts and lists (an
  ``exception`` formatted earlier in the chain, a ``stack``, ``dict_tracebacks`` frames), and
  objects whose ``repr`` (what the renderers print) shows one. Under keys starting with ``_``
  (structlog's own, such as ``_record``, which later processors read) only strings are masked;
  objects are left as they are. The values are replaced by masked copies: a dict or list the
  program passed is never modified.

Automatically, after ``import replicate_explain``: importing ``structlog`` inserts one
``ExplainProcessor`` into the default chain, into every chain given to ``structlog.configure``
later and into every chain given to ``structlog.wrap_logger(logger, processors=[...])`` (before
its first exception formatter, else before its last processor, the renderer), unless the chain
already has one. A bound logger class instantiated directly with its own chain
(``structlog.BoundLogger(logger, processors, context)``) is not reached: add the processor
there. ``REPLICATE_EXPLAIN=0`` or ``uninstall()`` turns that off (the inserted processor passes
events through).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, MutableMapping
from typing import Any, Callable

import structlog

from .. import _state
from . import _common

__all__ = ["ExplainProcessor"]

#: Processors that format ``exc_info``: the automatic activation puts ours before them.
_FORMATTER_NAMES = ("format_exc_info", "dict_tracebacks", "ExceptionRenderer", "ExceptionPrettyPrinter")
_MAX_FRAMES = 200


class ExplainProcessor:
    """The structlog processor: explain a Replicate failure, mask tokens (see the module)."""

    def __init__(self, *, automatic: bool = False) -> None:
        self._automatic = automatic

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        if self._automatic and not _state.installed:
            return event_dict
        try:
            _process(event_dict)
        except Exception:
            _state.report_internal_error("the structlog processor")
        return event_dict

    def __repr__(self) -> str:
        return "ExplainProcessor()"


def _process(event_dict: MutableMapping[str, Any]) -> None:
    exc = _common.exception_of(event_dict.get("exc_info"))
    redact = _common.redactor(exc)
    if exc is not None:
        _format_exception(event_dict, exc, redact)
    for key, value in list(event_dict.items()):
        if key == "exc_info" or key == _common.KEY:
            continue
        # structlog's own keys start with "_" and hold objects other processors use (``_record``,
        # the stdlib LogRecord ``ProcessorFormatter`` reads): their strings only.
        reprs = not (isinstance(key, str) and key.startswith("_"))
        masked = _common.mask_deep(value, redact, reprs=reprs, keys=True)
        new_key = redact(key) if isinstance(key, str) else key
        if new_key != key:
            del event_dict[key]
            event_dict[new_key] = masked
        elif masked is not value:
            event_dict[key] = masked


def _format_exception(event_dict: MutableMapping[str, Any], exc: BaseException, redact: _common.Redact) -> None:
    explanation = _common.explain(exc)
    if explanation is not None:
        event_dict[_common.KEY] = explanation.to_dict()
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip("\n")
    masked = redact(text)
    if explanation is None and masked == text and not _locals_show_a_token(exc, redact):
        return
    if explanation is not None and _common.mark_explained(exc):
        masked += "\n" + _common.text_under_traceback(explanation)
    event_dict.pop("exc_info", None)
    event_dict["exception"] = masked


def _locals_show_a_token(exc: BaseException, redact: _common.Redact) -> bool:
    """Whether a string local variable of a frame of ``exc``'s chain holds a token (rich's and
    ``dict_tracebacks``' tracebacks print local variables)."""
    from .._snapshot import iter_chain

    frames = 0
    for item in iter_chain(exc):
        tb = item.__traceback__
        while tb is not None and frames < _MAX_FRAMES:
            frames += 1
            for value in tb.tb_frame.f_locals.values():
                if isinstance(value, str) and redact(value) != value:
                    return True
            tb = tb.tb_next
    return False


# ---------------------------------------------------------------------------------------------
# Automatic activation


def with_processor(processors: Iterable[Any]) -> list[Any]:
    """``processors`` with an automatic :class:`ExplainProcessor` inserted, unless it has one."""
    chain = list(processors)
    if any(isinstance(processor, ExplainProcessor) for processor in chain):
        return chain
    where = len(chain) - 1 if chain else 0
    for index, processor in enumerate(chain):
        name = getattr(processor, "__name__", None) or type(processor).__name__
        if name in _FORMATTER_NAMES:
            where = index
            break
    chain.insert(where, ExplainProcessor(automatic=True))
    return chain


def _wrap_configure(configure: Callable[..., None]) -> Callable[..., None]:
    def wrapper(processors: Iterable[Any] | None = None, *args: Any, **kwargs: Any) -> None:
        if processors is not None:
            try:
                processors = with_processor(processors)
            except Exception:
                _state.report_internal_error("adding the structlog processor")
        configure(processors, *args, **kwargs)

    wrapper.__wrapped__ = configure  # type: ignore[attr-defined]
    wrapper.__doc__ = configure.__doc__
    wrapper.__name__ = configure.__name__
    return wrapper


def _wrap_reset(reset: Callable[[], None]) -> Callable[[], None]:
    def wrapper() -> None:
        reset()
        _insert_into_defaults()

    wrapper.__wrapped__ = reset  # type: ignore[attr-defined]
    wrapper.__doc__ = reset.__doc__
    wrapper.__name__ = reset.__name__
    return wrapper


def _insert_into_defaults() -> None:
    from structlog import _config

    try:
        _config._CONFIG.default_processors = with_processor(_config._CONFIG.default_processors)
    except Exception:
        _state.report_internal_error("adding the structlog processor")


def _activate(module: Any) -> None:
    """Automatic activation (``replicate_explain.integrations.activate``): once per process."""
    if _state.integrations.get("structlog") is not None:
        return
    from structlog import _config

    configure = _wrap_configure(_config.configure)
    reset = _wrap_reset(_config.reset_defaults)
    _state.integrations["structlog"] = (configure, reset)
    # configure_once() calls _config.configure, so it is covered too.
    _config.configure = structlog.configure = configure
    _config.reset_defaults = structlog.reset_defaults = reset
    _insert_into_defaults()
    try:
        _wrap_lazy_proxy(_config.BoundLoggerLazyProxy)
    except Exception:
        _state.report_internal_error("wrapping structlog.wrap_logger's proxy")


def _wrap_lazy_proxy(proxy: Any) -> None:
    """``structlog.wrap_logger(logger, processors=[...])`` (and ``get_logger``) build a
    ``BoundLoggerLazyProxy``; a chain given there gets the processor as ``configure``'s does (a
    new list: the program's is not modified)."""
    init: Any = proxy.__init__

    def __init__(self: Any, logger: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) >= 2 and args[1] is not None:
            args = (args[0], _chain_or_given(args[1]), *args[2:])
        elif kwargs.get("processors") is not None:
            kwargs["processors"] = _chain_or_given(kwargs["processors"])
        init(self, logger, *args, **kwargs)

    __init__.__wrapped__ = init  # type: ignore[attr-defined]
    proxy.__init__ = __init__


def _chain_or_given(processors: Any) -> Any:
    try:
        return with_processor(processors)
    except Exception:
        _state.report_internal_error("adding the structlog processor")
        return processors
