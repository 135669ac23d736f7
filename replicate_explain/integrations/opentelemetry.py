"""OpenTelemetry: a span processor that explains Replicate failures on spans and masks tokens.

Explicitly::

    from opentelemetry.sdk.trace import TracerProvider
    from replicate_explain.integrations.opentelemetry import ExplainSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(ExplainSpanProcessor())

What a span gets, when it records an exception (``span.record_exception(exc)``, which
``start_as_current_span`` and ``with span:`` do for an exception that escapes them):

* For a Replicate authentication failure: the span attribute ``replicate_explain.rule_id``, and
  on the ``exception`` event the attributes ``replicate_explain.rule_id`` and
  ``replicate_explain`` (the dictionary of :meth:`~replicate_explain.Explanation.to_dict` as
  JSON text: span attributes cannot hold mappings).
* For every exception: tokens masked in the event's ``exception.message`` and
  ``exception.stacktrace`` (and in string attributes passed to ``record_exception``), and in
  the span status description (``"LocalProtocolError: Illegal header value ..."``). An
  unrelated exception is masked only for this environment's secrets and ``r8_`` tokens.

How: span events are immutable once added, and ``on_end`` only gets a read-only span, by then
possibly queued for export. So ``on_start`` wraps that one span's ``record_exception`` and
``set_status`` (both public API of the span), which then pass masked values to the SDK's own
methods: the event is recorded masked in the first place, whatever processor or exporter comes
after. The SDK's ``Span`` is the only span class this applies to; others are left as they are.

Automatically, after ``import replicate_explain``: importing ``opentelemetry.sdk.trace``
makes every ``TracerProvider`` created afterwards (and the global one, if already set) start with
an ``ExplainSpanProcessor``. ``REPLICATE_EXPLAIN=0`` or ``uninstall()`` turns that off.
"""

from __future__ import annotations

import traceback
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.trace import Status, StatusCode

from .. import _state
from . import _common

__all__ = ["RULE_ATTRIBUTE", "ExplainSpanProcessor"]

#: The span (and exception event) attribute holding the rule id.
RULE_ATTRIBUTE = "replicate_explain.rule_id"
_MARK = "_replicate_explain_wrapped"


class ExplainSpanProcessor(SpanProcessor):
    """Masks tokens in recorded exceptions and names the cause of Replicate failures."""

    def __init__(self, *, automatic: bool = False) -> None:
        self._automatic = automatic

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Wrap the span's ``record_exception`` and ``set_status`` (never raises)."""
        if self._automatic and not _state.installed:
            return
        try:
            if isinstance(span, Span) and not getattr(span, _MARK, False):
                _wrap(span)
        except Exception:
            _state.report_internal_error("the OpenTelemetry span processor")

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing: the work was done as the span recorded its exception."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True


def _wrap(span: Span) -> None:
    record_exception = span.record_exception
    set_status = span.set_status
    recorded: list[BaseException] = []  # the status that follows describes this exception

    def record_masked(
        exception: BaseException, attributes: Any = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        try:
            recorded[:] = [exception]
            attributes = _exception_attributes(span, exception, attributes)
        except Exception:
            _state.report_internal_error("recording an exception on a span")
        record_exception(exception, attributes, timestamp, escaped)

    def set_status_masked(status: Status | StatusCode, description: str | None = None) -> None:
        try:
            redact = _common.redactor(recorded[-1] if recorded else None)
            if isinstance(status, Status) and status.description:
                status = Status(status.status_code, redact(status.description))
            elif isinstance(description, str):
                description = redact(description)
        except Exception:
            _state.report_internal_error("setting a span status")
        set_status(status, description)

    span.record_exception = record_masked  # type: ignore[method-assign]
    span.set_status = set_status_masked
    setattr(span, _MARK, True)


def _exception_attributes(span: Span, exc: BaseException, given: Any) -> dict[str, Any]:
    """The attributes to record with ``exc``: the masked message and stack trace (the SDK's
    own formatting, masked), the explanation for a Replicate failure, then ``given``, masked."""
    redact = _common.redactor(exc)
    stacktrace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    attributes: dict[str, Any] = {
        "exception.message": redact(str(exc)),
        "exception.stacktrace": redact(stacktrace),
    }
    explanation = _common.explain(exc)
    if explanation is not None:
        from .._render import render_json

        span.set_attribute(RULE_ATTRIBUTE, explanation.rule_id)
        attributes[RULE_ATTRIBUTE] = explanation.rule_id
        attributes[_common.KEY] = render_json(explanation).rstrip("\n")
    if given:
        attributes.update(_common.mask_deep(dict(given), redact))
    return attributes


# ---------------------------------------------------------------------------------------------
# Automatic activation


def _activate(module: Any) -> None:
    """Automatic activation (``replicate_explain.integrations.activate``): once per process."""
    if _state.integrations.get("opentelemetry") is not None:
        return
    init = TracerProvider.__init__
    _state.integrations["opentelemetry"] = init

    def init_with_processor(self: TracerProvider, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _add_to(self)

    init_with_processor.__wrapped__ = init  # type: ignore[attr-defined]
    init_with_processor.__doc__ = init.__doc__
    TracerProvider.__init__ = init_with_processor  # type: ignore[method-assign]
    from opentelemetry import trace

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        _add_to(current)


def _add_to(provider: TracerProvider) -> None:
    try:
        provider.add_span_processor(ExplainSpanProcessor(automatic=True))
    except Exception:
        _state.report_internal_error("adding the OpenTelemetry span processor")
