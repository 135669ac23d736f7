"""A loopback HTTP server that answers like the Replicate API.

The tests and the ``demo`` command run real ``replicate`` clients against it, so every client
generation (0.x on requests, 0.x and 1.x on httpx, 2.x from Stainless) must be able to finish
``replicate.run(...)`` with an accepted token, and must see the API's real 401 answers otherwise:

* no ``Authorization`` header: 401 ``You did not pass an authentication token``;
* anything but exactly ``Bearer <token>`` or ``Token <token>`` with an accepted token:
  401 ``You did not pass a valid authentication token``.

Both are ``application/problem+json``. Paths are accepted with or without a leading ``/v1``
(and with a doubled ``/v1/v1``), because clients differ in how they join the base URL.
Predictions succeed at once with a fixed output.

Whitespace around the header value is not part of it (RFC 9110), as behind any real
front end: ``Bearer <token> `` is accepted where a client manages to send it.

The server binds 127.0.0.1 on an ephemeral port and nothing else. It keeps no raw token: the
accepted tokens are held as SHA-256 digests, and each recorded request keeps only whether an
``Authorization`` header was present and the digest of its value.

Standard library only, so that it ships inside the package.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Callable, cast

__all__ = [
    "DEFAULT_OUTPUT",
    "DEFAULT_VERSION_ID",
    "LoopbackAPI",
    "RecordedRequest",
    "header_digest",
    "main",
]

DEFAULT_VERSION_ID = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
"""The version id the server reports for a model's latest version."""

DEFAULT_OUTPUT = "hello"
"""What every prediction returns."""

_MISSING_DETAIL = "You did not pass an authentication token"
_INVALID_DETAIL = "You did not pass a valid authentication token"
_AUTH_SCHEMES = ("Bearer ", "Token ")


def header_digest(value: str) -> str:
    """Return the SHA-256 hex digest of a header value, as :class:`RecordedRequest` keeps it."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server answered, without any secret in it.

    ``authorization_sha256`` is the digest of the whole header value (for example of
    ``"Bearer r8_..."``), or ``None`` when the header was absent.
    """

    method: str
    path: str
    authorization_present: bool
    authorization_sha256: str | None
    status: int


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _problem(status: int, title: str, detail: str) -> tuple[int, dict[str, Any]]:
    return status, {"title": title, "detail": detail, "status": status}


class _State:
    """The mutable part of the fake API: accepted tokens, predictions, the request log."""

    def __init__(self, token_digests: frozenset[str], output: object) -> None:
        self.token_digests = token_digests
        self.output = output
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.predictions: dict[str, dict[str, Any]] = {}
        self.counter = itertools.count(1)


_Route = Callable[["_State", "re.Match[str]", dict[str, Any], str], tuple[int, dict[str, Any]]]


def _model(owner: str, name: str) -> dict[str, Any]:
    return {
        "url": f"https://replicate.com/{owner}/{name}",
        "owner": owner,
        "name": name,
        "description": "A loopback model that says hello.",
        "visibility": "public",
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        "run_count": 0,
        "cover_image_url": None,
        "default_example": None,
        "latest_version": _version(DEFAULT_VERSION_ID),
    }


def _version(version_id: str) -> dict[str, Any]:
    return {
        "id": version_id,
        "created_at": "2024-01-01T00:00:00.000000Z",
        "cog_version": "0.9.4",
        "openapi_schema": {
            "openapi": "3.0.2",
            "info": {"title": "Cog", "version": "0.1.0"},
            "paths": {},
            "components": {
                "schemas": {
                    "Input": {
                        "type": "object",
                        "title": "Input",
                        "properties": {"text": {"type": "string", "title": "Text"}},
                    },
                    "Output": {"type": "string", "title": "Output"},
                }
            },
        },
    }


def _create_prediction(
    state: _State, body: dict[str, Any], base: str, model: str, version: str
) -> tuple[int, dict[str, Any]]:
    with state.lock:
        number = next(state.counter)
    prediction_id = f"loopback{number:012d}"
    now = _now()
    raw_input = body.get("input")
    prediction: dict[str, Any] = {
        "id": prediction_id,
        "model": model,
        "version": version,
        "status": "succeeded",
        "input": raw_input if isinstance(raw_input, dict) else {},
        "output": state.output,
        "error": None,
        "logs": "",
        "metrics": {"predict_time": 0.0, "total_time": 0.0},
        "created_at": now,
        "started_at": now,
        "completed_at": now,
        "data_removed": False,
        "source": "api",
        "urls": {
            "get": f"{base}/v1/predictions/{prediction_id}",
            "cancel": f"{base}/v1/predictions/{prediction_id}/cancel",
            "stream": f"{base}/v1/predictions/{prediction_id}/stream",
            "web": f"https://replicate.com/p/{prediction_id}",
        },
    }
    with state.lock:
        state.predictions[prediction_id] = prediction
    return 201, prediction


def _route_account(state: _State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    return 200, {"type": "user", "username": "acme", "name": "Acme", "github_url": None}


def _route_model(state: _State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    return 200, _model(match["owner"], match["name"])


def _route_version(state: _State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    return 200, _version(match["version"])


def _route_versions(state: _State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    return 200, {"previous": None, "next": None, "results": [_version(DEFAULT_VERSION_ID)]}


def _route_create(state: _State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    version = body.get("version")
    if not isinstance(version, str) or not version:
        return _problem(422, "Invalid version", "The version field is required")
    # "owner/name:version" is accepted by the real API too.
    model = "acme/hello-world"
    if ":" in version:
        model, _, version = version.partition(":")
    return _create_prediction(state, body, base, model, version)


def _route_create_for_model(
    state: _State, match: re.Match[str], body: dict[str, Any], base: str
) -> tuple[int, dict[str, Any]]:
    model = f"{match['owner']}/{match['name']}"
    return _create_prediction(state, body, base, model, DEFAULT_VERSION_ID)


def _route_get_prediction(
    state: _State, match: re.Match[str], body: dict[str, Any], base: str
) -> tuple[int, dict[str, Any]]:
    with state.lock:
        prediction = state.predictions.get(match["id"])
    if prediction is None:
        return _problem(404, "Not found", "The requested resource could not be found")
    return 200, prediction


def _route_cancel(state: _State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    # Predictions finish at once, so there is never anything left to cancel.
    return _route_get_prediction(state, match, body, base)


def _route_list_predictions(
    state: _State, match: re.Match[str], body: dict[str, Any], base: str
) -> tuple[int, dict[str, Any]]:
    with state.lock:
        results = list(state.predictions.values())
    return 200, {"previous": None, "next": None, "results": results}


_SEGMENT = r"[^/]+"
_OWNER_NAME = rf"(?P<owner>{_SEGMENT})/(?P<name>{_SEGMENT})"
_MODEL = rf"/models/{_OWNER_NAME}"
_ROUTES: tuple[tuple[str, re.Pattern[str], _Route], ...] = (
    ("GET", re.compile(r"/account"), _route_account),
    ("GET", re.compile(_MODEL), _route_model),
    ("GET", re.compile(rf"{_MODEL}/versions"), _route_versions),
    ("GET", re.compile(rf"{_MODEL}/versions/(?P<version>{_SEGMENT})"), _route_version),
    ("GET", re.compile(r"/predictions"), _route_list_predictions),
    ("POST", re.compile(r"/predictions"), _route_create),
    ("POST", re.compile(rf"{_MODEL}/predictions"), _route_create_for_model),
    ("POST", re.compile(rf"/deployments/{_OWNER_NAME}/predictions"), _route_create_for_model),
    ("GET", re.compile(rf"/predictions/(?P<id>{_SEGMENT})"), _route_get_prediction),
    ("POST", re.compile(rf"/predictions/(?P<id>{_SEGMENT})/cancel"), _route_cancel),
)


def _api_path(raw_path: str) -> str:
    """Return the path without query, trailing slash and up to two leading ``/v1``."""
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    for _ in range(2):
        if path == "/v1" or path.startswith("/v1/"):
            path = path[3:]
    path = path.rstrip("/")
    return path or "/"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "replicate-explain-loopback"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: no request log on stderr."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        state = cast(_Server, self.server).state
        raw_body = self._read_body()
        authorization = self.headers.get("Authorization")
        if authorization is not None:
            # RFC 9110 section 5.5: a field value has no leading or trailing whitespace, and
            # servers in front of the real API strip it; http.server only strips the leading.
            authorization = authorization.strip(" \t")
        status, payload = self._answer(state, authorization, raw_body)
        record = RecordedRequest(
            method=self.command,
            path=self.path,
            authorization_present=authorization is not None,
            authorization_sha256=None if authorization is None else header_digest(authorization),
            status=status,
        )
        with state.lock:
            state.requests.append(record)
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        content_type = "application/problem+json" if status >= 400 else "application/json"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, state: _State, authorization: str | None, raw_body: bytes) -> tuple[int, dict[str, Any]]:
        if authorization is None:
            return _problem(401, "Unauthenticated", _MISSING_DETAIL)
        if not _accepted(authorization, state.token_digests):
            return _problem(401, "Unauthenticated", _INVALID_DETAIL)
        try:
            body = json.loads(raw_body) if raw_body else {}
        except ValueError:
            return _problem(400, "Bad request", "The request body is not valid JSON")
        if not isinstance(body, dict):
            body = {}
        path = _api_path(self.path)
        host = self.headers.get("Host") or "127.0.0.1"
        base = f"http://{host}"
        for method, pattern, route in _ROUTES:
            match = pattern.fullmatch(path)
            if match is not None and method == self.command:
                return route(state, match, body, base)
        return _problem(404, "Not found", "The requested resource could not be found")


def _accepted(authorization: str, token_digests: frozenset[str]) -> bool:
    for scheme in _AUTH_SCHEMES:
        if authorization.startswith(scheme):
            return header_digest(authorization[len(scheme) :]) in token_digests
    return False


class LoopbackAPI:
    """A fake Replicate API on ``http://127.0.0.1:<ephemeral port>``.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with LoopbackAPI(tokens={"r8_..."}) as api:
            env["REPLICATE_BASE_URL"] = api.url
    """

    def __init__(self, tokens: Iterable[str] = (), *, output: object = DEFAULT_OUTPUT) -> None:
        self._state = _State(frozenset(header_digest(token) for token in tokens), output)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<LoopbackAPI {where} tokens={len(self._state.token_digests)}>"

    @property
    def url(self) -> str:
        """The base URL without ``/v1``, for example ``http://127.0.0.1:50123``."""
        if self._server is None:
            raise RuntimeError("the loopback API is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests answered so far, oldest first."""
        with self._state.lock:
            return list(self._state.requests)

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._state.lock:
            self._state.requests.clear()

    def start(self) -> LoopbackAPI:
        """Bind 127.0.0.1 on an ephemeral port and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self._state
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="replicate-explain-loopback",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LoopbackAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted, accepting the tokens listed one per line in ``--token-file``."""
    parser = argparse.ArgumentParser(prog="python -m replicate_explain._loopback")
    parser.add_argument("--token-file", required=True, help="file with one accepted token a line")
    args = parser.parse_args(argv)
    with open(args.token_file, encoding="utf-8") as handle:
        tokens = [line.strip() for line in handle if line.strip()]
    with LoopbackAPI(tokens=tokens) as api:
        print(api.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
