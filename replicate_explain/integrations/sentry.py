"""Sentry (sentry-sdk 2.x): explain Replicate failures in events and mask tokens in every event.

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

What every event gets: tokens masked in every string it carries (exception values, messages,
breadcrumbs, request headers and data, contexts, extra, tags, and the local variables of the
frames, which the SDK has already turned into text when event processors run). The token
itself is never sent. For an event whose exception has nothing to do with Replicate only this
environment's secrets and ``r8_`` tokens are masked, so its text is otherwise unchanged.

Global event processors run before the processors of scopes, which is where web framework
integrations add the request. So the masking itself runs once the scope has applied every
processor: ``Scope.apply_to_event`` (the method the client calls right before it serialises the
event, scrubs it and calls ``before_send``) is wrapped when the processor is registered. Should
that method be missing in some SDK release, the event processor masks what it sees instead.
"""

from __future__ import annotations

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


#: The exception of the event the client is preparing (its hint's), read by the serializer wrap.
_preparing: list[BaseException | None] = []


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
                exc = _preparing[-1] if _preparing else None
                result = _common.mask_deep(result, _common.redactor(exc), reprs=True, keys=True)
        except Exception:
            _state.report_internal_error("masking a Sentry event")
        return result

    def _prepare_event(self: Any, event: Any, hint: Any, *args: Any, **kwargs: Any) -> Any:
        _preparing.append(_exception(hint))
        try:
            return original_prepare(self, event, hint, *args, **kwargs)
        finally:
            _preparing.pop()

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
