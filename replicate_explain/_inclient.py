"""Whether a traceback passes through the replicate client (a frame in it, or its constructor).

A frame in its package, or the ``TypeError`` of building one of its client classes with a wrong
keyword (raised in the caller's frame, before any frame of the client runs).
"""

from __future__ import annotations

import re
from types import ModuleType, TracebackType

from ._common import in_replicate_package, replicate_dirs


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return ""


def in_replicate(tb: TracebackType | None, exc: BaseException) -> bool:
    dirs = replicate_dirs()
    steps = 0
    last = None
    while tb is not None and steps < 200:
        if in_replicate_package(tb.tb_frame.f_code.co_filename, dirs):
            return True
        last = tb
        tb = tb.tb_next
        steps += 1
    source = getattr(exc, "filename", None)  # SyntaxError raised while importing replicate
    if isinstance(source, str) and in_replicate_package(source, dirs):
        return True
    return last is not None and _calls_replicate_class(last, exc)


_UNEXPECTED_KEYWORD = re.compile(r"^(?:(?P<cls>\w+)\.)?__init__\(\) got an unexpected keyword argument")
_CALL = re.compile(r"(?:\b(?P<owner>[A-Za-z_]\w*)\s*\.\s*)?\b(?P<name>[A-Za-z_]\w*)\s*\(")
_CLIENT_CLASSES = ("Client", "Replicate", "AsyncReplicate", "AsyncClient")


def _from_replicate(value: object) -> bool:
    return str(getattr(value, "__module__", "")).split(".", 1)[0] == "replicate"


def _calls_replicate_class(tb: TracebackType, exc: BaseException) -> bool:
    """Whether ``exc`` is the TypeError of building a replicate client with a wrong keyword.

    That TypeError is raised in the caller's frame before the client's ``__init__`` runs, so
    no traceback frame is inside replicate. We resolve what the failing line calls in that
    frame's scope (module attributes are read from ``vars()``, never through ``__getattr__``)
    and check the class is replicate's and has the name the message gives (Python 3.9 gives
    none). Without the source line, every class of that name the frame can see must be
    replicate's, so that ``httpx.Client(bearer_token=...)`` or another SDK's ``Client`` next to
    ``import replicate`` is not mistaken for it.
    """
    if not isinstance(exc, TypeError):
        return False
    found = _UNEXPECTED_KEYWORD.match(_message(exc))
    if found is None:
        return False
    names = (found.group("cls"),) if found.group("cls") else _CLIENT_CLASSES
    frame = tb.tb_frame
    try:
        scopes = (frame.f_locals, frame.f_globals)

        def lookup(name: str) -> object:
            for scope in scopes:
                if name in scope:
                    return scope[name]
            return None

        def member(owner: object, name: str) -> object:
            return vars(owner).get(name) if isinstance(owner, ModuleType) else None

        import linecache

        line = linecache.getline(frame.f_code.co_filename, tb.tb_lineno)
        called = []
        for call in _CALL.finditer(line):
            owner = call.group("owner")
            name = call.group("name")
            target = member(lookup(owner), name) if owner else lookup(name)
            if isinstance(target, type) and target.__name__ in names:
                called.append(target)
        if called:
            return any(_from_replicate(target) for target in called)
        visible = []
        for scope in scopes:
            for value in list(scope.values())[:5000]:
                if isinstance(value, type) and value.__name__ in names:
                    visible.append(value)
                elif isinstance(value, ModuleType):
                    visible.extend(
                        item
                        for item in (member(value, n) for n in _CLIENT_CLASSES)
                        if isinstance(item, type) and item.__name__ in names
                    )
        return bool(visible) and all(_from_replicate(value) for value in visible)
    except Exception:
        return False
