"""The rule model: frozen dataclasses a rule file is loaded into (``_rules`` loads them).

:class:`Rule` holds every way it ``matches`` (:class:`Match`: exception shapes, facts, client and
Python ranges), its text, its code :class:`Example` s and its executable :class:`Case` s;
:class:`RuleSet` is the rules in force with the errors of the files that failed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType

from ._errors import RuleError
from ._facts import FactValue
from ._frozen import frozen


@frozen
class ExceptionPattern:
    """One exception shape: a dotted class name on the MRO, an optional message regex, attributes."""

    type: str
    message: str | None = None  # the regex's source: compiled (and kept by ``re``) when first searched
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def search(self, text: str) -> bool:
        """Whether the message regex is found in ``text`` (no regex: always)."""
        return self.message is None or re.search(self.message, text) is not None


@frozen
class Example:
    """Broken and fixed code for the client versions in ``client`` (empty: any version)."""

    client: str
    broken: str
    fixed: str
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The environment both snippets run in when the test suite proves them ({token}: a token)."""
    fixed_environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Changes to ``environ`` for the fixed snippet (the fix may be in the environment)."""
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Files both snippets find in their working directory (relative path: text; {token} too)."""
    requires: tuple[str, ...] = ()
    """Packages the snippets need besides replicate (pip requirement strings)."""


@frozen
class CaseException:
    """An exception described in a rule case."""

    type: str
    bases: tuple[str, ...]
    """Further dotted class names on its MRO (YAML key ``mro``)."""
    message: str
    attributes: Mapping[str, str]
    in_replicate: bool = True
    """Whether the traceback runs through the replicate package (default: yes)."""


@frozen
class Case:
    """An executable example: this situation must explain as ``expect`` (``None``: nothing)."""

    name: str
    expect: str | None
    client: str | None
    python: str | None
    environ: Mapping[str, str]
    sent: str
    exceptions: tuple[CaseException, ...]
    dotenv: str | None = None
    """A ``.env`` file (its path) that defines the token in the situation; ``None``: none."""
    facts: Mapping[str, FactValue] = field(default_factory=lambda: MappingProxyType({}))
    """Facts only an adapter observes (``ADAPTER_FACTS``, e.g. ``notebook.shell_export``)."""
    wrapper: str | None = None
    """The wrapper library whose frames the traceback shows (``_wrappers.BY_NAME``)."""
    wrapper_observed: Mapping[str, FactValue] = field(default_factory=lambda: MappingProxyType({}))
    """What a live failure would have observed of it (``wrapper.token_passed``, ``wrapper.token_ignored``)."""


@frozen
class Match:
    """One way a rule matches: exception shapes (OR'd), facts (AND'd), client and Python ranges."""

    exceptions: tuple[ExceptionPattern, ...]
    facts: Mapping[str, tuple[FactValue, ...]]
    client: str
    python: str

    @property
    def specificity(self) -> int:
        """How specific this match is: more conditions win when several rules match."""
        score = len(self.facts)
        score += 2 if self.client else 0
        score += 1 if self.python else 0
        score += 1 if all(p.message or p.attributes for p in self.exceptions) else 0
        return score


@frozen
class Rule:
    """One validated rule file. ``matches`` holds every way it matches (OR'd): its ``match``
    mapping, or each item of a ``match`` list."""

    id: str
    path: str
    title: str
    severity: str
    priority: int
    matches: tuple[Match, ...]
    summary: str
    why: str
    fix: tuple[str, ...]
    examples: tuple[Example, ...]
    workaround: str
    prevention: str
    references: tuple[str, ...]
    cases: tuple[Case, ...]


@frozen
class RuleSet:
    """The rules in force, the files that failed to load, and which ids user rules override."""

    rules: tuple[Rule, ...]
    errors: tuple[RuleError, ...] = ()
    overridden: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, rule_id: str) -> Rule | None:
        """The rule with this id, if any."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return None
