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

#: Secret values longer than this are not looked for across wrapped lines: a token is 40
#: characters, and the pattern for a value grows with it (a megabyte-long variable would
#: compile a regular expression of a hundred megabytes).
MAX_WRAPPED_SECRET_LEN = 256

#: A token: ``r8_`` not preceded by a letter, digit or underscore (``user8_email`` and
#: ``arr8_items`` are words, not tokens), then letters and digits up to the next ``r8_`` (two
#: tokens back to back are two matches). The whole 37 always; a shorter run (a message that cut
#: the token: ``r8_Ab3dEf9h...``) from 8 characters when it holds a digit or a capital letter,
#: so a lower-case identifier such as ``r8_database`` or ``r8_data`` is left alone.
_TOKEN = r"r8_(?:(?!r8_)[A-Za-z0-9]){8,}"
#: The left boundary: no letter, digit or underscore before ``r8_``, except the end of an escape
#: sequence (``'\\nr8_...'`` in a repr is a token after an escaped line break, not a word).
_TOKEN_BOUNDARY = (
    r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrtvfab0])|(?<=\\x[0-9A-Fa-f]{2})|(?<=\\u[0-9A-Fa-f]{4})|(?<=\\U[0-9A-Fa-f]{8}))"
)
#: Between two characters of a token that a printer wrapped over lines (rich at a narrow width):
#: colour codes, and at most one line break with the spaces and the box border around it.
_COLOUR = r"\x1b\[[0-9;]*m"
_ANSI = rf"(?:{_COLOUR})*"
_BORDERS = "│┃║|╎┆"
_EDGE = rf"[ \t]*(?:[{_BORDERS}][ \t]*)?"  # the spaces and the box border beside a line break
_WRAP = rf"{_ANSI}(?:{_EDGE}{_ANSI}\r?\n{_ANSI}{_EDGE}{_ANSI})?"

#: What ``_may_hold_wrapped`` takes out of a text, the pieces of ``_WRAP``: colour codes; a line
#: break with its edges (compiled on first use); and the characters of those pieces.
_GAPS: tuple[re.Pattern[str], re.Pattern[str]] | None = None
_GAP_CHARS = frozenset(" \t\r\x1b" + _BORDERS)

_PATTERNS = (
    # A token after a boundary (possibly several back to back); or, glued to any text around
    # it (``...000r8_...`` or ``xr8_...``), a run at least as long as a whole token (r8_ + 37):
    # the boundary keeps words such as ``user8_email`` intact, never a complete token.
    re.compile(rf"{_TOKEN_BOUNDARY}(?:{_TOKEN}(?=r8_))*{_TOKEN}|r8_(?:(?!r8_)[A-Za-z0-9]){{37,}}"),
    # The credential after an auth scheme, as in b'Bearer abc\n' or 'Token abc'.
    # `None` is kept: 0.14.0-0.15.2 send "Token None", which is evidence, not a secret.
    # Only a secret holding a digit is masked (``Bearer authentication`` is prose): that test is
    # made on the match (``_mask_secret``), never by a look-ahead scanning the rest of the text,
    # which made the pattern quadratic (a look-ahead per ``Bearer``, each to the end of a run).
    re.compile(
        r"(?i)(?<![A-Za-z])(?P<key>(?:bearer|token)(?:\s+|%20))"
        r"(?!None\b|\[REDACTED\])(?P<secret>[^\s'\"\\,;)\[\]{}]{8,})"
    ),
    # Authorization header values printed as mappings: 'authorization': 'xyz'.
    re.compile(
        r"(?i)(?P<key>['\"]?authorization['\"]?\s*[:=]\s*['\"]?)(?!\[REDACTED\])"
        r"(?P<scheme>(?:bearer |token )?)(?P<secret>[^'\"\s\\,}]{8,})"
    ),
)


def _mask_secret(match: re.Match[str]) -> str:
    """The key (``Bearer ``, ``'authorization': ``) and ``[REDACTED]`` for a secret that holds a
    digit; the text unchanged otherwise (consumed, so the scan goes on after it: linear)."""
    secret = match["secret"]
    if any(character.isdigit() for character in secret):
        return match["key"] + MASK
    return match.group()


#: A token a printer cut short with an ellipsis (rich shows ``'r8_Ab3d…`` for a long value in
#: a narrow terminal): ``r8_``, word-bounded, then letters and digits up to the ellipsis
#: (``r8_...`` alone is a placeholder in documentation, left as it is).
_CUT_TOKEN = re.compile(_TOKEN_BOUNDARY + r"r8_[A-Za-z0-9]+(?=…|\.\.\.)")


def _is_token(text: str) -> bool:
    body = text[3:]
    return len(body) >= 37 or any(c.isdigit() or c.isupper() for c in body)


def _mask_tokens(match: re.Match[str]) -> str:
    found = match.group()
    parts = found.split("r8_")[1:]
    if all(_is_token("r8_" + part) for part in parts):
        return MASK * len(parts)
    return "".join(MASK if _is_token("r8_" + part) else "r8_" + part for part in parts)


def is_secret_variable(name: str) -> bool:
    """Whether the environment variable ``name`` holds a credential whose value is masked.

    The variables of :data:`SECRET_VARIABLES` and any name (in any letter case) that contains
    REPLICATE and ends in TOKEN, TOKENS, KEY, KEYS or SECRET (``MY_REPLICATE_API_TOKEN``,
    ``REPLICATE_ORG_KEY``); not a name that merely mentions them (``REPLICATE_KEY_NAME``,
    ``REPLICATE_TOKEN_FILE``: a name and a path, not secrets).
    """
    upper = name.upper()
    if upper in SECRET_VARIABLES:
        return True
    return "REPLICATE" in upper and upper.endswith(("TOKEN", "TOKENS", "KEY", "KEYS", "SECRET"))


def _variants(value: str) -> list[str]:
    """The forms a secret value can take in printed text: its core and the core's escapes.

    The core (the value without surrounding whitespace, quotes or an auth scheme) is always a
    substring of the raw value, so masking it masks the raw value too while leaving visible
    the stray ``\\n`` or quote that is the user's actual problem.
    """
    from .._common import credential_core

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
        found += [value for name, value in environ.items() if is_secret_variable(name)]
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
            text = _PATTERNS[0].sub(_mask_tokens, text)
            if "…" in text or "..." in text:  # a printer cut the token short: r8_CANARY…
                text = _CUT_TOKEN.sub(MASK, text)
        if not self._heuristics:
            return text
        lowered = text.lower()
        if "bearer" in lowered or "token" in lowered:
            text = _PATTERNS[1].sub(_mask_secret, text)
        if "authorization" in lowered:
            text = _PATTERNS[2].sub(_mask_secret, text)
        return text

    def with_heuristics(self, heuristics: bool) -> Redactor:
        """The same secrets, with the ``Bearer``/``Token``/``Authorization`` heuristics on or off."""
        if heuristics == self._heuristics:
            return self
        other: Redactor | None = getattr(self, "_other", None)
        if other is None:
            other = Redactor(heuristics=heuristics)
            other._values = self._values
            self._other = other
        return other

    def wrapped(self, text: str) -> str:
        """Like calling the redactor, and also masks a secret that a printer wrapped over two or
        more lines (a token in a local variable shown by ``rich.traceback`` in a narrow terminal):
        the characters of the secret, each separated by at most one line break with the border
        and indentation around it. The line breaks stay where they were; the secret's characters
        become one ``[REDACTED]``."""
        if "\n" in text and self._may_hold_wrapped(text):
            for pattern in self._wrapped_patterns():
                text = pattern.sub(_keep_breaks, text)
        return self(text)

    def _may_hold_wrapped(self, text: str) -> bool:
        """Whether a wrapped secret may be in ``text``: with the colour codes and the line breaks
        (with their borders) taken out, ``r8_`` or a secret value appears in it. The patterns of
        :meth:`_wrapped_patterns` take milliseconds to compile: a traceback without a secret
        (the usual one) never pays for them. A value the taking out could cut is always looked
        for with its pattern: one holding a character of a line break's surroundings (a space,
        a border), or one that could end a colour code (``m0abc`` after a stray ``\x1b[``)."""
        global _GAPS
        if _GAPS is None:
            _GAPS = (re.compile(_COLOUR), re.compile(rf"{_EDGE}\r?\n{_EDGE}"))
        joined = _GAPS[1].sub("", _GAPS[0].sub("", text))
        if "r8_" in joined:
            return True
        for value in self._values:
            if _wrappable(value) and (value in joined or not _GAP_CHARS.isdisjoint(value) or _escape_tail(value)):
                return True
        return False

    def _wrapped_patterns(self) -> list[re.Pattern[str]]:
        cached: list[re.Pattern[str]] | None = getattr(self, "_wrapped_cache", None)
        if cached is None:
            # At most the 37 characters of a token, and never into the next one's "r8_" (each
            # line of a list of tokens is its own token, not the tail of the one above).
            nxt = "r" + _WRAP + "8" + _WRAP + "_"
            # The boundary, or the end of a colour code right before the token (``\x1b[1mr8_``).
            start = rf"(?:{_TOKEN_BOUNDARY}|(?<=\x1b\[m)|(?<=[0-9;]m))"
            cached = [re.compile(start + nxt + f"(?:(?!{_WRAP}{nxt}){_WRAP}[A-Za-z0-9]){{8,37}}")]
            for value in self._values:
                if _wrappable(value):
                    cached.append(re.compile(_WRAP.join(re.escape(c) for c in value)))
            self._wrapped_cache = cached
        return cached


def _wrappable(value: str) -> bool:
    """Whether a secret value is looked for across wrapped lines (one line, not too long)."""
    return "\n" not in value and MIN_SECRET_LEN <= len(value) <= MAX_WRAPPED_SECRET_LEN


def _escape_tail(value: str) -> bool:
    """Whether ``value`` starts as the rest of a colour code does (``[0;1m``, ``1m``, ``m``)."""
    return value.lstrip("[").lstrip("0123456789;").startswith("m")


def _keep_breaks(match: re.Match[str]) -> str:
    """The masked form of a wrapped secret: ``[REDACTED]`` and the line breaks (with their
    borders) that were inside it, so the printer's layout keeps its number of lines."""
    text = match.group()
    if "\n" not in text:
        return text  # on one line: the plain pass masks it
    pieces = re.split(rf"({_COLOUR}|{_EDGE}\r?\n{_EDGE})", text)
    out = [MASK]
    for number, piece in enumerate(pieces):
        if number % 2 and piece:
            out.append(piece)
    return "".join(out)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Mask tokens in ``text`` using the secrets of ``environ`` (default: ``os.environ``)."""
    if environ is None:
        import os

        environ = os.environ
    return Redactor.from_environ(environ)(text)
