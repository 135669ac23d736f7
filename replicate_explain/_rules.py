"""Rules are data: one YAML file per cause, validated against a strict schema.

``load_rules()`` reads the bundled ``rules/`` directory and the user directories named by
``REPLICATE_EXPLAIN_RULES`` (an ``os.pathsep``-separated list). A malformed file becomes a
:class:`~replicate_explain.RuleError` naming the file, line, key path and what was expected;
the other files keep working. Files are read with PyYAML's safe loader (``yaml.safe_load``, in
its libyaml C version when available): no code ever runs.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._common import rule_files
from ._errors import RuleError
from ._snapshot import ADAPTER_FACTS, FACTS, FactValue

RULES_ENV = "REPLICATE_EXPLAIN_RULES"
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SEVERITIES = ("error", "warning")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")

# The schema: for each mapping, its keys and whether each is required.
_TOP_KEYS = {
    "title": True,
    "severity": False,
    "priority": False,
    "match": True,
    "summary": True,
    "why": True,
    "fix": True,
    "examples": True,
    "workaround": False,
    "prevention": False,
    "references": False,
    "cases": True,
}
_MATCH_KEYS = {"exceptions": True, "facts": False, "client": False, "python": False}
_PATTERN_KEYS = {"type": True, "message": False, "attributes": False}
_EXAMPLE_KEYS = {
    "client": False,
    "broken": True,
    "fixed": True,
    "environ": False,
    "fixed_environ": False,
    "files": False,
    "requires": False,
}
_CASE_KEYS = {
    "name": True,
    "expect": True,
    "client": False,
    "python": False,
    "environ": False,
    "sent": False,
    "dotenv": False,
    "exceptions": True,
    "facts": False,
}
_CASE_EXC_KEYS = {"type": True, "mro": False, "message": False, "attributes": False, "in_replicate": False}


@dataclass(frozen=True)
class ExceptionPattern:
    """One exception shape: a dotted class name on the MRO, an optional message regex, attributes."""

    type: str
    message: re.Pattern[str] | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class CaseException:
    """An exception described in a rule case."""

    type: str
    bases: tuple[str, ...]
    """Further dotted class names on its MRO (YAML key ``mro``)."""
    message: str
    attributes: Mapping[str, str]
    in_replicate: bool = True
    """Whether the traceback runs through the replicate package (default: yes)."""


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Rule:
    """One validated rule file.

    ``exceptions``, ``facts``, ``client`` and ``python`` are its ``match``; when ``match`` is a
    list of alternatives they are the first one and ``alternatives`` holds the others.
    """

    id: str
    path: str
    title: str
    severity: str
    priority: int
    exceptions: tuple[ExceptionPattern, ...]
    facts: Mapping[str, tuple[FactValue, ...]]
    client: str
    python: str
    summary: str
    why: str
    fix: tuple[str, ...]
    examples: tuple[Example, ...]
    workaround: str
    prevention: str
    references: tuple[str, ...]
    cases: tuple[Case, ...]
    alternatives: tuple[Match, ...] = ()

    @property
    def matches(self) -> tuple[Match, ...]:
        """Every way the rule matches (OR'd): its ``match``, or each item of a ``match`` list."""
        first = Match(self.exceptions, self.facts, self.client, self.python)
        return (first, *self.alternatives)

    @property
    def specificity(self) -> int:
        """How specific the rule is: its most specific match plus its ``priority``."""
        return max(match.specificity for match in self.matches) + self.priority


@dataclass(frozen=True)
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


class _Source:
    """A rule file's path and text; the positions of its keys, for ``file:line`` messages, are
    worked out only when there is an error to report (a second parse costs as much as the first).
    """

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._lines: dict[str, int] | None = None

    @property
    def lines(self) -> dict[str, int]:
        if self._lines is None:
            self._lines = _positions(self.text)
        return self._lines

    def error(self, key: str, problem: str, hint: str | None = None) -> RuleError:
        line = self.lines.get(key)
        if line is None:
            parent = key
            while line is None and parent:
                parent = parent.rpartition(".")[0] if "." in parent else ""
                parent = re.sub(r"\[\d+\]$", "", parent) if parent.endswith("]") else parent
                line = self.lines.get(parent)
        return RuleError(self.path, key, problem, line=line, hint=hint)


def _positions(text: str) -> dict[str, int]:
    """Map key paths such as ``match.exceptions[0].type`` to 1-based line numbers."""
    import yaml

    lines: dict[str, int] = {}

    seen: set[int] = set()

    def walk(node: Any, prefix: str) -> None:
        if id(node) in seen:  # an alias: its node was walked already (never walk it again)
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                key = f"{prefix}[{index}]"
                lines[key] = item.start_mark.line + 1
                walk(item, key)

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), "")
    except yaml.YAMLError:
        pass
    return lines


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _check_keys(src: _Source, data: Any, schema: Mapping[str, bool], prefix: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise src.error(prefix or "(top level)", f"expected a mapping, got {_kind(data)}")
    for key in data:
        if not isinstance(key, str) or key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            raise src.error(
                _join(prefix, str(key)),
                f"unknown key; expected one of: {', '.join(schema)}",
                hint,
            )
    for key, required in schema.items():
        if required and key not in data:
            needed = ", ".join(name for name, must in schema.items() if must)
            raise src.error(_join(prefix, key), f"missing required key; expected all of: {needed}")
    return data


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _text(src: _Source, data: Mapping[str, Any], key: str, prefix: str = "", default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise src.error(_join(prefix, key), f"expected a non-empty string, got {_kind(value)}")
    return value.strip("\n") if "\n" in value.strip("\n") else value.strip()


def _text_list(src: _Source, data: Mapping[str, Any], key: str, required: bool, prefix: str = "") -> tuple[str, ...]:
    value = data.get(key, [])
    where = _join(prefix, key)
    if not isinstance(value, list) or (required and not value):
        raise src.error(where, f"expected a {'non-empty ' if required else ''}list of strings, got {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise src.error(f"{where}[{index}]", f"expected a non-empty string, got {_kind(item)}")
    return tuple(item.strip() for item in value)


def _specifier(src: _Source, value: Any, key: str) -> str:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise src.error(key, f"expected a version specifier string such as '>=1.0,<2', got {_kind(value)}")
    try:
        SpecifierSet(value)
    except InvalidSpecifier as error:
        raise src.error(key, f"invalid version specifier {value!r}: {error}; expected e.g. '>=0.14,<0.15.4'") from None
    return value


def _version(src: _Source, value: Any, key: str) -> str | None:
    from packaging.version import InvalidVersion, Version

    if value is None:
        return None
    try:
        Version(str(value))
    except InvalidVersion:
        raise src.error(key, f"invalid version {value!r}; expected a release such as '1.0.7'") from None
    return str(value)


def _regex(src: _Source, value: Any, key: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise src.error(key, f"expected a regular expression string, got {_kind(value)}")
    try:
        return re.compile(value)
    except re.error as error:
        raise src.error(key, f"invalid regular expression {value!r}: {error}") from None


def _scalar_map(src: _Source, value: Any, key: str) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise src.error(key, f"expected a mapping of names to values, got {_kind(value)}")
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or isinstance(item, (dict, list)) or item is None:
            raise src.error(_join(key, str(name)), f"expected a string or number, got {_kind(item)}")
        out[name] = str(item)
    return MappingProxyType(out)


def _flag(src: _Source, value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise src.error(key, f"expected true or false, got {_kind(value)}")
    return value


def _dotted(src: _Source, value: Any, key: str) -> str:
    if not isinstance(value, str) or not _DOTTED.match(value):
        raise src.error(
            key, f"expected a dotted class name such as 'replicate.exceptions.ReplicateError', got {value!r}"
        )
    return value


def _patterns(src: _Source, value: Any, prefix: str = "match") -> tuple[ExceptionPattern, ...]:
    key = f"{prefix}.exceptions"
    if not isinstance(value, list) or not value:
        raise src.error(key, f"expected a non-empty list of exception shapes, got {_kind(value)}")
    patterns = []
    for index, item in enumerate(value):
        prefix = f"{key}[{index}]"
        item = _check_keys(src, item, _PATTERN_KEYS, prefix)
        patterns.append(
            ExceptionPattern(
                type=_dotted(src, item["type"], f"{prefix}.type"),
                message=_regex(src, item.get("message"), f"{prefix}.message"),
                attributes=_scalar_map(src, item.get("attributes"), f"{prefix}.attributes"),
            )
        )
    return tuple(patterns)


def _facts(src: _Source, value: Any, prefix: str = "match") -> Mapping[str, tuple[FactValue, ...]]:
    key = f"{prefix}.facts"
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise src.error(key, f"expected a mapping of fact names to values, got {_kind(value)}")
    out: dict[str, tuple[FactValue, ...]] = {}
    for name, allowed in value.items():
        if name not in FACTS:
            close = difflib.get_close_matches(str(name), list(FACTS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            raise src.error(f"{key}.{name}", f"unknown fact; expected one of: {', '.join(FACTS)}", hint)
        values = allowed if isinstance(allowed, list) else [allowed]
        if not values or any(isinstance(v, (dict, list, float)) for v in values):
            raise src.error(
                f"{key}.{name}", "expected a value or a non-empty list of values (strings, numbers, booleans, null)"
            )
        out[name] = tuple(values)
    return MappingProxyType(out)


def _case_facts(src: _Source, value: Any, key: str) -> Mapping[str, FactValue]:
    """A case's adapter facts: names from ``ADAPTER_FACTS``, scalar values."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise src.error(key, f"expected a mapping of fact names to values, got {_kind(value)}")
    out: dict[str, FactValue] = {}
    for name, item in value.items():
        if name not in ADAPTER_FACTS:
            close = difflib.get_close_matches(str(name), list(ADAPTER_FACTS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            raise src.error(
                f"{key}.{name}",
                f"not a fact a case can set; expected one of: {', '.join(ADAPTER_FACTS)} "
                "(the others follow from the case's environ, client and exceptions)",
                hint,
            )
        if isinstance(item, (dict, list, float)):
            raise src.error(f"{key}.{name}", f"expected a string, number, boolean or null, got {_kind(item)}")
        out[name] = item
    return MappingProxyType(out)


def _examples(src: _Source, value: Any) -> tuple[Example, ...]:
    if not isinstance(value, list) or not value:
        raise src.error("examples", f"expected a non-empty list of broken/fixed examples, got {_kind(value)}")
    out = []
    for index, item in enumerate(value):
        prefix = f"examples[{index}]"
        item = _check_keys(src, item, _EXAMPLE_KEYS, prefix)
        out.append(
            Example(
                client=_specifier(src, item.get("client"), f"{prefix}.client"),
                broken=_code(src, item, "broken", prefix),
                fixed=_code(src, item, "fixed", prefix),
                environ=_scalar_map(src, item.get("environ"), f"{prefix}.environ"),
                fixed_environ=_scalar_map(src, item.get("fixed_environ"), f"{prefix}.fixed_environ"),
                files=_files(src, item.get("files"), f"{prefix}.files"),
                requires=_text_list(src, item, "requires", required=False, prefix=prefix),
            )
        )
    return tuple(out)


def _files(src: _Source, value: Any, key: str) -> Mapping[str, str]:
    files = _scalar_map(src, value, key)
    for name in files:
        parts = name.replace("\\", "/").split("/")
        if not name or name.startswith(("/", "~")) or ".." in parts or ":" in name:
            raise src.error(
                _join(key, name),
                f"expected a relative path inside the working directory such as '.env', got {name!r}",
            )
    return files


def _matches(src: _Source, value: Any) -> tuple[Match, ...]:
    if isinstance(value, list) and not value:
        raise src.error("match", "expected a mapping, or a non-empty list of mappings (alternatives)")
    items = value if isinstance(value, list) else [value]
    out = []
    for index, item in enumerate(items):
        prefix = f"match[{index}]" if isinstance(value, list) else "match"
        item = _check_keys(src, item, _MATCH_KEYS, prefix)
        out.append(
            Match(
                exceptions=_patterns(src, item["exceptions"], prefix),
                facts=_facts(src, item.get("facts"), prefix),
                client=_specifier(src, item.get("client"), f"{prefix}.client"),
                python=_specifier(src, item.get("python"), f"{prefix}.python"),
            )
        )
    return tuple(out)


def _code(src: _Source, data: Mapping[str, Any], key: str, prefix: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise src.error(f"{prefix}.{key}", f"expected a non-empty block of code, got {_kind(value)}")
    return value.rstrip() + "\n"


def _cases(src: _Source, value: Any, rule_id: str) -> tuple[Case, ...]:
    if not isinstance(value, list) or not value:
        raise src.error("cases", f"expected a non-empty list of cases, got {_kind(value)}")
    out = []
    for index, item in enumerate(value):
        prefix = f"cases[{index}]"
        item = _check_keys(src, item, _CASE_KEYS, prefix)
        expect = item["expect"]
        if expect is not None and (not isinstance(expect, str) or not ID_PATTERN.match(expect)):
            raise src.error(f"{prefix}.expect", f"expected a rule id or null, got {expect!r}")
        dotenv = item.get("dotenv")
        if dotenv is not None and (not isinstance(dotenv, str) or not dotenv.strip()):
            raise src.error(
                f"{prefix}.dotenv", f"expected the path of a .env file such as '/home/me/app/.env', got {_kind(dotenv)}"
            )
        sent = item.get("sent", "unknown")
        if sent not in ("absent", "matches", "differs", "unknown"):
            raise src.error(f"{prefix}.sent", f"expected absent, matches, differs or unknown, got {sent!r}")
        excs = item["exceptions"]
        if not isinstance(excs, list) or not excs:
            raise src.error(f"{prefix}.exceptions", f"expected a non-empty list of exceptions, got {_kind(excs)}")
        described = []
        for number, exc in enumerate(excs):
            where = f"{prefix}.exceptions[{number}]"
            exc = _check_keys(src, exc, _CASE_EXC_KEYS, where)
            mro = exc.get("mro", [])
            if not isinstance(mro, list):
                raise src.error(f"{where}.mro", f"expected a list of dotted class names, got {_kind(mro)}")
            message = exc.get("message", "")
            if not isinstance(message, str):
                raise src.error(f"{where}.message", f"expected a string, got {_kind(message)}")
            described.append(
                CaseException(
                    type=_dotted(src, exc["type"], f"{where}.type"),
                    bases=tuple(_dotted(src, m, f"{where}.mro") for m in mro),
                    message=message,
                    attributes=_scalar_map(src, exc.get("attributes"), f"{where}.attributes"),
                    in_replicate=_flag(src, exc.get("in_replicate", True), f"{where}.in_replicate"),
                )
            )
        out.append(
            Case(
                name=_text(src, item, "name", prefix),
                expect=expect,
                client=_version(src, item.get("client"), f"{prefix}.client"),
                python=_version(src, item.get("python"), f"{prefix}.python"),
                environ=_scalar_map(src, item.get("environ"), f"{prefix}.environ"),
                sent=sent,
                exceptions=tuple(described),
                dotenv=dotenv,
                facts=_case_facts(src, item.get("facts"), f"{prefix}.facts"),
            )
        )
    if not any(case.expect == rule_id for case in out):
        raise src.error("cases", f"expected at least one case with 'expect: {rule_id}'")
    if all(case.expect == rule_id for case in out):
        raise src.error("cases", "expected at least one negative case (expect another id or null)")
    return tuple(out)


def _pure_yaml_error(text: str) -> Exception:
    """The pure-Python parser's error for ``text``: its messages are clearer than libyaml's,
    and the same on every machine."""
    import yaml

    try:
        yaml.safe_load(text)
    except yaml.YAMLError as error:
        return error
    return yaml.YAMLError("the document could not be parsed")


def _alias_line(text: str) -> int | None:
    """The line of the first YAML alias in ``text`` (``None``: none, or not valid YAML)."""
    if "*" not in text:  # every alias starts with "*": the usual rule file is not parsed twice
        return None
    import yaml

    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                return mark.line + 1 if mark is not None else 1
    except yaml.YAMLError:
        return None
    return None


def parse_rule(path: Path, text: str) -> Rule:
    """Validate one rule file's text; raise :class:`RuleError` on the first problem."""
    import yaml

    rule_id = path.stem
    src = _Source(str(path), text)
    if not ID_PATTERN.match(rule_id):
        raise src.error(
            "", f"file name {path.name!r} is not a rule id; expected kebab-case such as 'token-whitespace.yaml'"
        )
    alias_line = _alias_line(text)
    if alias_line is not None:
        # An anchor used many times over (an "alias bomb" of 500 bytes) costs gigabytes to walk.
        raise RuleError(
            str(path), "", "uses a YAML alias (*name); rule files may not use anchors or aliases", line=alias_line
        )
    try:
        # The safe loader, in libyaml's C version when PyYAML has it (ten times faster).
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        error = _pure_yaml_error(text)
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise RuleError(
            str(path), "", f"not valid YAML: {getattr(error, 'problem', None) or error}", line=line
        ) from None
    data = _check_keys(src, data, _TOP_KEYS, "")
    matches = _matches(src, data["match"])
    severity = data.get("severity", "error")
    if severity not in SEVERITIES:
        raise src.error("severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise src.error("priority", f"expected a whole number, got {_kind(priority)}")
    return Rule(
        id=rule_id,
        path=str(path),
        title=_text(src, data, "title"),
        severity=severity,
        priority=priority,
        exceptions=matches[0].exceptions,
        facts=matches[0].facts,
        client=matches[0].client,
        python=matches[0].python,
        summary=_text(src, data, "summary"),
        why=_text(src, data, "why"),
        fix=_text_list(src, data, "fix", required=True),
        examples=_examples(src, data["examples"]),
        workaround=_text(src, data, "workaround") if "workaround" in data else "",
        prevention=_text(src, data, "prevention") if "prevention" in data else "",
        references=_text_list(src, data, "references", required=False),
        cases=_cases(src, data["cases"], rule_id),
        alternatives=matches[1:],
    )


def bundled_rules_dir() -> Path:
    """The bundled rules: inside the package in a wheel, at the repository top in a checkout."""
    here = Path(__file__).resolve().parent
    inside = here / "rules"
    return inside if inside.is_dir() else here.parent / "rules"


def user_rule_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Directories named by ``REPLICATE_EXPLAIN_RULES``, in order."""
    env = os.environ if environ is None else environ
    return [Path(part).expanduser() for part in env.get(RULES_ENV, "").split(os.pathsep) if part.strip()]


#: Rule files read per directory at most: a crash must not wait for thousands of files.
MAX_RULE_FILES = 1000


def load_file(path: Path) -> Rule:
    """Read and validate one rule file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RuleError(str(path), "", f"cannot be read: {error}") from None
    return parse_rule(path, text)


def load_rules(directories: Sequence[Path] | None = None, environ: Mapping[str, str] | None = None) -> RuleSet:
    """Load the bundled rules, then user rules (a user rule overrides a bundled one of the same id)."""
    if directories is None:
        directories = [bundled_rules_dir(), *user_rule_dirs(environ)]
    rules: dict[str, Rule] = {}
    errors: list[RuleError] = []
    overridden: dict[str, str] = {}
    for index, directory in enumerate(directories):
        try:
            files = rule_files(directory)
        except OSError as error:
            reason = (
                "does not exist"
                if isinstance(error, FileNotFoundError)
                else f"cannot be listed: {error.strerror or error}"
            )
            errors.append(
                RuleError(
                    str(directory),
                    "",
                    f"rule directory {reason}; expected a directory of *.yaml rule files (check {RULES_ENV})",
                )
            )
            continue
        if len(files) > MAX_RULE_FILES:
            errors.append(
                RuleError(
                    str(directory),
                    "",
                    f"holds {len(files)} rule files; only the first {MAX_RULE_FILES} (by name) were read",
                )
            )
            files = files[:MAX_RULE_FILES]
        for path in files:
            try:
                rule = load_file(path)
            except RuleError as error:
                errors.append(error)
                continue
            except Exception as error:  # a bug or an exotic YAML failure: never lose the other rules
                errors.append(RuleError(str(path), "", f"could not be loaded: {type(error).__name__}: {error}"))
                continue
            if rule.id in rules and index > 0:
                overridden[rule.id] = rule.path
            rules[rule.id] = rule
    return RuleSet(tuple(rules.values()), tuple(errors), MappingProxyType(overridden))
