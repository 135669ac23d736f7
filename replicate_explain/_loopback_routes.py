"""What the loopback Replicate API answers: its resources, routes, 401s and account refusals.

The server itself (sockets, threads, request parsing) is in ``_loopback``; this module is the
data and the pure functions behind each answer. Standard library only.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

DEFAULT_VERSION_ID = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
"""The version id the server reports for a model's latest version."""

DEFAULT_OUTPUT = "hello"
"""What every prediction returns."""

MISSING_DETAIL = "You did not pass an authentication token"
INVALID_DETAIL = "You did not pass a valid authentication token"
AUTH_SCHEMES = ("Bearer ", "Token ")

RETRY_AFTER = 1
"""Seconds in the ``Retry-After`` of a 429 (the clients wait that long between retries)."""

REFUSALS: dict[str, tuple[int, dict[str, Any]]] = {
    # The real bodies (see the rules' references for where each was seen).
    "billing-required": (
        402,
        {
            "title": "Billing required",
            "detail": "You need to set up billing to run this model. Go to "
            "https://replicate.com/account/billing#billing to set it up. If you have recently "
            "set up billing, please wait a few minutes before trying again.",
            "status": 402,
        },
    ),
    "insufficient-credit": (
        402,
        {
            "title": "Insufficient credit",
            "detail": "You have insufficient credit to run this model. Go to "
            "https://replicate.com/account/billing#billing to purchase credit. Once you purchase "
            "credit, please wait a few minutes before trying again.",
            "status": 402,
        },
    ),
    "rate-limited": (
        429,
        {
            "detail": "Request was throttled. Your rate limit for creating predictions is reduced "
            "to 6 requests per minute with a burst of 1 requests until you add a payment method. "
            f"Your rate limit resets in ~{RETRY_AFTER}s.",
            "status": 429,
            "retry_after": RETRY_AFTER,
        },
    ),
    # Negatives: answers that are not about the account.
    "not-found": (404, {"title": "Not found", "detail": "The requested resource could not be found.", "status": 404}),
    "invalid-input": (
        422,
        {
            "title": "Input validation failed",
            "detail": "- input.text: Invalid type. Expected: string, given: integer\n",
            "status": 422,
        },
    ),
    "server-error": (500, {"title": "Internal server error", "detail": "Internal server error", "status": 500}),
}
"""What creating a prediction answers for a token given in ``LoopbackAPI(refusals=...)``."""


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


def problem(status: int, title: str, detail: str) -> tuple[int, dict[str, Any]]:
    return status, {"title": title, "detail": detail, "status": status}


class State:
    """The mutable part of the fake API: accepted tokens, predictions, the request log."""

    def __init__(self, token_digests: frozenset[str], output: object, refusals: dict[str, str]) -> None:
        self.token_digests = token_digests
        self.refusals = refusals
        """Token digest -> refusal name (a key of :data:`REFUSALS`)."""
        self.output = output
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.predictions: dict[str, dict[str, Any]] = {}
        self.counter = itertools.count(1)
        self.forced: list[tuple[int, dict[str, Any]]] = []
        """Answers given to the next requests instead of the routes' (``testing.fail_next``)."""
        self.errors: list[BaseException] = []
        """Exceptions raised while handling a request (``testing.FakeReplicateAPI.check``)."""


_Route = Callable[["State", "re.Match[str]", dict[str, Any], str], tuple[int, dict[str, Any]]]


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
    state: State, body: dict[str, Any], base: str, model: str, version: str
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


def _route_account(state: State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    return 200, {"type": "user", "username": "acme", "name": "Acme", "github_url": None}


def _route_model(state: State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    return 200, _model(match["owner"], match["name"])


def _route_version(state: State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    return 200, _version(match["version"])


def _route_versions(state: State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    return 200, {"previous": None, "next": None, "results": [_version(DEFAULT_VERSION_ID)]}


def _route_create(state: State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    version = body.get("version")
    if not isinstance(version, str) or not version:
        return problem(422, "Invalid version", "The version field is required")
    # "owner/name:version" is accepted by the real API too.
    model = "acme/hello-world"
    if ":" in version:
        model, _, version = version.partition(":")
    return _create_prediction(state, body, base, model, version)


def _route_create_for_model(
    state: State, match: re.Match[str], body: dict[str, Any], base: str
) -> tuple[int, dict[str, Any]]:
    model = f"{match['owner']}/{match['name']}"
    return _create_prediction(state, body, base, model, DEFAULT_VERSION_ID)


def _route_get_prediction(
    state: State, match: re.Match[str], body: dict[str, Any], base: str
) -> tuple[int, dict[str, Any]]:
    with state.lock:
        prediction = state.predictions.get(match["id"])
    if prediction is None:
        return problem(404, "Not found", "The requested resource could not be found")
    return 200, prediction


def _route_stream(state: State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    # The handler writes a finished prediction's output as server-sent events (stream_events).
    return _route_get_prediction(state, match, body, base)


def _route_cancel(state: State, match: re.Match[str], body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
    # Predictions finish at once, so there is never anything left to cancel.
    return _route_get_prediction(state, match, body, base)


def _route_list_predictions(
    state: State, match: re.Match[str], body: dict[str, Any], base: str
) -> tuple[int, dict[str, Any]]:
    with state.lock:
        results = list(state.predictions.values())
    return 200, {"previous": None, "next": None, "results": results}


_SEGMENT = r"[^/]+"
_OWNER_NAME = rf"(?P<owner>{_SEGMENT})/(?P<name>{_SEGMENT})"
_MODEL = rf"/models/{_OWNER_NAME}"
ROUTES: tuple[tuple[str, re.Pattern[str], _Route], ...] = (
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
    ("GET", re.compile(rf"/predictions/(?P<id>{_SEGMENT})/stream"), _route_stream),
)


def stream_events(prediction: dict[str, Any]) -> bytes:
    """The server-sent events of a finished prediction at its ``urls.stream`` (``replicate.stream``,
    LlamaIndex): one ``output`` event holding its output, then ``done``."""
    output = prediction.get("output")
    text = output if isinstance(output, str) else json.dumps(output)
    data = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: output\nid: 1\n{data}\nevent: done\nid: 2\ndata: {{}}\n\n".encode()


CREATE_ROUTES = (_route_create, _route_create_for_model)
"""The routes that create a prediction: where a refusal answers."""


def api_path(raw_path: str) -> str:
    """Return the path without query, trailing slash and up to two leading ``/v1``."""
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    for _ in range(2):
        if path == "/v1" or path.startswith("/v1/"):
            path = path[3:]
    path = path.rstrip("/")
    return path or "/"
