"""The result of matching: plain frozen data that every renderer and adapter consumes."""

from __future__ import annotations

from typing import Any

from ._callsite import CallSite
from ._frozen import frozen


@frozen
class CodeFix:
    """Broken and fixed code for the installed client version."""

    broken: str
    fixed: str
    client: str
    """The client version range the snippets are written for (empty: any version)."""
    basis: str = ""
    """Where the client that chose them was read, when not the installed one (pasted text:
    ``the text shows replicate 1.x``); empty: the installed version (``client_version``)."""


@frozen
class Explanation:
    """Why a Replicate call failed to authenticate, and how to fix it. Contains no secret."""

    rule_id: str
    title: str
    severity: str
    summary: str
    evidence: tuple[str, ...]
    why: str
    fix: tuple[str, ...]
    code: CodeFix | None
    workaround: str
    prevention: str
    references: tuple[str, ...]
    also: tuple[str, ...]
    """Ids of other rules that also matched, most specific first."""
    exception: str
    """The matched exception's last traceback line, redacted."""
    client_version: str | None
    call_site: CallSite | None = None
    """The user's line that made the failing call, if known."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (stable keys, the public JSON format)."""
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "severity": self.severity,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "why": self.why,
            "fix": list(self.fix),
            "code": None
            if self.code is None
            else {
                "broken": self.code.broken,
                "fixed": self.code.fixed,
                "client": self.code.client,
                "basis": self.code.basis,
            },
            "workaround": self.workaround,
            "prevention": self.prevention,
            "references": list(self.references),
            "also": list(self.also),
            "exception": self.exception,
            "client_version": self.client_version,
            "call_site": None if self.call_site is None else self.call_site.to_dict(),
        }
