"""Token masking: known secrets in every mangled form, and token-shaped text we were never told of."""

from __future__ import annotations

import pytest
from clients import CANARY
from hypothesis import given
from hypothesis import strategies as st

from replicate_explain._mask import MASK, Redactor, redact

CASES = [
    (
        "httpx's header error keeps the visible newline",
        {"REPLICATE_API_TOKEN": CANARY + "\n"},
        f"Illegal header value b'Bearer {CANARY}\\n'",
        "Illegal header value b'Bearer [REDACTED]\\n'",
    ),
    (
        "requests' header error",
        {"REPLICATE_API_TOKEN": CANARY + "\r\n"},
        f"in header value: 'Token {CANARY}\\r\\n'",
        "in header value: 'Token [REDACTED]\\r\\n'",
    ),
    (
        "a quoted value is masked inside its quotes",
        {"REPLICATE_API_TOKEN": f'"{CANARY}"'},
        f"value: '\"{CANARY}\"'",
        "value: '\"[REDACTED]\"'",
    ),
    (
        "a value with the scheme inside",
        {"REPLICATE_API_TOKEN": f"Bearer {CANARY}"},
        f"b'Bearer Bearer {CANARY}'",
        "b'Bearer Bearer [REDACTED]'",
    ),
    (
        "a look-alike variable's value",
        {"REPLICATE_API_KEY": "sekrit-value-123"},
        "sent sekrit-value-123",
        "sent [REDACTED]",
    ),
    ("an r8_ token nobody told us about", {}, "token r8_abcdef0123456789", "token [REDACTED]"),
    (
        "a credential after Bearer keeps the scheme visible",
        {},
        "Authorization: Bearer abc123def456",
        "Authorization: Bearer [REDACTED]",
    ),
    ("a header mapping", {}, "{'authorization': 'Token abc123def456'}", "{'authorization': 'Token [REDACTED]'}"),
    ("a header value without a scheme", {}, "{'authorization': 'abc123def456'}", "{'authorization': '[REDACTED]'}"),
    ("serialised JSON stays valid", {}, '{"authorization": "abc123def456"}', '{"authorization": "[REDACTED]"}'),
    ("documentation placeholders are left alone", {}, "Authorization: Bearer r8_...", "Authorization: Bearer r8_..."),
    ("Token None is evidence, not a secret", {}, "Authorization: Token None", "Authorization: Token None"),
    (
        "prose about tokens is left alone",
        {},
        "No API token provided. You did not pass a valid authentication token",
        "No API token provided. You did not pass a valid authentication token",
    ),
    ("a short value is not masked everywhere", {"REPLICATE_API_TOKEN": "abc"}, "abc abcdef", "abc abcdef"),
]


@pytest.mark.parametrize(("name", "environ", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_redaction(name: str, environ: dict[str, str], text: str, expected: str) -> None:
    """Each form a token takes in real messages is masked, and nothing else changes."""
    assert redact(text, environ) == expected


@given(
    prefix=st.text(max_size=50),
    suffix=st.text(max_size=50),
    pad=st.sampled_from(["", " ", "\n", "\r\n", "\t", '"', "'"]),
)
def test_the_canary_never_survives(prefix: str, suffix: str, pad: str) -> None:
    """Whatever surrounds it, a token set in the environment is masked, raw or escaped."""
    redactor = Redactor.from_environ({"REPLICATE_API_TOKEN": pad + CANARY + pad})
    for text in (prefix + CANARY + suffix, repr(prefix + pad + CANARY + pad + suffix)):
        assert CANARY not in redactor(text)
        assert CANARY[3:] not in redactor(text)


def test_mask_is_recognisable() -> None:
    """The mask is a fixed, greppable marker."""
    assert MASK == "[REDACTED]"


#: One megabyte (or more) of text in the shapes that made a pattern scan the rest of the text
#: from each occurrence of its anchor (quadratic: hours for a megabyte), each with its whole
#: masked form. Text a user pastes and the body an httpx error carries can be this big.
_MEGABYTE = 1 << 20
LARGE_TEXTS = [
    ("authorization= repeated", "authorization=" * (_MEGABYTE // 14), None),
    (
        "authorization= repeated, a digit at the end",
        "authorization=" * (_MEGABYTE // 14) + "abc12345",
        "authorization=" + MASK,
    ),
    ("an authorization mapping repeated", "'authorization': 'x" * (_MEGABYTE // 19), None),
    ("Bearer%20word, repeated", "Bearer%20abcdefgh," * (_MEGABYTE // 18), None),
    ("token%20 repeated", "token%20" * (_MEGABYTE // 8), "token%20" + MASK),
    ("Bearer, a megabyte of letters, a digit", "Bearer " + "a" * _MEGABYTE + "1", "Bearer " + MASK),
    ("bearer and spaces", "bearer " * (_MEGABYTE // 7), None),
    ("r8_ repeated", "r8_" * (_MEGABYTE // 3), None),
    ("glued short tokens", "xr8_abcdefgh" * (_MEGABYTE // 12), None),
    ("cut tokens without an ellipsis", "r8_Ab3 " * (_MEGABYTE // 7), None),
    ("spaces after an r", "r" + " " * _MEGABYTE + "\n", None),
]

_LARGE_PROGRAM = """\
import json, sys
from replicate_explain._mask import Redactor
texts = json.loads(sys.stdin.read())
redactor = Redactor([])
print(json.dumps([[redactor(text), redactor.wrapped(text)] for text in texts]))
"""


@pytest.mark.e2e
def test_a_megabyte_of_text_is_masked_in_one_pass_over_it() -> None:
    """Every pattern is linear: a megabyte of each shape that used to make a pattern quadratic
    (``authorization=`` or ``Bearer%20word,`` repeated: a look-ahead from each occurrence to the
    end of the run) is masked, plainly and across wrapped lines, to its whole expected value.

    The guard against a hang is the subprocess timeout (generous: the linear patterns take well
    under a second; the quadratic ones took hours for a megabyte), no wall-clock assertion."""
    import json
    import os
    import subprocess
    import sys

    from clients import REPO_ROOT

    texts = [text for _, text, _ in LARGE_TEXTS]
    result = subprocess.run(
        [sys.executable, "-c", _LARGE_PROGRAM],
        input=json.dumps(texts),
        capture_output=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=300,
        check=True,
    )
    got = json.loads(result.stdout)
    for (name, text, expected), (plain, wrapped) in zip(LARGE_TEXTS, got):
        want = text if expected is None else expected
        assert (name, plain, wrapped) == (name, want, want)


WRAPPED_CASES = [
    # (what, environ, text, expected)
    (
        "a token wrapped by a bordered printer",
        {},
        f"│ x = '{CANARY[:12]}  │\n│ {CANARY[12:]}'  │",
        "│ x = '[REDACTED]  │\n│ '  │",
    ),
    ("a token wrapped between r and 8, coloured", {}, f"a r\x1b[0m\n8{CANARY[2:]}", "a [REDACTED]\x1b[0m\n"),
    ("a secret value wrapped at its space", {"REPLICATE_ORG_KEY": "abc1 2def"}, "k = abc1\n 2def", "k = [REDACTED]\n "),
    ("a coloured token wrapped over lines", {}, f"x \x1b[1m{CANARY[:10]}\n{CANARY[10:]}", "x \x1b[1m[REDACTED]\n"),
    ("a secret after a stray escape", {"REPLICATE_ORG_KEY": "m0abcdefg"}, "\x1b[m0abc\ndefg", "\x1b[[REDACTED]\n"),
    (
        "a secret that could end a colour code",
        {"REPLICATE_ORG_KEY": "1;32mhunter2pass"},
        "\x1b[1;32mhunter2\npass",
        "\x1b[[REDACTED]\n",
    ),
    ("a secret value wrapped inside it", {"REPLICATE_ORG_KEY": "abc12def99"}, "k = abc12\ndef99!", "k = [REDACTED]\n!"),
]


@pytest.mark.parametrize(("what", "environ", "text", "expected"), WRAPPED_CASES, ids=[c[0] for c in WRAPPED_CASES])
def test_a_secret_wrapped_over_lines_is_masked_whole(
    what: str, environ: dict[str, str], text: str, expected: str
) -> None:
    assert Redactor.from_environ(environ).wrapped(text) == expected


def test_a_traceback_without_a_secret_never_compiles_the_wrapped_patterns() -> None:
    """The patterns for wrapped secrets cost milliseconds to compile: a traceback that holds no
    ``r8_`` and no secret value, even over line breaks, is masked without them."""
    redactor = Redactor.from_environ({"REPLICATE_ORG_KEY": "abc12def99"})
    text = '  File "/app/main.py", line 5, in <module>\n    replicate.run(model)\nReplicateError: 401\n'
    assert (redactor.wrapped(text), getattr(redactor, "_wrapped_cache", None)) == (text, None)
