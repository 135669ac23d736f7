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

Limit: global event processors run before the processors of scopes, so data a scope
processor adds afterwards (a web framework's request) is not seen here; sentry-sdk's own
``EventScrubber`` masks its ``Authorization`` header by name.
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


def _process(event: dict[str, Any], hint: Any) -> dict[str, Any]:
    info = hint.get("exc_info") if isinstance(hint, dict) else None
    exc = _common.exception_of(info) if info is not None else None
    explanation = _common.explain(exc)
    masked: dict[str, Any] = _common.mask_deep(event, _common.redactor(exc), reprs=True)
    if explanation is not None:
        masked.setdefault("contexts", {})[_common.KEY] = explanation.to_dict()
        masked.setdefault("tags", {})[TAG] = explanation.rule_id
    return masked


def _register() -> None:
    if _state.integrations.get("sentry") is not None:
        return
    _state.integrations["sentry"] = process_event
    add_global_event_processor(process_event)


def _activate(module: Any) -> None:
    """Automatic activation (``replicate_explain.integrations.activate``)."""
    _register()
