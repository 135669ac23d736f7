"""The rule-file schema: the keys each mapping takes, and the check of each value.

Every check raises a :class:`~replicate_explain.RuleError` naming the file, line, key path,
what was expected and, for a near miss, the likely intended key. ``Source.check`` runs one
check and records its error instead of stopping, so that a file's every mistake is reported
in one run (one error per key path). The checks return plain values (strings, patterns,
mappings); ``_rules`` assembles them into the rule model. PyYAML and packaging are imported
inside the functions that need them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Callable, TypeVar

from ._errors import RuleError
from ._facts import ADAPTER_FACTS, FACTS, FactValue

T = TypeVar("T")

DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")

# The schema: for each mapping, its keys and whether each is required.
TOP_KEYS = {
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
MATCH_KEYS = {"exceptions": True, "facts": False, "client": False, "python": False}
PATTERN_KEYS = {"type": True, "message": False, "attributes": False}
EXAMPLE_KEYS = {
    "client": False,
    "broken": True,
    "fixed": True,
    "environ": False,
    "fixed_environ": False,
    "files": False,
    "requires": False,
}
CASE_KEYS = {
    "name": True,
    "expect": True,
    "client": False,
    "python": False,
    "environ": False,
    "sent": False,
    "dotenv": False,
    "exceptions": True,
    "facts": False,
    "wrapper": False,
}
CASE_WRAPPER_KEYS = {"name": True, "token_passed": False, "token_ignored": False}
CASE_EXC_KEYS = {"type": True, "mro": False, "message": False, "attributes": False, "in_replicate": False}


class Source:
    """A rule file's path and text, and the problems found in it so far.

    The positions of its keys, for ``file:line`` messages, are worked out only when there is an
    error to report (a second parse costs as much as the first).
    """

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._lines: dict[str, int] | None = None
        self.problems: list[RuleError] = []
        self.covered: set[str] = set()
        """Key paths already explained (a misspelt key's hint names the key it stands for)."""

    def record(self, error: RuleError) -> None:
        """Keep ``error`` unless its key path, or a key it lies under, already has a problem."""
        for key in (*(p.key for p in self.problems), *self.covered):
            if key and (error.key == key or error.key.startswith((f"{key}.", f"{key}["))):
                return
        self.problems.append(error)

    def check(self, default: T, run: Callable[..., T], *args: Any) -> T:
        """``run(*args)``, or ``default`` after recording the :class:`RuleError` it raised."""
        try:
            return run(*args)
        except RuleError as error:
            self.record(error)
            return default

    def failed(self, prefix: str) -> bool:
        """Whether a problem was recorded at or under the key path ``prefix``."""
        return any(p.key == prefix or p.key.startswith((f"{prefix}.", f"{prefix}[")) for p in self.problems)

    @property
    def lines(self) -> dict[str, int]:
        if self._lines is None:
            self._lines = positions(self.text)
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


def positions(text: str) -> dict[str, int]:
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


def _close(word: str, choices: list[str], n: int = 1) -> list[str]:
    """``difflib.get_close_matches`` (imported only when a file has an unknown key or fact)."""
    import difflib

    return difflib.get_close_matches(word, choices, n=n)


def join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def check_keys(src: Source, data: Any, schema: Mapping[str, bool], prefix: str) -> Mapping[str, Any]:
    """Record every unknown and every missing key of the mapping ``data``; raise if it is none.

    A missing key that a misspelt one's "did you mean" names is not reported twice: the
    checks of its value that follow are silenced too. Callers read keys with ``.get``.
    """
    if not isinstance(data, dict):
        raise src.error(prefix or "(top level)", f"expected a mapping, got {kind(data)}")
    meant: set[str] = set()
    for key in data:
        if not isinstance(key, str) or key not in schema:
            close = _close(str(key), list(schema), n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            if close and close[0] not in data:
                meant.add(close[0])
            src.record(src.error(join(prefix, str(key)), f"unknown key; expected one of: {', '.join(schema)}", hint))
    for key, required in schema.items():
        if key in meant:
            src.covered.add(join(prefix, key))
        elif required and key not in data:
            needed = ", ".join(name for name, must in schema.items() if must)
            src.record(src.error(join(prefix, key), f"missing required key; expected all of: {needed}"))
    return data


def kind(value: Any) -> str:
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


def text(src: Source, data: Mapping[str, Any], key: str, prefix: str = "", default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise src.error(join(prefix, key), f"expected a non-empty string, got {kind(value)}")
    return value.strip("\n") if "\n" in value.strip("\n") else value.strip()


def text_list(src: Source, data: Mapping[str, Any], key: str, required: bool, prefix: str = "") -> tuple[str, ...]:
    value = data.get(key, [])
    where = join(prefix, key)
    if not isinstance(value, list) or (required and not value):
        raise src.error(where, f"expected a {'non-empty ' if required else ''}list of strings, got {kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise src.error(f"{where}[{index}]", f"expected a non-empty string, got {kind(item)}")
    return tuple(item.strip() for item in value)


def specifier(src: Source, value: Any, key: str) -> str:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise src.error(key, f"expected a version specifier string such as '>=1.0,<2', got {kind(value)}")
    try:
        SpecifierSet(value)
    except InvalidSpecifier as error:
        raise src.error(key, f"invalid version specifier {value!r}: {error}; expected e.g. '>=0.14,<0.15.4'") from None
    return value


def version(src: Source, value: Any, key: str) -> str | None:
    from packaging.version import InvalidVersion, Version

    if value is None:
        return None
    try:
        Version(str(value))
    except InvalidVersion:
        raise src.error(key, f"invalid version {value!r}; expected a release such as '1.0.7'") from None
    return str(value)


def regex(src: Source, value: Any, key: str) -> str | None:
    """A valid regular expression's source (compiled here to check it; ``re`` keeps it compiled)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise src.error(key, f"expected a regular expression string, got {kind(value)}")
    try:
        re.compile(value)
        return value
    except re.error as error:
        raise src.error(key, f"invalid regular expression {value!r}: {error}") from None


def scalar_map(src: Source, value: Any, key: str) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise src.error(key, f"expected a mapping of names to values, got {kind(value)}")
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or isinstance(item, (dict, list)) or item is None:
            raise src.error(join(key, str(name)), f"expected a string or number, got {kind(item)}")
        out[name] = str(item)
    return MappingProxyType(out)


def flag(src: Source, value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise src.error(key, f"expected true or false, got {kind(value)}")
    return value


def dotted(src: Source, value: Any, key: str) -> str:
    if not isinstance(value, str) or not DOTTED.fullmatch(value):
        raise src.error(
            key, f"expected a dotted class name such as 'replicate.exceptions.ReplicateError', got {value!r}"
        )
    return value


def facts(src: Source, value: Any, prefix: str = "match") -> Mapping[str, tuple[FactValue, ...]]:
    key = f"{prefix}.facts"
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise src.error(key, f"expected a mapping of fact names to values, got {kind(value)}")
    out: dict[str, tuple[FactValue, ...]] = {}
    for name, allowed in value.items():
        if name not in FACTS:
            close = _close(str(name), list(FACTS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            raise src.error(f"{key}.{name}", f"unknown fact; expected one of: {', '.join(FACTS)}", hint)
        values = allowed if isinstance(allowed, list) else [allowed]
        if not values or any(isinstance(v, (dict, list, float)) for v in values):
            raise src.error(
                f"{key}.{name}", "expected a value or a non-empty list of values (strings, numbers, booleans, null)"
            )
        out[name] = tuple(values)
    return MappingProxyType(out)


def case_facts(src: Source, value: Any, key: str) -> Mapping[str, FactValue]:
    """A case's adapter facts: names from ``ADAPTER_FACTS``, scalar values."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise src.error(key, f"expected a mapping of fact names to values, got {kind(value)}")
    out: dict[str, FactValue] = {}
    for name, item in value.items():
        if name not in ADAPTER_FACTS:
            close = _close(str(name), list(ADAPTER_FACTS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            raise src.error(
                f"{key}.{name}",
                f"not a fact a case can set; expected one of: {', '.join(ADAPTER_FACTS)} "
                "(the others follow from the case's environ, client and exceptions)",
                hint,
            )
        if isinstance(item, (dict, list, float)):
            raise src.error(f"{key}.{name}", f"expected a string, number, boolean or null, got {kind(item)}")
        out[name] = item
    return MappingProxyType(out)


def case_wrapper(src: Source, value: Any, key: str) -> tuple[str | None, Mapping[str, FactValue]]:
    """A case's wrapper: the library its frames show, and what a live failure observed of it
    (``token_passed``, ``token_ignored``: true, false or unknown) as ``wrapper.*`` facts."""
    from ._wrappers import BY_NAME

    if value is None:
        return None, MappingProxyType({})
    value = check_keys(src, value, CASE_WRAPPER_KEYS, key)
    name = value.get("name")
    if name not in BY_NAME:
        import difflib

        close = difflib.get_close_matches(str(name), list(BY_NAME), n=1)
        raise src.error(
            f"{key}.name",
            f"expected a wrapper library, one of: {', '.join(BY_NAME)}; got {name!r}",
            f"did you mean '{close[0]}'?" if close else None,
        )
    observed: dict[str, FactValue] = {}
    for item in ("token_passed", "token_ignored"):
        seen = value.get(item, "unknown")
        if seen not in (True, False, "unknown"):
            raise src.error(f"{key}.{item}", f"expected true, false or unknown, got {seen!r}")
        observed[f"wrapper.{item}"] = seen
    return str(name), MappingProxyType(observed)


def files(src: Source, value: Any, key: str) -> Mapping[str, str]:
    files = scalar_map(src, value, key)
    for name in files:
        parts = name.replace("\\", "/").split("/")
        if not name or name.startswith(("/", "~")) or ".." in parts or ":" in name:
            raise src.error(
                join(key, name),
                f"expected a relative path inside the working directory such as '.env', got {name!r}",
            )
    return files


def code(src: Source, data: Mapping[str, Any], key: str, prefix: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise src.error(f"{prefix}.{key}", f"expected a non-empty block of code, got {kind(value)}")
    return value.rstrip() + "\n"


def pure_yaml_error(text: str) -> Exception:
    """The pure-Python parser's error for ``text``: its messages are clearer than libyaml's,
    and the same on every machine."""
    import yaml

    try:
        yaml.safe_load(text)
    except yaml.YAMLError as error:
        return error
    return yaml.YAMLError("the document could not be parsed")
