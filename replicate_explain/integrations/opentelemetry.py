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

What every span gets: tokens masked in every string it records, keys included, whenever it is
set: its name (at the start and ``update_name``), the attributes it was started with (where
``opentelemetry-instrumentation-httpx`` puts the request headers
``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST`` captures), ``set_attribute`` and
``set_attributes`` at any time, ``add_event`` names and attributes, link attributes.

How: span events are immutable once added, and ``on_end`` only gets a read-only span, by then
possibly queued for export. So ``on_start`` masks what the span was started with and wraps that
one span's methods that take text (``set_attribute``, ``set_attributes``, ``add_event``,
``add_link``, ``update_name``, ``record_exception``, ``set_status``: the span's public API),
which then pass masked copies to the SDK's own methods: the span holds masked text in the first
place, whatever processor or exporter comes after, and the mappings the program passed are not
modified. The SDK's ``Span`` is the only span class this applies to; others are left as they are.

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
    """Mask what the span holds already (its name, the attributes and links given at its start,
    such as the request headers an HTTP instrumentation captures), then wrap the span's own
    methods that take text, so whatever is set later is recorded masked."""
    record_exception = span.record_exception
    set_status = span.set_status
    set_attribute = span.set_attribute
    set_attributes = span.set_attributes
    add_event = span.add_event
    add_link = span.add_link
    update_name = span.update_name
    recorded: list[BaseException] = []  # the status that follows describes this exception
    recording: list[bool] = []  # inside record_exception: its event is masked already

    _mask_started(span, update_name)

    def record_masked(
        exception: BaseException, attributes: Any = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        try:
            recorded[:] = [exception]
            attributes = _exception_attributes(span, exception, attributes)
        except Exception:
            _state.report_internal_error("recording an exception on a span")
        recording.append(True)
        try:
            record_exception(exception, attributes, timestamp, escaped)
        finally:
            recording.pop()

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

    def set_attribute_masked(key: str, value: Any) -> None:
        try:
            redact = _common.redactor(None)
            key = redact(key) if isinstance(key, str) else key
            value = _common.mask_deep(value, redact)
        except Exception:
            _state.report_internal_error("setting a span attribute")
        set_attribute(key, value)

    def set_attributes_masked(attributes: Any) -> None:
        set_attributes(_masked_attributes(attributes))

    def add_event_masked(name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if not recording:
            try:
                name = _common.redactor(None)(name) if isinstance(name, str) else name
            except Exception:
                _state.report_internal_error("adding a span event")
            attributes = _masked_attributes(attributes)
        add_event(name, attributes, timestamp)

    def add_link_masked(context: Any, attributes: Any = None) -> None:
        add_link(context, _masked_attributes(attributes))

    def update_name_masked(name: str) -> None:
        try:
            name = _common.redactor(None)(name) if isinstance(name, str) else name
        except Exception:
            _state.report_internal_error("naming a span")
        update_name(name)

    span.record_exception = record_masked  # type: ignore[method-assign]
    span.set_status = set_status_masked
    span.set_attribute = set_attribute_masked  # type: ignore[method-assign]
    span.set_attributes = set_attributes_masked  # type: ignore[method-assign]
    span.add_event = add_event_masked  # type: ignore[method-assign]
    span.add_link = add_link_masked  # type: ignore[method-assign]
    span.update_name = update_name_masked
    setattr(span, _MARK, True)


def _masked_attributes(attributes: Any) -> Any:
    """Span, event or link attributes with every string masked, keys too: a new dict when
    anything changed, ``attributes`` itself otherwise (never modified); never raises."""
    if not attributes:
        return attributes
    try:
        given = dict(attributes)
        masked = _common.mask_deep(given, _common.redactor(None), keys=True)
        return attributes if masked is given else masked
    except Exception:
        _state.report_internal_error("masking span attributes")
        return attributes


def _mask_started(span: Span, update_name: Any) -> None:
    """Mask the name, attributes and links a span was started with (``on_start`` runs once the
    SDK stored them: an HTTP instrumentation passes the captured request headers there)."""
    try:
        redact = _common.redactor(None)
        if isinstance(span.name, str) and redact(span.name) != span.name:
            update_name(redact(span.name))
        current = dict(span.attributes or {})
        masked = _masked_attributes(current)
        if masked is not current:
            held: Any = span._attributes
            held.clear()
            for key, value in masked.items():
                held[key] = value
        links = list(span.links or ())
        if any(_masked_attributes(link.attributes) is not link.attributes for link in links):
            from opentelemetry.trace import Link

            fresh = [Link(link.context, _masked_attributes(link.attributes)) for link in links]
            span._links = span._new_links(fresh)
    except Exception:
        _state.report_internal_error("masking a started span")


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
