"""The fake Replicate API for users' tests: ``replicate_explain.testing``, the ``replicate_api``
fixture and ``replicate-explain fake-api``.

The server is driven in-process over HTTP (urllib), and end to end by the real replicate client
(1.0.7 and 2.0.0b4): a pytest run whose tests use the fixture, and a program pointed at the
``fake-api`` command's server by the variables it prints.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from clients import CANARY, MODEL_REF, REPO_ROOT, client_path
from commandline import cli_env, script
from outputs import leaks

from replicate_explain.testing import DEFAULT_TOKEN, FakeReplicateAPI, ServerError, base_url_env

VERSIONS = ["1.0.7", "2.0.0b4"]


def call(api: FakeReplicateAPI, token: str | None, path: str = "/v1/account") -> tuple[int, dict[str, Any]]:
    """``GET path`` on ``api`` with ``Bearer token``: the status and the JSON body."""
    request = urllib.request.Request(api.url + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_accepted_token_passes_and_fail_next_answers_the_next_requests() -> None:
    """The accepted token gets 200; ``fail_next(402, times=2)`` answers the next two requests
    with the API's 402 body, then the API answers as before; ``reset`` drops what is pending."""
    with FakeReplicateAPI() as api:
        assert call(api, DEFAULT_TOKEN)[0] == 200
        assert call(api, CANARY) == (
            401,
            {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401},
        )
        api.fail_next(402, times=2)
        first, second, third = (call(api, DEFAULT_TOKEN) for _ in range(3))
        assert [first[0], second[0], third[0]] == [402, 402, 200]
        assert first[1]["title"] == "Billing required"
        api.fail_next(429)
        api.reset()
        assert call(api, DEFAULT_TOKEN)[0] == 200
        assert [request.status for request in api.requests] == [200]


@pytest.mark.parametrize(
    ("status", "answer"),
    [(401, (401, "Unauthenticated")), (429, (429, None)), ("insufficient-credit", (402, "Insufficient credit"))],
)
def test_each_failure_is_the_real_apis_answer(status: int | str, answer: tuple[int, str | None]) -> None:
    """401, 429 and the named refusals answer with the real API's status and title."""
    with FakeReplicateAPI() as api:
        api.fail_next(status)
        code, body = call(api, DEFAULT_TOKEN)
        assert (code, body.get("title")) == answer


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.11.0", {"REPLICATE_API_BASE_URL": "U"}),
        ("0.18.0", {"REPLICATE_BASE_URL": "U"}),
        ("1.0.7", {"REPLICATE_BASE_URL": "U"}),
        ("2.0.0b4", {"REPLICATE_BASE_URL": "U/v1"}),
    ],
)
def test_the_base_url_variable_follows_the_client_generation(version: str, expected: dict[str, str]) -> None:
    """Each generation reads its own variable (field notes, section 1)."""
    assert base_url_env("U", version) == expected


def test_bad_arguments_are_named() -> None:
    """An unknown failure, a bad count, a bad version and a blank token are refused with what
    was expected."""
    with FakeReplicateAPI() as api:
        with pytest.raises(ValueError, match=r"fail_next\(500\): unknown failure; expected one of 401, 402, 429"):
            api.fail_next(500)
        with pytest.raises(ValueError, match=r"fail_next\(times=0\): expected a whole number of requests, 1 or more"):
            api.fail_next(401, times=0)
        with pytest.raises(ValueError, match=r"invalid replicate client version 'latest'; expected a release"):
            api.env("latest")
    with pytest.raises(ValueError, match="non-empty string without surrounding whitespace"):
        FakeReplicateAPI(CANARY + "\n")


def test_a_server_error_is_raised_by_check() -> None:
    """A request that breaks the server (a malformed chunked body) is kept and raised by
    ``check()`` as a ``ServerError`` chained to it; then it is forgotten."""
    with FakeReplicateAPI() as api:
        host, port = api.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n")
            sock.recv(1)
        with pytest.raises(ServerError, match="failed while answering 1 request") as info:
            api.check()
        assert isinstance(info.value.__cause__, ValueError)
        api.check()


FIXTURE_TESTS = f"""\
import socket

import pytest
import replicate

MODEL = {MODEL_REF!r}


def status_of(error):
    return getattr(error, "status", None) or getattr(error, "status_code", None)


def test_a_prediction_runs(replicate_api):
    assert str(replicate.run(MODEL, input={{"text": "hi"}})) == "hello"


@pytest.mark.parametrize("status", [401, 402, 429])
def test_a_failure_reaches_the_program(replicate_api, status):
    replicate_api.fail_next(status, times=3)
    with pytest.raises(Exception) as info:
        replicate.run(MODEL, input={{"text": "hi"}})
    assert status_of(info.value) == status


def test_the_next_test_starts_clean(replicate_api):
    assert replicate_api.requests == []
    assert str(replicate.run(MODEL, input={{"text": "hi"}})) == "hello"


def test_a_server_bug_fails_the_test_at_teardown(replicate_api):
    host, port = replicate_api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/predictions HTTP/1.1\\r\\nHost: x\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\nZZ\\r\\n")
        sock.recv(1)
"""


def _pytest_env(version: str) -> dict[str, str]:
    env = {k: v for k, v in cli_env().items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(client_path(version)), str(REPO_ROOT)])
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = "127.0.0.1,localhost"
    return env


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_the_fixture_serves_the_real_client(tmp_path: Path, version: str) -> None:
    """The ``replicate_api`` fixture, used by a user's tests with the real client and no
    variable set beforehand: a prediction runs; 401, 402 and 429 reach the program as the
    client's errors with that status; each test starts with no requests recorded; an error
    inside the server fails the test at teardown."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_fixture.py").write_text(FIXTURE_TESTS, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q"],
        cwd=tmp_path, env=_pytest_env(version), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    outcomes = sorted(re.findall(r"^(PASSED|FAILED|ERROR) (test_fixture\.py::\S+)", result.stdout, re.M))
    assert outcomes == [
        ("ERROR", "test_fixture.py::test_a_server_bug_fails_the_test_at_teardown"),
        ("PASSED", "test_fixture.py::test_a_failure_reaches_the_program[401]"),
        ("PASSED", "test_fixture.py::test_a_failure_reaches_the_program[402]"),
        ("PASSED", "test_fixture.py::test_a_failure_reaches_the_program[429]"),
        ("PASSED", "test_fixture.py::test_a_prediction_runs"),
        ("PASSED", "test_fixture.py::test_a_server_bug_fails_the_test_at_teardown"),
        ("PASSED", "test_fixture.py::test_the_next_test_starts_clean"),
    ], result.stdout + result.stderr
    assert "ServerError: the fake Replicate API failed while answering 1 request(s)" in result.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_the_fake_api_command_serves_a_program_until_interrupted(tmp_path: Path, version: str) -> None:
    """``replicate-explain fake-api --accept TOKEN --client VERSION`` prints the URL and the
    variables to set (never the token); a program with those variables runs a prediction with
    the real client; a wrong token gets the API's 401; Ctrl-C stops it with status 0."""
    token = "r8_" + "MyFakeApiToken".ljust(37, "0")
    process = subprocess.Popen(
        [script(), "fake-api", "--accept", token, "--client", version],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]
        url = re.fullmatch(r"Fake Replicate API on (http://127\.0\.0\.1:\d+) \(Ctrl-C stops it\)\.\n", lines[0])
        assert url is not None, lines
        expected_var = "REPLICATE_BASE_URL=" + url.group(1) + ("/v1" if version.startswith("2") else "")
        assert lines[4:] == [
            f"  export {expected_var}\n",
            "  export REPLICATE_API_TOKEN=<the token given with --accept>\n",
        ]
        name, value = expected_var.split("=", 1)
        program = f"import replicate\nprint(replicate.run({MODEL_REF!r}, input={{'text': 'hi'}}))\n"
        env = {**_pytest_env(version), name: value, "REPLICATE_EXPLAIN": "0"}
        good = subprocess.run([sys.executable, "-c", program], env={**env, "REPLICATE_API_TOKEN": token},
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert (good.returncode, good.stdout) == (0, "hello\n"), good.stderr
        bad = subprocess.run([sys.executable, "-c", program], env={**env, "REPLICATE_API_TOKEN": CANARY},
                             capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert bad.returncode == 1 and "You did not pass a valid authentication token" in bad.stderr
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (0, "Stopped.\n", "")
    assert leaks("".join(lines) + out + err, token) == []


DOC = (REPO_ROOT / "docs" / "TESTING-YOUR-CODE.md").read_text(encoding="utf-8")
EXAMPLES = dict(re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", DOC, re.S))


def test_the_doc_has_its_three_examples() -> None:
    """docs/TESTING-YOUR-CODE.md marks a pytest, a script and a unittest example (run below)."""
    assert sorted(EXAMPLES) == ["pytest", "script", "unittest"]


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("kind", "command", "expected"),
    [
        ("pytest", ["-m", "pytest", "-p", "no:cacheprovider", "-q", "test_example.py"], r"\n4 passed in "),
        ("script", ["test_example.py"], r"\Ahello\n\Z"),
        ("unittest", ["-m", "unittest", "test_example"], r"\n\nOK\n\Z"),
    ],
)
def test_the_docs_examples_run(tmp_path: Path, version: str, kind: str, command: list[str], expected: str) -> None:
    """Each example of docs/TESTING-YOUR-CODE.md runs as written with the real client and passes."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_example.py").write_text(EXAMPLES[kind], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, *command], cwd=tmp_path, env=_pytest_env(version),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(expected, result.stdout if kind != "unittest" else result.stderr), result.stdout + result.stderr
