"""The bundled rules, validated once and kept as JSON in the user's cache directory.

Parsing the bundled YAML files and checking them against the schema is most of the first
explanation's cost; their validated form is the same every time until the files or the code
that reads them change. ``bundled_rules()`` keys it by a SHA-256 of the rule files' names and
contents and of the source of the modules that define the rule model and its schema, and
keeps it in ``$XDG_CACHE_HOME/replicate-explain/`` (default ``~/.cache/replicate-explain/``),
written atomically. A cache hit reads it with ``json`` (no PyYAML, no packaging, no regex
compiled until a pattern is searched). Anything wrong with the cache (missing, unreadable,
corrupt, stale, a read-only directory) falls back to parsing the files: never an error to
the user. User rules are never cached: they are validated on every load.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._rules import Case, CaseException, Example, ExceptionPattern, Match, Rule, bundled_rules_dir, load_rules

FORMAT = 1
"""The layout of a cache file; part of the key."""

#: The modules whose source decides what a validated rule is (the model, the schema, the facts).
SOURCES = ("_rules.py", "_rulemodel.py", "_rule_schema.py", "_facts.py", "_wrappers.py", "_rulecache.py")

#: A cache file for another key older than this is removed when a new one is written.
STALE_SECONDS = 7 * 24 * 3600


def cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_CACHE_HOME/replicate-explain`` (an absolute ``XDG_CACHE_HOME`` only, as the XDG
    spec says), else ``~/.cache/replicate-explain``; ``None`` when there is no home directory."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = os.path.join(Path.home(), ".cache")
        except (RuntimeError, KeyError, OSError):
            return None
    return Path(base) / "replicate-explain"


def cache_key(directory: Path) -> tuple[str, tuple[str, ...]] | None:
    """The key of the rules in ``directory`` and their file names; ``None`` when a file or a
    source cannot be read (the caller parses the files and reports what is wrong)."""
    digest = hashlib.sha256(f"replicate-explain rules {FORMAT}\0".encode())
    here = os.path.dirname(__file__)
    folder = str(directory)
    try:
        for name in SOURCES:
            digest.update(name.encode() + b"\0" + _read_bytes(os.path.join(here, name)) + b"\0")
        # The files ``rule_files`` lists (plain strings: pathlib costs more than the reading).
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if e.name.endswith((".yaml", ".yml")) and e.name[0] != ".")
        for name in names:
            digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
            digest.update(_read_bytes(os.path.join(folder, name)) + b"\0")
    except (OSError, ValueError):
        return None
    return digest.hexdigest(), tuple(names)


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _map(value: dict[str, Any]) -> Mapping[str, Any]:
    """A read-only view of a dict fresh from ``json.loads`` (no copy: nothing else holds it)."""
    return MappingProxyType(value) if value else _EMPTY


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def encode(rule: Rule) -> dict[str, Any]:
    """A validated rule as JSON data (its path is not kept: it is the directory's on loading)."""
    return {
        "id": rule.id,
        "title": rule.title,
        "severity": rule.severity,
        "priority": rule.priority,
        "matches": [
            {
                "exceptions": [[p.type, p.message, dict(p.attributes)] for p in match.exceptions],
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
            [e.client, e.broken, e.fixed, dict(e.environ), dict(e.fixed_environ), dict(e.files), list(e.requires)]
            for e in rule.examples
        ],
        "workaround": rule.workaround,
        "prevention": rule.prevention,
        "references": list(rule.references),
        "cases": [
            [
                c.name,
                c.expect,
                c.client,
                c.python,
                dict(c.environ),
                c.sent,
                [[x.type, list(x.bases), x.message, dict(x.attributes), x.in_replicate] for x in c.exceptions],
                c.dotenv,
                dict(c.facts),
                c.wrapper,
                dict(c.wrapper_observed),
            ]
            for c in rule.cases
        ],
    }


def decode(data: Mapping[str, Any], path: str) -> Rule:
    """The rule ``encode`` wrote, read from the file at ``path``."""
    return Rule(
        id=data["id"],
        path=path,
        title=data["title"],
        severity=data["severity"],
        priority=data["priority"],
        matches=tuple(
            Match(
                exceptions=tuple(ExceptionPattern(t, m, _map(a)) for t, m, a in match["exceptions"]),
                facts=MappingProxyType({name: tuple(values) for name, values in match["facts"].items()}),
                client=match["client"],
                python=match["python"],
            )
            for match in data["matches"]
        ),
        summary=data["summary"],
        why=data["why"],
        fix=tuple(data["fix"]),
        examples=tuple(
            Example(client, broken, fixed, _map(env), _map(fixed_env), _map(files), tuple(requires))
            for client, broken, fixed, env, fixed_env, files, requires in data["examples"]
        ),
        workaround=data["workaround"],
        prevention=data["prevention"],
        references=tuple(data["references"]),
        cases=tuple(
            Case(
                name,
                expect,
                client,
                python,
                _map(environ),
                sent,
                tuple(CaseException(t, tuple(b), m, _map(a), inside) for t, b, m, a, inside in excs),
                dotenv,
                _map(facts),
                wrapper,
                _map(observed),
            )
            for name, expect, client, python, environ, sent, excs, dotenv, facts, wrapper, observed in data["cases"]
        ),
    )


def _read(file: Path, key: str, directory: Path, names: Sequence[str]) -> tuple[Rule, ...] | None:
    """The rules in a cache file, or ``None`` if it is missing, unreadable, for another key or
    corrupt (its payload's digest is checked before it is parsed), or if another user could
    have written it (not ours, or writable by group or others: the rules' advice is shown as is)."""
    try:
        with open(file, "rb") as handle:
            status = os.fstat(handle.fileno())
            if hasattr(os, "getuid") and (status.st_uid != os.getuid() or status.st_mode & 0o022):
                return None
            header, _, payload = handle.read().partition(b"\n")
        meta = json.loads(header)
        if meta.get("key") != key or meta.get("digest") != hashlib.sha256(payload).hexdigest():
            return None
        rules = json.loads(payload)
        if [rule["id"] + name[name.rindex(".") :] for rule, name in zip(rules, names)] != list(names):
            return None
        folder = str(directory)
        return tuple(decode(rule, os.path.join(folder, name)) for rule, name in zip(rules, names))
    except Exception:  # a corrupt cache is parsed around, never an error
        return None


def _write(file: Path, key: str, rules: Sequence[Rule]) -> None:
    """Write the cache file atomically (a temporary file renamed over it); give up silently
    when the directory cannot be written. Cache files of other keys older than a week go."""
    payload = json.dumps([encode(rule) for rule in rules], separators=(",", ":")).encode()
    header = json.dumps({"format": FORMAT, "key": key, "digest": hashlib.sha256(payload).hexdigest()}).encode()
    temporary = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    try:
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Owner-only whatever the umask: a file others could write is not trusted (``_read``).
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "wb") as out:
            out.write(header + b"\n" + payload)
        os.replace(temporary, file)
    except OSError:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        return
    import time

    try:
        for old in file.parent.glob("rules-*.json"):
            if old != file and time.time() - old.stat().st_mtime > STALE_SECONDS:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def bundled_rules(directory: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[Rule, ...] | None:
    """The bundled rules, validated: from the cache, or parsed and then cached. ``None`` when
    they cannot be cached (a file is unreadable or has an error): the caller parses them and
    reports the errors."""
    directory = bundled_rules_dir() if directory is None else directory
    found = cache_key(directory)
    if found is None:
        return None
    key, names = found
    where = cache_dir(environ)
    file = where / f"rules-{key[:32]}.json" if where is not None else None
    if file is not None:
        cached = _read(file, key, directory, names)
        if cached is not None:
            return cached
    parsed = load_rules([directory])
    if parsed.errors or len(parsed.rules) != len(names):
        return None
    if file is not None and cache_key(directory) == found:  # the files did not change meanwhile
        _write(file, key, parsed.rules)
    return parsed.rules
