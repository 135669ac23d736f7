"""``replicate-explain rules list | show ID | check [PATH ...]``, and the long form of a rule.

:func:`rule_document` is the rule's full explanation, like ``rustc --explain``: what it matches,
what happened, why, the fix, every example for every client range, and more. ``explain --rule``
prints the same document.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._cli import (
    DATA_FORMAT_CHOICES,
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_format,
    write,
    write_json,
)
from ._errors import RuleError
from ._rules import Rule, RuleSet

EPILOG = """\
Exit status:
  list   0 all rule files loaded, 1 some rule files are broken (listed on stderr)
  show   0 shown, 2 no rule with that id
  check  0 every file valid and every case explained as expected, 1 problems found
         (printed as file:line: key: problem), 2 a path that does not exist

User rules come from the directories in REPLICATE_EXPLAIN_RULES (separated by os.pathsep);
a user rule with the id of a bundled rule replaces it.
"""


def _source(rule: Rule, ruleset: RuleSet) -> str:
    from ._rules import bundled_rules_dir

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
                text += f" with a message matching /{pattern.message.pattern}/"
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
    from ._common import wrap

    return [title, wrap(body), ""]


def rule_document(rule: Rule, source: str = "") -> str:
    """The full explanation of one rule as plain text."""
    from ._common import indent, wrap

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
                        "message": None if p.message is None else p.message.pattern,
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
    source = _source(rule, ruleset)
    if fmt == "json":
        write_json(rule_dict(rule, source))
    else:
        write(rule_document(rule, source))
    return EXIT_OK


def _warn_errors(errors: Sequence[RuleError]) -> None:
    import sys

    for error in errors:
        write(f"replicate-explain: broken rule file: {error}\n", sys.stderr)


def _list(args: argparse.Namespace) -> int:
    from ._rules import load_rules

    ruleset = load_rules()
    rows = sorted(ruleset.rules, key=lambda r: r.id)
    if args.format == "json":
        write_json(
            {
                "rules": [
                    {
                        "id": r.id,
                        "title": r.title,
                        "severity": r.severity,
                        "source": _source(r, ruleset),
                        "overrides": r.id in ruleset.overridden,
                        "path": r.path,
                    }
                    for r in rows
                ],
                "errors": [str(e) for e in ruleset.errors],
            }
        )
    else:
        width = max((len(r.id) for r in rows), default=2)
        lines = []
        for rule in rows:
            source = _source(rule, ruleset)
            note = f"  [{source}: {rule.path}]" if source != "bundled" else ""
            lines.append(f"{rule.id:<{width}}  {rule.severity:<7}  {rule.title}{note}")
        lines.append("")
        lines.append(f"{len(rows)} rules. Details: replicate-explain rules show ID")
        write("\n".join(lines) + "\n")
        _warn_errors(ruleset.errors)
    return EXIT_PROBLEMS if ruleset.errors else EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from ._rules import load_rules

    ruleset = load_rules()
    return print_rule(find_rule(ruleset, args.id), ruleset, args.format)


@dataclass(frozen=True)
class Problem:
    """One finding of ``rules check``: where, which key, what is wrong."""

    path: str
    line: int | None
    key: str
    problem: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.key}: {self.problem}" if self.key else f"{where}: {self.problem}"


def _case_line(path: str, index: int) -> int | None:
    from ._rule_schema import positions

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return positions(text).get(f"cases[{index}]")


def check_paths(paths: Sequence[Path]) -> tuple[list[Rule], list[Problem], int]:
    """Validate rule files (directories: their ``*.yaml`` files) and run every rule's cases.

    The cases run with all rules in force (bundled, ``REPLICATE_EXPLAIN_RULES``, and the checked
    files, which win on the same id), as they would at run time. Returns the checked rules, the
    problems, and the number of cases run.
    """
    from ._common import rule_files
    from ._matcher import case_snapshot, explain_snapshot
    from ._rules import load_file, load_rules

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(rule_files(path))
        else:
            files.append(path)
    problems: list[Problem] = []
    checked: dict[str, Rule] = {}
    for path in files:
        try:
            rule = load_file(path)
        except RuleError as error:
            problems.append(
                Problem(
                    error.path,
                    error.line,
                    error.key,
                    error.problem + (f" ({error.hint})" if error.hint else ""),
                )
            )
            continue
        if rule.id in checked:
            problems.append(
                Problem(
                    str(path),
                    None,
                    "",
                    f"duplicate rule id {rule.id!r}: also defined in {checked[rule.id].path}",
                )
            )
        checked[rule.id] = rule
    base = load_rules()
    in_force = {rule.id: rule for rule in base.rules}
    in_force.update(checked)
    ruleset = RuleSet(tuple(in_force.values()))
    cases = 0
    for rule in checked.values():
        for index, case in enumerate(rule.cases):
            cases += 1
            where = f"cases[{index}]"
            if case.expect is not None and case.expect not in in_force:
                problems.append(
                    Problem(
                        rule.path,
                        _case_line(rule.path, index),
                        f"{where}.expect",
                        f"case {case.name!r} expects {case.expect!r}, which is not a known rule id",
                    )
                )
                continue
            explanation = explain_snapshot(case_snapshot(case), ruleset)
            got = None if explanation is None else explanation.rule_id
            if got != case.expect:
                expected = "no explanation" if case.expect is None else repr(case.expect)
                shown = "no explanation" if got is None else repr(got)
                also = (
                    f" (also matched: {', '.join(explanation.also)})"
                    if explanation is not None and explanation.also
                    else ""
                )
                problems.append(
                    Problem(
                        rule.path,
                        _case_line(rule.path, index),
                        where,
                        f"case {case.name!r} expected {expected}, got {shown}{also}",
                    )
                )
    return list(checked.values()), problems, cases


def _check(args: argparse.Namespace) -> int:
    from ._rules import bundled_rules_dir, user_rule_dirs

    paths = [Path(p) for p in args.paths] or [bundled_rules_dir(), *user_rule_dirs()]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(
            f"no such file or directory: {', '.join(missing)}; expected rule files (*.yaml) or directories of them"
        )
    rules, problems, cases = check_paths(paths)
    if args.format == "json":
        write_json(
            {
                "ok": not problems,
                "rules": sorted(rule.id for rule in rules),
                "cases": cases,
                "problems": [
                    {
                        "path": p.path,
                        "line": p.line,
                        "key": p.key,
                        "problem": p.problem,
                        "message": str(p),
                    }
                    for p in problems
                ],
            }
        )
    else:
        lines = [str(problem) for problem in problems]
        verdict = "ok" if not problems else f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines.append(f"checked {len(rules)} rule{'s' if len(rules) != 1 else ''} and {cases} cases: {verdict}")
        write("\n".join(lines) + "\n")
    return EXIT_PROBLEMS if problems else EXIT_OK


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``rules`` and its sub-subcommands."""
    parser = subparsers.add_parser(
        "rules",
        help="list, show and check the explanation rules",
        description="List, show and validate the rules (YAML files) that explain failures.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda _args: _usage(parser))
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="list the bundled and user rules",
        description=("List every rule in force: bundled ones and those from REPLICATE_EXPLAIN_RULES."),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_format(listing, DATA_FORMAT_CHOICES)
    listing.set_defaults(handler=_list)
    show = actions.add_parser(
        "show",
        help="show one rule in full",
        description="Print the full explanation of one rule: every example for every client range.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("id", metavar="ID", help="a rule id, e.g. token-whitespace")
    add_format(show, DATA_FORMAT_CHOICES)
    show.set_defaults(handler=_show)
    check = actions.add_parser(
        "check",
        help="validate rule files and run their cases",
        description=(
            "Validate rule files against the schema and run each rule's cases through the matcher "
            "with all rules loaded. Without PATH: the bundled rules and REPLICATE_EXPLAIN_RULES."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="a rule file or a directory of rule files")
    add_format(check, DATA_FORMAT_CHOICES)
    check.set_defaults(handler=_check)


def _usage(parser: argparse.ArgumentParser) -> int:
    import sys

    parser.print_help(sys.stderr)
    return 2
