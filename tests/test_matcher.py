"""The matcher in process: snapshots built from data, small rule sets written as YAML.

No client, no subprocess: each test writes the rules it needs into a temporary directory (the
strict schema loads them, so they are real rules), builds a :class:`Snapshot` with
``snapshot_from_data`` and checks which rules match, in what order, and the whole
:class:`Explanation` the winner gives: the most specific rule wins and the others are listed in
``also``; ``priority`` adds to specificity; a rule with alternatives counts with the one that
matched; client and Python ranges (pre-releases included); the code example for the installed
client; the evidence sentences, which describe the token and never show it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from clients import CANARY
from outputs import leaks

from replicate_explain._explanation import CodeFix, Explanation
from replicate_explain._matcher import explain_snapshot, matching_rules
from replicate_explain._rules import RuleSet, load_rules
from replicate_explain._snapshot import ExceptionInfo, Snapshot, snapshot_from_data

PYTHON = "3.11.7"
ERROR_1X = "replicate.exceptions.ReplicateError"
AUTH_2X = "replicate.AuthenticationError"
HEADER = "httpx.LocalProtocolError"

#: The cases every test rule carries: the schema wants one positive and one negative case.
CASES = """\
cases:
  - name: matches
    expect: {id}
    exceptions:
      - type: replicate.exceptions.ReplicateError
  - name: does not
    expect: null
    exceptions:
      - type: builtins.KeyError
        in_replicate: false
"""


def _rule_text(rule_id: str, match: str, *, examples: str = "", priority: int = 0) -> str:
    examples = (
        examples
        or """\
examples:
  - broken: |
      broken = True
    fixed: |
      fixed = True
"""
    )
    head = f"title: Title of {rule_id}\npriority: {priority}\nmatch:\n{textwrap.indent(textwrap.dedent(match), '  ')}"
    body = f"summary: Summary of {rule_id}.\nwhy: Why {rule_id}.\nfix:\n  - Fix {rule_id}.\n"
    return head + body + textwrap.dedent(examples) + CASES.format(id=rule_id)


def _rules(directory: Path, **rules: str | tuple[str, int]) -> RuleSet:
    """Write each rule (id -> match YAML, or (match, priority)) and load the directory."""
    for rule_id, spec in rules.items():
        match, priority = spec if isinstance(spec, tuple) else (spec, 0)
        name = rule_id.replace("_", "-")
        (directory / f"{name}.yaml").write_text(_rule_text(name, match, priority=priority), encoding="utf-8")
    loaded = load_rules([directory])
    assert [str(error) for error in loaded.errors] == []
    return loaded


def _snapshot(
    *exceptions: ExceptionInfo, environ: dict[str, str] | None = None, client: str | None = "1.0.7", **kwargs: str
) -> Snapshot:
    return snapshot_from_data(list(exceptions), {} if environ is None else environ, client, python=PYTHON, **kwargs)


def _exc(*types: str, message: str = "", **attributes: str) -> ExceptionInfo:
    return ExceptionInfo(types=types, message=message, attributes=attributes, in_replicate=True)


def _ids(snapshot: Snapshot, rules: RuleSet) -> list[str]:
    return [rule.id for rule, _ in matching_rules(snapshot, rules)]


def test_the_most_specific_rule_wins_and_the_others_are_also(tmp_path: Path) -> None:
    """Three rules match one 401: the one with two facts beats the one with one fact, which
    beats the one with none; the explanation is the winner's and ``also`` lists the others,
    most specific first. A rule whose fact does not hold is not among them."""
    rules = _rules(
        tmp_path,
        any_401=f"exceptions:\n  - type: {ERROR_1X}\n",
        token_set=f"exceptions:\n  - type: {ERROR_1X}\nfacts:\n  token.state: set\n",
        newline=f"exceptions:\n  - type: {ERROR_1X}\nfacts:\n  token.state: set\n  token.trailing: newline\n",
        unset=f"exceptions:\n  - type: {ERROR_1X}\nfacts:\n  token.state: unset\n",
    )
    snapshot = _snapshot(_exc(ERROR_1X, message="Invalid token"), environ={"REPLICATE_API_TOKEN": CANARY + "\n"})
    explanation = explain_snapshot(snapshot, rules)
    assert _ids(snapshot, rules) == ["newline", "token-set", "any-401"]
    assert explanation is not None
    assert (explanation.rule_id, explanation.also) == ("newline", ("token-set", "any-401"))


def test_a_message_or_attribute_pattern_adds_specificity_and_must_hold(tmp_path: Path) -> None:
    """A pattern with a message regex (searched, not anchored) or an attribute value is one
    point more specific than a bare class; a pattern whose message or attribute does not hold
    does not match at all."""
    rules = _rules(
        tmp_path,
        bare=f"exceptions:\n  - type: {ERROR_1X}\n",
        by_message=f"exceptions:\n  - type: {ERROR_1X}\n    message: '(?i)invalid TOKEN'\n",
        by_status=f"exceptions:\n  - type: {ERROR_1X}\n    attributes:\n      status: '401'\n",
        by_other_status=f"exceptions:\n  - type: {ERROR_1X}\n    attributes:\n      status: '403'\n",
        by_other_message=f"exceptions:\n  - type: {ERROR_1X}\n    message: 'not found'\n",
    )
    snapshot = _snapshot(_exc(ERROR_1X, message="ReplicateError: Invalid token", status="401"))
    assert _ids(snapshot, rules) == ["by-message", "by-status", "bare"]


def test_ties_are_broken_by_id_and_priority_adds_to_specificity(tmp_path: Path) -> None:
    """Two equally specific rules come in id order (stable output); ``priority: 3`` lifts a
    bare rule over both."""
    match = f"exceptions:\n  - type: {AUTH_2X}\nfacts:\n  token.state: set\n"
    rules = _rules(tmp_path, beta=match, alpha=match, boosted=(f"exceptions:\n  - type: {AUTH_2X}\n", 3))
    snapshot = _snapshot(_exc(AUTH_2X, "replicate.APIStatusError"), environ={"REPLICATE_API_TOKEN": CANARY})
    assert _ids(snapshot, rules) == ["boosted", "alpha", "beta"]


def test_a_rule_with_alternatives_counts_with_the_alternative_that_matched(tmp_path: Path) -> None:
    """``match`` as a list: any alternative matches, and the rule ranks with the specificity of
    the most specific alternative that matched, not of its first one. Here the two-fact
    alternative beats a one-fact rule, the bare alternative loses to it."""
    rules = _rules(
        tmp_path,
        either=(
            f"- exceptions:\n    - type: {HEADER}\n  facts:\n    token.state: set\n    token.line_break: true\n"
            f"- exceptions:\n    - type: {ERROR_1X}\n"
        ),
        one_fact=f"exceptions:\n  - type: {HEADER}\n  - type: {ERROR_1X}\nfacts:\n  token.state: set\n",
    )
    newline = {"REPLICATE_API_TOKEN": CANARY + "\n"}
    header = _snapshot(_exc(HEADER, message="Illegal header value b'Bearer [REDACTED]\\n'"), environ=newline)
    rejected = _snapshot(_exc(ERROR_1X, message="Invalid token"), environ={"REPLICATE_API_TOKEN": CANARY})
    assert (_ids(header, rules), _ids(rejected, rules)) == (["either", "one-fact"], ["one-fact", "either"])


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("0.15.8", ["any-client", "before-1"]),
        ("1.0.7", ["one-x", "any-client"]),
        ("1.1.0b1", ["one-x", "any-client"]),  # pre-releases count
        ("2.0.0b4", ["two-x", "any-client"]),
        (None, ["any-client"]),  # not installed: in no range
    ],
    ids=["0.15.8", "1.0.7", "1.1.0b1", "2.0.0b4", "not installed"],
)
def test_client_ranges_choose_the_generation(tmp_path: Path, client: str | None, expected: list[str]) -> None:
    """A rule with a ``client`` range matches only releases in it (pre-releases included, an
    absent client in none). A range counts two points of specificity, a fact one: the range
    and two facts outrank three facts, three facts outrank the range alone."""
    exceptions = f"exceptions:\n  - type: {ERROR_1X}\n"
    rules = _rules(
        tmp_path,
        any_client=exceptions + "facts:\n  token.state: set\n  token.well_formed: true\n  token.r8_prefix: true\n",
        before_1=exceptions + "client: '<1.0'\n",
        one_x=exceptions + "client: '>=1.0,<2.0.0a1'\nfacts:\n  token.state: set\n  token.well_formed: true\n",
        two_x=exceptions + "client: '>=2.0.0a1'\nfacts:\n  token.state: set\n  token.well_formed: true\n",
    )
    snapshot = _snapshot(_exc(ERROR_1X), environ={"REPLICATE_API_TOKEN": CANARY}, client=client)
    assert _ids(snapshot, rules) == expected


@pytest.mark.parametrize(("python", "expected"), [("3.9.18", ["old-python"]), ("3.12.1", [])])
def test_a_python_range_limits_the_rule(tmp_path: Path, python: str, expected: list[str]) -> None:
    """A ``python`` range is checked against the snapshot's Python version."""
    rules = _rules(tmp_path, old_python=f"exceptions:\n  - type: {ERROR_1X}\npython: '<3.10'\n")
    snapshot = snapshot_from_data([_exc(ERROR_1X)], {}, "1.0.7", python=python)
    assert _ids(snapshot, rules) == expected


EXAMPLES = """\
examples:
  - client: ">=2.0.0a1"
    broken: |
      two = "broken"
    fixed: |
      two = "fixed"
  - client: ">=1.0,<2.0.0a1"
    broken: |
      one = "broken"
    fixed: |
      one = "fixed"
"""


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("2.0.0b4", CodeFix('two = "broken"\n', 'two = "fixed"\n', ">=2.0.0a1")),
        ("1.0.7", CodeFix('one = "broken"\n', 'one = "fixed"\n', ">=1.0,<2.0.0a1")),
        ("0.15.8", None),  # code for another generation would mislead
        (None, CodeFix('two = "broken"\n', 'two = "fixed"\n', ">=2.0.0a1")),  # unknown: the first
    ],
    ids=["2.x", "1.x", "0.x has none", "unknown version"],
)
def test_the_code_example_is_the_one_for_the_installed_client(
    tmp_path: Path, client: str | None, expected: CodeFix | None
) -> None:
    """The explanation's code is the first example whose ``client`` range holds the installed
    version; none when the version is known and no example is for it; the first when the
    version is unknown."""
    text = _rule_text("fixed-code", f"exceptions:\n  - type: {ERROR_1X}\n", examples=EXAMPLES)
    (tmp_path / "fixed-code.yaml").write_text(text, encoding="utf-8")
    rules = load_rules([tmp_path])
    explanation = explain_snapshot(_snapshot(_exc(ERROR_1X), client=client), rules)
    assert explanation is not None
    assert explanation.code == expected


def test_the_whole_explanation_of_the_winner(tmp_path: Path) -> None:
    """Every field: the rule's texts, evidence about the token (never the token), the client
    line, the matched exception's headline with the token masked, ``also`` and the version.
    The matched exception is the one in the chain the rule names (here the cause, not the
    wrapper raised last)."""
    text = _rule_text(
        "header-newline",
        f"exceptions:\n  - type: {HEADER}\n    message: Illegal header value\nfacts:\n  token.trailing: newline\n",
        examples=EXAMPLES,
    ).replace("fix:\n", "workaround: Strip it.\nprevention: Use echo -n.\nreferences:\n  - https://example.org\nfix:\n")
    (tmp_path / "header-newline.yaml").write_text(text, encoding="utf-8")
    rules = _rules(tmp_path, connection=f"exceptions:\n  - type: {AUTH_2X}\n  - type: {HEADER}\n")
    snapshot = _snapshot(
        _exc("replicate.APIConnectionError", "replicate.APIError", message="Connection error."),
        _exc(HEADER, "httpx.ProtocolError", message=f"Illegal header value b'Bearer {CANARY}\\n'"),
        environ={"REPLICATE_API_TOKEN": CANARY + "\n"},
        client="2.0.0b4",
    )
    assert explain_snapshot(snapshot, rules) == Explanation(
        rule_id="header-newline",
        title="Title of header-newline",
        severity="error",
        summary="Summary of header-newline.",
        evidence=(
            "REPLICATE_API_TOKEN is set, 41 characters, with a newline (\\n) at its end; "
            "the token inside starts with r8_",
            "replicate 2.0.0b4 is installed (Python 3.11.7)",
            "the error raised: httpx.LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'",
        ),
        why="Why header-newline.",
        fix=("Fix header-newline.",),
        code=CodeFix('two = "broken"\n', 'two = "fixed"\n', ">=2.0.0a1"),
        workaround="Strip it.",
        prevention="Use echo -n.",
        references=("https://example.org",),
        also=("connection",),
        exception="httpx.LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'",
        client_version="2.0.0b4",
    )


#: (name, environment, snapshot_from_data keywords, the token sentences of the evidence)
EVIDENCE: list[tuple[str, dict[str, str], dict[str, str], list[str]]] = [
    ("unset", {}, {}, ["REPLICATE_API_TOKEN is not set in this process"]),
    ("empty", {"REPLICATE_API_TOKEN": ""}, {}, ["REPLICATE_API_TOKEN is set to an empty string"]),
    (
        "blank",
        {"REPLICATE_API_TOKEN": " \t"},
        {},
        ["REPLICATE_API_TOKEN is set to 2 whitespace character(s) and nothing else"],
    ),
    (
        "well formed",
        {"REPLICATE_API_TOKEN": CANARY},
        {},
        ["REPLICATE_API_TOKEN is set, 40 characters, has the r8_ + 37 letters and digits format"],
    ),
    (
        "windows line break",
        {"REPLICATE_API_TOKEN": CANARY + "\r\n"},
        {},
        [
            "REPLICATE_API_TOKEN is set, 42 characters, with a Windows line break (\\r\\n) at its end; "
            "the token inside starts with r8_"
        ],
    ),
    (
        "leading space and quotes",
        {"REPLICATE_API_TOKEN": f' "{CANARY}"'},
        {},
        [
            "REPLICATE_API_TOKEN is set, 43 characters, with whitespace before it and quotes around it; "
            "the token inside starts with r8_"
        ],
    ),
    (
        "scheme inside the value",
        {"REPLICATE_API_TOKEN": f"Bearer {CANARY}"},
        {},
        [
            "REPLICATE_API_TOKEN is set, 47 characters, with an auth scheme ('Bearer ' or 'Token ') before it; "
            "the token after the scheme starts with r8_"
        ],
    ),
    (
        "an old token",
        {"REPLICATE_API_TOKEN": "abc123"},
        {},
        ["REPLICATE_API_TOKEN is set, 6 characters; it does not start with r8_ (older tokens may lack it)"],
    ),
    (
        "look-alike name",
        {"REPLICATE_API_KEY": CANARY},
        {},
        [
            "REPLICATE_API_TOKEN is not set in this process",
            "REPLICATE_API_KEY is set, a name the replicate client does not read",
        ],
    ),
    (
        "another token was sent",
        {"REPLICATE_API_TOKEN": CANARY},
        {"sent": "differs"},
        [
            "REPLICATE_API_TOKEN is set, 40 characters, has the r8_ + 37 letters and digits format",
            "the failed request sent a different token than REPLICATE_API_TOKEN holds now (compared by digest)",
        ],
    ),
    (
        "a .env defines it",
        {},
        {"sent": "absent", "dotenv": "/home/me/app/.env"},
        [
            "REPLICATE_API_TOKEN is not set in this process",
            "the failed request sent no token",
            "/home/me/app/.env defines REPLICATE_API_TOKEN",
        ],
    ),
]


@pytest.mark.parametrize(("name", "environ", "kwargs", "expected"), EVIDENCE, ids=[e[0] for e in EVIDENCE])
def test_evidence_describes_the_token_and_never_shows_it(
    tmp_path: Path, name: str, environ: dict[str, str], kwargs: dict[str, str], expected: list[str]
) -> None:
    """The evidence is sentences about the token's state and shape (and the request, and a
    .env), then the client line, then the error: whole tuples, and never the token's value."""
    rules = _rules(tmp_path, anything=f"exceptions:\n  - type: {ERROR_1X}\n")
    explanation = explain_snapshot(_snapshot(_exc(ERROR_1X, message="401"), environ=environ, **kwargs), rules)
    assert explanation is not None
    assert explanation.evidence == (
        *expected,
        "replicate 1.0.7 is installed (Python 3.11.7)",
        "the error raised: replicate.exceptions.ReplicateError: 401",
    )
    assert leaks(repr(explanation), CANARY) == []


def test_nothing_is_explained_outside_replicate_or_without_a_matching_rule(tmp_path: Path) -> None:
    """A failure that touches neither replicate nor its HTTP stack is not matched at all (the
    pre-filter), and a relevant failure that no rule describes gives ``None`` too."""
    rules = _rules(tmp_path, anything=f"exceptions:\n  - type: builtins.KeyError\n  - type: {ERROR_1X}\n")
    foreign = snapshot_from_data(
        [ExceptionInfo(types=("builtins.KeyError",), message="'x'", in_replicate=False)], {}, "1.0.7", python=PYTHON
    )
    unmatched = _snapshot(_exc("httpx.ConnectError", message="refused"))
    assert (foreign.relevant, explain_snapshot(foreign, rules), explain_snapshot(unmatched, rules)) == (
        False,
        None,
        None,
    )


def test_without_a_client_the_evidence_says_it_is_not_installed(tmp_path: Path) -> None:
    """No replicate installed (the class name alone makes the failure relevant): a rule
    without a client range still matches, and the evidence says the client is missing."""
    rules = _rules(tmp_path, anything=f"exceptions:\n  - type: {ERROR_1X}\n")
    snapshot = snapshot_from_data([ExceptionInfo(types=(ERROR_1X,), message="")], {}, None, python=PYTHON)
    explanation = explain_snapshot(snapshot, rules)
    assert explanation is not None
    assert (explanation.evidence, explanation.client_version) == (
        (
            "REPLICATE_API_TOKEN is not set in this process",
            "the replicate package is not installed (Python 3.11.7)",
            f"the error raised: {ERROR_1X}",
        ),
        None,
    )
