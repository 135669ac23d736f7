"""Mask tokens at the source: in the exception objects themselves, before anyone formats them.

httpx puts the token into ``Illegal header value b'Bearer r8_...'``. Masking the text a hook
prints is not enough: a previous hook that wraps lines (rich), a logging formatter of its own
(python-json-logger, ``RichHandler``), ipykernel's ``execute_reply``, nbclient's
``CellExecutionError``, Sentry: each formats ``str(exc)`` itself. So every adapter calls
:func:`scrub_exception` first, and then all of them see masked text.

What is changed, in place, through the whole chain (``__cause__``, ``__context__``, the members
of an exception group): ``args`` (strings, bytes, and tuples, lists and dicts of them),
``__notes__``, and the string attributes of the exception (``OSError.strerror``/``filename``,
replicate's ``detail``/``title``/``message``...). Only the masked substrings change: types,
lengths of tuples and everything else stay, so ``except`` clauses and ``e.args[0]`` checks
keep working.

Not changed: an httpx ``Request``'s ``Authorization`` header. httpx already masks it in
``repr(headers)``, and the request object may be sent again by the program (a retry), which a
masked header would break. Nor a frame's local variables, which cannot be written back on
Python < 3.13: a printer that shows locals is masked where it writes (``Redactor.wrapped``).
Standard library only.
"""

from __future__ import annotations

from typing import Any, Callable

#: How many exceptions of one chain are scrubbed at most (a pathological chain stays cheap).
MAX_EXCEPTIONS = 200
#: How deep nested containers in ``args`` are followed.
MAX_DEPTH = 4

_SKIPPED_ATTRIBUTES = frozenset({"__traceback__", "__cause__", "__context__", "__notes__", "__suppress_context__"})


def scrub_value(value: Any, redactor: Callable[[str], str], depth: int = 0) -> Any:
    """``value`` with secrets masked, of the same type: strings, bytes, and tuples, lists and dicts
    of them (new containers only when something changed). Anything else is returned as it is."""
    if isinstance(value, str):
        masked = redactor(value)
        if masked == value:
            return value
        return masked if type(value) is str else _same_type(value, masked)
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("latin-1")
        masked = redactor(text)
        if masked == text:
            return value
        return type(value)(masked.encode("latin-1", "replace")) if type(value) in (bytes, bytearray) else value
    if depth >= MAX_DEPTH:
        return value
    if type(value) in (tuple, list):
        items = [scrub_value(item, redactor, depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        return type(value)(items)
    if type(value) is dict:
        changed = {key: scrub_value(item, redactor, depth + 1) for key, item in value.items()}
        if all(changed[key] is item for key, item in value.items()):
            return value
        return changed
    return value


def _same_type(value: str, masked: str) -> Any:
    try:
        return type(value)(masked)
    except Exception:
        return masked


def _scrub_one(exc: BaseException, redactor: Callable[[str], str]) -> None:
    try:
        args = exc.args
        masked = scrub_value(args, redactor)
        if masked is not args:
            exc.args = masked
    except Exception:
        pass
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        for number, note in enumerate(notes):
            if isinstance(note, str):
                masked_note = redactor(note)
                if masked_note != note:
                    notes[number] = masked_note
    attributes = getattr(exc, "__dict__", None)
    names = [
        name
        for name in (attributes if isinstance(attributes, dict) else ())
        if name not in _SKIPPED_ATTRIBUTES and not name.startswith("__replicate_explain")
    ]
    if isinstance(exc, OSError):  # strerror and filename live in slots, not in __dict__
        names += ["strerror", "filename", "filename2"]
    for name in names:
        try:
            value = getattr(exc, name, None)
            new = scrub_value(value, redactor)
            if new is not value:
                setattr(exc, name, new)
        except Exception:
            pass


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception reachable from it (causes, contexts, group members), once each."""
    seen: dict[int, BaseException] = {}
    pending = [exc]
    while pending and len(seen) < MAX_EXCEPTIONS:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen[id(current)] = current
        for linked in (current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)
        members = getattr(current, "exceptions", None)
        if isinstance(members, tuple):
            pending.extend(m for m in members if isinstance(m, BaseException))
    return list(seen.values())


def scrub_exception(exc: BaseException | None, redactor: Callable[[str], str] | None = None) -> None:
    """Mask secrets in ``exc`` and its whole chain, in place. Never raises.

    ``redactor`` defaults to the one the hooks use for ``exc`` (every credential-looking word
    when the failure touches replicate; only the environment's secrets and ``r8_`` tokens
    otherwise, so that unrelated errors print as plain Python prints them).
    """
    if not isinstance(exc, BaseException):
        return
    try:
        if redactor is None:
            redactor = redactor_for(exc)
        _remember_credential(exc)
        for member in chain(exc):
            _scrub_one(member, redactor)
    except Exception:
        from . import _state

        _state.report_internal_error("masking an exception")


def _remember_credential(exc: BaseException) -> None:
    """For a failure that touches replicate: keep the facts about the credential it sent
    (``_credential.remember``) before its messages are masked and lose the credential's shape."""
    import os

    from ._credential import remember
    from ._snapshot import is_relevant, iter_chain

    if is_relevant(exc):
        remember(list(iter_chain(exc)), os.environ)


def redactor_for(exc: BaseException | None) -> Callable[[str], str]:
    """The redactor for ``exc``: heuristics on when it touches replicate (see ``_report``)."""
    import os

    from ._redact import Redactor
    from ._snapshot import is_relevant

    relevant = exc is None or is_relevant(exc)
    return Redactor.from_environ(os.environ, heuristics=relevant)
