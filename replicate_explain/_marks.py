"""What in a failure shows Replicate: the client's frames and classes, its API, a token, a wrapper.

A failure is explained only when it shows Replicate (the gate is ``_matcher.shows_replicate``):
an empty ``Bearer `` header, a non-ASCII header value or a ``TypeError`` about an ``api_key``
keyword is what any program using the HTTP stack gets, and on its own says nothing about
Replicate. The marks, each a short phrase for the person reading:

* the client: a frame in the ``replicate`` package, a ``replicate.*`` exception class, its names
  printed (``replicate.exceptions``, ``ReplicateError``, ``import replicate``);
* its API: the ``api.replicate.com`` URL, the answers only Replicate gives ("You did not pass an
  authentication token", the ``ReplicateError Details:`` block, 2.x's ``bearer_token client
  option``), ``REPLICATE_API_TOKEN``;
* a credential of Replicate's shape (``r8_...``);
* a wrapper of the client (:data:`REPLICATE_WRAPPERS`): a frame or class of its Replicate code,
  or text it prints only for Replicate failures.

Functions take plain values (dotted names, messages, module names), so the live path
(``_snapshot``) and the pasted path (``_textfacts``) read the same marks. Standard library only
(and ``_wrappers``, the data of the wrappers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import _wrappers
from ._frozen import frozen


@frozen
class Wrapper:
    """A library that calls Replicate for its users, and what shows one of its failures is Replicate's."""

    name: str
    """How the evidence names it (``LiteLLM``)."""
    modules: tuple[str, ...]
    """Module prefixes of its Replicate code: a frame or exception class under one is a mark (in
    pasted text, the same path in a frame: ``litellm/llms/replicate``)."""
    text: tuple[str, ...] = ()
    """Literal text it prints only for Replicate failures (LiteLLM's ``ReplicateException``)."""


#: Older module paths of a wrapper's Replicate code, still seen in posted tracebacks.
_OLD_MODULES = {"langchain": ("langchain.llms.replicate",)}

#: The wrappers of the replicate client whose failures are Replicate's, derived from the one table
#: of wrapper knowledge (``_wrappers.WRAPPERS``). Only their Replicate code counts: ``litellm``
#: alone is every provider (an OpenAI key's failure is not ours). The live path, the pasted path
#: and the matcher's gate all read this; extend ``_wrappers.WRAPPERS``, not this.
REPLICATE_WRAPPERS: tuple[Wrapper, ...] = tuple(
    Wrapper(
        wrapper.title,
        tuple(
            dict.fromkeys(module.rstrip(".") for module in wrapper.frame_modules + _OLD_MODULES.get(wrapper.name, ()))
        ),
        wrapper.markers,
    )
    for wrapper in _wrappers.WRAPPERS
)

CLIENT = "the replicate client (its frames or exception classes)"
CLIENT_TEXT = "the replicate client's names or messages"
API = "Replicate's API (its URL or its answers)"
CREDENTIAL = "a credential of Replicate's shape (r8_...)"

_CLIENT_TEXT = re.compile(
    r"(?<![\\/]llms)[\\/]replicate[\\/]|(?<![\w.])replicate\.(?:exceptions|client|run|Client|Replicate|[A-Z]\w*(?:Error|Exception))\b"
    r"|(?<![\w.])ReplicateError\b|\bimport replicate\b|\bfrom replicate import\b|REPLICATE_API_TOKEN"
)
_API_TEXT = re.compile(
    r"api\.replicate\.com|ReplicateError Details:|You did not pass (?:a valid|an) authentication token"
    r"|bearer_token client option must be set|No API token provided"
)
_CREDENTIAL_TEXT = re.compile(r"(?<![\w])r8_[A-Za-z0-9]")


def wrapper_mark(wrapper: Wrapper) -> str:
    """The phrase for a wrapper's mark."""
    return f"{wrapper.name}'s Replicate code"


def _module_path(module: str) -> str:
    return r"[\\/]" + r"[\\/]".join(map(re.escape, module.split("."))) + r"(?:[\\/]|\.py\b)"


_WRAPPER_TEXT = tuple(
    (
        wrapper,
        re.compile("|".join([_module_path(m) for m in wrapper.modules] + [re.escape(t) for t in wrapper.text])),
    )
    for wrapper in REPLICATE_WRAPPERS
)


def _under(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def module_marks(modules: Iterable[str]) -> list[str]:
    """Marks of dotted module or class names (a frame's ``__name__``, an exception's MRO)."""
    marks: list[str] = []
    for name in modules:
        if name.split(".", 1)[0] == "replicate":
            marks.append(CLIENT)
        for wrapper in REPLICATE_WRAPPERS:
            if _under(name, wrapper.modules):
                marks.append(wrapper_mark(wrapper))
    return marks


def text_marks(text: str) -> list[str]:
    """Marks of a text: a message, or a whole pasted text (its frame paths count)."""
    marks = [
        mark
        for pattern, mark in ((_CLIENT_TEXT, CLIENT_TEXT), (_API_TEXT, API), (_CREDENTIAL_TEXT, CREDENTIAL))
        if pattern.search(text)
    ]
    marks += [wrapper_mark(wrapper) for wrapper, pattern in _WRAPPER_TEXT if pattern.search(text)]
    return marks


def exception_marks(types: Iterable[str], message: str, in_replicate: bool) -> list[str]:
    """Marks of one exception: its classes, its message, a traceback through the client."""
    return ([CLIENT] if in_replicate else []) + module_marks(types) + text_marks(message)


def unique(marks: Iterable[str]) -> tuple[str, ...]:
    """``marks`` once each, in order."""
    return tuple(dict.fromkeys(marks))
