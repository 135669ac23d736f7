"""What every integration does with one exception: explain it once, and mask tokens in text."""

from __future__ import annotations

import os
from typing import Any, Callable

from .. import _state

#: The name of the explanation dictionary everywhere (log records, event dicts, Sentry contexts).
KEY = "replicate_explain"

Redact = Callable[[str], str]


def exception_of(value: object) -> BaseException | None:
    """The exception in ``value``: an exception, an ``exc_info`` tuple, or ``True`` (the one
    being handled, as logging and structlog read ``exc_info=True``)."""
    if isinstance(value, BaseException):
        return value
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value[1]
    if value is True:
        import sys

        current = sys.exc_info()[1]
        return current
    return None


def relevant(exc: BaseException | None) -> bool:
    """Whether ``exc`` touches replicate (the matcher's cheap pre-filter); never raises."""
    if exc is None:
        return False
    try:
        from .._snapshot import is_relevant

        return is_relevant(exc)
    except Exception:
        _state.report_internal_error("checking an exception")
        return False


def redactor(exc: BaseException | None) -> Redact:
    """The redactor for text about ``exc``: every token-shaped credential is masked when it
    touches replicate; otherwise only this environment's secrets and ``r8_`` tokens, so an
    unrelated error reads as it would without us (the excepthook's rule, ``_report.redactor_for``).

    Building one reads every variable (a hundred microseconds on a busy machine), too slow for
    every log event: it is rebuilt only when the environment visibly changed (the logging
    integration's key: the number of variables and the token).
    """
    return redactor_with(heuristics=exc is None or relevant(exc))


def redactor_with(*, heuristics: bool) -> Redact:
    """The cached redactor, with or without the credential heuristics (see :func:`redactor`):
    the one birth masking uses (``_birth.cached_redactor``), so one cache serves every surface."""
    from .._birth import cached_redactor

    return cached_redactor(heuristics)


def explain(exc: BaseException | None) -> Any:
    """The :class:`~replicate_explain.Explanation` of ``exc``, or ``None``: not a Replicate
    authentication failure, or the explainer failed (reported with ``REPLICATE_EXPLAIN_DEBUG=1``).

    The adapters' one entry point (``_report.explain_once``), unmarked: an integration marks the
    exception only when a reader sees the explanation (:func:`mark_explained`).
    """
    if exc is None or not relevant(exc):
        return None
    from .._report import explain_once, warn_rule_errors

    explanation = explain_once(exc, mark=False)
    if explanation is not None:
        warn_rule_errors()
    return explanation


def text_under_traceback(explanation: Any) -> str:
    """The explanation as it goes under a traceback in a log: plain text, or one JSON line with
    ``REPLICATE_EXPLAIN_FORMAT=json`` (what the logging integration appends); no final newline."""
    from .._render import FORMAT_ENV, render_json, render_plain

    if os.environ.get(FORMAT_ENV, "").strip().lower() == "json":
        return render_json(explanation).rstrip("\n")
    return render_plain(explanation).rstrip("\n")


def mark_explained(exc: BaseException) -> bool:
    """Count ``exc`` as explained to a reader (so the excepthook does not repeat it); ``False``
    if it already was."""
    return _state.mark_explained(exc)


_PLAIN = (int, float, bool, type(None), bytes)


def mask_deep(value: Any, redact: Redact, *, reprs: bool = False, keys: bool = False, depth: int = 0) -> Any:
    """``value`` with tokens masked in every string of nested dicts, lists and tuples.

    Returns the same object when nothing changed (so callers can tell), a new container
    otherwise. With ``reprs``, any other object whose ``repr`` shows a token is replaced by its
    masked ``repr`` (for libraries that ``repr`` what they ship); otherwise it is left as it is.
    With ``keys``, string keys of dicts are masked too (a payload about to be sent).
    """
    if isinstance(value, str):
        return redact(value)
    if depth > 20:
        return value
    if isinstance(value, dict):
        changed = False
        out = {}
        for key, item in value.items():
            new = mask_deep(item, redact, reprs=reprs, keys=keys, depth=depth + 1)
            new_key = redact(key) if keys and isinstance(key, str) else key
            changed = changed or new is not item or new_key is not key
            out[new_key] = new
        return out if changed else value
    if isinstance(value, (list, tuple)):
        items = [mask_deep(item, redact, reprs=reprs, keys=keys, depth=depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        return items if isinstance(value, list) else tuple(items)
    if reprs and not isinstance(value, _PLAIN):
        try:
            text = repr(value)
        except Exception:
            return value
        masked = redact(text)
        return value if masked == text else masked
    return value
