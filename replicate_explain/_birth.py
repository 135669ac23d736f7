"""Masked at birth: an exception leaving the HTTP layer the clients use shows no credential.

``_hook.install_birth_masking()`` (run by ``install()``: the import, the start-up install, the
IPython extension; and by anything else that wants it, such as a pytest plugin) waits for the
program to import ``httpx`` or ``requests`` (never importing them itself) and then wraps their
boundary methods: ``httpx.HTTPTransport.handle_request``,
``httpx.AsyncHTTPTransport.handle_async_request`` (where httpcore and h11 raise ``Illegal header
value b'Bearer r8_...'``), ``httpx.Headers`` (a value it cannot encode raises a
``UnicodeEncodeError`` whose ``args`` hold the header), and ``requests.Session.request``/``send`` and
``requests.PreparedRequest.prepare`` (``InvalidHeader: ... in header value: 'Token r8_...'``,
``http.client``'s ``Invalid header value``). The wrapper is a ``try``/``except`` around the
call, nothing on the success path; on a failure it keeps the facts the message shows about the
credential (``_credential.note_message_credentials``: facts, never the value), masks the text of
the whole chain in place (``_mask.scrub_exception``) and re-raises the same exception with its
traceback (the wrapper's own frame taken out of it on Python 3.11+, so the traceback is plain
Python's), so every printer of the program sees masked text without knowing about us. An
exception group's message cannot be set: a masked copy is raised instead.

:func:`mask_exception` is the same masking for the adapters (the hooks, logging, IPython), on an
exception that did not come through a wrapped boundary.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from . import _state

#: Marks the functions we wrapped, so wrapping twice is a no-op.
MARK = "__replicate_explain_birth__"

#: The methods wrapped in each module: module name -> (dotted class path, method name, async).
BOUNDARIES: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "httpx": (
        ("HTTPTransport", "handle_request", False),
        ("AsyncHTTPTransport", "handle_async_request", True),
        # A header value it cannot encode: UnicodeEncodeError('ascii', 'Bearer r8_...\u200b', ...)
        ("Headers", "__init__", False),
        ("Headers", "__setitem__", False),
    ),
    "requests": (
        ("sessions.Session", "request", False),
        ("sessions.Session", "send", False),
        ("models.PreparedRequest", "prepare", False),
    ),
}


def patch(module: Any) -> None:
    """Post-import callback for ``httpx`` or ``requests``: wrap its boundary methods (idempotent)."""
    for path, method, is_async in BOUNDARIES.get(getattr(module, "__name__", ""), ()):
        owner: Any = module
        for part in path.split("."):
            owner = getattr(owner, part, None)
        original = getattr(owner, method, None) if isinstance(owner, type) else None
        if original is None or getattr(original, MARK, False):
            continue
        wrapper = _async_wrapper(original) if is_async else _wrapper(original)
        setattr(wrapper, MARK, True)
        for name in ("__name__", "__qualname__", "__doc__", "__module__"):
            try:
                setattr(wrapper, name, getattr(original, name))
            except Exception:
                pass
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(owner, method, wrapper)


def _wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    def boundary(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except Exception as exc:
            masked = at_birth(exc)
            if masked is exc:
                _drop_own_frame(exc)
                raise
            error = masked
        raise error

    return boundary


def _async_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    async def boundary(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        except Exception as exc:
            masked = at_birth(exc)
            if masked is exc:
                _drop_own_frame(exc)
                raise
            error = masked
        raise error

    return boundary


def _drop_own_frame(exc: BaseException) -> None:
    """Take the wrapper's own frame out of ``exc``'s traceback before the bare ``raise``, so the
    traceback is exactly the one plain Python prints (Python 3.11+ re-raises with
    ``exc.__traceback__``; 3.9 and 3.10 re-raise the traceback they caught: the frame stays)."""
    try:
        tb = exc.__traceback__
        if tb is not None and tb.tb_frame is sys._getframe(1):
            exc.__traceback__ = tb.tb_next
    except Exception:
        pass


def at_birth(exc: BaseException) -> BaseException:
    """Mask ``exc`` as it leaves the HTTP layer: facts first, then the text. Returns ``exc``, or
    the masked copy to raise instead (an exception group), its traceback without our frame."""
    if not _state.birth_masking:
        return exc
    try:
        from ._credential import note_message_credentials
        from ._mask import chain, scrub_exception

        environ = os.environ
        note_message_credentials(chain(exc), environ)
        masked = scrub_exception(exc, cached_redactor(True))
        if masked is None or masked is exc:
            return exc
        tb = exc.__traceback__
        return masked.with_traceback(tb.tb_next if tb is not None else None)
    except Exception:
        _state.report_internal_error("masking an HTTP error at birth")
        return exc


def cached_redactor(heuristics: bool) -> Callable[[str], str]:
    """This environment's redactor (``_mask.Redactor``), rebuilt only when the token or the number
    of variables changed; ``heuristics=False``: only its secrets and ``r8_`` tokens."""
    environ = os.environ
    key = (len(environ), environ.get("REPLICATE_API_TOKEN"))
    cached: Any = _state.birth_redactor
    if cached is None or cached[0] != key:
        from ._mask import Redactor

        cached = (key, Redactor.from_environ(environ))
        _state.birth_redactor = cached
    built: Any = cached[1]
    return built if heuristics else built.with_heuristics(False)  # type: ignore[no-any-return]


def redactor_for(exc: BaseException | None) -> Callable[[str], str]:
    """The redactor for ``exc``: heuristics on when it touches replicate (see ``_report``)."""
    from ._snapshot import is_relevant

    return cached_redactor(exc is None or is_relevant(exc))


def mask_exception(exc: BaseException | None, redactor: Callable[[str], str] | None = None) -> BaseException | None:
    """Mask the text of ``exc``'s chain in place (``_mask.scrub_exception``), after keeping the
    facts about the credential it sent (``_credential.remember``, when it touches replicate).
    Returns ``exc`` or its masked copy (an exception group). Never raises."""
    if not isinstance(exc, BaseException):
        return exc
    try:
        from ._credential import remember
        from ._mask import scrub_exception
        from ._snapshot import is_relevant, iter_chain

        relevant = is_relevant(exc)
        if relevant:
            remember(list(iter_chain(exc)), os.environ)
        if redactor is None:
            redactor = cached_redactor(relevant)
        return scrub_exception(exc, redactor)
    except Exception:
        _state.report_internal_error("masking an exception")
        return exc
