"""``replicate-explain rules list | show | check | new``: the rules in force, one, validation, a skeleton.

``rules check`` reports every problem as a :class:`~replicate_explain.RuleError`
(``file:line: key: problem``): the schema errors of loading a file, duplicate ids, and cases
that the matcher does not explain as they expect. The long form of a rule that ``rules show``
prints lives in :mod:`._ruledoc` (``explain --rule`` prints it too).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import RuleError, RuleErrors
from .._rules import Rule, RuleSet
from ._output import (
    DATA_FORMAT_CHOICES,
    EXIT_OK,
    EXIT_PROBLEMS,
    HelpFormatter,
    UsageError,
    add_format,
    write,
    write_json,
)
from ._ruledoc import find_rule, print_rule, rule_source

EPILOG = """\
Exit status:
  list   0 all rule files loaded, 1 some rule files are broken (listed on stderr)
  show   0 shown, 2 no rule with that id
  check  0 every file valid and every case explained as expected, 1 problems found
         (printed as file:line: key: problem), 2 a path that does not exist
  new    0 written, 2 not a kebab-case id, the id of a bundled rule, or the file exists
         (--force writes it anyway)

User rules come from the directories in REPLICATE_EXPLAIN_RULES (separated by os.pathsep);
a user rule with the id of a bundled rule replaces it.
"""


def _warn_errors(errors: Sequence[RuleError]) -> None:
    import sys

    for error in errors:
        write(f"replicate-explain: broken rule file: {error}\n", sys.stderr)


def _list(args: argparse.Namespace) -> int:
    from .._rules import load_rules

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
                        "source": rule_source(r, ruleset),
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
            source = rule_source(rule, ruleset)
            note = f"  [{source}: {rule.path}]" if source != "bundled" else ""
            lines.append(f"{rule.id:<{width}}  {rule.severity:<7}  {rule.title}{note}")
        lines.append("")
        lines.append(f"{len(rows)} rules. Details: replicate-explain rules show ID")
        write("\n".join(lines) + "\n")
        _warn_errors(ruleset.errors)
    return EXIT_PROBLEMS if ruleset.errors else EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from .._rules import load_rules

    ruleset = load_rules()
    return print_rule(find_rule(ruleset, args.id), ruleset, args.format)


def _case_line(path: str, index: int) -> int | None:
    from .._rule_schema import positions

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return positions(text).get(f"cases[{index}]")


def check_paths(paths: Sequence[Path]) -> tuple[list[Rule], list[RuleError], int]:
    """Validate rule files (directories: their ``*.yaml`` files) and run every rule's cases.

    The cases run with all rules in force (bundled, ``REPLICATE_EXPLAIN_RULES``, and the checked
    files, which win on the same id), as they would at run time. Returns the checked rules, the
    problems, and the number of cases run.
    """
    from .._common import rule_files
    from .._matcher import case_snapshot, explain_snapshot
    from .._rules import load_file, load_rules

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(rule_files(path))
        else:
            files.append(path)
    problems: list[RuleError] = []
    checked: dict[str, Rule] = {}
    for path in files:
        try:
            rule = load_file(path)
        except RuleErrors as error:
            problems.extend(error.errors)
            continue
        except RuleError as error:
            problems.append(error)
            continue
        if rule.id in checked:
            problems.append(
                RuleError(str(path), "", f"duplicate rule id {rule.id!r}: also defined in {checked[rule.id].path}")
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
                    RuleError(
                        rule.path,
                        f"{where}.expect",
                        f"case {case.name!r} expects {case.expect!r}, which is not a known rule id",
                        line=_case_line(rule.path, index),
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
                    RuleError(
                        rule.path,
                        where,
                        f"case {case.name!r} expected {expected}, got {shown}{also}",
                        line=_case_line(rule.path, index),
                    )
                )
    return list(checked.values()), problems, cases


def _check(args: argparse.Namespace) -> int:
    from .._rules import bundled_rules_dir, user_rule_dirs

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
                        "problem": p.problem + (f" ({p.hint})" if p.hint else ""),
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


SKELETON = """\
# A replicate-explain rule: the file name, {id}.yaml, is its id. The reference for every key
# and fact is docs/RULES.md. Replace each TODO, then check the file:
#   replicate-explain rules check {path}
# and use it with REPLICATE_EXPLAIN_RULES={directory}
title: "TODO: one line that states the problem (not the fix)"
severity: error
match:
  exceptions:
    # TODO: a dotted class name on the exception's MRO, and a regular expression its message matches.
    - type: replicate.exceptions.ReplicateError
      message: "TODO: a phrase of the error message"
  # facts:                  # optional, all must hold; every fact and its values: docs/RULES.md
  #   token.state: set
  # client: ">=1.0,<2"      # optional: the replicate versions where this cause happens
summary: >-
  TODO: what happened, in the reader's terms (the panel's first paragraph).
why: >-
  TODO: why it happens (shown with REPLICATE_EXPLAIN_DETAIL=full and by explain --rule).
fix:
  - "TODO: the first step of the fix."
  - "TODO: the next step."
examples:
  - broken: |
      import replicate

      # TODO: the smallest program that fails this way
      output = replicate.run("owner/model", input={{"prompt": "TODO"}})
    fixed: |
      import replicate

      # TODO: the same program, fixed
      output = replicate.run("owner/model", input={{"prompt": "TODO"}})
references:
  - "TODO: a link that explains more, e.g. https://replicate.com/docs"
cases:
  # Each case is a situation the matcher must explain as `expect` (null: nothing, or another id).
  - name: "TODO: the failure this rule explains"
    expect: {id}
    client: "1.0.7"
    environ: {{REPLICATE_API_TOKEN: "r8_0000000000000000000000000000000000000"}}
    exceptions:
      - type: replicate.exceptions.ReplicateError
        message: "TODO: a phrase of the error message, as the client raises it"
  - name: another error of the client is not this rule's business
    expect: null
    client: "1.0.7"
    environ: {{REPLICATE_API_TOKEN: "r8_0000000000000000000000000000000000000"}}
    exceptions:
      - type: replicate.exceptions.ReplicateError
        message: "The model is busy: try again later"
"""


def new_rule(rule_id: str, directory: Path, *, force: bool = False) -> Path:
    """Write a skeleton rule ``directory/ID.yaml`` that passes ``rules check``; return its path.

    Raises :class:`UsageError` for an id that is not kebab-case, the id of a bundled rule (a user
    rule with it replaces the bundled one) or a file that exists, unless ``force``.
    """
    from .._rules import ID_PATTERN, bundled_rules_dir, load_rules

    if not ID_PATTERN.fullmatch(rule_id):
        raise UsageError(f"{rule_id!r} is not a rule id; expected kebab-case such as 'proxy-strips-auth'")
    path = directory / f"{rule_id}.yaml"
    if not force:
        if load_rules([bundled_rules_dir()]).get(rule_id) is not None:
            raise UsageError(
                f"{rule_id!r} is a bundled rule, which a rule with that id replaces; "
                "choose another id, or pass --force to replace it"
            )
        if os.path.lexists(path):  # a dangling symbolic link exists too: never write through it
            raise UsageError(f"{path} exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    text = SKELETON.format(id=rule_id, path=path, directory=directory)
    try:
        with open(path, "w" if force else "x", encoding="utf-8") as handle:  # "x": created by us, or an error
            handle.write(text)
    except FileExistsError:
        raise UsageError(f"{path} exists; pass --force to overwrite it") from None
    return path


def _new(args: argparse.Namespace) -> int:
    path = new_rule(args.id, Path(args.dir), force=args.force)
    write(
        f"wrote {path}: replace each TODO (docs/RULES.md is the reference), then run\n"
        f"  replicate-explain rules check {path}\n"
    )
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``rules`` and its sub-subcommands."""
    parser = subparsers.add_parser(
        "rules",
        help="list, show and check the explanation rules",
        description="List, show and validate the rules (YAML files) that explain failures.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(handler=lambda _args: _usage(parser))
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="list the bundled and user rules",
        description=("List every rule in force: bundled ones and those from REPLICATE_EXPLAIN_RULES."),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_format(listing, DATA_FORMAT_CHOICES)
    listing.set_defaults(handler=_list)
    show = actions.add_parser(
        "show",
        help="show one rule in full",
        description="Print the full explanation of one rule: every example for every client range.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
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
        formatter_class=HelpFormatter,
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="a rule file or a directory of rule files")
    add_format(check, DATA_FORMAT_CHOICES)
    check.set_defaults(handler=_check)
    new = actions.add_parser(
        "new",
        help="write a skeleton rule file",
        description=(
            "Write ID.yaml, a skeleton rule that passes `rules check`, with a TODO at each place to "
            "fill in. The id is kebab-case and, without --force, not the id of a bundled rule."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    new.add_argument("id", metavar="ID", help="the new rule's id, e.g. proxy-strips-auth")
    new.add_argument("--dir", default=".", metavar="DIR", help="where to write ID.yaml (default: here)")
    new.add_argument("--force", action="store_true", help="overwrite the file, or use a bundled rule's id")
    new.set_defaults(handler=_new)


def _usage(parser: argparse.ArgumentParser) -> int:
    import sys

    parser.print_help(sys.stderr)
    return 2
