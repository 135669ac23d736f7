"""A loopback HTTP server that answers like the Replicate API.

The tests and the ``demo`` command run real ``replicate`` clients against it, so every client
generation (0.x on requests, 0.x and 1.x on httpx, 2.x from Stainless) must be able to finish
``replicate.run(...)`` with an accepted token, and must see the API's real 401 answers otherwise:

* no ``Authorization`` header: 401 ``You did not pass an authentication token``;
* anything but exactly ``Bearer <token>`` or ``Token <token>`` with an accepted token:
  401 ``You did not pass a valid authentication token``.

Both are ``application/problem+json``. Paths are accepted with or without a leading ``/v1``
(and with a doubled ``/v1/v1``), because clients differ in how they join the base URL.
Predictions succeed at once with a fixed output (also streamed as server-sent events at
``urls.stream``, for ``replicate.stream`` and LlamaIndex).

Whitespace around the header value is not part of it (RFC 9110), as behind any real
front end: ``Bearer <token> `` is accepted where a client manages to send it.

``refusals`` maps further accepted tokens to a refusal from :data:`REFUSALS`: the token
authenticates (``GET /v1/account`` and the model routes answer), but creating a prediction gets
that answer, as the real API answers an account that cannot run a model: ``billing-required``
and ``insufficient-credit`` (402), ``rate-limited`` (429 with ``Retry-After``). The negatives
the tests keep apart from them are there too: ``not-found`` (404), ``invalid-input`` (422) and
``server-error`` (500).

The server binds 127.0.0.1 on an ephemeral port and nothing else. It keeps no raw token: the
accepted tokens are held as SHA-256 digests, and each recorded request keeps only whether an
``Authorization`` header was present and the digest of its value.

Standard library only, so that it ships inside the package.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from ._loopback_routes import (
    AUTH_SCHEMES,
    CREATE_ROUTES,
    DEFAULT_OUTPUT,
    DEFAULT_VERSION_ID,
    INVALID_DETAIL,
    MISSING_DETAIL,
    REFUSALS,
    RETRY_AFTER,
    ROUTES,
    RecordedRequest,
    State,
    api_path,
    header_digest,
    problem,
    stream_events,
)

__all__ = [
    "DEFAULT_OUTPUT",
    "DEFAULT_VERSION_ID",
    "REFUSALS",
    "LoopbackAPI",
    "RecordedRequest",
    "header_digest",
    "main",
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: State

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep what broke a request for ``testing.FakeReplicateAPI.check`` (a client that hung
        up is not an error of the server), then print it as ``socketserver`` does."""
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, (ConnectionError, TimeoutError)):
            with self.state.lock:
                self.state.errors.append(error)
        super().handle_error(request, client_address)


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
        content_type = "application/problem+json" if status >= 400 else "application/json"
        if status == 200 and self.command == "GET" and api_path(self.path).endswith("/stream"):
            data, content_type = stream_events(payload), "text/event-stream"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if status == 429:
            self.send_header("Retry-After", str(RETRY_AFTER))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, state: State, authorization: str | None, raw_body: bytes) -> tuple[int, dict[str, Any]]:
        with state.lock:
            forced = state.forced.pop(0) if state.forced else None
        if forced is not None:
            return forced[0], dict(forced[1])
        if authorization is None:
            return problem(401, "Unauthenticated", MISSING_DETAIL)
        digest = _accepted(authorization, state.token_digests | state.refusals.keys())
        if digest is None:
            return problem(401, "Unauthenticated", INVALID_DETAIL)
        try:
            body = json.loads(raw_body) if raw_body else {}
        except ValueError:
            return problem(400, "Bad request", "The request body is not valid JSON")
        if not isinstance(body, dict):
            body = {}
        path = api_path(self.path)
        host = self.headers.get("Host") or "127.0.0.1"
        base = f"http://{host}"
        for method, pattern, route in ROUTES:
            match = pattern.fullmatch(path)
            if match is not None and method == self.command:
                refusal = state.refusals.get(digest)
                if refusal is not None and route in CREATE_ROUTES:
                    status, payload = REFUSALS[refusal]
                    return status, dict(payload)
                return route(state, match, body, base)
        return problem(404, "Not found", "The requested resource could not be found")


def _accepted(authorization: str, token_digests: frozenset[str] | set[str]) -> str | None:
    """The digest of the token in an accepted header, or ``None``."""
    for scheme in AUTH_SCHEMES:
        if authorization.startswith(scheme):
            digest = header_digest(authorization[len(scheme) :])
            return digest if digest in token_digests else None
    return None


class LoopbackAPI:
    """A fake Replicate API on ``http://127.0.0.1:<ephemeral port>``.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with LoopbackAPI(tokens={"r8_..."}) as api:
            env["REPLICATE_BASE_URL"] = api.url

    ``refusals`` maps more tokens to a refusal name of :data:`REFUSALS`: those tokens are
    accepted, and creating a prediction with one gets that answer (kept as digests too).
    """

    def __init__(
        self,
        tokens: Iterable[str] = (),
        *,
        output: object = DEFAULT_OUTPUT,
        refusals: Mapping[str, str] | None = None,
    ) -> None:
        refused = dict(refusals or {})
        unknown = sorted(set(refused.values()) - REFUSALS.keys())
        if unknown:
            raise ValueError(f"unknown refusal {unknown[0]!r}; expected one of {sorted(REFUSALS)}")
        digests = {header_digest(token): name for token, name in refused.items()}
        self._state = State(frozenset(header_digest(token) for token in tokens), output, digests)
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

    def answer_next(self, status: int, payload: Mapping[str, Any], times: int = 1) -> None:
        """Answer the next ``times`` requests, whatever they are, with ``status`` and the JSON
        ``payload`` (a problem document for a ``status`` of 400 or more)."""
        with self._state.lock:
            self._state.forced.extend([(status, dict(payload))] * times)

    @property
    def errors(self) -> list[BaseException]:
        """The exceptions raised while handling requests so far (a bug of the server)."""
        with self._state.lock:
            return list(self._state.errors)

    def reset(self) -> None:
        """Forget the recorded requests, the answers not given yet, the errors and the predictions."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.forced.clear()
            self._state.errors.clear()
            self._state.predictions.clear()

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
