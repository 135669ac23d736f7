"""Helpers to read what a program printed: the traceback part, the explanation, leaks."""

from __future__ import annotations

import json
import re
from typing import Any

from replicate_explain._mask import Redactor

#: The public JSON format's keys, in order (``Explanation.to_dict()``).
#: Headless Chromium's flags for the browser tests (a fresh profile each: add ``--user-data-dir``).
CHROMIUM_HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)

JSON_KEYS = [
    "rule_id",
    "title",
    "severity",
    "summary",
    "evidence",
    "why",
    "fix",
    "code",
    "workaround",
    "prevention",
    "references",
    "also",
    "exception",
    "client_version",
    "call_site",
]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\")


def explanations(stderr: str) -> list[dict[str, Any]]:
    """The JSON explanations printed with ``REPLICATE_EXPLAIN_FORMAT=json``, in order."""
    found = []
    for line in stderr.splitlines():
        if line.startswith('{"rule_id"'):
            found.append(json.loads(line))
    return found


def rule_shown(stderr: str) -> str | None:
    """The rule id of the only explanation printed, or ``None`` if none was printed."""
    shown = explanations(stderr)
    assert len(shown) <= 1, f"more than one explanation printed: {[e['rule_id'] for e in shown]}"
    return shown[0]["rule_id"] if shown else None


def leaks(text: str, *secrets: str) -> list[str]:
    """The secrets, or 12-character pieces of them, that appear in ``text``."""
    found = []
    for secret in secrets:
        core = secret.strip().strip("'\"")
        pieces = {core[i : i + 12] for i in range(0, max(1, len(core) - 11))}
        pieces = {piece for piece in pieces if len(set(piece)) >= 4}
        if any(piece and piece in text for piece in pieces):
            found.append(secret)
    return found


def masked(text: str, *secrets: str) -> str:
    """``text`` as our redaction masks it (what a hooked traceback must equal)."""
    return Redactor(secrets)(text)


_WORKDIR = re.compile(r"[^\s\"']*replicate-explain-[A-Za-z0-9_]+[/\\]")


def same_place(text: str) -> str:
    """``text`` with the per-run temporary directory of ``run_program`` made constant."""
    return _WORKDIR.sub("<workdir>/", text)
