"""Masking of API tokens in any text we print, log or return.

A :class:`Redactor` knows the secret values of this process (the token variables of the
environment, in every spelling a user may have mangled them into) and also recognises
token-shaped text it was never told about: ``r8_`` tokens and the credential that follows
``Bearer``/``Token`` in an HTTP header value. Standard library only: this runs inside hooks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"

#: Environment variables whose values are secrets: the real one and the look-alikes users set.
SECRET_VARIABLES = (
    "REPLICATE_API_TOKEN",
    "REPLICATE_API_KEY",
    "REPLICATE_TOKEN",
    "REPLICATE_KEY",
    "REPLICATE_APIKEY",
    "REPLICATE_API_TOKENS",
    "REPLICATE_TOKEN_API",
    "REPLICATE_AUTH_TOKEN",
    "REPLICATE_ACCESS_TOKEN",
    "REPLICATE_SECRET",
)

#: Secret values shorter than this are masked only through the patterns below: masking every
#: occurrence of a 3-letter value would garble unrelated text without protecting anything.
MIN_SECRET_LEN = 6

_PATTERNS = (
    # Current tokens: r8_ followed by letters and digits (any length, to catch truncations),
    # two tokens back to back: two matches; not a lower-case name after the dot of a dotted name
    # (the fact name token.r8_prefix).
    re.compile(r"r8_(?!(?<=\w\.r8_)[a-z]*(?![A-Za-z0-9]))(?:(?!r8_)[A-Za-z0-9]){4,}"),
    # The credential after an auth scheme, as in b'Bearer abc\n' or 'Token abc'.
    # `None` is kept: 0.14.0-0.15.2 send "Token None", which is evidence, not a secret.
    re.compile(
        r"(?i)(?<![A-Za-z])(?P<scheme>bearer|token)(?P<sep>\s+|%20)"
        r"(?!None\b|\[REDACTED\])(?=[^\s'\"\\]*\d)(?P<secret>[^\s'\"\\,;)\[\]{}]{8,})"
    ),
    # Authorization header values printed as mappings: 'authorization': 'xyz'.
    re.compile(
        r"(?i)(?P<key>['\"]?authorization['\"]?\s*[:=]\s*['\"]?)(?!\[REDACTED\])"
        r"(?P<secret>(?:bearer |token )?(?=[^'\"\s\\,}]*\d)[^'\"\s\\,}]{8,})"
    ),
)


def _variants(value: str) -> list[str]:
    """The forms a secret value can take in printed text: its core and the core's escapes.

    The core (the value without surrounding whitespace, quotes or an auth scheme) is always a
    substring of the raw value, so masking it masks the raw value too while leaving visible
    the stray ``\\n`` or quote that is the user's actual problem.
    """
    from ._common import credential_core

    forms = {credential_core(value)}
    # repr()/bytes-repr escapes, as in httpx's  Illegal header value b'Bearer r8_...\n'
    for form in list(forms):
        forms.add(repr(form)[1:-1])
        forms.add(form.encode("unicode_escape", "backslashreplace").decode("ascii", "replace"))
    return sorted((f for f in forms if len(f.strip()) >= MIN_SECRET_LEN), key=len, reverse=True)


class Redactor:
    """Masks known secret values and token-shaped text in strings."""

    def __init__(self, secrets: Iterable[str] = (), *, heuristics: bool = True) -> None:
        self._heuristics = heuristics
        values: set[str] = set()
        for secret in secrets:
            if secret:
                values.update(_variants(secret))
        self._values = sorted(values, key=len, reverse=True)

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], extra: Iterable[str] = (), *, heuristics: bool = True
    ) -> Redactor:
        """A redactor for the secret variables of ``environ`` plus ``extra`` values.

        ``heuristics=False`` masks only those values and ``r8_`` tokens, not every credential-
        looking word after ``Bearer``/``Token``/``Authorization``: for text about errors that
        have nothing to do with Replicate, which must print as plain Python prints them.
        """
        found = [environ.get(name, "") for name in SECRET_VARIABLES]
        for name, value in environ.items():
            upper = name.upper()
            if "REPLICATE" in upper and ("TOKEN" in upper or "KEY" in upper or "SECRET" in upper):
                found.append(value)
        return cls([*found, *extra], heuristics=heuristics)

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret masked.

        Each pattern runs only after a substring test finds its anchor, so the common case (a
        log message with nothing secret in it) costs a few substring searches.
        """
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        if "r8_" in text:
            text = _PATTERNS[0].sub(MASK, text)
        if not self._heuristics:
            return text
        lowered = text.lower()
        if "bearer" in lowered or "token" in lowered:
            text = _PATTERNS[1].sub(lambda m: f"{m['scheme']}{m['sep']}{MASK}", text)
        if "authorization" in lowered:
            text = _PATTERNS[2].sub(lambda m: f"{m['key']}{MASK}", text)
        return text


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Mask tokens in ``text`` using the secrets of ``environ`` (default: ``os.environ``)."""
    if environ is None:
        import os

        environ = os.environ
    return Redactor.from_environ(environ)(text)
