"""Print each bundled rule's default panel line count at 60/80/120 columns (issue 12's table).

Each rule is explained from the first of its own ``cases`` that expects it, with a call site
``app.py:3  output = replicate.run(...)`` as the user's line. ``--show ID WIDTH`` prints one panel.
"""

from __future__ import annotations

import dataclasses
import sys

from replicate_explain._callsite import CallSite
from replicate_explain._explanation import Explanation
from replicate_explain._matcher import case_snapshot, explain_snapshot
from replicate_explain._render import render_plain, render_rich
from replicate_explain._rules import load_rules

WIDTHS = (60, 80, 120)
SITE = CallSite("app.py", 3, "output = replicate.run(")


def explanations() -> dict[str, Explanation]:
    """One explanation per bundled rule, from its first case that expects it."""
    rules = load_rules()
    found: dict[str, Explanation] = {}
    for rule in rules.rules:
        for case in rule.cases:
            if case.expect != rule.id:
                continue
            explanation = explain_snapshot(case_snapshot(case), rules)
            if explanation is not None and explanation.rule_id == rule.id:
                found[rule.id] = dataclasses.replace(explanation, call_site=SITE)
                break
    return found


def main(argv: list[str]) -> int:
    found = explanations()
    if argv[:1] == ["--show"]:
        sys.stdout.write(render_rich(found[argv[1]], width=int(argv[2]), color=False))
        return 0
    if argv[:1] == ["--plain"]:
        sys.stdout.write(render_plain(found[argv[1]]))
        return 0
    print("| rule | " + " | ".join(f"{w} cols" for w in WIDTHS) + " | plain |")
    print("|---|" + "---|" * (len(WIDTHS) + 1))
    for rule_id, explanation in sorted(found.items()):
        counts = [render_rich(explanation, width=w, color=False).count("\n") for w in WIDTHS]
        plain = render_plain(explanation).count("\n")
        print(f"| {rule_id} | " + " | ".join(str(c) for c in counts) + f" | {plain} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
