"""A fake Replicate API for your own tests: run your code's error handling offline.

:class:`FakeReplicateAPI` serves the Replicate HTTP API on ``http://127.0.0.1:<free port>``
(standard library only, a daemon thread). It accepts one token and answers like the real API:
a missing or wrong token gets its 401 problem document; predictions succeed at once with a
fixed output. :meth:`FakeReplicateAPI.fail_next` makes the next request answer 401, 402 or 429
with the real API's bodies, so a program's handling of a revoked token, an account without
billing or a rate limit can be tested without a network or a real token.

With pytest, the ``replicate_api`` fixture (registered by replicate-explain's plugin) gives a
server per session, reset for each test, with ``REPLICATE_API_TOKEN`` and the base-URL variable
of the installed client set for the test. From a shell: ``replicate-explain fake-api --accept
TOKEN``. See docs/TESTING-YOUR-CODE.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from ._loopback import DEFAULT_OUTPUT, REFUSALS, LoopbackAPI, RecordedRequest
from ._loopback_routes import INVALID_DETAIL, problem

__all__ = ["DEFAULT_TOKEN", "FAILURES", "FakeReplicateAPI", "RecordedRequest", "ServerError", "base_url_env"]

DEFAULT_TOKEN = "r8_" + "FakeReplicateApiToken".ljust(37, "0")
"""The token a :class:`FakeReplicateAPI` accepts unless given another (well-formed, not real)."""

FAILURES: Mapping[int | str, tuple[int, Mapping[str, Any]]] = {
    401: problem(401, "Unauthenticated", INVALID_DETAIL),
    402: REFUSALS["billing-required"],
    429: REFUSALS["rate-limited"],
    "unauthenticated": problem(401, "Unauthenticated", INVALID_DETAIL),
    **{name: REFUSALS[name] for name in ("billing-required", "insufficient-credit", "rate-limited")},
}
"""What :meth:`FakeReplicateAPI.fail_next` can answer, by status or by name: the real API's
bodies (401 ``You did not pass a valid authentication token``, 402 ``Billing required`` or
``Insufficient credit``, 429 ``Request was throttled`` with ``Retry-After``)."""


class ServerError(AssertionError):
    """The fake API itself failed while answering a request (raised by :meth:`FakeReplicateAPI.check`)."""


def base_url_env(url: str, client_version: str | None) -> dict[str, str]:
    """The variable that points replicate ``client_version`` at ``url`` (the API's root, no
    ``/v1``): ``REPLICATE_API_BASE_URL`` before 0.18, ``REPLICATE_BASE_URL`` from 0.18 to 1.x,
    ``REPLICATE_BASE_URL`` ending in ``/v1`` from 2.0. ``None``: the installed release (the 2.x
    form when replicate is not installed)."""
    from packaging.version import InvalidVersion, Version

    if client_version is None:
        client_version = _installed_client()
    if client_version is None:
        return {"REPLICATE_BASE_URL": f"{url}/v1"}
    try:
        version = Version(client_version)
    except InvalidVersion:
        raise ValueError(
            f"invalid replicate client version {client_version!r}; expected a release number "
            "such as '1.0.7' or '2.0.0b4', or None for the installed client"
        ) from None
    if version.major >= 2:
        return {"REPLICATE_BASE_URL": f"{url}/v1"}
    if version >= Version("0.18.0"):
        return {"REPLICATE_BASE_URL": url}
    return {"REPLICATE_API_BASE_URL": url}


def _installed_client() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("replicate")
    except PackageNotFoundError:
        return None


class FakeReplicateAPI:
    """The Replicate API on ``http://127.0.0.1:<free port>``, accepting ``token``.

    Use it as a context manager (or :meth:`start` / :meth:`stop`)::

        with FakeReplicateAPI() as api:
            os.environ.update(api.env())
            ...  # replicate.run(...) now talks to it

    ``output`` is what every prediction returns.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *, output: object = DEFAULT_OUTPUT) -> None:
        if not isinstance(token, str) or not token.strip() or token != token.strip():
            raise ValueError(
                f"the accepted token must be a non-empty string without surrounding whitespace, got a "
                f"{type(token).__name__} of length {len(token) if isinstance(token, str) else 'n/a'}; "
                "pass one such as 'r8_...' (the client sends it as 'Bearer <token>')"
            )
        self.token = token
        """The token the API accepts (sent as ``Bearer <token>`` or ``Token <token>``)."""
        self._api = LoopbackAPI(tokens={token}, output=output)

    def __repr__(self) -> str:
        where = self.url if self._running else "stopped"
        return f"<FakeReplicateAPI {where}>"

    @property
    def _running(self) -> bool:
        try:
            self._api.url  # noqa: B018 - raises when stopped
        except RuntimeError:
            return False
        return True

    @property
    def url(self) -> str:
        """The API's root, without ``/v1``: ``http://127.0.0.1:<port>``."""
        return self._api.url

    def env(self, client_version: str | None = None) -> dict[str, str]:
        """The variables a program sets to use this API: ``REPLICATE_API_TOKEN`` (the accepted
        token) and the base-URL variable that replicate ``client_version`` reads (default: the
        installed release; see :func:`base_url_env`)."""
        return {"REPLICATE_API_TOKEN": self.token, **base_url_env(self.url, client_version)}

    def fail_next(self, status: int | str, *, times: int = 1) -> None:
        """Answer the next ``times`` requests with a failure instead: ``401`` (the token is not
        valid), ``402`` (billing required; ``"insufficient-credit"`` for the other 402) or
        ``429`` (rate limited, ``Retry-After: 1``). Clients retry a 429 (2.x twice, with back-off),
        so give ``times=3`` to make a 429 reach the program."""
        if status not in FAILURES or isinstance(status, bool):
            choices = ", ".join(repr(key) for key in FAILURES)
            raise ValueError(f"fail_next({status!r}): unknown failure; expected one of {choices}")
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise ValueError(f"fail_next(times={times!r}): expected a whole number of requests, 1 or more")
        answer_status, payload = FAILURES[status]
        self._api.answer_next(answer_status, payload, times)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests answered so far, oldest first (method, path, whether a token was sent,
        the status; never the token itself)."""
        return self._api.requests

    def reset(self) -> None:
        """Forget the requests, the failures not given yet, the server's errors and the predictions."""
        self._api.reset()

    def check(self) -> None:
        """Raise :class:`ServerError` if answering a request failed inside the server (chained to
        the first such exception); the errors are forgotten."""
        errors = self._api.errors
        if errors:
            self._api.reset()
            raise ServerError(
                f"the fake Replicate API failed while answering {len(errors)} request(s): {errors[0]!r}"
            ) from errors[0]

    def start(self) -> FakeReplicateAPI:
        """Start serving (idempotent)."""
        self._api.start()
        return self

    def stop(self) -> None:
        """Stop serving; safe to call twice."""
        self._api.stop()

    def __enter__(self) -> FakeReplicateAPI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
