"""Rule files: the strict schema, clear errors, and every rule's own executable cases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from replicate_explain import RuleError
from replicate_explain._matcher import case_snapshot, explain_snapshot
from replicate_explain._rules import bundled_rules_dir, load_rules, parse_rule

RULES = load_rules()
# A valid rule with one ``match`` mapping (token-empty as it was), kept fixed for the schema tests.
GOOD = (Path(__file__).parent / "data" / "schema-example-rule.yaml").read_text(encoding="utf-8")
FIRST_PATTERN_LINE = GOOD.splitlines().index("    - type: replicate.APIConnectionError") + 1


def _all_cases() -> list[Any]:
    return [pytest.param(rule, case, id=f"{rule.id}: {case.name}") for rule in RULES.rules for case in rule.cases]


@pytest.mark.parametrize(("rule", "case"), _all_cases())
def test_each_rule_case_explains_as_it_says(rule: Any, case: Any) -> None:
    """Each case, matched against ALL bundled rules, gives exactly the expected top rule."""
    explanation = explain_snapshot(case_snapshot(case), RULES)
    assert (explanation.rule_id if explanation else None) == case.expect


def test_rule_ids_are_the_file_stems_and_the_required_ones_exist() -> None:
    """Ids are public and stable: these four are keyed on by tools and users."""
    ids = {rule.id for rule in RULES.rules}
    assert {"token-unset", "token-empty", "token-whitespace", "client-outdated"} <= ids
    assert all(Path(rule.path).stem == rule.id for rule in RULES.rules)


def _error(tmp_path: Path, text: str, name: str = "token-empty.yaml") -> RuleError:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        parse_rule(path, text)
    return caught.value


BAD = [
    (
        "a misspelt key gets a did-you-mean",
        GOOD.replace("\nwhy:", "\nwhy_:", 1),
        "why_: unknown key; expected one of: title, severity, priority, match, summary, why, fix, "
        "examples, workaround, prevention, references, cases (did you mean 'why'?)",
    ),
    (
        "a missing field",
        GOOD.replace("title: REPLICATE_API_TOKEN is set to an empty string\n", "", 1),
        "title: missing required key; expected all of: title, match, summary, why, fix, examples, cases",
    ),
    (
        "a bad regular expression",
        GOOD.replace('message: "Illegal header value"', 'message: "Illegal (header"', 1),
        "match.exceptions[1].message: invalid regular expression 'Illegal (header': "
        "missing ), unterminated subpattern at position 8",
    ),
    (
        "a bad version specifier",
        GOOD.replace('client: ">=2.0.0a1"', 'client: "2.x"', 1),
        "examples[0].client: invalid version specifier '2.x': Invalid specifier: '2.x'; expected e.g. '>=0.14,<0.15.4'",
    ),
    (
        "an unknown fact",
        GOOD.replace("token.state: empty", "token.sate: empty", 1),
        "match.facts.token.sate: unknown fact; expected one of: "
        + ", ".join(__import__("replicate_explain._facts", fromlist=["FACTS"]).FACTS)
        + " (did you mean 'token.state'?)",
    ),
    (
        "a class name that is not dotted",
        GOOD.replace("type: replicate.APIConnectionError", "type: APIConnectionError", 1),
        "match.exceptions[0].type: expected a dotted class name such as "
        "'replicate.exceptions.ReplicateError', got 'APIConnectionError'",
    ),
    (
        "a list where text is expected",
        re.sub(r"\nwhy: >-\n.*?\nfix:", "\nwhy: [a, b]\nfix:", GOOD, count=1, flags=re.S),
        "why: expected a non-empty string, got a list",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_malformed_rule_names_file_line_key_and_expectation(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    """RuleError says ``file:line: key: problem (hint)``."""
    error = _error(tmp_path, text)
    assert str(error).split(": ", 1)[1] == message
    assert str(error).startswith(f"{tmp_path / 'token-empty.yaml'}")
    assert error.path == str(tmp_path / "token-empty.yaml")


def test_the_line_number_points_at_the_offending_key(tmp_path: Path) -> None:
    """The line is the line of the key in the file."""
    text = GOOD.replace("    - type: replicate.APIConnectionError", "    - typ: replicate.APIConnectionError", 1)
    error = _error(tmp_path, text)
    assert (error.line, error.key) == (FIRST_PATTERN_LINE, "match.exceptions[0].typ")


def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    """A YAML syntax error is a RuleError too, with the line the parser stopped at."""
    error = _error(tmp_path, "title: [unclosed\nwhy: x\n")
    assert (error.key, error.line) == ("", 2)
    assert "not valid YAML" in error.problem


def test_a_file_name_that_is_not_an_id_is_refused(tmp_path: Path) -> None:
    """The file stem is the id, so it must be kebab-case."""
    error = _error(tmp_path, GOOD, name="Token_Empty.yaml")
    assert (
        error.problem
        == "file name 'Token_Empty.yaml' is not a rule id; expected kebab-case such as 'token-whitespace.yaml'"
    )


def test_yaml_tags_that_would_run_code_are_refused(tmp_path: Path) -> None:
    """Rules are data: safe_load refuses Python object tags."""
    error = _error(tmp_path, "title: !!python/object/apply:os.system ['true']\n")
    assert "not valid YAML" in error.problem


def test_a_rule_needs_a_positive_and_a_negative_case(tmp_path: Path) -> None:
    """Cases must show the rule matching and not matching."""
    text = GOOD.split("\ncases:\n")[0] + "\ncases:\n" + GOOD.split("\ncases:\n")[1].split("  - name: 1.x answers")[0]
    error = _error(tmp_path, text)
    assert error.problem == "expected at least one negative case (expect another id or null)"


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    """The bad file becomes an error in the RuleSet; every good file still loads."""
    (tmp_path / "broken-rule.yaml").write_text("title: [\n", encoding="utf-8")
    (tmp_path / "token-empty.yaml").write_text(
        GOOD.replace("title: REPLICATE_API_TOKEN is set to an empty string", "title: My own title"), encoding="utf-8"
    )
    loaded = load_rules([bundled_rules_dir(), tmp_path])
    assert sorted(rule.id for rule in loaded.rules) == sorted(rule.id for rule in RULES.rules)
    assert [Path(error.path).name for error in loaded.errors] == ["broken-rule.yaml"]
    overriding = loaded.get("token-empty")
    assert overriding is not None and overriding.title == "My own title"
    assert dict(loaded.overridden) == {"token-empty": str(tmp_path / "token-empty.yaml")}


def test_a_rule_file_over_the_size_limit_is_skipped_with_a_clear_error(tmp_path: Path) -> None:
    """A rule file over ``MAX_RULE_BYTES`` (here a valid rule padded with comments; at crash time
    an 8 MB file cost seconds of parsing) is not parsed: one error names the file, the limit and
    what to do; the other files of the directory still load."""
    from replicate_explain._rules import MAX_RULE_BYTES

    big = tmp_path / "token-empty.yaml"
    padding = "# padding\n" * (MAX_RULE_BYTES // 10 + 1)
    big.write_text(
        GOOD.replace("title: REPLICATE_API_TOKEN is set to an empty string", "title: Big") + padding, encoding="utf-8"
    )
    (tmp_path / "token-unset.yaml").write_text(
        (bundled_rules_dir() / "token-unset.yaml").read_text(encoding="utf-8").replace("title:", "title: Mine,", 1),
        encoding="utf-8",
    )
    loaded = load_rules([bundled_rules_dir(), tmp_path])
    assert [str(error) for error in loaded.errors] == [
        f"{big}: is larger than 256 KiB, the limit for a rule file (a rule is a few kilobytes); it was "
        "skipped: keep one rule per file and move anything else out of the rule directory"
    ]
    assert (loaded.get("token-empty").title, dict(loaded.overridden)) == (  # type: ignore[union-attr]
        RULES.get("token-empty").title,  # type: ignore[union-attr]
        {"token-unset": str(tmp_path / "token-unset.yaml")},
    )


def test_a_missing_user_rule_directory_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """REPLICATE_EXPLAIN_RULES naming a directory that does not exist: a clear error."""
    missing = tmp_path / "nope"
    loaded = load_rules(environ={"REPLICATE_EXPLAIN_RULES": str(missing)})
    assert [str(error) for error in loaded.errors] == [
        f"{missing}: rule directory does not exist; "
        "expected a directory of *.yaml rule files (check REPLICATE_EXPLAIN_RULES)"
    ]
    assert len(loaded.rules) == len(RULES.rules)


# The real 402 and 429 shapes of each generation (as the clients raise them against the loopback).
_BILLING_DETAIL = (
    "You need to set up billing to run this model. Go to https://replicate.com/account/billing#billing "
    "to set it up. If you have recently set up billing, please wait a few minutes before trying again."
)
_THROTTLED_DETAIL = (
    "Request was throttled. Your rate limit for creating predictions is reduced to 6 requests per "
    "minute with a burst of 1 requests until you add a payment method. Your rate limit resets in ~1s."
)
_V2_MRO = ("replicate.APIError", "replicate.ReplicateError")
_REFUSAL_SHAPES = [
    ("0.15.8", ("replicate.exceptions.ReplicateError",), _BILLING_DETAIL, {}, "billing-required"),
    (
        "1.0.7",
        ("replicate.exceptions.ReplicateError",),
        f"ReplicateError Details:\ntitle: Billing required\nstatus: 402\ndetail: {_BILLING_DETAIL}",
        {"status": "402", "title": "Billing required"},
        "billing-required",
    ),
    (
        "2.0.0b4",
        ("replicate.APIStatusError", *_V2_MRO),
        f"Error code: 402 - {{'title': 'Billing required', 'detail': '{_BILLING_DETAIL}', 'status': 402}}",
        {"status_code": "402"},
        "billing-required",
    ),
    ("0.15.8", ("replicate.exceptions.ReplicateError",), _THROTTLED_DETAIL, {}, "account-rate-limited"),
    (
        "1.0.7",
        ("replicate.exceptions.ReplicateError",),
        f"ReplicateError Details:\nstatus: 429\ndetail: {_THROTTLED_DETAIL}",
        {"status": "429"},
        "account-rate-limited",
    ),
    (
        "2.0.0b4",
        ("replicate.RateLimitError", "replicate.APIStatusError", *_V2_MRO),
        f"Error code: 429 - {{'detail': '{_THROTTLED_DETAIL}', 'status': 429, 'retry_after': 1}}",
        {"status_code": "429"},
        "account-rate-limited",
    ),
    (
        "0.11.0",
        ("requests.exceptions.RetryError", "requests.exceptions.RequestException"),
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /v1/predictions "
        "(Caused by ResponseError('too many 429 error responses'))",
        {},
        "account-rate-limited",
    ),
]
#: Every token situation the token rules know, with what the failed request sent.
_TOKEN_SITUATIONS = [
    ({}, "absent"),
    ({"REPLICATE_API_TOKEN": ""}, "absent"),
    ({"REPLICATE_API_TOKEN": " r8_0000000000000000000000000000000000000"}, "matches"),
    ({"REPLICATE_API_TOKEN": "r8_0000000000000000000000000000000000000\n"}, "differs"),
    ({"REPLICATE_API_TOKEN": '"r8_0000000000000000000000000000000000000"'}, "matches"),
    ({"REPLICATE_API_TOKEN": "Bearer r8_0000000000000000000000000000000000000"}, "matches"),
    ({"REPLICATE_API_KEY": "r8_0000000000000000000000000000000000000"}, "unknown"),
    ({"REPLICATE_API_TOKEN": "r8_0000000000000000000000000000000000000"}, "differs"),
    ({"REPLICATE_API_TOKEN": "r8_0000000000000000000000000000000000000"}, "matches"),
]


@pytest.mark.parametrize(("client", "types", "message", "attributes", "expected"), _REFUSAL_SHAPES)
@pytest.mark.parametrize(("environ", "sent"), _TOKEN_SITUATIONS)
def test_no_other_rule_matches_an_account_refusal(
    client: str,
    types: tuple[str, ...],
    message: str,
    attributes: dict[str, str],
    expected: str,
    environ: dict[str, str],
    sent: str,
) -> None:
    """Whatever the token looks like, a 402 or 429 matches its account rule and no other rule
    (no token rule is shown, nor listed as also possible)."""
    from replicate_explain._matcher import matching_rules
    from replicate_explain._snapshot import ExceptionInfo, snapshot_from_data

    info = ExceptionInfo(types=types, message=message, attributes=attributes, in_replicate=True)
    snapshot = snapshot_from_data([info], environ, client, sent=sent, extra_facts={"notebook.shell_export": "subshell"})
    assert [rule.id for rule, _ in matching_rules(snapshot, load_rules())] == [expected]
