"""Snapshots: facts about the token and the exception chain, never the token itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from clients import CANARY

from replicate_explain._facts import find_dotenv, token_facts
from replicate_explain._snapshot import iter_chain, take_snapshot

BASE = {
    "token.state": "set",
    "token.length": 40,
    "token.whitespace": "none",
    "token.trailing": None,
    "token.line_break": False,
    "token.quoted": False,
    "token.scheme_prefixed": False,
    "token.r8_prefix": True,
    "token.well_formed": True,
    "token.lookalike": None,
    "token.lookalike_set": False,
    "token.sent": "unknown",
}

FACTS: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("a good token", {"REPLICATE_API_TOKEN": CANARY}, {}),
    ("unset", {}, {"token.state": "unset", "token.length": None, "token.r8_prefix": False, "token.well_formed": False}),
    (
        "empty",
        {"REPLICATE_API_TOKEN": ""},
        {"token.state": "empty", "token.length": 0, "token.r8_prefix": False, "token.well_formed": False},
    ),
    (
        "blank",
        {"REPLICATE_API_TOKEN": "   "},
        {"token.state": "blank", "token.length": 3, "token.r8_prefix": False, "token.well_formed": False},
    ),
    (
        "trailing newline",
        {"REPLICATE_API_TOKEN": CANARY + "\n"},
        {
            "token.length": 41,
            "token.whitespace": "trailing",
            "token.trailing": "newline",
            "token.line_break": True,
            "token.well_formed": False,
        },
    ),
    (
        "windows line break",
        {"REPLICATE_API_TOKEN": CANARY + "\r\n"},
        {
            "token.length": 42,
            "token.whitespace": "trailing",
            "token.trailing": "crlf",
            "token.line_break": True,
            "token.well_formed": False,
        },
    ),
    (
        "leading space",
        {"REPLICATE_API_TOKEN": " " + CANARY},
        {"token.length": 41, "token.whitespace": "leading", "token.well_formed": False},
    ),
    (
        "quoted",
        {"REPLICATE_API_TOKEN": f'"{CANARY}"'},
        {"token.length": 42, "token.quoted": True, "token.well_formed": False},
    ),
    (
        "scheme inside (the token after it still starts with r8_)",
        {"REPLICATE_API_TOKEN": f"Bearer {CANARY}"},
        {"token.length": 47, "token.scheme_prefixed": True, "token.r8_prefix": True, "token.well_formed": False},
    ),
    (
        "look-alike only",
        {"REPLICATE_API_KEY": CANARY},
        {
            "token.state": "unset",
            "token.length": None,
            "token.r8_prefix": False,
            "token.well_formed": False,
            "token.lookalike": "REPLICATE_API_KEY",
            "token.lookalike_set": True,
        },
    ),
    (
        "the right name in the wrong letter case",
        {"replicate_api_token": CANARY},
        {
            "token.state": "unset",
            "token.length": None,
            "token.r8_prefix": False,
            "token.well_formed": False,
            "token.lookalike": "replicate_api_token",
            "token.lookalike_set": True,
        },
    ),
]


@pytest.mark.parametrize(("name", "environ", "changes"), FACTS, ids=[f[0] for f in FACTS])
def test_token_facts(name: str, environ: dict[str, str], changes: dict[str, Any]) -> None:
    """The token's state and shape, as whole fact tables."""
    assert token_facts(environ) == {**BASE, **changes}


def test_no_fact_and_no_message_holds_the_token() -> None:
    """The snapshot of an exception carrying the token masks it everywhere."""
    error = ValueError(f"Illegal header value b'Bearer {CANARY}\\n'")
    snapshot = take_snapshot(error, {"REPLICATE_API_TOKEN": CANARY + "\n"}, version=None)
    assert CANARY not in repr(snapshot)
    assert snapshot.exceptions[0].message == "Illegal header value b'Bearer [REDACTED]\\n'"


def test_the_chain_follows_cause_context_and_groups_and_cuts_cycles() -> None:
    """Outermost first; each exception once, even with a cycle in __context__."""
    inner = KeyError("inner")
    outer = RuntimeError("outer")
    outer.__cause__ = inner
    inner.__context__ = outer  # a cycle
    assert [str(e) for e in iter_chain(outer)] == ["outer", "'inner'"]


def test_an_unprintable_exception_does_not_break_the_snapshot() -> None:
    """``__str__`` that raises becomes a placeholder message."""

    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    snapshot = take_snapshot(Nasty(), {}, version=None)
    assert snapshot.exceptions[0].message == "<unprintable Nasty object>"


def test_a_huge_message_is_clipped() -> None:
    """Megabyte messages are clipped, so matching and printing stay cheap."""
    snapshot = take_snapshot(ValueError("x" * 1_000_000), {}, version=None)
    assert snapshot.exceptions[0].message == "x" * 4000 + "... [16000 more characters]"


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ("REPLICATE_API_TOKEN=r8_x\n", True),
        ("export REPLICATE_API_TOKEN = 'x'\n", True),
        ("# REPLICATE_API_TOKEN=x\nOTHER=1\n", False),
    ],
)
def test_a_dotenv_in_a_parent_directory_is_found(tmp_path: Path, content: str, found: bool) -> None:
    """find_dotenv walks up from the working directory and reads assignments only."""
    (tmp_path / ".env").write_text(content, encoding="utf-8")
    child = tmp_path / "a" / "b"
    child.mkdir(parents=True)
    expected: str | None = str(tmp_path / ".env") if found else None
    assert find_dotenv(str(child)) == expected


def test_a_class_re_exported_by_its_package_is_matched_by_its_public_name() -> None:
    """h11 defines LocalProtocolError in the private h11._util; rules name it h11.LocalProtocolError."""
    import h11

    snapshot = take_snapshot(h11.LocalProtocolError("Illegal header value b'Bearer '"), {}, version=None)
    assert snapshot.exceptions[0].types == (
        "h11._util.LocalProtocolError",
        "h11.LocalProtocolError",
        "h11._util.ProtocolError",
        "h11.ProtocolError",
        "builtins.Exception",
        "builtins.BaseException",
    )


def test_the_client_version_is_the_loaded_clients_when_it_says_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """0.x and 1.x keep their release in ``replicate.__about__``: the release that failed, even
    when a newer one was installed on disk since; without it, package metadata says."""
    from importlib import metadata
    from types import SimpleNamespace

    from replicate_explain._snapshot import client_version

    monkeypatch.delitem(sys.modules, "replicate.__about__", raising=False)
    on_disk = client_version()
    monkeypatch.setitem(sys.modules, "replicate.__about__", SimpleNamespace(__version__="0.15.3"))
    loaded = client_version()
    assert (on_disk, loaded) == (metadata.version("replicate"), "0.15.3")
