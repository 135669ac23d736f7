"""``replicate-explain rules list | show | check``, run as the installed console script."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from commandline import cli_env, run_cli, run_json

from replicate_explain._errors import RuleError
from replicate_explain._rules import bundled_rules_dir, load_rules
from replicate_explain.cli._rules import check_paths

BUNDLED = bundled_rules_dir()
BUNDLED_IDS = sorted(rule.id for rule in load_rules([BUNDLED]).rules)


def _user_rules(tmp_path: Path, **files: str) -> dict[str, str]:
    """A user rule directory holding ``files`` (name: text), and the environment naming it."""
    directory = tmp_path / "user-rules"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return cli_env(REPLICATE_EXPLAIN_RULES=str(directory))


def _retitled(rule_id: str, title: str) -> str:
    text = (BUNDLED / f"{rule_id}.yaml").read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    assert first.startswith("title:")
    return f"title: {title}\n{rest}"


@pytest.mark.e2e
def test_list_shows_every_bundled_rule() -> None:
    """``rules list --format json`` lists exactly the bundled rules, all marked bundled."""
    status, document = run_json("rules", "list")
    assert status == 0
    assert [(r["id"], r["source"], r["overrides"]) for r in document["rules"]] == [
        (rule_id, "bundled", False) for rule_id in BUNDLED_IDS
    ]
    assert document["errors"] == []


@pytest.mark.e2e
def test_list_plain_has_one_line_per_rule() -> None:
    """The plain listing: id, severity and title on one line per rule, then a count."""
    done = run_cli("rules", "list")
    lines = done.stdout.splitlines()
    assert done.returncode == 0
    assert [line.split()[0] for line in lines[: len(BUNDLED_IDS)]] == BUNDLED_IDS
    assert lines[len(BUNDLED_IDS) :] == [
        "",
        f"{len(BUNDLED_IDS)} rules. Details: replicate-explain rules show ID",
    ]


@pytest.mark.e2e
def test_a_user_rule_overrides_the_bundled_one(tmp_path: Path) -> None:
    """A user rule with a bundled id replaces it, and list and show say so."""
    env = _user_rules(tmp_path, **{"token-unset.yaml": _retitled("token-unset", "My team's token check")})
    status, document = run_json("rules", "list", env=env)
    (entry,) = [r for r in document["rules"] if r["id"] == "token-unset"]
    assert status == 0
    assert entry == {
        "id": "token-unset",
        "title": "My team's token check",
        "severity": "error",
        "source": "user, overrides a bundled rule",
        "overrides": True,
        "path": str(tmp_path / "user-rules" / "token-unset.yaml"),
    }
    plain = run_cli("rules", "list", env=env).stdout
    assert f"[user, overrides a bundled rule: {tmp_path / 'user-rules' / 'token-unset.yaml'}]" in plain
    shown = run_cli("rules", "show", "token-unset", env=env).stdout
    assert shown.startswith(
        "token-unset: My team's token check\n\nseverity: error; source: user, overrides a bundled rule\n"
    )


@pytest.mark.e2e
def test_list_reports_broken_user_rules_and_exits_1(tmp_path: Path) -> None:
    """A malformed user rule is listed on stderr as file:line: key: problem, its first one,
    counting the others (here: no case expects the file's id); exit 1."""
    bad = _retitled("token-unset", "x").replace("severity: error", "severity: fatal")
    env = _user_rules(tmp_path, **{"my-rule.yaml": bad})
    done = run_cli("rules", "list", env=env)
    path = tmp_path / "user-rules" / "my-rule.yaml"
    assert done.returncode == 1
    assert (
        done.stderr == f"replicate-explain: broken rule file: {path}:2: severity: "
        f"expected one of error, warning, got 'fatal' (and 1 more problem: replicate-explain rules check {path})\n"
    )


@pytest.mark.e2e
def test_show_prints_every_example() -> None:
    """``rules show`` prints all examples, one per client range, and the match conditions."""
    rule = load_rules([BUNDLED]).get("token-whitespace")
    assert rule is not None
    done = run_cli("rules", "show", "token-whitespace")
    assert done.returncode == 0
    headers = [line for line in done.stdout.splitlines() if line.startswith("Example ")]
    assert headers == [
        f"Example {n} of {len(rule.examples)}, for replicate {e.client}"
        if e.client
        else f"Example {n} of {len(rule.examples)}, for any replicate version"
        for n, e in enumerate(rule.examples, 1)
    ]
    for section in ("What happened\n", "Why\n", "Fix\n", "Matches when\n", "Learn more\n"):
        assert "\n" + section in done.stdout


@pytest.mark.e2e
def test_show_json_is_the_whole_rule() -> None:
    """``rules show --format json`` carries the rule's fields."""
    rule = load_rules([BUNDLED]).get("token-empty")
    assert rule is not None
    status, document = run_json("rules", "show", "token-empty")
    assert status == 0
    assert (document["id"], document["title"], document["fix"], document["source"]) == (
        rule.id,
        rule.title,
        list(rule.fix),
        "bundled",
    )
    assert [e["client"] for e in document["examples"]] == [e.client for e in rule.examples]
    assert len(document["match"]) == len(rule.matches)


@pytest.mark.e2e
def test_show_unknown_id_exits_2_with_a_suggestion() -> None:
    """An unknown id is a usage error that suggests the closest id."""
    done = run_cli("rules", "show", "token-whitespaces")
    assert (done.returncode, done.stdout) == (2, "")
    assert "no rule with id 'token-whitespaces'; did you mean 'token-whitespace'?" in done.stderr


@pytest.mark.e2e
def test_check_bundled_rules_passes() -> None:
    """Every bundled rule file is valid and every case is explained as it expects."""
    status, document = run_json("rules", "check")
    assert (status, document["ok"], document["problems"], document["rules"]) == (
        0,
        True,
        [],
        BUNDLED_IDS,
    )
    done = run_cli("rules", "check")
    assert done.stdout.endswith(f"checked {len(BUNDLED_IDS)} rules and {document['cases']} cases: ok\n")


@pytest.mark.e2e
def test_check_reports_schema_errors_with_file_and_line(tmp_path: Path) -> None:
    """A schema error prints as file:line: key: problem (did you mean ...); exit 1."""
    rule = tmp_path / "my-rule.yaml"
    rule.write_text(_retitled("token-unset", "Mine").replace("summary:", "sumary:"), encoding="utf-8")
    done = run_cli("rules", "check", str(rule))
    lines = rule.read_text(encoding="utf-8").splitlines()
    line = lines.index(next(text for text in lines if text.startswith("sumary:"))) + 1
    assert done.returncode == 1
    assert done.stdout.splitlines()[0].startswith(f"{rule}:{line}: sumary: unknown key; expected one of: ")
    assert done.stdout.splitlines()[0].endswith("(did you mean 'summary'?)")


@pytest.mark.e2e
def test_check_reports_failing_cases(tmp_path: Path) -> None:
    """A case the matcher explains differently is reported with its line; exit 1."""
    text = _retitled("token-unset", "Mine").replace("expect: token-unset", "expect: token-empty", 1)
    rule = tmp_path / "token-unset.yaml"
    rule.write_text(text, encoding="utf-8")
    status, document = run_json("rules", "check", str(tmp_path))
    lines = text.splitlines()
    # The case starts on the line before its "expect:" (whose 0-based index is that 1-based line).
    case_line = lines.index(next(line for line in lines if "expect: token-empty" in line))
    (problem,) = document["problems"]
    assert status == 1
    assert (problem["path"], problem["line"], problem["key"]) == (str(rule), case_line, "cases[0]")
    assert problem["problem"].endswith("expected 'token-empty', got 'token-unset'")


@pytest.mark.e2e
def test_check_copy_of_bundled_directory_passes(tmp_path: Path) -> None:
    """Checking a directory (a copy of the bundled one) validates each file in it."""
    copy = tmp_path / "rules"
    shutil.copytree(BUNDLED, copy)
    done = run_cli("rules", "check", str(copy))
    assert (done.returncode, done.stdout) == (0, run_cli("rules", "check").stdout)


@pytest.mark.e2e
def test_check_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    """A path that does not exist exits 2 and says what was expected."""
    missing = tmp_path / "nope.yaml"
    done = run_cli("rules", "check", str(missing))
    assert (done.returncode, done.stdout) == (2, "")
    assert f"no such file or directory: {missing}; expected rule files (*.yaml) or directories of them" in done.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("action", ["list", "show token-unset", "check"])
def test_rules_commands_do_not_depend_on_the_working_directory(tmp_path: Path, action: str) -> None:
    """The bundled rules are found from any working directory (not only the checkout)."""
    assert os.getcwd() != str(tmp_path)
    done = run_cli("rules", *action.split(), cwd=tmp_path)
    assert done.returncode == 0


def test_check_paths_reports_rule_errors(tmp_path: Path) -> None:
    """In process: ``check_paths`` returns the schema error of a broken file and the failing case
    of another as ``RuleError``s, each printing as ``file:line: key: problem``."""
    (tmp_path / "mine").mkdir()
    broken = tmp_path / "mine" / "token-unset.yaml"
    broken.write_text(_retitled("token-unset", "Mine").replace("summary:", "sumary:"), encoding="utf-8")
    failing = tmp_path / "token-empty.yaml"
    text = _retitled("token-empty", "Theirs").replace("expect: token-empty", "expect: token-unset", 1)
    failing.write_text(text, encoding="utf-8")
    case_line = text.splitlines().index(next(line for line in text.splitlines() if "expect: token-unset" in line))
    rules, problems, cases = check_paths([broken, failing])
    assert [rule.id for rule in rules] == ["token-empty"]
    assert cases == len(rules[0].cases)
    assert [type(problem) for problem in problems] == [RuleError, RuleError]
    schema, case = problems
    assert (schema.path, schema.key, schema.hint) == (str(broken), "sumary", "did you mean 'summary'?")
    assert str(schema).startswith(f"{broken}:{schema.line}: sumary: unknown key; expected one of: ")
    assert (case.path, case.line, case.key) == (str(failing), case_line, "cases[0]")
    assert str(case) == f"{failing}:{case_line}: cases[0]: {case.problem}"
    assert case.problem.endswith("expected 'token-unset', got 'token-empty'")


# Five distinct mistakes in one copy of token-unset: (what the text was, what it becomes).
FIVE_MISTAKES = (
    ("severity: error\n", "severity: fatal\n"),
    ('      message: "No API token provided"', '      message: "No API (token"'),
    ("    token.state: unset\n", "    token.sate: unset\n"),
    ("summary: >-", "sumary: >-"),
    ('    client: "0.11.0"\n', '    client: "0.11.0"\n    sent: maybe\n'),
)


def _five_mistakes(directory: Path) -> tuple[Path, list[tuple[int, str]]]:
    """A rule file with the five mistakes, and the (line, key) each should be reported at."""
    # A frozen copy of an earlier token-unset.yaml (valid on its own), so the bundled rule can
    # change without moving the mistakes' lines.
    text = (Path(__file__).parent / "data" / "five-mistakes-base.yaml").read_text(encoding="utf-8")
    for before, after in FIVE_MISTAKES:
        assert before in text, before
        text = text.replace(before, after, 1)  # the first occurrence: one mistake each
    path = directory / "token-unset.yaml"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()

    def line(start: str) -> int:
        return next(number for number, line in enumerate(lines, 1) if line.startswith(start))

    return path, [
        (2, "severity"),
        (line('      message: "No API (token"'), "match.exceptions[0].message"),
        (line("    token.sate:"), "match.facts.token.sate"),
        (line("sumary:"), "sumary"),
        (line("    sent: maybe"), "cases[2].sent"),
    ]


def test_check_paths_reports_every_mistake_of_a_file_in_one_run(tmp_path: Path) -> None:
    """Five distinct mistakes in one file are five ``RuleError``s from one ``check_paths`` call,
    in line order, each with its key path, and "did you mean" where a key or fact is misspelt;
    the file's rule is not checked further (no rules, no cases)."""
    path, where = _five_mistakes(tmp_path)
    rules, problems, cases = check_paths([path])
    assert (rules, cases) == ([], 0)
    assert [(p.path, p.line, p.key) for p in problems] == [(str(path), line, key) for line, key in where]
    assert [p.hint for p in problems] == [
        None,
        None,
        "did you mean 'token.state'?",
        "did you mean 'summary'?",
        None,
    ]
    assert [p.problem.split(";")[0].split(":")[0] for p in problems] == [
        "expected one of error, warning, got 'fatal'",
        "invalid regular expression 'No API (token'",
        "unknown fact",
        "unknown key",
        "expected absent, matches, differs or unknown, got 'maybe'",
    ]


def test_a_broken_file_loads_as_one_error_naming_the_rest(tmp_path: Path) -> None:
    """At run time the file is skipped with one error (its first problem) that counts the
    others and names the command that lists them, so the excepthook warns in one line."""
    path, where = _five_mistakes(tmp_path)
    loaded = load_rules([tmp_path])
    (error,) = loaded.errors
    assert loaded.rules == ()
    assert (error.line, error.key) == where[0]
    assert str(error) == (
        f"{path}:2: severity: expected one of error, warning, got 'fatal' "
        f"(and 4 more problems: replicate-explain rules check {path})"
    )


@pytest.mark.e2e
def test_check_prints_every_mistake_in_one_run(tmp_path: Path) -> None:
    """Through the console script: the five mistakes print as five ``file:line: key:`` lines,
    then the verdict; exit 1."""
    path, where = _five_mistakes(tmp_path)
    done = run_cli("rules", "check", str(path))
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert [line.split(": ")[:2] for line in lines[:-1]] == [[f"{path}:{n}", key] for n, key in where]
    assert lines[-1] == "checked 0 rules and 0 cases: 5 problems"


def test_fact_names_are_not_masked_as_tokens() -> None:
    """``rules check`` prints its output through the redactor: the fact names it lists (such as
    ``token.r8_prefix``) come out whole, while a token after a dot or back to back with another
    is still masked."""
    from clients import CANARY

    from replicate_explain._facts import FACTS
    from replicate_explain._mask import MASK, Redactor

    listing = ", ".join(FACTS)
    assert "token.r8_prefix" in listing
    assert Redactor()(f"expected one of: {listing}") == f"expected one of: {listing}"
    # A short lower-case word after r8_ is a name, not a cut token (r8_abcdef stays, as r8_data
    # does); a cut token with a digit or a capital (r8_Ab3dEf9h) is masked.
    assert Redactor()(f"token.{CANARY}, r8_abcdef. r8_Ab3dEf9h. {CANARY}{CANARY}") == (
        f"token.{MASK}, r8_abcdef. {MASK}. {MASK}{MASK}"
    )


def test_rules_new_writes_a_skeleton_that_passes_check(tmp_path: Path) -> None:
    """``new_rule`` writes ``DIR/ID.yaml`` (making DIR), which ``check_paths`` accepts with its
    two cases; every place to fill in is marked TODO, and the file says how to check it."""
    from replicate_explain.cli._rules import new_rule

    path = new_rule("proxy-strips-auth", tmp_path / "my-rules")
    text = path.read_text(encoding="utf-8")
    rules, problems, cases = check_paths([path])
    assert path == tmp_path / "my-rules" / "proxy-strips-auth.yaml"
    assert ([rule.id for rule in rules], problems, cases) == (["proxy-strips-auth"], [], 2)
    data = yaml.safe_load(text)
    assert sorted(key for key, value in data.items() if "TODO" in str(value)) == [
        "cases",
        "examples",
        "fix",
        "match",
        "references",
        "summary",
        "title",
        "why",
    ]
    assert f"#   replicate-explain rules check {path}\n" in text
    assert rules[0].title == "TODO: one line that states the problem (not the fix)"


@pytest.mark.parametrize(
    ("rule_id", "message"),
    [
        ("My_Rule", "'My_Rule' is not a rule id; expected kebab-case such as 'proxy-strips-auth'"),
        ("mine\n", "'mine\\n' is not a rule id; expected kebab-case such as 'proxy-strips-auth'"),
        (
            "token-unset",
            "'token-unset' is a bundled rule, which a rule with that id replaces; "
            "choose another id, or pass --force to replace it",
        ),
    ],
)
def test_rules_new_refuses_a_bad_or_bundled_id(tmp_path: Path, rule_id: str, message: str) -> None:
    """An id that is not kebab-case, or a bundled rule's id without ``force``, is a usage error
    and writes nothing."""
    from replicate_explain.cli._output import UsageError
    from replicate_explain.cli._rules import new_rule

    with pytest.raises(UsageError) as caught:
        new_rule(rule_id, tmp_path)
    assert (str(caught.value), list(tmp_path.iterdir())) == (message, [])


def test_rules_new_does_not_overwrite_without_force(tmp_path: Path) -> None:
    """An existing file is kept unless ``force``; ``force`` also allows a bundled rule's id."""
    from replicate_explain.cli._output import UsageError
    from replicate_explain.cli._rules import new_rule

    path = tmp_path / "mine.yaml"
    path.write_text("my work\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        new_rule("mine", tmp_path)
    assert (str(caught.value), path.read_text(encoding="utf-8")) == (
        f"{path} exists; pass --force to overwrite it",
        "my work\n",
    )
    assert new_rule("mine", tmp_path, force=True).read_text(encoding="utf-8").startswith("# A replicate-explain rule")
    assert new_rule("token-unset", tmp_path, force=True) == tmp_path / "token-unset.yaml"


def test_rules_new_does_not_follow_a_dangling_symlink_without_force(tmp_path: Path) -> None:
    """``DIR/ID.yaml`` a symbolic link to a file that does not exist (yet) is an existing entry:
    without ``force`` nothing is written through it, and the link's target is not created."""
    from replicate_explain.cli._output import UsageError
    from replicate_explain.cli._rules import new_rule

    target = tmp_path / "elsewhere" / "target.txt"
    target.parent.mkdir()
    link = tmp_path / "mine.yaml"
    link.symlink_to(target)
    with pytest.raises(UsageError) as caught:
        new_rule("mine", tmp_path)
    assert (str(caught.value), target.exists(), link.is_symlink()) == (
        f"{link} exists; pass --force to overwrite it",
        False,
        True,
    )


@pytest.mark.e2e
def test_rules_new_then_check_through_the_console_script(tmp_path: Path) -> None:
    """``rules new ID --dir DIR`` writes the skeleton and says how to check it; ``rules check``
    of that file passes; a bundled rule's id exits 2 with the reason on stderr."""
    done = run_cli("rules", "new", "proxy-strips-auth", "--dir", str(tmp_path))
    path = tmp_path / "proxy-strips-auth.yaml"
    assert (done.returncode, done.stdout) == (
        0,
        f"wrote {path}: replace each TODO (docs/RULES.md is the reference), then run\n"
        f"  replicate-explain rules check {path}\n",
    )
    checked = run_cli("rules", "check", str(path))
    assert (checked.returncode, checked.stdout) == (0, "checked 1 rule and 2 cases: ok\n")
    refused = run_cli("rules", "new", "token-unset", "--dir", str(tmp_path))
    assert (refused.returncode, refused.stdout) == (2, "")
    assert "'token-unset' is a bundled rule" in refused.stderr
