"""Rules are data: the rule model, and loading one YAML file per cause into it.

The model is frozen dataclasses (:class:`Rule` holds every way it ``matches``); the checks of
each key and value are ``_rule_schema``'s. ``load_rules()`` reads the bundled ``rules/``
directory and the user directories named by ``REPLICATE_EXPLAIN_RULES`` (an
``os.pathsep``-separated list). A malformed file becomes a :class:`~replicate_explain.RuleError`
naming the file, line, key path and what was expected; the other files keep working. Files
are read with PyYAML's safe loader (``yaml.safe_load``, in its libyaml C version when
available): no code ever runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import _rule_schema as schema
from ._common import NotARegularFileError, read_regular_file, rule_files
from ._errors import RuleError, RuleErrors
from ._facts import FactValue
from ._rulemodel import Case as Case
from ._rulemodel import CaseException as CaseException
from ._rulemodel import Example as Example
from ._rulemodel import ExceptionPattern as ExceptionPattern
from ._rulemodel import Match as Match
from ._rulemodel import Rule as Rule
from ._rulemodel import RuleSet as RuleSet

RULES_ENV = "REPLICATE_EXPLAIN_RULES"
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SEVERITIES = ("error", "warning")
NOTHING: Mapping[str, Any] = MappingProxyType({})


def _patterns(src: schema.Source, value: Any, prefix: str = "match") -> tuple[ExceptionPattern, ...]:
    key = f"{prefix}.exceptions"
    if not isinstance(value, list) or not value:
        raise src.error(key, f"expected a non-empty list of exception shapes, got {schema.kind(value)}")
    patterns = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        item = src.check(NOTHING, schema.check_keys, src, item, schema.PATTERN_KEYS, where)
        patterns.append(
            ExceptionPattern(
                type=src.check("", schema.dotted, src, item.get("type"), f"{where}.type"),
                message=src.check(None, schema.regex, src, item.get("message"), f"{where}.message"),
                attributes=src.check(NOTHING, schema.scalar_map, src, item.get("attributes"), f"{where}.attributes"),
            )
        )
    return tuple(patterns)


def _examples(src: schema.Source, value: Any) -> tuple[Example, ...]:
    if not isinstance(value, list) or not value:
        raise src.error("examples", f"expected a non-empty list of broken/fixed examples, got {schema.kind(value)}")
    out = []
    for index, item in enumerate(value):
        where = f"examples[{index}]"
        item = src.check(NOTHING, schema.check_keys, src, item, schema.EXAMPLE_KEYS, where)
        out.append(
            Example(
                client=src.check("", schema.specifier, src, item.get("client"), f"{where}.client"),
                broken=src.check("", schema.code, src, item, "broken", where),
                fixed=src.check("", schema.code, src, item, "fixed", where),
                environ=src.check(NOTHING, schema.scalar_map, src, item.get("environ"), f"{where}.environ"),
                fixed_environ=src.check(
                    NOTHING, schema.scalar_map, src, item.get("fixed_environ"), f"{where}.fixed_environ"
                ),
                files=src.check(NOTHING, schema.files, src, item.get("files"), f"{where}.files"),
                requires=src.check((), schema.text_list, src, item, "requires", False, where),
            )
        )
    return tuple(out)


def _matches(src: schema.Source, value: Any) -> tuple[Match, ...]:
    if isinstance(value, list) and not value:
        raise src.error("match", "expected a mapping, or a non-empty list of mappings (alternatives)")
    items = value if isinstance(value, list) else [value]
    out = []
    for index, item in enumerate(items):
        prefix = f"match[{index}]" if isinstance(value, list) else "match"
        item = src.check(NOTHING, schema.check_keys, src, item, schema.MATCH_KEYS, prefix)
        out.append(
            Match(
                exceptions=src.check((), _patterns, src, item.get("exceptions"), prefix),
                facts=src.check(NOTHING, schema.facts, src, item.get("facts"), prefix),
                client=src.check("", schema.specifier, src, item.get("client"), f"{prefix}.client"),
                python=src.check("", schema.specifier, src, item.get("python"), f"{prefix}.python"),
            )
        )
    return tuple(out)


def _case_exception(src: schema.Source, exc: Any, where: str) -> CaseException:
    exc = schema.check_keys(src, exc, schema.CASE_EXC_KEYS, where)
    mro = exc.get("mro", [])
    if not isinstance(mro, list):
        src.record(src.error(f"{where}.mro", f"expected a list of dotted class names, got {schema.kind(mro)}"))
        mro = []
    message = exc.get("message", "")
    if not isinstance(message, str):
        src.record(src.error(f"{where}.message", f"expected a string, got {schema.kind(message)}"))
        message = ""
    return CaseException(
        type=src.check("", schema.dotted, src, exc.get("type"), f"{where}.type"),
        bases=tuple(src.check("", schema.dotted, src, m, f"{where}.mro") for m in mro),
        message=message,
        attributes=src.check(NOTHING, schema.scalar_map, src, exc.get("attributes"), f"{where}.attributes"),
        in_replicate=src.check(True, schema.flag, src, exc.get("in_replicate", True), f"{where}.in_replicate"),
    )


def _case(src: schema.Source, item: Any, prefix: str) -> Case:
    item = schema.check_keys(src, item, schema.CASE_KEYS, prefix)
    expect = item.get("expect")
    if expect is not None and (not isinstance(expect, str) or not ID_PATTERN.fullmatch(expect)):
        src.record(src.error(f"{prefix}.expect", f"expected a rule id or null, got {expect!r}"))
    dotenv = item.get("dotenv")
    if dotenv is not None and (not isinstance(dotenv, str) or not dotenv.strip()):
        src.record(
            src.error(
                f"{prefix}.dotenv",
                f"expected the path of a .env file such as '/home/me/app/.env', got {schema.kind(dotenv)}",
            )
        )
    sent = item.get("sent", "unknown")
    if sent not in ("absent", "matches", "differs", "unknown"):
        src.record(src.error(f"{prefix}.sent", f"expected absent, matches, differs or unknown, got {sent!r}"))
    no_wrapper: tuple[str | None, Mapping[str, FactValue]] = (None, NOTHING)
    wrapper = src.check(no_wrapper, schema.case_wrapper, src, item.get("wrapper"), f"{prefix}.wrapper")
    excs = item.get("exceptions")
    if not isinstance(excs, list) or not excs:
        src.record(
            src.error(f"{prefix}.exceptions", f"expected a non-empty list of exceptions, got {schema.kind(excs)}")
        )
        excs = []
    return Case(
        name=src.check("", schema.text, src, item, "name", prefix),
        expect=expect,
        client=src.check(None, schema.version, src, item.get("client"), f"{prefix}.client"),
        python=src.check(None, schema.version, src, item.get("python"), f"{prefix}.python"),
        environ=src.check(NOTHING, schema.scalar_map, src, item.get("environ"), f"{prefix}.environ"),
        sent=sent,
        exceptions=tuple(
            described
            for number, exc in enumerate(excs)
            if (described := src.check(None, _case_exception, src, exc, f"{prefix}.exceptions[{number}]")) is not None
        ),
        dotenv=dotenv,
        facts=src.check(NOTHING, schema.case_facts, src, item.get("facts"), f"{prefix}.facts"),
        wrapper=wrapper[0],
        wrapper_observed=wrapper[1],
    )


def _cases(src: schema.Source, value: Any, rule_id: str) -> tuple[Case, ...]:
    if not isinstance(value, list) or not value:
        raise src.error("cases", f"expected a non-empty list of cases, got {schema.kind(value)}")
    out = tuple(src.check(None, _case, src, item, f"cases[{index}]") for index, item in enumerate(value))
    if src.failed("cases"):
        return ()  # whether a positive and a negative case exist is unknown until the cases parse
    if not any(case.expect == rule_id for case in out if case is not None):
        raise src.error("cases", f"expected at least one case with 'expect: {rule_id}'")
    if all(case.expect == rule_id for case in out if case is not None):
        raise src.error("cases", "expected at least one negative case (expect another id or null)")
    return tuple(case for case in out if case is not None)


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
    """Validate one rule file's text; raise :class:`RuleErrors` (a :class:`RuleError`) holding
    every problem found, in line order."""
    import yaml

    rule_id = path.stem
    src = schema.Source(str(path), text)
    if not ID_PATTERN.fullmatch(rule_id):
        src.record(
            src.error(
                "", f"file name {path.name!r} is not a rule id; expected kebab-case such as 'token-whitespace.yaml'"
            )
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
        error = schema.pure_yaml_error(text)
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = f"not valid YAML: {getattr(error, 'problem', None) or error}"
        raise RuleErrors((*src.problems, RuleError(str(path), "", problem, line=line))) from None
    if not isinstance(data, dict):
        raise RuleErrors((*src.problems, src.error("(top level)", f"expected a mapping, got {schema.kind(data)}")))
    data = schema.check_keys(src, data, schema.TOP_KEYS, "")
    severity = data.get("severity", "error")
    if severity not in SEVERITIES:
        src.record(src.error("severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}"))
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        src.record(src.error("priority", f"expected a whole number, got {schema.kind(priority)}"))
    rule = Rule(
        id=rule_id,
        path=str(path),
        title=src.check("", schema.text, src, data, "title"),
        severity=severity,
        priority=priority,
        matches=src.check((), _matches, src, data.get("match")),
        summary=src.check("", schema.text, src, data, "summary"),
        why=src.check("", schema.text, src, data, "why"),
        fix=src.check((), schema.text_list, src, data, "fix", True),
        examples=src.check((), _examples, src, data.get("examples")),
        workaround=src.check("", schema.text, src, data, "workaround") if "workaround" in data else "",
        prevention=src.check("", schema.text, src, data, "prevention") if "prevention" in data else "",
        references=src.check((), schema.text_list, src, data, "references", False),
        cases=src.check((), _cases, src, data.get("cases"), rule_id),
    )
    if src.problems:
        # The file's own problems (its name) first, then by line; missing keys have no line.
        order = sorted(src.problems, key=lambda p: (bool(p.key), p.line is None, p.line or 0))
        raise RuleErrors(tuple(order))
    return rule


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


#: The largest rule file read, in bytes: a rule is a few KB; megabytes of YAML hold up a crash report.
MAX_RULE_BYTES = 256 * 1024


def load_file(path: Path) -> Rule:
    """Read and validate one regular rule file (a FIFO would block) of at most :data:`MAX_RULE_BYTES`."""
    try:
        data = read_regular_file(path, MAX_RULE_BYTES)
    except NotARegularFileError:
        raise RuleError(
            str(path), "", "is not a regular file (a directory, a FIFO or a device); expected a YAML rule file"
        ) from None
    except OSError as error:
        raise RuleError(str(path), "", f"cannot be read: {error}") from None
    if len(data) > MAX_RULE_BYTES:
        raise RuleError(
            str(path),
            "",
            f"is larger than {MAX_RULE_BYTES // 1024} KiB, the limit for a rule file (a rule is a few kilobytes); "
            "it was skipped: keep one rule per file and move anything else out of the rule directory",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RuleError(str(path), "", f"cannot be read: {error}") from None
    return parse_rule(path, text)


def load_rules(
    directories: Sequence[Path] | None = None,
    environ: Mapping[str, str] | None = None,
    bundled: Sequence[Rule] | None = None,
) -> RuleSet:
    """Load the bundled rules (``bundled``: already validated, from ``_rulecache``), then user
    rules (a user rule overrides a bundled one of the same id)."""
    preloaded: dict[int, Sequence[Rule]] = {}
    if directories is None:
        directories = [bundled_rules_dir(), *user_rule_dirs(environ)]
        preloaded = {0: bundled} if bundled is not None else {}
    rules: dict[str, Rule] = {}
    errors: list[RuleError] = []
    overridden: dict[str, str] = {}
    for index, directory in enumerate(directories):
        if index in preloaded:
            rules.update((rule.id, rule) for rule in preloaded[index])
            continue
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
