"""The ``ci.fork_pull_request`` fact: GitHub Actions running a fork's pull request, read from the
environment and the event payload GitHub writes, and the evidence sentence it adds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from replicate_explain._evidence import token_evidence
from replicate_explain._facts import ci_facts, token_facts

FORK = {"pull_request": {"head": {"repo": {"full_name": "someone/app"}}, "base": {"repo": {"full_name": "acme/app"}}}}
SAME = {"pull_request": {"head": {"repo": {"full_name": "acme/app"}}, "base": {"repo": {"full_name": "acme/app"}}}}
DELETED_FORK = {"pull_request": {"head": {"repo": None}, "base": {"repo": {"full_name": "acme/app"}}}}

CASES: list[tuple[str, dict[str, str], Any, bool]] = [
    ("a fork's pull request", {"GITHUB_EVENT_NAME": "pull_request"}, FORK, True),
    ("a pull request from a branch of the repository", {"GITHUB_EVENT_NAME": "pull_request"}, SAME, False),
    ("a pull request whose fork was deleted", {"GITHUB_EVENT_NAME": "pull_request"}, DELETED_FORK, True),
    (
        "pull_request_target runs in the base repository, with secrets",
        {"GITHUB_EVENT_NAME": "pull_request_target"},
        FORK,
        False,
    ),
    ("a push", {"GITHUB_EVENT_NAME": "push"}, {"ref": "refs/heads/main"}, False),
    ("a payload that is not JSON", {"GITHUB_EVENT_NAME": "pull_request"}, "not json", False),
    ("a payload of the wrong shape", {"GITHUB_EVENT_NAME": "pull_request"}, {"pull_request": [1]}, False),
    ("not on GitHub Actions", {"GITHUB_ACTIONS": "", "GITHUB_EVENT_NAME": "pull_request"}, FORK, False),
]


@pytest.mark.parametrize(("name", "environ", "payload", "fork"), CASES, ids=[case[0] for case in CASES])
def test_the_fork_fact(tmp_path: Path, name: str, environ: dict[str, str], payload: Any, fork: bool) -> None:
    """Only GitHub Actions' ``pull_request`` event whose head repository is not the base is a fork's."""
    event = tmp_path / "event.json"
    event.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(event), **environ}
    assert ci_facts(env) == {"ci.fork_pull_request": fork}


def test_a_missing_payload_is_no_fork(tmp_path: Path) -> None:
    """An event path that does not exist reads as no fork (never an error)."""
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(tmp_path / "x")}
    assert ci_facts(env) == {"ci.fork_pull_request": False}


@pytest.mark.parametrize(("token", "said"), [(None, True), ("", True), ("r8_" + "A" * 37, False)])
def test_the_evidence_says_forks_get_no_secrets_when_the_token_is_missing(token: str | None, said: bool) -> None:
    """An unset or empty token in a fork's pull request: the evidence names the cause and what to
    do; a set token (refused for another reason) gets no such sentence."""
    environ = {} if token is None else {"REPLICATE_API_TOKEN": token}
    facts = {**token_facts(environ), "ci.fork_pull_request": True}
    fork = [line for line in token_evidence(facts) if "fork" in line]
    expected = (
        "this is a GitHub Actions run of a pull request from a fork, and GitHub gives those no repository "
        "secrets, so the workflow's REPLICATE_API_TOKEN is empty here: skip the steps that need it when it "
        "is empty, or test against a fake API (replicate-explain fake-api)"
    )
    assert fork == ([expected] if said else [])
