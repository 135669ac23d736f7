"""docs/RULES.md is the rule authors' reference: it names every schema key and every fact the
code accepts (read from the code, not a copy), and its worked example is a valid rule whose
cases hold against the bundled rules."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from clients import REPO_ROOT

from replicate_explain import _facts, _rule_schema
from replicate_explain._matcher import case_snapshot, explain_snapshot
from replicate_explain._rules import RuleSet, load_rules, parse_rule

DOC = (REPO_ROOT / "docs" / "RULES.md").read_text(encoding="utf-8")
SCHEMAS = {
    "top level": _rule_schema.TOP_KEYS,
    "match": _rule_schema.MATCH_KEYS,
    "exception shape": _rule_schema.PATTERN_KEYS,
    "examples": _rule_schema.EXAMPLE_KEYS,
    "cases": _rule_schema.CASE_KEYS,
    "case exception": _rule_schema.CASE_EXC_KEYS,
}


def _documented_keys() -> set[str]:
    """Names written as the first cell of a table row: | `name` | ..."""
    return set(re.findall(r"^\| `([^`]+)` \|", DOC, re.M))


def test_every_schema_key_is_documented() -> None:
    """Each key of each part of the rule schema has a row in docs/RULES.md."""
    documented = _documented_keys()
    missing = {part: sorted(set(keys) - documented) for part, keys in SCHEMAS.items()}
    assert {part: keys for part, keys in missing.items() if keys} == {}


def test_every_fact_is_documented_with_its_values() -> None:
    """Each fact a rule may name (and each adapter fact) has a row in docs/RULES.md."""
    documented = _documented_keys()
    names = set(_facts.FACTS) | set(_facts.ADAPTER_FACTS)
    assert sorted(names - documented) == []


def test_the_worked_example_is_a_valid_rule_whose_cases_hold(tmp_path: Path) -> None:
    """The YAML of "A worked example" loads, and each of its cases, matched against the bundled
    rules plus it, explains as it says."""
    (text,) = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    rule = parse_rule(tmp_path / "proxy-strips-authorization.yaml", text)
    bundled = load_rules()
    rules = dataclasses.replace(bundled, rules=(*bundled.rules, rule))
    assert isinstance(rules, RuleSet)
    got = []
    for case in rule.cases:
        explanation = explain_snapshot(case_snapshot(case), rules)
        got.append((case.name, explanation.rule_id if explanation else None, explanation.also if explanation else ()))
    assert got == [
        (
            "1.x, a good token that arrived without its header",
            "proxy-strips-authorization",
            ("token-stale-in-process",),
        ),
        ("the header arrived, so the token itself was refused", "token-rejected", ()),
    ]
