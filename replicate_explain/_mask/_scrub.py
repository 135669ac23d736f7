"""Mask the text of an exception chain in place: what ``str``, ``repr`` and printers show of it.

httpx puts the token into ``Illegal header value b'Bearer r8_...'``, and every printer formats
``str(exc)`` itself (a previous hook, a logging formatter, ipykernel, nbclient, Sentry). So the
text is masked in the exception objects themselves, at birth (``_birth``) and again by every
adapter before it prints.

Text only, through the whole chain (``__cause__``, ``__context__``, exception group members):
the strings and bytes of ``args`` and of plain tuples in it (a new tuple of the same length,
each item of the same type),
``__notes__``, ``OSError``'s ``strerror``/``filename``/``filename2`` and the string attributes of
the exception (replicate's ``detail``/``title``/``message``...). Never changed: objects that
carry behaviour and that the program may read back or send again: an httpx ``Request`` and its
headers, ``e.response``, and every dict, list or other object in ``args`` or in an attribute.
An exception group keeps its message in a C field: :func:`masked_group` makes a masked copy
(same class, members, traceback, links), which the caller raises or links instead.
Standard library only; imports nothing from diagnosis.
"""

from __future__ import annotations

import builtins
from typing import Any, Callable

#: How many exceptions of one chain are scrubbed at most (a pathological chain stays cheap).
MAX_EXCEPTIONS = 200
#: How deep nested containers are followed by :func:`scrub_value` (log record arguments).
MAX_DEPTH = 4

#: ``BaseExceptionGroup`` (Python 3.11+), ``None`` before.
_GROUP: Any = getattr(builtins, "BaseExceptionGroup", None)
_SKIPPED_ATTRIBUTES = frozenset({"__traceback__", "__cause__", "__context__", "__notes__", "__suppress_context__"})


def scrub_text(value: Any, redactor: Callable[[str], str]) -> Any:
    """``value`` masked when it is text (``str``, ``bytes``, ``bytearray``, of the same type);
    anything else is returned as it is, never copied or modified."""
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
    return value


def scrub_value(value: Any, redactor: Callable[[str], str], depth: int = 0) -> Any:
    """``value`` with secrets masked, of the same type: strings, bytes, and tuples, lists and dicts
    of them (new containers only when something changed; the original is never modified).

    For what a log record renders (its arguments and ``extra`` fields, the record's own copies),
    not for an exception's attributes, which the program reads back (see :func:`scrub_exception`).
    """
    if isinstance(value, (str, bytes, bytearray)):
        return scrub_text(value, redactor)
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


def _scrub_immutable(value: Any, redactor: Callable[[str], str], depth: int) -> Any:
    """Text, and plain tuples of text (immutable values: a masked copy changes no object the
    program holds); lists, dicts and every other object are returned as they are."""
    if type(value) is tuple and depth < MAX_DEPTH:
        items = tuple(_scrub_immutable(item, redactor, depth + 1) for item in value)
        return value if all(new is old for new, old in zip(items, value)) else items
    return scrub_text(value, redactor)


def _same_type(value: str, masked: str) -> Any:
    try:
        return type(value)(masked)
    except Exception:
        return masked


def _scrub_one(exc: BaseException, redactor: Callable[[str], str]) -> None:
    try:
        args = exc.args
        if isinstance(args, tuple):
            masked = tuple(_scrub_immutable(item, redactor, 0) for item in args)
            if any(new is not old for new, old in zip(masked, args)):
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
        for name, value in (attributes.items() if isinstance(attributes, dict) else ())
        if isinstance(value, (str, bytes, bytearray))
        and name not in _SKIPPED_ATTRIBUTES
        and not name.startswith("__replicate_explain")
    ]
    if isinstance(exc, OSError):  # strerror and filename live in slots, not in __dict__
        names += ["strerror", "filename", "filename2"]
    for name in names:
        try:
            value = getattr(exc, name, None)
            new = scrub_text(value, redactor)
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


def _is_group(exc: BaseException) -> bool:
    return _GROUP is not None and isinstance(exc, _GROUP)


def masked_group(exc: BaseException, redactor: Callable[[str], str], depth: int = 0) -> BaseException:
    """``exc`` itself, or, for an exception group whose message (or a member group's) shows a
    secret, a masked copy: same class, members (member groups copied the same way), traceback,
    cause, context, notes and attributes. The message of a group is a C field that cannot be
    set; the caller raises or links the copy instead. ``exc`` is never modified here."""
    if not _is_group(exc) or depth > MAX_DEPTH:
        return exc
    group: Any = exc
    members = tuple(masked_group(member, redactor, depth + 1) for member in group.exceptions)
    message = group.message
    masked = redactor(message) if isinstance(message, str) else message
    if masked == message and all(new is old for new, old in zip(members, group.exceptions)):
        return exc
    try:
        copy: Any = type(exc).__new__(type(exc), masked, members)
        BaseException.__init__(copy, masked, members)
        if isinstance(getattr(exc, "__dict__", None), dict):
            copy.__dict__.update(exc.__dict__)
        copy.__traceback__ = exc.__traceback__
        copy.__cause__ = exc.__cause__
        copy.__context__ = exc.__context__
        copy.__suppress_context__ = exc.__suppress_context__
    except Exception:
        return exc
    return copy  # type: ignore[no-any-return]


def _relink_groups(members: list[BaseException], redactor: Callable[[str], str]) -> None:
    """Replace the exception groups of a chain that are linked as a cause or context by their
    masked copies (a group that is a member of another group is copied with that group)."""
    for member in members:
        suppressed = member.__suppress_context__
        for name in ("__cause__", "__context__"):
            linked = getattr(member, name)
            if isinstance(linked, BaseException) and _is_group(linked):
                copy = masked_group(linked, redactor)
                if copy is not linked:
                    try:
                        setattr(member, name, copy)  # setting __cause__ sets __suppress_context__
                        if name == "__cause__":
                            member.__suppress_context__ = suppressed
                    except Exception:
                        pass


def scrub_exception(exc: BaseException | None, redactor: Callable[[str], str]) -> BaseException | None:
    """Mask the text of ``exc`` and its whole chain, in place; never raises.

    Returns ``exc``, or its masked copy when ``exc`` is an exception group whose message shows
    a secret (see :func:`masked_group`): raise (or print) that one. Groups linked inside the
    chain are replaced by their masked copies.
    """
    if not isinstance(exc, BaseException):
        return exc
    try:
        members = chain(exc)
        for member in members:
            _scrub_one(member, redactor)
        _relink_groups(members, redactor)
        return masked_group(exc, redactor)
    except Exception:
        return exc
