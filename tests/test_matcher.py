"""The matcher in process: snapshots built from data, small rule sets written as YAML.

No client, no subprocess: each test writes the rules it needs into a temporary directory (the
strict schema loads them, so they are real rules), builds a :class:`Snapshot` with
``snapshot_from_data`` and checks which rules match, in what order, and the whole
:class:`Explanation` the winner gives: the most specific rule wins and the others are listed in
``also``; ``priority`` adds to specificity; a rule with alternatives counts with the one that
matched; client and Python ranges (pre-releases included); the code example for the installed
client; the evidence sentences, which describe the token and never show it. The gate (issue 19):
a failure that shows nothing of Replicate (a real httpx call refusing an empty or non-ASCII
header, raised here in process; its traceback pasted, printed by a subprocess) is explained by
no rule, and the same text with one mark of Replicate is.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from clients import CANARY
from outputs import leaks

from replicate_explain._explanation import CodeFix, Explanation
from replicate_explain._matcher import explain_snapshot, matching_rules, pattern_hit
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


# ---------------------------------------------------------------------------------------------
# The gate: only failures that show Replicate (issue 19, item 1)

#: A program that uses httpx only (a chat bot's OpenAI call with its key read from the
#: environment), sending the header it was given to the loopback API.
HTTPX_ONLY = """\
import os
import sys

import httpx

key = os.environ.get("CHAT_API_KEY", "")
httpx.post(sys.argv[1] + "/v1/chat/completions", headers={"Authorization": "Bearer " + key}, timeout=10)
"""

#: The two false-positive shapes: an empty key, a key with a zero-width space (pasted from a web page).
HTTPX_KEYS = {"empty-bearer": "", "non-ascii-header": "sk-proj-abc\u200bdef"}


def _httpx_failure(api_url: str, key: str) -> BaseException:
    import httpx

    try:
        httpx.post(f"{api_url}/v1/chat/completions", headers={"Authorization": "Bearer " + key}, timeout=10)
    except Exception as error:
        return error
    raise AssertionError("httpx sent an illegal header")


@pytest.mark.parametrize("key", list(HTTPX_KEYS.values()), ids=list(HTTPX_KEYS))
def test_an_httpx_only_failure_raised_live_is_not_explained(api: Any, key: str) -> None:
    """A real httpx call (no replicate anywhere) refusing the header it was given: the rules'
    exception shapes match it (token-empty, token-non-ascii), but nothing in it shows Replicate,
    so nothing is explained, with REPLICATE_API_TOKEN empty or holding an r8_ token."""
    from replicate_explain._api import explain, rules
    from replicate_explain._matcher import shows_replicate
    from replicate_explain._snapshot import take_snapshot

    error = _httpx_failure(api.url, key)
    environ = {"REPLICATE_API_TOKEN": ""}
    snapshot = take_snapshot(error, environ)
    shapes = sorted(
        {
            rule.id
            for rule in rules().rules
            for match in rule.matches
            for pattern in match.exceptions
            if any(pattern_hit(pattern, info) for info in snapshot.exceptions)
        }
    )
    expected = ["token-empty", "token-lookalike-var", "token-whitespace"] if key == "" else ["token-non-ascii"]
    with_token = {"REPLICATE_API_TOKEN": CANARY}  # a Replicate token in the environment shows nothing
    assert (shapes, snapshot.replicate_marks, shows_replicate(snapshot), explain(error, environ)) == (
        expected,
        (),
        False,
        None,
    )
    assert (take_snapshot(error, with_token).replicate_marks, explain(error, with_token)) == ((), None)


@pytest.mark.e2e
@pytest.mark.parametrize("key", list(HTTPX_KEYS.values()), ids=list(HTTPX_KEYS))
def test_an_httpx_only_traceback_pasted_is_not_explained(api: Any, key: str) -> None:
    """The traceback plain Python prints for that httpx-only program, pasted to ``explain``
    (alone, and with this shell's environment holding an empty REPLICATE_API_TOKEN): no
    explanation and no "looks like a Replicate failure" hint."""
    import subprocess
    import sys

    from replicate_explain._pasted import explain_text
    from replicate_explain._rules import bundled_rules_dir

    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE")}
    env.update(CHAT_API_KEY=key, REPLICATE_EXPLAIN="0", PYTHONIOENCODING="utf-8", NO_PROXY="127.0.0.1")
    done = subprocess.run(
        [sys.executable, "-c", HTTPX_ONLY, api.url], env=env, capture_output=True, encoding="utf-8", timeout=60
    )
    assert "Traceback (most recent call last):" in done.stderr
    rules = load_rules([bundled_rules_dir()])
    results = explain_text(done.stderr, rules) + explain_text(done.stderr, rules, {"REPLICATE_API_TOKEN": ""})
    assert [(r.explanation, r.candidates) for r in results] == [(None, ())] * len(results)
    assert results


#: Texts of the false-positive shapes with nothing of Replicate in them (as posted: a chat
#: bot's docker log, a self-hosted app's TypeError).
GENERIC_TEXTS = {
    "empty-bearer-docker-log": """\
chatbot-1  | Traceback (most recent call last):
chatbot-1  |   File "/usr/lib/python3/site-packages/httpx/_transports/default.py", line 69, in map_httpcore_exceptions
chatbot-1  |     yield
chatbot-1  |   File "/usr/local/lib/python3.11/site-packages/h11/_headers.py", line 164, in normalize_and_validate
chatbot-1  |     validate(_field_value_re, value, "Illegal header value {!r}", value)
chatbot-1  | h11._util.LocalProtocolError: Illegal header value b'Bearer '
chatbot-1  | httpx.LocalProtocolError: Illegal header value b'Bearer '
""",
    "empty-bearer-last-line": "httpx.LocalProtocolError: Illegal header value b'Bearer '\n",
    "non-ascii-header": """\
Traceback (most recent call last):
  File "/app/bot.py", line 12, in <module>
    r = httpx.post(URL, headers={"Authorization": f"Bearer {key}"})
  File "/usr/lib/python3.12/site-packages/httpx/_models.py", line 78, in _normalize_header_value
    return value.encode(encoding or "ascii")
UnicodeEncodeError: 'ascii' codec can't encode character '\\u2019' in position 7: ordinal not in range(128)
""",
    "api-key-keyword": """\
Traceback (most recent call last):
  File "/app/main.py", line 5, in <module>
    client = Client(api_key=os.environ["KEY"])
TypeError: Client.__init__() got an unexpected keyword argument 'api_key'
""",
}


@pytest.mark.parametrize("text", list(GENERIC_TEXTS.values()), ids=list(GENERIC_TEXTS))
def test_a_generic_http_stack_text_is_not_explained(text: str) -> None:
    """A pasted HTTP-stack failure that shows nothing of Replicate gets nothing, read alone or
    with an environment (``--here``) whose REPLICATE_API_TOKEN is empty or an r8_ token."""
    from replicate_explain._pasted import explain_text
    from replicate_explain._rules import bundled_rules_dir

    rules = load_rules([bundled_rules_dir()])
    results = [
        result
        for environ in (None, {"REPLICATE_API_TOKEN": ""}, {"REPLICATE_API_TOKEN": CANARY})
        for result in explain_text(text, rules, environ)
    ]
    assert [(r.explanation, r.candidates) for r in results] == [(None, ())] * len(results)


@pytest.mark.parametrize(
    ("addition", "marks"),
    [
        (
            '  File "/venv/lib/python3.11/site-packages/replicate/client.py", line 89, in _request\n',
            ["client", "frame"],
        ),
        ("POST https://api.replicate.com/v1/predictions\n", ["api"]),
        ("token = 'r8_abc...'\n", ["credential"]),
        ('  File "/venv/lib/python3.11/site-packages/litellm/llms/replicate/chat/handler.py", line 3\n', ["wrapper"]),
    ],
    ids=["client-frame", "api-url", "r8-credential", "wrapper-frame"],
)
def test_the_same_text_with_a_mark_of_replicate_is_explained(addition: str, marks: list[str]) -> None:
    """The empty ``Bearer `` failure with one mark of Replicate added (a client frame, the API's
    URL, an r8_ credential, a frame of a wrapper's Replicate code) passes the gate: the rule of
    its shape explains it, and the mark is listed."""
    from replicate_explain._marks import API, CLIENT, CLIENT_TEXT, CREDENTIAL, REPLICATE_WRAPPERS, wrapper_mark
    from replicate_explain._pasted import explain_text
    from replicate_explain._rules import bundled_rules_dir

    names = {
        "client": CLIENT,
        "frame": CLIENT_TEXT,
        "api": API,
        "credential": CREDENTIAL,
        "wrapper": wrapper_mark(REPLICATE_WRAPPERS[0]),
    }
    text = addition + GENERIC_TEXTS["empty-bearer-last-line"]
    (result,) = explain_text(text, load_rules([bundled_rules_dir()]))
    assert result.explanation is not None
    assert (result.explanation.rule_id, result.snapshot.replicate_marks) == (
        "token-empty",
        tuple(names[m] for m in marks),
    )


@pytest.mark.e2e
@pytest.mark.parametrize("key", list(HTTPX_KEYS.values()), ids=list(HTTPX_KEYS))
def test_an_httpx_only_program_with_the_hook_prints_what_plain_python_prints(api: Any, key: str) -> None:
    """The httpx-only program run with replicate-explain active (``import replicate_explain``)
    and REPLICATE_API_TOKEN empty: byte for byte the output and exit status of plain Python."""
    from clients import run_program
    from outputs import same_place

    code = "import replicate_explain\n" + HTTPX_ONLY.replace("sys.argv[1]", repr(api.url))
    extra = {"CHAT_API_KEY": key}
    hooked = run_program(code, "1.0.7", api, "", extra)
    plain = run_program(code, "1.0.7", api, "", {**extra, "REPLICATE_EXPLAIN": "0"})
    assert "Illegal header value" in plain.stderr or "UnicodeEncodeError" in plain.stderr
    assert (hooked.returncode, hooked.stdout, same_place(hooked.stderr)) == (
        plain.returncode,
        plain.stdout,
        same_place(plain.stderr),
    )
