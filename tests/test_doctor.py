"""``replicate-explain doctor``: findings per token state, client, Python, and ``--online``."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import CANARY, NO_BILLING_TOKEN, VALID_TOKEN, client_path
from commandline import cli_env, run_cli, run_json
from outputs import leaks

from replicate_explain._checks import PROBLEM, Finding, account_summary, account_url, problem, python_findings
from replicate_explain._loopback import LoopbackAPI, header_digest
from replicate_explain._rules import RuleSet, load_rules
from replicate_explain.cli._doctor import run_checks

RULE_IDS = {rule.id for rule in load_rules().rules}
PYTHON = ".".join(map(str, sys.version_info[:3]))


def cited(rule_id: str) -> str | None:
    """The id a finding cites for ``rule_id``: the id if that rule is loaded, else nothing."""
    return rule_id if rule_id in RULE_IDS else None


def _problems(document: dict[str, Any], *checks: str) -> list[tuple[str, str | None]]:
    return [(f["check"], f["rule"]) for f in document["findings"] if f["status"] == PROBLEM and f["check"] in checks]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("environ", "dotenv", "expected"),
    [
        ({}, False, [("token", "token-unset")]),
        ({"REPLICATE_API_TOKEN": ""}, False, [("token", "token-empty")]),
        ({"REPLICATE_API_TOKEN": "   "}, False, [("token", "token-empty")]),
        ({"REPLICATE_API_TOKEN": VALID_TOKEN + "\n"}, False, [("token", "token-whitespace")]),
        ({"REPLICATE_API_TOKEN": " " + VALID_TOKEN}, False, [("token", "token-whitespace")]),
        ({"REPLICATE_API_TOKEN": f'"{VALID_TOKEN}"'}, False, [("token", "token-quoted")]),
        (
            {"REPLICATE_API_TOKEN": f"'{VALID_TOKEN}'\r\n"},
            False,
            [("token", "token-whitespace"), ("token", "token-quoted")],
        ),
        (
            {"REPLICATE_API_TOKEN": f"Bearer {VALID_TOKEN}"},
            False,
            [("token", "token-scheme-prefixed")],
        ),
        (
            {"REPLICATE_API_KEY": VALID_TOKEN},
            False,
            [("token", "token-unset"), ("token", "token-lookalike-var")],
        ),
        ({}, True, [("token", "token-unset"), ("dotenv", "dotenv-not-loaded")]),
        ({"REPLICATE_API_TOKEN": VALID_TOKEN}, True, []),
        ({"REPLICATE_API_TOKEN": VALID_TOKEN}, False, []),
    ],
    ids=[
        "unset",
        "empty",
        "blank",
        "newline",
        "leading space",
        "quoted",
        "quoted crlf",
        "bearer",
        "lookalike",
        "dotenv",
        "set and dotenv",
        "healthy",
    ],
)
def test_token_findings(tmp_path: Path, environ: dict[str, str], dotenv: bool, expected: list[tuple[str, str]]) -> None:
    """Each token state gives its problems, citing the rules that exist; exit 1 iff any problem."""
    if dotenv:
        (tmp_path / ".env").write_text(f"REPLICATE_API_TOKEN={VALID_TOKEN}\n", encoding="utf-8")
    status, document = run_json("doctor", env=cli_env(environ), cwd=tmp_path)
    wanted = [(check, cited(rule_id)) for check, rule_id in expected]
    assert _problems(document, "token", "dotenv") == wanted
    assert (status, document["healthy"], document["problems"]) == ((1, False, len(wanted)) if wanted else (0, True, 0))
    assert {f["rule"] for f in document["findings"]} <= RULE_IDS | {None}
    for finding in document["findings"]:
        if finding["status"] == PROBLEM:
            assert finding["fix"], finding


@pytest.mark.e2e
def test_healthy_report_in_plain_text(tmp_path: Path) -> None:
    """A healthy environment: ok lines and the closing verdict; exit 0."""
    done = run_cli("doctor", env=cli_env(REPLICATE_API_TOKEN=VALID_TOKEN), cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert done.returncode == 0
    assert lines[:3] == [
        f"replicate-explain doctor (Python {PYTHON})",
        "",
        "[ok]      token: REPLICATE_API_TOKEN is set, 40 characters, has the r8_ + 37 letters and digits",
    ]  # wrapped to COLUMNS (cli_env: 100)
    assert lines[-1] == "No problems found."


@pytest.mark.e2e
def test_unset_report_in_plain_text(tmp_path: Path) -> None:
    """A problem line names the check, the rule id, the fix and where to read more."""
    done = run_cli("doctor", env=cli_env(), cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert lines[2] == f"[problem] token: REPLICATE_API_TOKEN is not set in this process ({cited('token-unset')})"
    assert lines[3].startswith("          fix: 1. ")
    assert "          more: replicate-explain rules show token-unset" in lines
    assert lines[-1] == "1 problem found."


@pytest.mark.e2e
def test_an_old_token_format_is_a_note_not_a_problem(tmp_path: Path) -> None:
    """A token without r8_ may still be valid: a note, exit 0."""
    status, document = run_json(
        "doctor",
        env=cli_env(REPLICATE_API_TOKEN="a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"),
        cwd=tmp_path,
    )
    token = [(f["status"], f["message"]) for f in document["findings"] if f["check"] == "token"]
    assert (status, token[1]) == (
        0,
        (
            "note",
            "current tokens start with r8_; an older token without it still works if it was not revoked",
        ),
    )


@pytest.mark.e2e
def test_outdated_client_is_reported_from_the_rule_file(tmp_path: Path) -> None:
    """replicate 0.15.3 falls in the client-outdated range of the rule file: a problem citing it."""
    env = cli_env(REPLICATE_API_TOKEN=VALID_TOKEN, PYTHONPATH=str(client_path("0.15.3")))
    status, document = run_json("doctor", env=env, cwd=tmp_path)
    assert (status, document["client_version"]) == (1, "0.15.3")
    assert _problems(document, "client", "import", "python") == [("client", cited("client-outdated"))]


@pytest.mark.e2e
def test_current_client_is_fine(tmp_path: Path) -> None:
    """The installed 1.0.7: client, Python and import checks are ok."""
    status, document = run_json("doctor", env=cli_env(REPLICATE_API_TOKEN=VALID_TOKEN), cwd=tmp_path)
    states = {f["check"]: f["status"] for f in document["findings"] if f["check"] in ("client", "python", "import")}
    assert (status, states) == (0, {"client": "ok", "python": "ok", "import": "ok"})


def test_python_older_than_the_client_needs() -> None:
    """A Python outside the installed client's Requires-Python is a problem with a fix."""
    from importlib import metadata

    requires = metadata.metadata("replicate")["Requires-Python"]
    assert python_findings("1.0.7", python="3.7.0") == [
        Finding(
            "python",
            PROBLEM,
            f"Python 3.7.0 does not satisfy replicate 1.0.7's Requires-Python {requires}",
            None,
            (f"Use a Python that matches {requires}, or install a replicate release that supports Python 3.7.0.",),
        )
    ]


@pytest.mark.parametrize(
    ("base", "url"),
    [
        (None, "https://api.replicate.com/v1/account"),
        ("http://127.0.0.1:9", "http://127.0.0.1:9/v1/account"),
        ("http://127.0.0.1:9/", "http://127.0.0.1:9/v1/account"),
        ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/account"),
        ("http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1/account"),
    ],
)
def test_account_url_handles_both_base_url_styles(base: str | None, url: str) -> None:
    """1.x-style base URLs (no /v1) and 2.x-style ones (with /v1) both reach /v1/account."""
    assert account_url({} if base is None else {"REPLICATE_BASE_URL": base}) == url


# ---------------------------------------------------------------------------------------------
# --online, against the loopback API


def _online(api_url: str, token: str | None, tmp_path: Path, *extra: str) -> tuple[int, list[tuple[str, str]], str]:
    env = cli_env(REPLICATE_BASE_URL=api_url)
    if token is not None:
        env["REPLICATE_API_TOKEN"] = token
    done = run_cli("doctor", "--online", "--format", "json", *extra, env=env, cwd=tmp_path)
    document = json.loads(done.stdout)
    online = [(f["status"], f["message"]) for f in document["findings"] if f["check"] == "online"]
    assert leaks(done.stdout + done.stderr, CANARY, VALID_TOKEN) == []
    return (
        done.returncode,
        online,
        str([f["rule"] for f in document["findings"] if f["check"] == "online"]),
    )


ACME = '(account: acme, "Acme", a user)'
"""What the loopback's ``GET /v1/account`` says of every accepted token's account."""
BILLING = (
    "billing cannot be checked without running a prediction (which costs money): the account "
    "endpoint does not say whether billing is set up or credit is left; a 402 or 429 when you "
    "run a model is about the account named above, not the token"
)


@pytest.mark.e2e
@pytest.mark.parametrize("suffix", ["", "/v1"], ids=["1.x base url", "2.x base url"])
def test_online_accepts_a_valid_token(api: LoopbackAPI, tmp_path: Path, suffix: str) -> None:
    """A token the API accepts: ok, one GET /v1/account with exactly ``Bearer <token>``."""
    api.clear()
    status, online, _ = _online(api.url + suffix, VALID_TOKEN, tmp_path)
    assert (status, online) == (
        0,
        [("ok", f"{api.url}/v1/account accepted the token {ACME}"), ("note", BILLING)],
    )
    assert [(r.method, r.path, r.authorization_sha256, r.status) for r in api.requests] == [
        ("GET", "/v1/account", header_digest(f"Bearer {VALID_TOKEN}"), 200)
    ]


@pytest.mark.e2e
def test_online_checks_the_token_without_its_padding(api: LoopbackAPI, tmp_path: Path) -> None:
    """A trailing newline: the token is verified without it; the whitespace stays a problem."""
    status, online, _ = _online(api.url, VALID_TOKEN + "\n", tmp_path)
    assert (status, online) == (
        1,
        [
            (
                "ok",
                f"{api.url}/v1/account accepted the token {ACME} (sent with the problems above removed)",
            ),
            ("note", BILLING),
        ],
    )


@pytest.mark.e2e
def test_online_names_the_account_of_a_token_whose_account_cannot_pay(api: LoopbackAPI, tmp_path: Path) -> None:
    """A token of an account without billing is a good token: ok with the account's name and
    type, the note that billing is not checked, and no prediction is created (no money spent)."""
    api.clear()
    status, online, _ = _online(api.url, NO_BILLING_TOKEN, tmp_path)
    assert (status, online) == (0, [("ok", f"{api.url}/v1/account accepted the token {ACME}"), ("note", BILLING)])
    assert [(r.method, r.path) for r in api.requests] == [("GET", "/v1/account")]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {"type": "organization", "username": "acme-labs", "name": "Acme Labs"},
            ' (account: acme-labs, "Acme Labs", an organization)',
        ),
        ({"type": "user", "username": "ada", "name": "ada", "github_url": None}, " (account: ada, a user)"),
        ({"type": "robot", "username": "ada", "name": None}, " (account: ada)"),
        ({"name": "Nobody"}, ""),
        ({"username": 7}, ""),
    ],
)
def test_account_summary_says_what_the_account_endpoint_told(answer: dict[str, Any], expected: str) -> None:
    """Name, display name (when different) and type; unknown or missing values are left out."""
    assert account_summary(answer) == expected


@pytest.mark.e2e
def test_online_reports_a_rejected_token(api: LoopbackAPI, tmp_path: Path) -> None:
    """A well-formed token the API refuses: a problem citing token-rejected (if loaded)."""
    status, online, rules = _online(api.url, CANARY, tmp_path)
    assert (status, online, rules) == (
        1,
        [
            (
                "problem",
                f"{api.url}/v1/account refused the token with 401: You did not pass a valid authentication token",
            )
        ],
        str([cited("token-rejected")]),
    )


@pytest.mark.e2e
def test_online_without_a_token_is_skipped(api: LoopbackAPI, tmp_path: Path) -> None:
    """Nothing to verify: a note, and no request."""
    api.clear()
    status, online, _ = _online(api.url, None, tmp_path)
    assert (status, online, api.requests) == (
        1,
        [("note", "skipped the online check: there is no token to verify")],
        [],
    )


@pytest.mark.e2e
def test_without_online_there_is_no_request(api: LoopbackAPI, tmp_path: Path) -> None:
    """Plain ``doctor`` never touches the network, even with a base URL configured."""
    api.clear()
    done = run_cli(
        "doctor",
        env=cli_env(REPLICATE_BASE_URL=api.url, REPLICATE_API_TOKEN=VALID_TOKEN),
        cwd=tmp_path,
    )
    assert (done.returncode, api.requests) == (0, [])


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.e2e
def test_online_network_failure_is_a_clear_problem(closed_port: int, tmp_path: Path) -> None:
    """Nothing listening: a problem saying the API could not be reached, and what to check."""
    status, online, _ = _online(f"http://127.0.0.1:{closed_port}", VALID_TOKEN, tmp_path)
    assert status == 1
    (finding,) = online
    assert finding[0] == "problem"
    assert finding[1].startswith(f"could not reach http://127.0.0.1:{closed_port}/v1/account to verify the token: ")
    assert "Connection refused" in finding[1]


@pytest.mark.e2e
def test_online_timeout_is_a_clear_problem(silent_server: str, tmp_path: Path) -> None:
    """No answer within --timeout: a problem naming the timeout."""
    status, online, _ = _online(silent_server, VALID_TOKEN, tmp_path, "--timeout", "0.5")
    assert (status, online) == (
        1,
        [
            (
                "problem",
                f"could not reach {silent_server}/v1/account to verify the token: no answer within 0.5 seconds",
            )
        ],
    )


@pytest.fixture
def dripping_server() -> Iterator[str]:
    """A loopback server that answers every connection one byte of a status line every 1.5
    seconds, for ever: each socket read gets its byte well within a 2-second timeout."""
    import threading
    import time

    stop = threading.Event()

    def drip(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                while not stop.is_set():
                    connection.sendall(b"H")
                    time.sleep(1.5)
            except OSError:
                pass

    def serve(sock: socket.socket) -> None:
        while not stop.is_set():
            try:
                connection, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(None)
            threading.Thread(target=drip, args=(connection,), daemon=True).start()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.settimeout(0.5)
        server = threading.Thread(target=serve, args=(sock,), daemon=True)
        server.start()
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            stop.set()
            server.join(5)


@pytest.mark.e2e
def test_online_timeout_is_a_deadline_for_the_whole_check(dripping_server: str, tmp_path: Path) -> None:
    """``--timeout 2`` against a server that drips a byte every 1.5 seconds (no single read ever
    waits 2 seconds): the check ends at the deadline with the same problem as a silent server.
    The subprocess timeout of 60 seconds guards against the check running for ever."""
    env = cli_env(REPLICATE_BASE_URL=dripping_server, REPLICATE_API_TOKEN=VALID_TOKEN)
    done = run_cli("doctor", "--online", "--format", "json", "--timeout", "2", env=env, cwd=tmp_path, timeout=60)
    online = [(f["status"], f["message"]) for f in json.loads(done.stdout)["findings"] if f["check"] == "online"]
    assert (done.returncode, online) == (
        1,
        [
            (
                "problem",
                f"could not reach {dripping_server}/v1/account to verify the token: no answer within 2 seconds",
            )
        ],
    )


def test_doctor_fix_steps_do_not_send_the_user_back_to_doctor() -> None:
    """Doctor repeats a rule's fix steps without "run doctor", and points at `rules show` for
    the fixed code it cannot show."""
    from replicate_explain._checks import doctor_steps

    steps = (
        "Strip it in code before the client is built, as in the fixed example.",
        "Run `replicate-explain doctor` to confirm the variable is clean.",
        "Run `replicate-explain doctor --online` to check the token.",
        "Create a token.",
    )
    assert doctor_steps("token-whitespace", steps) == (
        "Strip it in code before the client is built, as in the fixed code in "
        "`replicate-explain rules show token-whitespace`.",
        "Create a token.",
    )


def test_a_problem_whose_rule_is_not_loaded_names_the_rule_instead_of_a_fix() -> None:
    """In process: the fix text lives only in the rules; without the rule the finding says which
    rule is missing (and cites none)."""
    assert problem("token", "REPLICATE_API_TOKEN is not set", "token-unset", RuleSet(())) == Finding(
        "token",
        PROBLEM,
        "REPLICATE_API_TOKEN is not set",
        None,
        (
            "The rule token-unset that explains this is not loaded, so its fix cannot be shown: "
            "see `replicate-explain rules list` for the broken rule files.",
        ),
    )


@pytest.mark.e2e
def test_doctor_starts_one_interpreter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One fresh interpreter answers both the import check and the hook check (and, when the
    hook is not active, the reason for it)."""
    import subprocess

    started: list[list[str]] = []
    real_run = subprocess.run

    def run(args: list[str], **kwargs: Any) -> Any:
        started.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    environ = cli_env(REPLICATE_API_TOKEN=VALID_TOKEN)
    findings = run_checks(environ, rules=load_rules(environ=environ), cwd=str(tmp_path))
    checks = {f.check: (f.status, f.message) for f in findings if f.check in ("import", "hook")}
    assert (len(started), checks) == (
        1,
        {
            "import": ("ok", "`import replicate` works in a fresh interpreter"),
            "hook": (
                "note",
                "the hook is not active in new interpreters of this environment: Nothing is installed: run "
                "`replicate-explain install` (or `replicate-explain install --user` for your user site)",
            ),
        },
    )
