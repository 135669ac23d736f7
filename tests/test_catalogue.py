"""The cause catalogue, reproduced with real clients: each cause, in every client generation
where it can happen, is explained by its own rule and by no other rule first.

Every program runs as a subprocess with a real ``replicate`` release against the loopback API,
with ``REPLICATE_EXPLAIN_FORMAT=json``; the test reads the one JSON explanation from stderr.
Where a cause cannot happen in a generation, the same program is run there too and must end
as plain Python would (success, or no explanation). The canary token must never appear.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from clients import (
    CANARY,
    CLIENT_VERSIONS,
    MODEL_REF,
    REPO_ROOT,
    VALID_TOKEN,
    client_path,
    extra_path,
    run_program,
)
from outputs import explanations, leaks, rule_shown

from replicate_explain._loopback import LoopbackAPI

JSON = {"REPLICATE_EXPLAIN_FORMAT": "json"}
V2 = "2.0.0b4"
PRE_2 = tuple(v for v in CLIENT_VERSIONS if not v.startswith("2."))
HTTPX_CACHING = ("0.15.3", "0.15.8", "1.0.7")
"""The 0.x and 1.x releases that cache the token (0.11.0 reads it at every request)."""

RUN = f"""
import replicate
print(replicate.run({MODEL_REF!r}, input={{"text": "hi"}}))
"""

# A notebook: the first call fails, the token is replaced in the environment, the next call runs.
NOTEBOOK = f"""
import os
import replicate
try:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
except Exception as error:
    print("cell 1 failed:", type(error).__name__)
os.environ["REPLICATE_API_TOKEN"] = os.environ["NEW_TOKEN"]
print(replicate.run({MODEL_REF!r}, input={{"text": "hi"}}))
"""

SET_AFTER_IMPORT = f"""
import os
import replicate
os.environ["REPLICATE_API_TOKEN"] = os.environ["MY_APP_TOKEN"]
print(replicate.run({MODEL_REF!r}, input={{"text": "hi"}}))
"""


def explicit(version: str, keyword: str, token_expr: str = 'os.environ["REPLICATE_API_TOKEN"]') -> str:
    """A program that builds the client of ``version`` with ``keyword=``."""
    cls = "Replicate" if version.startswith("2.") else "Client"
    return f"""
import os
import replicate
client = replicate.{cls}({keyword}={token_expr})
print(client.run({MODEL_REF!r}, input={{"text": "hi"}}))
"""


def by_name(keyword: str) -> str:
    """The same with ``from replicate import Client`` (the class bound directly in the frame)."""
    return f"""
import os
from replicate import Client
client = Client({keyword}=os.environ["REPLICATE_API_TOKEN"])
print(client.run({MODEL_REF!r}, input={{"text": "hi"}}))
"""


@dataclass(frozen=True)
class Scenario:
    """One cause, one program, the client releases it runs on, and the rule it must show."""

    name: str
    versions: tuple[str, ...]
    code: Any
    """The program (a string), or a function of the version that returns it."""
    token: str | None
    expect: str | None
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """Files written into the working directory first (``sub/`` paths make a parent .env)."""
    cwd: str = "."
    """Where the program runs, relative to that directory."""
    exit_code: int = 1

    def program(self, version: str) -> str:
        return self.code(version) if callable(self.code) else str(self.code)


SCENARIOS = [
    # token-quoted: every generation sends the quotes and gets a 401.
    Scenario("double quotes", CLIENT_VERSIONS, RUN, f'"{CANARY}"', "token-quoted"),
    Scenario("single quotes", ("0.15.8", V2), RUN, f"'{CANARY}'", "token-quoted"),
    # token-scheme-prefixed
    Scenario("Bearer in the value", CLIENT_VERSIONS, RUN, f"Bearer {CANARY}", "token-scheme-prefixed"),
    Scenario("Token in the value", ("0.11.0", "1.0.7"), RUN, f"Token {CANARY}", "token-scheme-prefixed"),
    # token-lookalike-var: unset under the real name in every generation; empty too.
    Scenario(
        "REPLICATE_API_KEY",
        CLIENT_VERSIONS,
        RUN,
        None,
        "token-lookalike-var",
        {"REPLICATE_API_KEY": CANARY},
    ),
    Scenario(
        "REPLICATE_TOKEN",
        ("0.15.3", V2),
        RUN,
        None,
        "token-lookalike-var",
        {"REPLICATE_TOKEN": CANARY},
    ),
    Scenario(
        "empty and REPLICATE_KEY",
        ("1.0.7", V2),
        RUN,
        "",
        "token-lookalike-var",
        {"REPLICATE_KEY": CANARY},
    ),
    # token-rejected: a clean, well-formed token the API refuses (0.15.3 too: set before import).
    Scenario("refused token", CLIENT_VERSIONS, RUN, CANARY, "token-rejected"),
    # token-stale-in-process: the variable changed after the client cached a token.
    Scenario(
        "stale after a failed call",
        (*HTTPX_CACHING, V2),
        NOTEBOOK,
        CANARY,
        "token-stale-in-process",
        {"NEW_TOKEN": VALID_TOKEN},
    ),
    Scenario(
        "none cached at the first call",
        ("0.15.8", "1.0.7"),
        NOTEBOOK,
        None,
        "token-stale-in-process",
        {"NEW_TOKEN": VALID_TOKEN},
    ),
    Scenario(
        "a token passed in code wins",
        CLIENT_VERSIONS,
        lambda v: explicit(v, "bearer_token" if v.startswith("2.") else "api_token", repr(CANARY)),
        VALID_TOKEN,
        "token-stale-in-process",
    ),
    # ... and where it cannot happen, the fix takes effect and nothing is explained.
    Scenario(
        "0.11.0 reads the variable at every request",
        ("0.11.0",),
        NOTEBOOK,
        CANARY,
        None,
        {"NEW_TOKEN": VALID_TOKEN},
        exit_code=0,
    ),
    Scenario(
        "unset at the first call, read again at the next",
        ("0.11.0", V2),
        NOTEBOOK,
        None,
        None,
        {"NEW_TOKEN": VALID_TOKEN},
        exit_code=0,
    ),
    # client-param-renamed: the other generation's keyword; at construction on 0.11.0, 0.15.3
    # and 2.x, at the first request (inside httpx) on 0.15.8 and 1.0.7.
    Scenario(
        "the other generation's keyword",
        CLIENT_VERSIONS,
        lambda v: explicit(v, "api_token" if v.startswith("2.") else "bearer_token"),
        VALID_TOKEN,
        "client-param-renamed",
    ),
    Scenario(
        "api_key",
        CLIENT_VERSIONS,
        lambda v: explicit(v, "api_key"),
        VALID_TOKEN,
        "client-param-renamed",
    ),
    Scenario(
        "a directly imported Client",
        PRE_2,
        by_name("bearer_token"),
        VALID_TOKEN,
        "client-param-renamed",
    ),
    Scenario(
        "a Client that is not replicate's",
        ("0.11.0", V2),
        f"""
import replicate
class Client:
    def __init__(self) -> None:
        pass
Client(api_token={CANARY!r})
""",
        VALID_TOKEN,
        None,
    ),
    # dotenv-not-loaded: a .env here or in a parent defines the token; the process lacks it.
    Scenario(
        ".env in the working directory",
        CLIENT_VERSIONS,
        RUN,
        None,
        "dotenv-not-loaded",
        files={".env": f"REPLICATE_API_TOKEN={CANARY}\n"},
    ),
    Scenario(
        ".env in a parent directory",
        ("0.11.0", V2),
        RUN,
        None,
        "dotenv-not-loaded",
        files={".env": f"export REPLICATE_API_TOKEN='{CANARY}'\n", "app/keep": ""},
        cwd="app",
    ),
    Scenario(
        "a .env whose token line is empty",
        ("1.0.7",),
        RUN,
        None,
        "token-unset",
        files={".env": "REPLICATE_API_TOKEN=\n"},
    ),
    # client-outdated, 0.14.0-0.15.3: the token set after `import replicate` is never sent
    # (0.14.0 sends "Token None"); 0.15.8 reads it at the first request and runs.
    Scenario(
        "token set after import",
        ("0.14.0", "0.15.3"),
        SET_AFTER_IMPORT,
        None,
        "client-outdated",
        {"MY_APP_TOKEN": VALID_TOKEN},
    ),
    Scenario(
        "token set after import, fixed release",
        ("0.15.8", "1.0.7", V2),
        SET_AFTER_IMPORT,
        None,
        None,
        {"MY_APP_TOKEN": VALID_TOKEN},
        exit_code=0,
    ),
]

if sys.version_info < (3, 12):
    # client-outdated, 1.1.0b1-b3: Python 3.12 syntax, a SyntaxError at import before 3.12.
    SCENARIOS.append(Scenario("1.1.0 beta on Python < 3.12", ("1.1.0b1",), RUN, CANARY, "client-outdated"))


def _params() -> list[Any]:
    return [
        pytest.param(scenario, version, id=f"{scenario.name}-{version}")
        for scenario in SCENARIOS
        for version in scenario.versions
    ]


def run_scenario(
    api: LoopbackAPI,
    scenario: Scenario,
    version: str,
    tmp_path: Path,
    extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the scenario's program with ``version`` in ``tmp_path`` (its files written first)."""
    for name, text in scenario.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    code = "import replicate_explain\n" + scenario.program(version)
    env = {**JSON, **scenario.env, **(extra or {})}
    return run_program(code, version, api, scenario.token, env, cwd=tmp_path / scenario.cwd)


@pytest.mark.e2e
@pytest.mark.parametrize(("scenario", "version"), _params())
def test_each_cause_is_explained_by_its_own_rule(
    api: LoopbackAPI, scenario: Scenario, version: str, tmp_path: Path
) -> None:
    """The cause, on this client release, shows exactly one explanation: the cause's rule (or
    none where the cause cannot happen); the exit status is plain Python's; no token leaks."""
    result = run_scenario(api, scenario, version, tmp_path)
    assert (result.returncode, rule_shown(result.stderr)) == (
        scenario.exit_code,
        scenario.expect,
    ), result.stderr
    assert leaks(result.stdout + result.stderr, CANARY) == []


def _shown(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    found = explanations(result.stderr)
    assert len(found) == 1, result.stderr
    return found[0]


@pytest.mark.e2e
def test_the_lookalike_is_named_and_its_value_is_not_shown(api: LoopbackAPI, tmp_path: Path) -> None:
    """The evidence names the variable that holds the token, never the value."""
    scenario = Scenario("look-alike", (V2,), RUN, None, "token-lookalike-var", {"REPLICATE_API_KEY": CANARY})
    shown = _shown(run_scenario(api, scenario, V2, tmp_path))
    assert shown["evidence"][:2] == [
        "REPLICATE_API_TOKEN is not set in this process",
        "REPLICATE_API_KEY is set, a name the replicate client does not read",
    ]
    assert leaks(str(shown), CANARY) == []


@pytest.mark.e2e
@pytest.mark.parametrize("version", ["1.0.7", V2])
def test_a_stale_token_is_found_by_digest_with_the_fix_for_the_generation(
    api: LoopbackAPI, version: str, tmp_path: Path
) -> None:
    """The evidence says the request carried another token than the variable holds now (by
    digest), and the code shown is the fix for the installed generation."""
    scenario = Scenario("stale", (version,), NOTEBOOK, CANARY, "token-stale-in-process", {"NEW_TOKEN": VALID_TOKEN})
    shown = _shown(run_scenario(api, scenario, version, tmp_path))
    sent = "the failed request sent a different token than REPLICATE_API_TOKEN holds now (compared by digest)"
    assert sent in shown["evidence"]
    fix = "replicate.bearer_token = " if version == V2 else "client = replicate.Client(api_token="
    assert fix in shown["code"]["fixed"]
    assert leaks(str(shown) + str(shown["code"]), CANARY, VALID_TOKEN) == []


@pytest.mark.e2e
def test_a_dotenv_is_named_by_path(api: LoopbackAPI, tmp_path: Path) -> None:
    """The evidence names the .env file found (a path, which is not a secret), and the fix
    loads it before importing replicate."""
    scenario = Scenario(
        ".env",
        ("1.0.7",),
        RUN,
        None,
        "dotenv-not-loaded",
        files={".env": f"REPLICATE_API_TOKEN={CANARY}\n"},
    )
    shown = _shown(run_scenario(api, scenario, "1.0.7", tmp_path))
    assert f"{tmp_path / '.env'} defines REPLICATE_API_TOKEN" in shown["evidence"]
    fixed = shown["code"]["fixed"]
    assert fixed.index("load_dotenv(") < fixed.index("import replicate")


@pytest.mark.e2e
@pytest.mark.skipif(sys.version_info >= (3, 12), reason="1.1.0b1 imports fine on Python 3.12+")
def test_a_release_with_no_example_for_it_shows_no_code(api: LoopbackAPI, tmp_path: Path) -> None:
    """client-outdated on 1.1.0b1: the fix is another release, so no code of another
    generation is shown; the evidence names the installed release."""
    scenario = Scenario("1.1.0b1", ("1.1.0b1",), RUN, CANARY, "client-outdated")
    shown = _shown(run_scenario(api, scenario, "1.1.0b1", tmp_path))
    assert (shown["rule_id"], shown["code"], shown["client_version"]) == (
        "client-outdated",
        None,
        "1.1.0b1",
    )
    assert shown["exception"].startswith("builtins.SyntaxError: ")


@pytest.mark.e2e
def test_the_dotenv_example_runs_with_python_dotenv(api: LoopbackAPI, tmp_path: Path) -> None:
    """The dotenv-not-loaded example needs python-dotenv (its ``requires``) and a .env file (its
    ``files``): with both, the broken snippet shows the rule and the fixed one runs."""
    from replicate_explain._rules import load_rules

    rule = load_rules().get("dotenv-not-loaded")
    assert rule is not None
    (example,) = rule.examples
    assert (dict(example.files), example.requires) == (
        {".env": "REPLICATE_API_TOKEN={token}\n"},
        ("python-dotenv",),
    )
    version = "1.0.7"
    path = os.pathsep.join(str(p) for p in (client_path(version), extra_path("python-dotenv"), REPO_ROOT))
    files = {name: text.replace("{token}", VALID_TOKEN) for name, text in example.files.items()}
    outcomes = []
    for code in (example.broken, example.fixed):
        scenario = Scenario("example", (version,), code, None, None, files=files)
        result = run_scenario(api, scenario, version, tmp_path, {"PYTHONPATH": path})
        outcomes.append((result.returncode, rule_shown(result.stderr)))
        assert leaks(result.stdout + result.stderr, VALID_TOKEN) == []
    assert outcomes == [(1, "dotenv-not-loaded"), (0, None)]


# ---------------------------------------------------------------------------------------------
# What the catalogue needs from the rule format and the snapshot, checked without a client.


def test_client_outdated_has_one_alternative_per_known_bad_range() -> None:
    """``match`` as a list: each alternative has its own client range (and Python range)."""
    from replicate_explain._rules import load_rules

    rule = load_rules().get("client-outdated")
    assert rule is not None
    ranges = [(match.client, match.python) for match in rule.matches]
    assert ranges == [
        (">=0.14.0,<=0.15.3", ""),
        (">=1.1.0b1,<=1.1.0b3", "<3.12"),
        (">=2.0.0a1,<=2.0.0a19", ""),
    ]


def test_errors_in_a_match_list_name_the_alternative(tmp_path: Path) -> None:
    """A mistake inside ``match[1]`` is reported with that key path and its line."""
    from replicate_explain import RuleError
    from replicate_explain._rules import bundled_rules_dir, parse_rule

    text = (bundled_rules_dir() / "token-lookalike-var.yaml").read_text(encoding="utf-8")
    good = "      token.sent: [absent, unknown]\n      token.lookalike_set: true\nsummary:"
    bad = "      token.sentt: [absent, unknown]\n      token.lookalike_set: true\nsummary:"
    assert text.count(good) == 1
    changed = text.replace(good, bad)
    with pytest.raises(RuleError) as caught:
        parse_rule(tmp_path / "token-lookalike-var.yaml", changed)
    line = changed.splitlines().index("      token.sentt: [absent, unknown]") + 1
    assert (caught.value.key, caught.value.line, caught.value.hint) == (
        "match[1].facts.token.sentt",
        line,
        "did you mean 'token.sent'?",
    )


def test_example_files_must_stay_inside_the_working_directory(tmp_path: Path) -> None:
    """An example's ``files`` are relative paths; an absolute one is refused with the key."""
    from replicate_explain import RuleError
    from replicate_explain._rules import bundled_rules_dir, parse_rule

    text = (bundled_rules_dir() / "dotenv-not-loaded.yaml").read_text(encoding="utf-8")
    changed = text.replace("      .env: ", "      /etc/.env: ", 1)
    with pytest.raises(RuleError) as caught:
        parse_rule(tmp_path / "dotenv-not-loaded.yaml", changed)
    assert (caught.value.key, caught.value.problem) == (
        "examples[0].files./etc/.env",
        "expected a relative path inside the working directory such as '.env', got '/etc/.env'",
    )


def test_a_wrong_keyword_without_source_counts_only_if_no_other_class_could_be_meant() -> None:
    """Without the source line (code run from a string), a ``Client.__init__()`` TypeError is
    relevant only when every class named Client that the frame sees is replicate's."""
    import types

    from replicate_explain._snapshot import take_snapshot

    def module(name: str) -> types.ModuleType:
        made = types.ModuleType(name)
        exec("class Client:\n    def __init__(self):\n        pass\n", vars(made))
        made.Client.__module__ = f"{name}.client"
        return made

    fake, other = module("replicate"), module("othersdk")
    outcomes = []
    for scope in ({"replicate": fake}, {"replicate": fake, "othersdk": other}):
        try:
            exec(compile("replicate.Client(bearer_token='x')", "<no source>", "exec"), dict(scope))
        except TypeError as error:
            outcomes.append(take_snapshot(error, {}, version=None).relevant)
    assert outcomes == [True, False]
