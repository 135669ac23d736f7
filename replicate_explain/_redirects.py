"""An urllib opener that never sends the ``Authorization`` header to another origin.

urllib follows redirects with every header of the first request, ``Authorization`` included:
a redirect to another host (or port, or scheme) would hand it the token. httpx drops the
header there; so does this opener (``doctor --online`` is the only network access).
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import Any


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the port spelt out when it is the default one."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects; drops ``Authorization`` when one leads to another origin."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin(new.full_url) != origin(req.full_url):
            new.remove_header("Authorization")
        return new


def urlopen(request: urllib.request.Request, timeout: float) -> Any:
    """``urllib.request.urlopen`` with :class:`SameOriginRedirects`."""
    return urllib.request.build_opener(SameOriginRedirects()).open(request, timeout=timeout)
