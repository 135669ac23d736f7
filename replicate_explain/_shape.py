"""The shape of one token value as facts, never the value itself.

Length, whitespace, quotes, an auth scheme, non-ASCII characters (by class): the same vocabulary
for the variable (``token.*``) and the credential a failure sent (``sent.*``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Union

from ._common import split_credential

FactValue = Union[str, int, bool, None]

_NAMED = {
    "\u00a0": "no-break space (U+00A0)",
    "\u202f": "narrow no-break space (U+202F)",
    "\u200b": "zero-width space (U+200B)",
    "\u200c": "zero-width non-joiner (U+200C)",
    "\u200d": "zero-width joiner (U+200D)",
    "\u2060": "word joiner (U+2060)",
    "\ufeff": "byte order mark (U+FEFF)",
    "\u2028": "line separator (U+2028)",
    "\u2029": "paragraph separator (U+2029)",
    "\u0085": "next-line character (U+0085)",
    "\u00ad": "soft hyphen (U+00AD)",
    "\u2018": "curly single quote (U+2018)",
    "\u2019": "curly single quote (U+2019)",
    "\u201c": "curly double quote (U+201C)",
    "\u201d": "curly double quote (U+201D)",
    "\u2013": "en dash (U+2013)",
    "\u2014": "em dash (U+2014)",
}
_ASCII_SPACE = " \t\r\n\x0b\x0c"


def char_class(char: str) -> str:
    """A name for a non-ASCII character that does not give away a token's letters.

    Invisible and typographic characters (which are never part of a token) are named with
    their code point; letters and digits of other scripts only by class.
    """
    if char in _NAMED:
        return _NAMED[char]
    category = unicodedata.category(char)
    if category == "Zs":
        return f"Unicode space (U+{ord(char):04X})"
    if category in ("Cf", "Cc", "Zl", "Zp"):
        return f"invisible control character (U+{ord(char):04X})"
    if category.startswith("L"):
        return "non-ASCII letter"
    if category.startswith("N"):
        return "non-ASCII digit"
    return "non-ASCII character"


def find_non_ascii(raw: str) -> tuple[str | None, str | None]:
    """The class of the first non-ASCII character of ``raw`` and where it sits."""
    positions = [index for index, char in enumerate(raw) if not char.isascii()]
    if not positions:
        return None, None
    visible = [index for index, char in enumerate(raw) if char.isascii() and char not in _ASCII_SPACE]
    before = sum(1 for index in positions if not visible or index < visible[0])
    after = sum(1 for index in positions if visible and index > visible[-1])
    if before == len(positions):
        where = "leading"
    elif after == len(positions):
        where = "trailing"
    elif before + after == len(positions):
        where = "both ends"
    else:
        where = "inside"
    return char_class(raw[positions[0]]), where


def trailing_kind(raw: str) -> str | None:
    """What ``raw`` ends with, named: crlf, newline, carriage return, space, tab (else ``None``)."""
    if raw.endswith("\r\n"):
        return "crlf"
    return {"\n": "newline", "\r": "carriage return", " ": "space", "\t": "tab"}.get(raw[-1:])


def value_facts(raw: str | None, prefix: str = "sent") -> dict[str, FactValue]:
    """The facts about one credential value under ``prefix`` (``sent``): its shape, never it."""
    facts: dict[str, FactValue] = {
        f"{prefix}.state": "unset",
        f"{prefix}.length": None,
        f"{prefix}.whitespace": "none",
        f"{prefix}.trailing": None,
        f"{prefix}.line_break": False,
        f"{prefix}.quoted": False,
        f"{prefix}.scheme_prefixed": False,
        f"{prefix}.r8_prefix": False,
        f"{prefix}.well_formed": False,
        f"{prefix}.non_ascii": None,
        f"{prefix}.non_ascii_at": None,
        f"{prefix}.problem": "unset",
    }
    if raw is None:
        return facts
    stripped = raw.strip(_ASCII_SPACE)
    state = "empty" if raw == "" else "blank" if not raw.strip() else "set"
    leading = bool(stripped) and raw[0] in _ASCII_SPACE
    trailing = bool(stripped) and raw[-1] in _ASCII_SPACE
    non_ascii, non_ascii_at = find_non_ascii(raw)
    scheme, core = split_credential(raw)
    quoted = bool(stripped) and (stripped[0] in "'\"" or stripped[-1] in "'\"")
    whitespace = "both" if leading and trailing else "leading" if leading else "trailing" if trailing else "none"
    facts.update(
        {
            f"{prefix}.state": state,
            f"{prefix}.length": len(raw),
            f"{prefix}.whitespace": whitespace,
            f"{prefix}.trailing": trailing_kind(raw) if stripped else None,
            f"{prefix}.line_break": "\n" in raw or "\r" in raw,
            f"{prefix}.quoted": quoted,
            f"{prefix}.scheme_prefixed": scheme is not None,
            f"{prefix}.r8_prefix": core.startswith("r8_"),
            f"{prefix}.well_formed": len(raw) == 40
            and raw.startswith("r8_")
            and raw[3:].isalnum()
            and raw[3:].isascii(),
            f"{prefix}.non_ascii": non_ascii,
            f"{prefix}.non_ascii_at": non_ascii_at,
        }
    )
    if state != "set":
        problem = state
    elif non_ascii:
        problem = "non_ascii"
    elif whitespace != "none":
        problem = "whitespace"
    elif quoted:
        problem = "quoted"
    elif scheme is not None:
        problem = "scheme"
    else:
        problem = "none"
    facts[f"{prefix}.problem"] = problem
    return facts


#: Masks people (and tools, this one included) put in place of a token before posting a text.
_MASKS = (
    (re.compile(r"(?i)\[(?:redacted|masked|hidden|filtered|removed)\]"), "with [REDACTED]"),
    (
        re.compile(r"(?i)<(?:redacted|masked|hidden|token|api[ _-]?key|your[^>]*)>"),
        "with a placeholder such as <redacted>",
    ),
    (re.compile(r"\*{3,}"), "with asterisks"),
    (re.compile(r"(?:\.{3}|\u2026|\u00e2\u0080\u00a6)(?=\s*$)"), "cut short by an ellipsis"),
    (re.compile(r"(?i)x{4,}(?=\s*$)"), "with x's"),
)


def masked_value(raw: str) -> str | None:
    """How ``raw`` (a credential printed in a text) is masked, or ``None`` if it is not.

    A masked value says nothing of the token's shape (its length, its prefix). The description
    never repeats the value's characters.
    """
    _, core = split_credential(raw)
    for pattern, how in _MASKS:
        if pattern.search(core):
            return how
    return None


def _outside_mask(raw: str) -> str:
    """``raw`` with the masked token (the run of non-space characters holding the mask, without
    quotes at its ends) replaced by a neutral ``r8_masked``: what surrounds it is kept."""
    for pattern, _ in _MASKS:
        found = pattern.search(raw)
        if found is None:
            continue
        start, end = found.start(), found.end()
        while start > 0 and raw[start - 1] not in _ASCII_SPACE + "'\"":
            start -= 1
        while end < len(raw) and raw[end] not in _ASCII_SPACE + "'\"":
            end += 1
        return raw[:start] + "r8_masked" + raw[end:]
    return raw


def masked_facts(raw: str, how: str, prefix: str = "sent") -> dict[str, FactValue]:
    """The facts of a masked credential: set, its length, prefix and characters unknown.

    What lies outside the mask is what was sent (this tool's own mask keeps the line breaks and
    whitespace around it): whitespace, quotes and a scheme around the masked token are read;
    ``where`` says the token is masked. With none of those, the problem is ``unknown``.
    """
    outside = _outside_mask(raw)
    facts = value_facts(outside, prefix)
    problem = facts[f"{prefix}.problem"]
    facts.update(
        {
            f"{prefix}.length": None,
            f"{prefix}.r8_prefix": False,
            f"{prefix}.well_formed": False,
            f"{prefix}.non_ascii": None,
            f"{prefix}.non_ascii_at": None,
            f"{prefix}.problem": problem if problem in ("whitespace", "quoted", "scheme") else "unknown",
            f"{prefix}.source": "text",
            f"{prefix}.origin": "unknown",
        }
    )
    around = [
        text
        for fact, text in (
            ("whitespace", "whitespace or a line break around it"),
            ("quoted", "quotes around it"),
            ("scheme_prefixed", "an auth scheme before it"),
        )
        if facts[f"{prefix}.{fact}"] not in (False, "none")
    ]
    shown = f"; the text shows {' and '.join(around)}" if around else ""
    facts[f"{prefix}.where"] = (
        f"the header value printed in the text has its token masked ({how}): its length, prefix "
        f"and characters are not read{shown}"
    )
    return facts
