"""Sentry (sentry-sdk 2.x and 3.x): explain Replicate failures in events, mask tokens in all it sends.

Explicitly::

    import sentry_sdk
    from replicate_explain.integrations.sentry import ReplicateExplainIntegration

    sentry_sdk.init(dsn=..., integrations=[ReplicateExplainIntegration()])

Automatically: after ``import replicate_explain`` (or the start-up install), importing
``sentry_sdk`` registers the same work as a global event processor
(``sentry_sdk.scope.add_global_event_processor``), so every client initialised later (or
before) gets it; ``REPLICATE_EXPLAIN=0`` or ``uninstall()`` turns that off, the explicit
integration keeps working.

What an event gets, when its exception (``hint["exc_info"]``) is a Replicate authentication
failure: the context ``contexts["replicate_explain"]`` (the dictionary of
:meth:`~replicate_explain.Explanation.to_dict`, the same as every other integration) and the
tag ``replicate_explain.rule`` (the rule id), so issues can be searched and grouped by cause.

What is masked: every string (keys too) of every event, right before ``before_send`` sees it
(exception values, messages, breadcrumbs, request, contexts, extra, tags, the frames' variables
of the exception's stack and of the thread's stack 3.x attaches to ``capture_message``); of
every Sentry Log (``sentry_sdk.logger.*``) before ``before_send_log``; of every streamed span
(name, attributes) before ``before_send_span``; and of envelope headers. The token itself is
never sent. For an event whose exception has nothing to do with Replicate only this
environment's secrets and ``r8_`` tokens are masked, so its text is otherwise unchanged.

Global event processors run before the processors of scopes (where web framework integrations
add the request), and the client adds parts of the event after every processor; logs and spans
pass no event processor at all. So the masking wraps the SDK's own steps (``Scope.apply_to_event``,
the serializer during ``_Client._prepare_event``, ``Scope.apply_to_telemetry``, the streamed
span's ``_to_json``, ``Envelope.__init__``), each guarded on its own: should one be missing in
some SDK release, it is skipped (reported with ``REPLICATE_EXPLAIN_DEBUG=1``) and the event
processor masks what it sees. docs/INTEGRATIONS.md has the user-facing account.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import sentry_sdk
from sentry_sdk.integrations import Integration
from sentry_sdk.scope import add_global_event_processor

from .. import _state
from . import _common

__all__ = ["TAG", "ReplicateExplainIntegration"]

#: The tag holding the rule id (the context holds the whole explanation under ``KEY``).
TAG = "replicate_explain.rule"


class ReplicateExplainIntegration(Integration):
    """Adds the explanation of Replicate authentication failures to events; masks tokens."""

    identifier = "replicate_explain"

    @staticmethod
    def setup_once() -> None:
        """Register the event processor (once per process, shared with the automatic one)."""
        _register()


def process_event(event: Any, hint: Any) -> Any:
    """The event processor: explain the event's exception, mask tokens everywhere; never
    raises and never drops an event."""
    try:
        if not _active():
            return event
        return _process(event, hint)
    except Exception:
        _state.report_internal_error("the Sentry event processor")
        return event


def _active() -> bool:
    if _state.installed:
        return True
    return sentry_sdk.get_client().get_integration(ReplicateExplainIntegration) is not None


def _exception(hint: Any) -> BaseException | None:
    info = hint.get("exc_info") if isinstance(hint, dict) else None
    return _common.exception_of(info) if info is not None else None


def _process(event: dict[str, Any], hint: Any) -> dict[str, Any]:
    exc = _exception(hint)
    explanation = _common.explain(exc)
    if not _state.integrations.get("sentry_scope_wrapped"):
        event = _mask(event, exc)
    if explanation is not None:
        event.setdefault("contexts", {})[_common.KEY] = explanation.to_dict()
        event.setdefault("tags", {})[TAG] = explanation.rule_id
    return event


def _mask(event: dict[str, Any], exc: BaseException | None) -> dict[str, Any]:
    masked: dict[str, Any] = _common.mask_deep(event, _common.redactor(exc), reprs=True)
    return masked


def _register() -> None:
    if _state.integrations.get("sentry") is not None:
        return
    _state.integrations["sentry"] = process_event
    add_global_event_processor(process_event)
    try:
        _wrap_apply_to_event()
    except Exception:
        _state.report_internal_error("wrapping Scope.apply_to_event")
    try:
        _wrap_prepare_event()
    except Exception:
        _state.report_internal_error("wrapping the Sentry client's serializer")
    for wrap, what in _TELEMETRY_WRAPS:
        try:
            wrap()
        except Exception:
            _state.report_internal_error(what)


#: The exception of the event the client is preparing (its hint's), read by the serializer wrap.
#: Per thread and task (events are captured concurrently): a context variable, not a global.
_preparing: ContextVar[BaseException | None] = ContextVar("replicate_explain_sentry_preparing", default=None)


def _wrap_prepare_event() -> None:
    """Mask the whole serialized event, keys included, right before ``before_send`` sees it.

    The client adds parts of the event after the scope's processors ran (sentry-sdk 3.0 attaches
    the current thread's stack, with its frames' variables, to ``capture_message``), then
    serialises it (``sentry_sdk.client.serialize``) and hands it to ``before_send``. Wrapping that
    serializer masks every string of what is sent, whatever field a release adds; the exception of
    the event (its hint's) is remembered while ``Client._prepare_event`` runs so that an event
    about an unrelated error keeps its text (the redactor's rule, :func:`_common.redactor`).
    """
    import sentry_sdk.client

    client_module: Any = sentry_sdk.client
    original_serialize: Any = client_module.serialize
    original_prepare: Any = client_module._Client._prepare_event

    def serialize(event: Any, *args: Any, **kwargs: Any) -> Any:
        result = original_serialize(event, *args, **kwargs)
        try:
            if _active() and isinstance(result, dict):
                exc = _preparing.get()
                result = _common.mask_deep(result, _common.redactor(exc), reprs=True, keys=True)
        except Exception:
            _state.report_internal_error("masking a Sentry event")
        return result

    def _prepare_event(self: Any, event: Any, hint: Any, *args: Any, **kwargs: Any) -> Any:
        token = _preparing.set(_exception(hint))
        try:
            return original_prepare(self, event, hint, *args, **kwargs)
        finally:
            _preparing.reset(token)

    serialize.__wrapped__ = original_serialize  # type: ignore[attr-defined]
    _prepare_event.__wrapped__ = original_prepare  # type: ignore[attr-defined]
    client_module.serialize = serialize
    client_module._Client._prepare_event = _prepare_event


def _wrap_apply_to_event() -> None:
    from sentry_sdk.scope import Scope

    original: Any = Scope.apply_to_event

    def apply_to_event(self: Any, event: Any, hint: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, event, hint, *args, **kwargs)
        if isinstance(result, dict):
            try:
                if _active():
                    result = _mask(result, _exception(hint))
            except Exception:
                _state.report_internal_error("masking a Sentry event")
        return result

    apply_to_event.__wrapped__ = original  # type: ignore[attr-defined]
    apply_to_event.__doc__ = original.__doc__
    Scope.apply_to_event = apply_to_event  # type: ignore[method-assign]
    _state.integrations["sentry_scope_wrapped"] = True


def _activate(module: Any) -> None:
    """Automatic activation (``replicate_explain.integrations.activate``)."""
    _register()


# ---------------------------------------------------------------------------------------------
# Sentry Logs, streamed spans, envelope headers: what does not go through event processors


def _mask_payload(payload: Any) -> Any:
    """``payload`` with every string masked, keys too (a copy when anything changed); the
    full-strength redactor, as for an event without an exception."""
    return _common.mask_deep(payload, _common.redactor(None), keys=True)


def _wrap_apply_to_telemetry() -> None:
    """Mask a Sentry Log (or metric) once the scope added its attributes, before
    ``before_send_log`` sees it and the batcher ships it.

    ``Scope.apply_to_telemetry`` is the one step every log takes (``sentry_sdk.logger.*``, the
    logging and loguru integrations' logs) between its creation and ``before_send_log``, in
    sentry-sdk 2.x and 3.x. The log is a dict the SDK made for this log (its attribute values
    already copied by ``format_attribute``), so its values are replaced by masked copies in
    place. Streamed spans are masked as they are serialized (:func:`_wrap_span_json`).
    """
    from sentry_sdk.scope import Scope

    original: Any = Scope.apply_to_telemetry

    def apply_to_telemetry(self: Any, telemetry: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, telemetry, *args, **kwargs)
        try:
            if isinstance(telemetry, dict) and _active():
                for key, value in list(telemetry.items()):
                    masked = _mask_payload(value)
                    if masked is not value:
                        telemetry[key] = masked
        except Exception:
            _state.report_internal_error("masking a Sentry log")
        return result

    apply_to_telemetry.__wrapped__ = original  # type: ignore[attr-defined]
    apply_to_telemetry.__doc__ = original.__doc__
    Scope.apply_to_telemetry = apply_to_telemetry  # type: ignore[method-assign]


def _wrap_span_json() -> None:
    """Mask a streamed span's JSON (name, attributes, links, every string, keys too).

    A streamed span (sentry-sdk 3.x ``sentry_sdk.traces.Span``; 2.x ``StreamedSpan`` with
    ``trace_lifecycle="stream"``) is turned into JSON by its ``_to_json`` both for
    ``before_send_span`` and for the batcher that sends it; the span object itself is left as
    the program set it.
    """
    import sentry_sdk.traces

    wrapped = 0
    for name in ("Span", "StreamedSpan"):
        cls: Any = getattr(sentry_sdk.traces, name, None)
        original: Any = getattr(cls, "_to_json", None) if isinstance(cls, type) else None
        if original is None or getattr(original, "__wrapped__", None) is not None:
            continue
        cls._to_json = _masking_to_json(original)
        wrapped += 1
    if not wrapped:
        raise AttributeError("sentry_sdk.traces has no span class with _to_json")


def _masking_to_json(original: Any) -> Any:
    def _to_json(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        try:
            if _active():
                return _mask_payload(result)
        except Exception:
            _state.report_internal_error("masking a Sentry span")
        return result

    _to_json.__wrapped__ = original  # type: ignore[attr-defined]
    return _to_json


def _wrap_envelope_headers() -> None:
    """Mask an envelope's headers: the trace header names the segment span or transaction
    (``trace.transaction``), whatever the item."""
    from sentry_sdk.envelope import Envelope

    original: Any = Envelope.__init__

    def __init__(self: Any, headers: Any = None, *args: Any, **kwargs: Any) -> None:
        try:
            if isinstance(headers, dict) and _active():
                headers = _mask_payload(headers)
        except Exception:
            _state.report_internal_error("masking a Sentry envelope")
        original(self, headers, *args, **kwargs)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    Envelope.__init__ = __init__  # type: ignore[method-assign]


#: What is wrapped beside events, each on its own: a release without one of these keeps the rest.
_TELEMETRY_WRAPS = (
    (_wrap_apply_to_telemetry, "wrapping Scope.apply_to_telemetry (Sentry Logs)"),
    (_wrap_span_json, "wrapping the streamed span's _to_json"),
    (_wrap_envelope_headers, "wrapping Envelope.__init__"),
)
