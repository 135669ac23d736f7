"""rich's logging handler: the explanation under rich's traceback, and the traceback masked.

``RichHandler(rich_tracebacks=True)`` draws ``exc_info`` itself, from the exception object:
the explanation the logging integration appends to the record's text never shows, and with
``tracebacks_show_locals=True`` the frames' variables (a token read into a local) show as they
are. :class:`ReplicateExplainRichHandler` is a drop-in replacement (the same arguments), through
rich's own extension points, the methods ``RichHandler`` documents for subclasses:

* ``render_message``: the message masked (this environment's secrets and ``r8_`` tokens; the
  ``Bearer``/``Token`` heuristics too for a record that touches replicate).
* ``render``: every string of rich's traceback data masked (the exception values and notes of
  the whole chain, the locals' representations, the syntax error lines), then, for a Replicate
  authentication or account failure, the panel (``_render.panel``) under rich's traceback. The
  exception counts as explained (the excepthook does not repeat it should it end the program).

Without ``rich_tracebacks`` the traceback is part of the message text, masked, with the
plain-text explanation the logging integration appends under it; the panel is added only when
that text is not already there (the integration is off, ``REPLICATE_EXPLAIN=0``).

A plain ``RichHandler`` is not changed by ``import replicate_explain``: it has no per-record
hook that could add the panel, and patching rich's class for every program would reach every
handler of every library (docs/STREAMLIT-AND-RICH.md explains the choice). Its records still
carry ``record.replicate_explain`` and a masked exception message (the logging integration).
Tested with rich 15.0.0, 13.9.4 and 12.6.0.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.logging import RichHandler

from .. import _state
from . import _common

__all__ = ["ReplicateExplainRichHandler"]

_REPLICATE_LOGGERS = ("replicate", "httpx", "httpcore")
_MAX_NODES = 100_000


class ReplicateExplainRichHandler(RichHandler):
    """``RichHandler`` that masks tokens and draws the explanation of a Replicate failure
    under its traceback (see the module). Takes the same arguments as ``RichHandler``."""

    def render_message(self, record: Any, message: str) -> Any:
        """The message, masked, rendered by ``RichHandler``."""
        try:
            message = _redactor(record)(message)
        except Exception:
            _state.report_internal_error("masking a rich log message")
        return super().render_message(record, message)

    def render(self, *, record: Any, traceback: Any, message_renderable: Any) -> Any:
        """``RichHandler``'s layout with the traceback masked, then the explanation's panel."""
        if traceback is not None:
            try:
                _mask_dataclasses(getattr(traceback, "trace", None), _redactor(record))
            except Exception:
                _state.report_internal_error("masking a rich traceback")
        renderable = super().render(record=record, traceback=traceback, message_renderable=message_renderable)
        try:
            return _with_panel(self, record, traceback, message_renderable, renderable)
        except Exception:
            _state.report_internal_error("the rich logging handler")
            return renderable


def _exception(record: Any) -> BaseException | None:
    return _common.exception_of(getattr(record, "exc_info", None))


def _redactor(record: Any) -> _common.Redact:
    name = getattr(record, "name", "")
    touches = isinstance(name, str) and name.startswith(_REPLICATE_LOGGERS)
    return _common.redactor_with(heuristics=touches or _common.relevant(_exception(record)))


def _with_panel(handler: RichHandler, record: Any, traceback: Any, message: Any, renderable: Any) -> Any:
    exc = _exception(record)
    if exc is None or not _common.relevant(exc):
        return renderable
    if traceback is None:
        text = getattr(record, "replicate_explain_text", None)
        if isinstance(text, str) and text.splitlines()[0] in getattr(message, "plain", ""):
            return renderable  # the message text already carries it (the logging integration)
    explanation = _common.explain(exc)
    if explanation is None:
        return renderable
    from rich.console import Group

    from .._render import panel

    width = max(40, min(handler.console.width, 100))
    _common.mark_explained(exc)
    return Group(renderable, panel(explanation, width))


def _mask_dataclasses(value: Any, redact: _common.Redact) -> None:
    """Mask, in place, every string in rich's traceback data: ``Trace``, ``Stack``, ``Frame``
    (its ``locals``, a dict of ``pretty.Node``), ``_SyntaxError``, nested lists and dicts."""
    seen = 0
    stack = [value]
    while stack and seen < _MAX_NODES:
        item = stack.pop()
        seen += 1
        if isinstance(item, list):
            for index, element in enumerate(item):
                if isinstance(element, str):
                    item[index] = redact(element)
                else:
                    stack.append(element)
        elif isinstance(item, dict):
            for key, element in list(item.items()):
                if isinstance(element, str):
                    item[key] = redact(element)
                else:
                    stack.append(element)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            for field in dataclasses.fields(item):
                element = getattr(item, field.name, None)
                if isinstance(element, str):
                    masked = redact(element)
                    if masked != element:
                        setattr(item, field.name, masked)
                elif isinstance(element, (list, dict)) or dataclasses.is_dataclass(element):
                    stack.append(element)
