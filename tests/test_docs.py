"""The README and the pages in ``docs/`` name only commands, flags and variables that exist.

What is checked, in README.md and every ``docs/*.md``:

- every ``replicate-explain ...`` (or ``python -m replicate_explain ...``) written as code (a
  code span or a fenced block), and every command in the first column of a table whose header
  says ``command`` (written there without the program name): the subcommand (and the action of
  ``rules``) exists in the real argparse parser, and so does every flag after it;
- every ``REPLICATE_EXPLAIN...`` name anywhere in the text, and every name in the first column
  of a table whose header says ``variable``: the package reads it (a string literal with that
  name in ``replicate_explain/``).

Words after a command that are not flags (``FILE``, ``ID``, a rule id) are values, not checked.
A name that is code but not a command (``replicate-explain: token-unset: ...``, output shown
in a block) is not taken for one: a command word is lowercase letters and hyphens only.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from clients import REPO_ROOT

from replicate_explain.cli import build_parser

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
PACKAGE = REPO_ROOT / "replicate_explain"
README_MAX_LINES = 150

_FENCE = re.compile(r"^\s*(```|~~~)")
_SPAN = re.compile(r"(`+)(.+?)\1")
_PROGRAM = re.compile(r"(?<![\w/.-])(?:replicate-explain|python3? -m replicate_explain)(?![\w.-])")
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")
_FLAG = re.compile(r"^--?[A-Za-z][\w-]*$")
_STOP = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1", "#"}
_VARIABLE = re.compile(r"\bREPLICATE_EXPLAIN(?:_[A-Z0-9]+)*\b")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Command:
    """One parser of the command line: its flags and its subcommands (``rules``: actions)."""

    flags: frozenset[str]
    subcommands: dict[str, Command]


def _command(parser: argparse.ArgumentParser) -> Command:
    flags: set[str] = set()
    subcommands: dict[str, Command] = {}
    for action in parser._actions:
        flags.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            subcommands.update({name: _command(sub) for name, sub in action.choices.items()})
    return Command(frozenset(flags), subcommands)


def read_variables(package: Path = PACKAGE) -> frozenset[str]:
    """The environment variables the package names as string literals (``"NO_COLOR"``)."""
    found: set[str] = set()
    for path in package.rglob("*.py"):
        found.update(re.findall(r"""["']([A-Z][A-Z0-9_]*)["']""", path.read_text(encoding="utf-8")))
    return frozenset(found)


def _table_rows(lines: list[str], header: str) -> list[str]:
    """The first cells of the body rows of every table whose first header cell is ``header``."""
    cells: list[str] = []
    inside = False
    for line in lines:
        if not line.lstrip().startswith("|"):
            inside = False
            continue
        first = line.strip().strip("|").split("|")[0].strip()
        if first.lower() == header:
            inside = True
        elif inside and not set(first) <= set("-: "):
            cells.append(re.sub(r"(?<!\\)\|.*", "", line.strip()[1:]))  # up to the next unescaped |
    return cells


def code_texts(text: str) -> list[str]:
    """The code of a markdown text: the lines of fenced blocks and the inline code spans."""
    found: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            found.append(line)
        else:
            found.extend(match.group(2).strip() for match in _SPAN.finditer(line))
    return found


def _invocations(text: str) -> list[str]:
    """Every command line of the program the text names: what follows the program's name."""
    found: list[str] = []
    for code in code_texts(text):
        for match in _PROGRAM.finditer(code):
            found.append(code[match.end() :])
    for cell in _table_rows(text.splitlines(), "command"):
        spans = (match.group(2).strip() for match in _SPAN.finditer(cell))
        found.extend(" " + span for span in spans if not _PROGRAM.match(span))  # those are counted above
    return found


def _tokens(rest: str) -> list[str]:
    tokens: list[str] = []
    for raw in rest.replace("\\|", " | ").split():
        if raw in _STOP or raw.startswith("#"):
            break
        tokens.append(raw.strip("[](){}\\,"))
    return tokens


def check_command(rest: str, root: Command) -> list[str]:
    """What is wrong with ``replicate-explain`` followed by ``rest`` (empty: nothing)."""
    tokens = _tokens(rest)
    if rest[:1] not in ("", " ", "\t") or (tokens and not (_WORD.match(tokens[0]) or _FLAG.match(tokens[0]))):
        return []  # not a command line: output such as "replicate-explain: token-unset: ..."
    command, path = root, ["replicate-explain"]
    problems: list[str] = []
    expect_subcommand = True  # until the first value (FILE, ID, ...)
    for token in tokens:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        if _FLAG.match(name):
            if name not in command.flags:
                flags = ", ".join(sorted(command.flags))
                problems.append(f"no flag {name} for `{' '.join(path)}` (it has: {flags})")
        elif command.subcommands and expect_subcommand and _WORD.match(token):
            if token not in command.subcommands:
                names = ", ".join(sorted(command.subcommands))
                problems.append(f"no command `{' '.join(path)} {token}` (there are: {names})")
                break
            command = command.subcommands[token]
            path.append(token)
        else:
            expect_subcommand = False
    return problems


def check_doc(name: str, text: str, root: Command, variables: frozenset[str]) -> list[str]:
    """Every command, flag or variable ``text`` names that does not exist, one line each, saying
    which file, which name, and what exists."""
    problems: list[str] = []
    for rest in _invocations(text):
        shown = " ".join(["replicate-explain", *_tokens(rest)])
        problems += [f"{name}: `{shown}`: {problem}" for problem in check_command(rest, root)]
    named = set(_VARIABLE.findall(text))
    for cell in _table_rows(text.splitlines(), "variable"):
        named.update(
            span.group(2).split("=", 1)[0]
            for span in _SPAN.finditer(cell)
            if _NAME.match(span.group(2).split("=", 1)[0])
        )
    ours = sorted(v for v in variables if v.startswith("REPLICATE_EXPLAIN"))
    for variable in sorted(named - variables):
        problems.append(
            f"{name}: variable {variable}: the package never reads it (its REPLICATE_EXPLAIN "
            f"variables: {', '.join(ours)})"
        )
    return problems


ROOT = _command(build_parser())
VARIABLES = read_variables()


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_the_docs_name_only_commands_flags_and_variables_that_exist(path: Path) -> None:
    """README.md and every docs page: each command, flag and variable they name exists."""
    name = str(path.relative_to(REPO_ROOT))
    assert check_doc(name, path.read_text(encoding="utf-8"), ROOT, VARIABLES) == []


def test_the_check_finds_what_does_not_exist() -> None:
    """A made-up page naming a missing command, action, flag and variable gets one line each,
    naming the file, the name and what exists; what exists, and output that only mentions the
    program, pass."""
    text = "\n".join(
        [
            "Run `replicate-explain doctor --online` or `replicate-explain frobnicate --x`.",
            "```bash",
            "replicate-explain explain --here --bogus app.log | head  # --not-checked",
            "python -m replicate_explain rules shwo ID",
            "replicate-explain rules check --format json rules/",
            "replicate-explain: token-unset: REPLICATE_API_TOKEN is not set",
            "```",
            "Set REPLICATE_EXPLAIN_DETAIL=full or REPLICATE_EXPLAIN_COLOUR=1.",
            "",
            "| command | what |",
            "|---|---|",
            "| `install [--user] [--method sitecustomize\\|pth]`, `status --verbose` | x |",
            "",
            "| variable | effect |",
            "|---|---|",
            "| `NO_COLOR` | plain |",
            "| `NO_COLOUR=1` | nothing |",
        ]
    )
    commands = ", ".join(sorted(ROOT.subcommands))
    ours = ", ".join(sorted(v for v in VARIABLES if v.startswith("REPLICATE_EXPLAIN")))
    assert check_doc("docs/MADE-UP.md", text, ROOT, VARIABLES) == [
        f"docs/MADE-UP.md: `replicate-explain frobnicate --x`: no command `replicate-explain frobnicate` "
        f"(there are: {commands})",
        "docs/MADE-UP.md: `replicate-explain explain --here --bogus app.log`: no flag --bogus for "
        "`replicate-explain explain` (it has: --client, --echo, --format, --help, --here, --rule, -h)",
        "docs/MADE-UP.md: `replicate-explain rules shwo ID`: no command `replicate-explain rules shwo` "
        "(there are: check, list, new, show)",
        "docs/MADE-UP.md: `replicate-explain status --verbose`: no flag --verbose for "
        "`replicate-explain status` (it has: --format, --help, -h)",
        f"docs/MADE-UP.md: variable NO_COLOUR: the package never reads it (its REPLICATE_EXPLAIN variables: {ours})",
        "docs/MADE-UP.md: variable REPLICATE_EXPLAIN_COLOUR: the package never reads it (its "
        f"REPLICATE_EXPLAIN variables: {ours})",
    ]


def test_the_readme_is_short() -> None:
    """The README is read in two minutes: at most 150 lines; the long parts live in docs/."""
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into a page of docs/"
