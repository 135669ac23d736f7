"""``replicate-explain demo``: real client failures, explained, with no network and no token."""

from __future__ import annotations

import re

import pytest
from clients import CANARY, CLIENT_VERSIONS, client_path
from commandline import cli_env, run_cli, run_json
from outputs import leaks

from replicate_explain._rules import load_rules
from replicate_explain.cli._demo import DEFAULT, SCENARIOS, applies

pytestmark = pytest.mark.e2e  # every test here runs the console script or builds a venv


RULE_IDS = {rule.id for rule in load_rules().rules}
INSTALLED = "1.0.7"


def _env(version: str) -> dict[str, str]:
    """The caller's environment: a real-looking token and the hook switched off, which the demo
    must not pass on; ``version`` other than the installed client comes first on PYTHONPATH."""
    env = cli_env(REPLICATE_API_TOKEN=CANARY, REPLICATE_API_KEY=CANARY, REPLICATE_EXPLAIN="0")
    if version != INSTALLED:
        env["PYTHONPATH"] = str(client_path(version))
    return env


def _expected(version: str, names: tuple[str, ...] = ()) -> list[str]:
    pool = [s for s in SCENARIOS if not names or s.rule in names]
    return [s.rule for s in pool if s.rule in RULE_IDS and applies(s, version)]


@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_every_scenario_is_explained_by_its_rule(version: str) -> None:
    """``demo --all``: each scenario's real program fails and shows the scenario's rule, no leak."""
    status, document = run_json("demo", "--all", env=_env(version), timeout=600)
    summary = [(s["rule"], s["shown"], s["exit_status"]) for s in document["scenarios"]]
    assert (status, document["ok"], document["client_version"]) == (0, True, version)
    assert summary == [(rule, rule, 1) for rule in _expected(version)]
    for scenario in document["scenarios"]:
        assert "Traceback (most recent call last):" in scenario["stderr"]
        assert scenario["explanation"]["rule_id"] == scenario["rule"]
    assert leaks(str(document), CANARY) == []


def test_default_demo_shows_the_traceback_then_the_explanation() -> None:
    """Plain output: a header per scenario, then the child's traceback, then its explanation."""
    done = run_cli("demo", "--format", "plain", env=_env(INSTALLED), timeout=600)
    expected = _expected(INSTALLED, DEFAULT)
    assert done.returncode == 0
    opening = done.stdout.split("\n\n", 1)[0]  # wrapped to COLUMNS
    assert " ".join(opening.split()) == (
        f"replicate-explain demo: {len(expected)} real replicate {INSTALLED} failures, each run "
        "in its own Python against a loopback API (no network, fake tokens)."
    )
    sections = re.split(r"^=== \d+/\d+  ", done.stdout, flags=re.M)[1:]
    assert [section.split()[0] for section in sections] == expected
    for rule, section in zip(expected, sections):
        traceback_at = section.index("Traceback (most recent call last):")
        explanation_at = section.index(f"replicate-explain: {rule}: ")
        assert traceback_at < explanation_at
    assert leaks(done.stdout + done.stderr, CANARY) == []


def test_the_demo_fits_80_columns() -> None:
    """At COLUMNS=80 every line the demo writes fits in 80 columns: its opening, headers,
    program listings and closing line, each program's explanation (plain text wraps to COLUMNS),
    and each program's traceback, whose wider ``File "..."`` lines show their path from its
    library root (``…/replicate/client.py``), said once after each program's output."""
    done = run_cli("demo", "--all", "--format", "plain", env={**_env(INSTALLED), "COLUMNS": "80"}, timeout=600)
    expected = _expected(INSTALLED, tuple(s.rule for s in SCENARIOS))
    assert done.returncode == 0
    assert [line for line in done.stdout.splitlines() if len(line) > 80] == []
    sections = re.split(r"^=== \d+/\d+  ", done.stdout, flags=re.M)[1:]
    assert [section.split()[0] for section in sections] == expected
    note = '(paths under site-packages and the standard library shortened to "…/" to fit 80 columns)'
    for rule, section in zip(expected, sections):
        assert section.index("Traceback (most recent call last):") < section.index(f"replicate-explain: {rule}: ")
        # said once, after the program's output, when one of its paths was shortened
        assert " ".join(section.split()).count(note) == (1 if '  File "…/' in section else 0)


def test_a_wide_demo_shows_the_tracebacks_as_python_printed_them() -> None:
    """At COLUMNS=200 every ``File`` line fits: no path is shortened and nothing is said about it."""
    done = run_cli("demo", "--format", "plain", env={**_env(INSTALLED), "COLUMNS": "200"}, timeout=600)
    assert done.returncode == 0
    assert "…/" not in done.stdout
    assert "shortened to" not in done.stdout
    assert re.search(r'^  File "[^"]*[/\\]site-packages[/\\]replicate[/\\]', done.stdout, flags=re.M)


def test_whitespace_scenario_masks_the_fake_token() -> None:
    """The token httpx prints in its message appears masked in the demo's traceback."""
    done = run_cli("demo", "--scenario", "token-whitespace", "--format", "plain", env=_env(INSTALLED))
    assert done.returncode == 0
    assert "httpx.LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'" in done.stdout
    assert "r8_Demo" not in done.stdout


def test_list_names_every_scenario() -> None:
    """``--list`` names every scenario and whether it runs by default, with --all, or is skipped."""
    done = run_cli("demo", "--list")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == [s.rule for s in SCENARIOS]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--scenario", "token-missing"),
            "unknown scenario 'token-missing'; expected one of: token-unset",
        ),
        (("--format", "xml"), "invalid choice: 'xml'"),
    ],
)
def test_demo_usage_errors(args: tuple[str, ...], message: str) -> None:
    """Unknown scenarios and formats exit 2 with the expected values."""
    done = run_cli("demo", *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert message in done.stderr
