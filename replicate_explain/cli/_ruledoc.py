"""The long form of a rule, like ``rustc --explain``: shared by ``rules show`` and ``explain --rule``.

:func:`rule_document` is the rule's full explanation: what it matches, what happened, why, the
fix, every example for every client range, and more; :func:`rule_dict` is the same as JSON-ready
data. :func:`find_rule` looks a rule up by id, with a "did you mean" for a typo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._rules import Rule, RuleSet
from ._output import EXIT_OK, UsageError, write, write_json


def rule_source(rule: Rule, ruleset: RuleSet) -> str:
    """Where ``rule`` comes from: bundled, user, or user overriding a bundled rule."""
    from .._rules import bundled_rules_dir

    try:
        bundled = Path(rule.path).resolve().parent == bundled_rules_dir().resolve()
    except OSError:
        bundled = False
    if bundled:
        return "bundled"
    return "user, overrides a bundled rule" if rule.id in ruleset.overridden else "user"


def find_rule(ruleset: RuleSet, rule_id: str) -> Rule:
    """The rule with ``rule_id``, or a :class:`UsageError` with a "did you mean"."""
    rule = ruleset.get(rule_id)
    if rule is not None:
        return rule
    import difflib

    ids = sorted(r.id for r in ruleset.rules)
    close = difflib.get_close_matches(rule_id, ids, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UsageError(
        f"no rule with id {rule_id!r}; {hint}known ids: {', '.join(ids)} (see `replicate-explain rules list`)"
    )


def _match_lines(rule: Rule) -> list[str]:
    lines: list[str] = []
    matches = rule.matches
    for number, match in enumerate(matches, 1):
        pad = "  "
        if len(matches) > 1:
            lines.append(f"  Alternative {number}:")
            pad = "    "
        lines.append(f"{pad}an exception in the chain is one of:")
        for pattern in match.exceptions:
            text = f"{pad}  - {pattern.type}"
            if pattern.message is not None:
                text += f" with a message matching /{pattern.message}/"
            if pattern.attributes:
                attrs = ", ".join(f"{k}={v}" for k, v in pattern.attributes.items())
                text += f" with {attrs}"
            lines.append(text)
        for name, allowed in match.facts.items():
            values = " or ".join(
                "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for v in allowed
            )
            lines.append(f"{pad}and {name} is {values}")
        if match.client:
            lines.append(f"{pad}and the installed replicate version is {match.client}")
        if match.python:
            lines.append(f"{pad}and the Python version is {match.python}")
    return lines


def _block(title: str, body: str) -> list[str]:
    from .._common import wrap

    return [title, wrap(body), ""]


def rule_document(rule: Rule, source: str = "") -> str:
    """The full explanation of one rule as plain text."""
    from .._common import indent, wrap

    out = [f"{rule.id}: {rule.title}", ""]
    meta = f"severity: {rule.severity}"
    if source:
        meta += f"; source: {source}"
    out += [meta, f"file: {rule.path}", ""]
    out += _block("What happened", rule.summary)
    out += _block("Why", rule.why)
    out.append("Fix")
    out += [wrap(f"{n}. {step}", hanging=3) for n, step in enumerate(rule.fix, 1)]
    out.append("")
    out.append("Matches when")
    out += _match_lines(rule)
    out.append("")
    for number, example in enumerate(rule.examples, 1):
        label = f"replicate {example.client}" if example.client else "any replicate version"
        out.append(f"Example {number} of {len(rule.examples)}, for {label}")
        if example.environ:
            out.append("  environment: " + ", ".join(f"{k}={v!r}" for k, v in example.environ.items()))
        if example.files:
            out.append("  files: " + ", ".join(sorted(example.files)))
        out += ["  Broken:", indent(example.broken.rstrip(), 6), ""]
        if example.fixed_environ:
            out.append("  fixed environment: " + ", ".join(f"{k}={v!r}" for k, v in example.fixed_environ.items()))
        out += ["  Fixed:", indent(example.fixed.rstrip(), 6), ""]
    if rule.workaround:
        out += _block("Workaround", rule.workaround)
    if rule.prevention:
        out += _block("Prevention", rule.prevention)
    if rule.references:
        out += ["Learn more"] + [f"  {ref}" for ref in rule.references] + [""]
    positive = sum(1 for case in rule.cases if case.expect == rule.id)
    out.append(
        f"Cases: {len(rule.cases)} ({positive} where this rule applies, {len(rule.cases) - positive} where it does not)"
    )
    return "\n".join(out) + "\n"


def rule_dict(rule: Rule, source: str = "") -> dict[str, Any]:
    """The rule as JSON-ready data (``--format json`` of ``rules show`` and ``explain --rule``)."""
    return {
        "id": rule.id,
        "title": rule.title,
        "severity": rule.severity,
        "priority": rule.priority,
        "source": source,
        "path": rule.path,
        "match": [
            {
                "exceptions": [
                    {
                        "type": p.type,
                        "message": p.message,
                        "attributes": dict(p.attributes),
                    }
                    for p in match.exceptions
                ],
                "facts": {name: list(values) for name, values in match.facts.items()},
                "client": match.client,
                "python": match.python,
            }
            for match in rule.matches
        ],
        "summary": rule.summary,
        "why": rule.why,
        "fix": list(rule.fix),
        "examples": [
            {
                "client": e.client,
                "broken": e.broken,
                "fixed": e.fixed,
                "environ": dict(e.environ),
                "fixed_environ": dict(e.fixed_environ),
            }
            for e in rule.examples
        ],
        "workaround": rule.workaround,
        "prevention": rule.prevention,
        "references": list(rule.references),
        "cases": [{"name": c.name, "expect": c.expect} for c in rule.cases],
    }


def print_rule(rule: Rule, ruleset: RuleSet, fmt: str) -> int:
    """Print the full explanation of ``rule`` in ``fmt`` (json, or text for anything else)."""
    source = rule_source(rule, ruleset)
    if fmt == "json":
        write_json(rule_dict(rule, source))
    else:
        write(rule_document(rule, source))
    return EXIT_OK
