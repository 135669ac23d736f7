"""The loopback API, and what real ``replicate`` releases do against it.

The client tests pin down, per client generation and per broken-token cause, the exception
line a user sees at the bottom of the traceback, the exit code, whether a request reached the
server, and whether the token is printed. The explanation rules are written against these facts.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from clients import (
    CANARY,
    CLIENT_VERSIONS,
    MODEL_REF,
    VALID_TOKEN,
    VERSION_ID,
    base_url_env,
    client_path,
    run_program,
)
from packaging.version import Version

from replicate_explain._loopback import LoopbackAPI, RecordedRequest, header_digest

# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(scope="module")
def api() -> Iterator[LoopbackAPI]:
    """One loopback API per module (per xdist worker), accepting VALID_TOKEN."""
    with LoopbackAPI(tokens={VALID_TOKEN}) as server:
        yield server


@pytest.fixture
def fresh_api(api: LoopbackAPI) -> LoopbackAPI:
    """The shared loopback API with its request log emptied."""
    api.clear()
    return api


@dataclass(frozen=True)
class Answer:
    """What the loopback answered to one raw HTTP request."""

    status: int
    content_type: str
    body: object


def request(
    api: LoopbackAPI,
    method: str,
    path: str,
    authorization: str | None = None,
    body: object = None,
) -> Answer:
    """Send one request with http.client (no proxy, no retries, header sent verbatim)."""
    host, port = api.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(method, path)
        if authorization is not None:
            connection.putheader("Authorization", authorization)
        data = b"" if body is None else json.dumps(body).encode()
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        response = connection.getresponse()
        return Answer(response.status, response.getheader("Content-Type", ""), json.loads(response.read()))
    finally:
        connection.close()


def final_exception(stderr: str) -> str:
    """Return the last exception of a traceback: its ``module.Class: message`` line onwards."""
    lines = stderr.rstrip("\n").splitlines()
    starts = [i for i, line in enumerate(lines) if line == "Traceback (most recent call last):"]
    assert starts, f"no traceback in stderr:\n{stderr}"
    for index in range(starts[-1] + 1, len(lines)):
        if lines[index] and not lines[index][0].isspace():
            return "\n".join(lines[index:])
    raise AssertionError(f"no exception line after the last traceback:\n{stderr}")


def generation(version: str) -> str:
    """Name the client generation of a release, as the field notes group them."""
    parsed = Version(version)
    if parsed < Version("0.14"):
        return "requests"
    if parsed < Version("0.26"):
        return "httpx-token"
    if parsed.major < 2:
        return "httpx-bearer"
    return "stainless"


def auth_scheme(version: str) -> str:
    """The scheme a release puts in front of the token."""
    return "Token" if generation(version) in ("requests", "httpx-token") else "Bearer"


RUN = f'import replicate\nprint(replicate.run({MODEL_REF!r}, input={{"text": "hi"}}))\n'

# ---------------------------------------------------------------------------------------------
# The loopback server on its own


def test_binds_loopback_on_an_ephemeral_port() -> None:
    """start() binds 127.0.0.1 on a port chosen by the OS, and stop() closes it."""
    server = LoopbackAPI().start()
    try:
        host, port = server.url.removeprefix("http://").split(":")
        assert host == "127.0.0.1"
        assert int(port) > 0
        assert not server.url.endswith("/v1")
    finally:
        server.stop()
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass
    server.stop()  # a second stop is harmless


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "You did not pass an authentication token"),
        ("", "You did not pass a valid authentication token"),
        (f"Bearer {CANARY}", "You did not pass a valid authentication token"),
        (f"bearer {VALID_TOKEN}", "You did not pass a valid authentication token"),
        (f"Bearer  {VALID_TOKEN}", "You did not pass a valid authentication token"),
        (f'Bearer "{VALID_TOKEN}"', "You did not pass a valid authentication token"),
        (f"Bearer Bearer {VALID_TOKEN}", "You did not pass a valid authentication token"),
        (VALID_TOKEN, "You did not pass a valid authentication token"),
    ],
)
def test_rejects_like_the_api(fresh_api: LoopbackAPI, authorization: str | None, detail: str) -> None:
    """A missing header and anything but `Bearer|Token <accepted>` get the API's 401 bodies."""
    answer = request(fresh_api, "GET", "/v1/account", authorization)
    assert answer == Answer(
        401,
        "application/problem+json",
        {"title": "Unauthenticated", "detail": detail, "status": 401},
    )


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {VALID_TOKEN}", f"Token {VALID_TOKEN}", f"Bearer {VALID_TOKEN} "],
)
def test_accepts_both_schemes(fresh_api: LoopbackAPI, authorization: str) -> None:
    """`Bearer` and `Token` both work; trailing whitespace is not part of a header value."""
    answer = request(fresh_api, "GET", "/v1/account", authorization)
    assert (answer.status, answer.content_type) == (200, "application/json")


@pytest.mark.parametrize("path", ["/account", "/v1/account", "/v1/v1/account", "/v1/account/"])
def test_tolerates_base_url_joins(fresh_api: LoopbackAPI, path: str) -> None:
    """Paths work with no `/v1`, one, or a doubled one, and with a trailing slash."""
    answer = request(fresh_api, "GET", path, f"Bearer {VALID_TOKEN}")
    assert answer.status == 200


def test_unknown_path_is_a_problem_404(fresh_api: LoopbackAPI) -> None:
    """An unknown path gets a 404 in problem+json."""
    answer = request(fresh_api, "GET", "/v1/nothing/here", f"Bearer {VALID_TOKEN}")
    assert answer == Answer(
        404,
        "application/problem+json",
        {
            "title": "Not found",
            "detail": "The requested resource could not be found",
            "status": 404,
        },
    )


def test_prediction_round_trip(fresh_api: LoopbackAPI) -> None:
    """A created prediction has succeeded at once and can be fetched and cancelled by id."""
    token = f"Bearer {VALID_TOKEN}"
    created = request(fresh_api, "POST", "/v1/predictions", token, {"version": VERSION_ID, "input": {"a": 1}})
    assert created.status == 201
    assert isinstance(created.body, dict)
    assert (created.body["status"], created.body["output"], created.body["input"]) == (
        "succeeded",
        "hello",
        {"a": 1},
    )
    prediction_id = created.body["id"]
    assert request(fresh_api, "GET", f"/v1/predictions/{prediction_id}", token).body == created.body
    cancel = request(fresh_api, "POST", f"/v1/predictions/{prediction_id}/cancel", token)
    assert cancel.status == 200


def test_records_digests_never_tokens(fresh_api: LoopbackAPI) -> None:
    """Recorded requests keep method, path, status and a digest of the header, not the token."""
    request(fresh_api, "GET", "/v1/account", f"Bearer {VALID_TOKEN}")
    request(fresh_api, "GET", "/v1/account", f"Token {CANARY}")
    request(fresh_api, "GET", "/v1/account")
    assert fresh_api.requests == [
        RecordedRequest("GET", "/v1/account", True, header_digest(f"Bearer {VALID_TOKEN}"), 200),
        RecordedRequest("GET", "/v1/account", True, header_digest(f"Token {CANARY}"), 401),
        RecordedRequest("GET", "/v1/account", False, None, 401),
    ]
    dumped = repr(fresh_api.requests) + repr(fresh_api) + repr(vars(fresh_api))
    assert VALID_TOKEN not in dumped
    assert CANARY not in dumped


def test_is_quiet(fresh_api: LoopbackAPI, capfd: pytest.CaptureFixture[str]) -> None:
    """Serving requests writes nothing to stdout or stderr."""
    request(fresh_api, "GET", "/v1/account")
    request(fresh_api, "GET", "/v1/account", f"Bearer {VALID_TOKEN}")
    assert capfd.readouterr() == ("", "")


# ---------------------------------------------------------------------------------------------
# Real clients: success, and where each points its base URL


_SUCCESS_REQUESTS = {
    "requests": [
        ("GET", f"/v1/models/acme/hello-world/versions/{VERSION_ID}"),
        ("POST", "/v1/predictions"),
    ],
    "httpx-token": [
        ("POST", "/v1/predictions"),
        ("GET", f"/v1/models/acme/hello-world/versions/{VERSION_ID}"),
    ],
    "httpx-bearer": [
        ("POST", "/v1/predictions"),
        ("GET", f"/v1/models/acme/hello-world/versions/{VERSION_ID}"),
    ],
    "stainless": [("POST", "/v1/predictions")],
}


@pytest.mark.e2e
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_client_installs_and_imports(version: str) -> None:
    """client_path() gives a directory holding exactly the requested release."""
    path = client_path(version)
    assert (path / "replicate" / "__init__.py").is_file()
    assert (path / f"replicate-{version}.dist-info").is_dir()


@pytest.mark.e2e
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_run_succeeds_with_a_valid_token(fresh_api: LoopbackAPI, version: str) -> None:
    """replicate.run() finishes against the loopback, through the generation's base-URL variable."""
    result = run_program(RUN, version, fresh_api, VALID_TOKEN)
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "")
    requests = fresh_api.requests
    assert [(r.method, r.path) for r in requests] == _SUCCESS_REQUESTS[generation(version)]
    digest = header_digest(f"{auth_scheme(version)} {VALID_TOKEN}")
    assert {(r.authorization_sha256, r.status // 100) for r in requests} == {(digest, 2)}


@pytest.mark.parametrize(
    ("version", "variable", "value"),
    [
        ("0.11.0", "REPLICATE_API_BASE_URL", ""),
        ("0.15.3", "REPLICATE_API_BASE_URL", ""),
        ("0.15.8", "REPLICATE_API_BASE_URL", ""),
        ("0.18.0", "REPLICATE_BASE_URL", ""),
        ("1.0.7", "REPLICATE_BASE_URL", ""),
        ("2.0.0b4", "REPLICATE_BASE_URL", "/v1"),
    ],
)
def test_base_url_variable(api: LoopbackAPI, version: str, variable: str, value: str) -> None:
    """Each generation is pointed at the loopback by the variable the field notes name."""
    assert base_url_env(version, api) == {variable: api.url + value}


# ---------------------------------------------------------------------------------------------
# Real clients: each broken token, each generation

_MISSING_1X = (
    "replicate.exceptions.ReplicateError: ReplicateError Details:\n"
    "title: Unauthenticated\nstatus: 401\ndetail: You did not pass an authentication token"
)
_INVALID_1X = (
    "replicate.exceptions.ReplicateError: ReplicateError Details:\n"
    "title: Unauthenticated\nstatus: 401\ndetail: You did not pass a valid authentication token"
)
_MISSING_0X = "replicate.exceptions.ReplicateError: You did not pass an authentication token"
_INVALID_0X = "replicate.exceptions.ReplicateError: You did not pass a valid authentication token"
_NO_TOKEN_REQUESTS = (
    "replicate.exceptions.ReplicateError: No API token provided. You need to set the "
    "REPLICATE_API_TOKEN environment variable or create a client with "
    "`replicate.Client(api_token=...)`.\n\nYou can find your API key on https://replicate.com"
)
_UNSET_2X = (
    "replicate.ReplicateError: The bearer_token client option must be set either by passing "
    "bearer_token to the client or by setting the REPLICATE_API_TOKEN environment variable"
)
_CONNECTION_2X = "replicate.APIConnectionError: Connection error."
_AUTH_2X = (
    "replicate.AuthenticationError: Error code: 401 - {'title': 'Unauthenticated', "
    "'detail': 'You did not pass a valid authentication token', 'status': 401}"
)
_INVALID_HEADER_REQUESTS = (
    "requests.exceptions.InvalidHeader: Invalid leading whitespace, reserved character(s), "
    "or return character(s) in header value: 'Token <TOKEN>\\n'"
)


@dataclass(frozen=True)
class Outcome:
    """What a user sees: the final exception (None: success), a 401 reached, token printed."""

    exception: str | None
    got_401: bool
    leaks: bool


_CAUSES: dict[str, str | None] = {
    "unset": None,
    "empty": "",
    "trailing-newline": VALID_TOKEN + "\n",
    "trailing-space": VALID_TOKEN + " ",
    "leading-space": " " + VALID_TOKEN,
    "quoted": f'"{VALID_TOKEN}"',
    "bearer-in-value": f"Bearer {VALID_TOKEN}",
    "wrong": CANARY,
}

_OUTCOMES: dict[tuple[str, str], Outcome] = {
    # 0.4 - 0.13, requests: the token is checked before any request; requests only refuses
    # line breaks and leading whitespace, so a trailing space reaches the server, which drops it.
    ("requests", "unset"): Outcome(_NO_TOKEN_REQUESTS, False, False),
    ("requests", "empty"): Outcome(_NO_TOKEN_REQUESTS, False, False),
    ("requests", "trailing-newline"): Outcome(_INVALID_HEADER_REQUESTS, False, True),
    ("requests", "trailing-space"): Outcome(None, False, False),
    ("requests", "leading-space"): Outcome(_INVALID_0X, True, False),
    ("requests", "quoted"): Outcome(_INVALID_0X, True, False),
    ("requests", "bearer-in-value"): Outcome(_INVALID_0X, True, False),
    ("requests", "wrong"): Outcome(_INVALID_0X, True, False),
    # 0.15.x: httpx, `Token`; an unset or empty token sends no header at all.
    ("httpx-token", "unset"): Outcome(_MISSING_0X, True, False),
    ("httpx-token", "empty"): Outcome(_MISSING_0X, True, False),
    ("httpx-token", "trailing-newline"): Outcome(
        "httpx.LocalProtocolError: Illegal header value b'Token <TOKEN>\\n'", False, True
    ),
    ("httpx-token", "trailing-space"): Outcome(
        "httpx.LocalProtocolError: Illegal header value b'Token <TOKEN> '", False, True
    ),
    ("httpx-token", "leading-space"): Outcome(_INVALID_0X, True, False),
    ("httpx-token", "quoted"): Outcome(_INVALID_0X, True, False),
    ("httpx-token", "bearer-in-value"): Outcome(_INVALID_0X, True, False),
    ("httpx-token", "wrong"): Outcome(_INVALID_0X, True, False),
    # 1.x: httpx, `Bearer`, problem details in a multi-line str().
    ("httpx-bearer", "unset"): Outcome(_MISSING_1X, True, False),
    ("httpx-bearer", "empty"): Outcome(_MISSING_1X, True, False),
    ("httpx-bearer", "trailing-newline"): Outcome(
        "httpx.LocalProtocolError: Illegal header value b'Bearer <TOKEN>\\n'", False, True
    ),
    ("httpx-bearer", "trailing-space"): Outcome(
        "httpx.LocalProtocolError: Illegal header value b'Bearer <TOKEN> '", False, True
    ),
    ("httpx-bearer", "leading-space"): Outcome(_INVALID_1X, True, False),
    ("httpx-bearer", "quoted"): Outcome(_INVALID_1X, True, False),
    ("httpx-bearer", "bearer-in-value"): Outcome(_INVALID_1X, True, False),
    ("httpx-bearer", "wrong"): Outcome(_INVALID_1X, True, False),
    # 2.x, Stainless: unset fails at construction; a bad header value becomes a connection
    # error whose chained httpx.LocalProtocolError still prints the token.
    ("stainless", "unset"): Outcome(_UNSET_2X, False, False),
    ("stainless", "empty"): Outcome(_CONNECTION_2X, False, False),
    ("stainless", "trailing-newline"): Outcome(_CONNECTION_2X, False, True),
    ("stainless", "trailing-space"): Outcome(_CONNECTION_2X, False, True),
    ("stainless", "leading-space"): Outcome(_AUTH_2X, True, False),
    ("stainless", "quoted"): Outcome(_AUTH_2X, True, False),
    ("stainless", "bearer-in-value"): Outcome(_AUTH_2X, True, False),
    ("stainless", "wrong"): Outcome(_AUTH_2X, True, False),
}

# The cause behind a 2.x APIConnectionError, printed above it in the chained traceback.
_CHAINED_2X = {
    "empty": "httpx.LocalProtocolError: Illegal header value b'Bearer '",
    "trailing-newline": "httpx.LocalProtocolError: Illegal header value b'Bearer <TOKEN>\\n'",
    "trailing-space": "httpx.LocalProtocolError: Illegal header value b'Bearer <TOKEN> '",
}


@pytest.mark.e2e
@pytest.mark.parametrize("cause", list(_CAUSES))
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_broken_token(fresh_api: LoopbackAPI, version: str, cause: str) -> None:
    """replicate.run() with a broken token ends in the recorded exception, exit code and leak."""
    token = _CAUSES[cause]
    expected = _OUTCOMES[generation(version), cause]
    result = run_program(RUN, version, fresh_api, token)
    if expected.exception is None:
        assert (result.returncode, result.stdout) == (0, "hello\n")
    else:
        assert result.returncode == 1
        assert result.stdout == ""
        assert final_exception(result.stderr) == expected.exception.replace("<TOKEN>", VALID_TOKEN)
    statuses = [r.status for r in fresh_api.requests]
    assert (401 in statuses) is expected.got_401
    if expected.got_401:
        assert statuses == [401]  # the first request fails, nothing is retried
    assert (VALID_TOKEN in result.stderr or CANARY in result.stderr) is expected.leaks
    assert VALID_TOKEN not in repr(fresh_api.requests)
    assert CANARY not in repr(fresh_api.requests)
    chained = _CHAINED_2X.get(cause)
    if generation(version) == "stainless" and chained is not None:
        assert chained.replace("<TOKEN>", VALID_TOKEN) in result.stderr.splitlines()


# ---------------------------------------------------------------------------------------------
# Real clients: an explicit client object

_EXPLICIT = {
    "requests": "replicate.Client(api_token={token!r})",
    "httpx-token": "replicate.Client(api_token={token!r})",
    "httpx-bearer": "replicate.Client(api_token={token!r})",
    "stainless": "replicate.Replicate(bearer_token={token!r})",
}


@pytest.mark.e2e
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
@pytest.mark.parametrize("ref", [MODEL_REF, "acme/hello-world"])
def test_explicit_client_runs(fresh_api: LoopbackAPI, version: str, ref: str) -> None:
    """A client built with the token (none in the environment) runs `owner/name[:version]`.

    Only 1.x and 2.x accept a bare `owner/name`; older releases insist on a version.
    """
    client = _EXPLICIT[generation(version)].format(token=VALID_TOKEN)
    code = f'import replicate\nprint({client}.run({ref!r}, input={{"text": "hi"}}))\n'
    result = run_program(code, version, fresh_api, None)
    if ":" not in ref and Version(version) < Version("1"):
        assert result.returncode == 1
        assert final_exception(result.stderr) == (
            f"replicate.exceptions.ReplicateError: Invalid model_version: {ref}. Expected format: owner/name:version"
        )
    else:
        assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "")


_WRONG_KEYWORD = {
    "requests": "replicate.Client(bearer_token={token!r})",
    "httpx-token": "replicate.Client(bearer_token={token!r})",
    "httpx-bearer": "replicate.Client(bearer_token={token!r})",
    "stainless": "replicate.Replicate(api_token={token!r})",
}


@pytest.mark.e2e
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_wrong_constructor_keyword(fresh_api: LoopbackAPI, version: str) -> None:
    """The other generation's keyword is a TypeError naming the keyword; no request is sent."""
    client = _WRONG_KEYWORD[generation(version)].format(token=VALID_TOKEN)
    code = f'import replicate\nprint({client}.run({MODEL_REF!r}, input={{"text": "hi"}}))\n'
    result = run_program(code, version, fresh_api, None)
    keyword = "api_token" if generation(version) == "stainless" else "bearer_token"
    owner = "Replicate" if generation(version) == "stainless" else "Client"
    assert result.returncode == 1
    assert final_exception(result.stderr) == (
        f"TypeError: {owner}.__init__() got an unexpected keyword argument '{keyword}'"
    )
    assert fresh_api.requests == []


@pytest.mark.e2e
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_token_set_after_import(fresh_api: LoopbackAPI, version: str) -> None:
    """Setting the variable after `import replicate` is too late only on 0.14-0.15.3."""
    code = (
        "import os\nimport replicate\n"
        f"os.environ['REPLICATE_API_TOKEN'] = {VALID_TOKEN!r}\n"
        f'print(replicate.run({MODEL_REF!r}, input={{"text": "hi"}}))\n'
    )
    result = run_program(code, version, fresh_api, None)
    if Version("0.14") <= Version(version) <= Version("0.15.3"):
        assert result.returncode == 1
        assert final_exception(result.stderr) == _MISSING_0X
    else:
        assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "")


# ---------------------------------------------------------------------------------------------
# Account refusals


def test_a_refused_account_authenticates_but_cannot_create_predictions() -> None:
    """A token given in ``refusals`` is accepted (account, model), and every prediction
    route answers its refusal; only digests are kept, and a 429 carries Retry-After."""
    from replicate_explain._loopback import REFUSALS, RETRY_AFTER

    secret = "r8_RefusedAccount0000000000000000000000"
    with LoopbackAPI(refusals={secret: "billing-required"}) as refusing:
        bearer = f"Bearer {secret}"
        answers = [
            request(refusing, "GET", "/v1/account", bearer).status,
            request(refusing, "GET", "/v1/models/acme/hello-world", bearer).status,
            request(refusing, "POST", "/v1/predictions", bearer, {"version": "x", "input": {}}),
            request(refusing, "POST", "/v1/models/acme/hello-world/predictions", bearer, {"input": {}}).status,
            request(refusing, "POST", "/v1/deployments/acme/hello/predictions", bearer, {"input": {}}).status,
        ]
        digests = {r.authorization_sha256 for r in refusing.requests}
        shown = repr(refusing)
    assert answers == [200, 200, Answer(402, "application/problem+json", REFUSALS["billing-required"][1]), 402, 402]
    assert (digests, secret in shown) == ({header_digest(f"Bearer {secret}")}, False)

    with LoopbackAPI(refusals={secret: "rate-limited"}) as throttling:
        host, port = throttling.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("POST", "/v1/predictions", b"{}", {"Authorization": f"Bearer {secret}"})
        response = connection.getresponse()
        throttled = (response.status, response.getheader("Retry-After"), json.loads(response.read()))
        connection.close()
    assert throttled == (429, str(RETRY_AFTER), REFUSALS["rate-limited"][1])


def test_an_unknown_refusal_is_a_clear_error() -> None:
    """A refusal name that is not in REFUSALS fails at construction, naming the known ones."""
    with pytest.raises(ValueError) as caught:
        LoopbackAPI(refusals={"r8_x": "billing"})
    assert str(caught.value) == (
        "unknown refusal 'billing'; expected one of ['billing-required', 'insufficient-credit', "
        "'invalid-input', 'not-found', 'rate-limited', 'server-error']"
    )
