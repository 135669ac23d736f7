"""Test harness only: send LiteLLM's Replicate requests to the loopback API.

LiteLLM 1.110 builds Replicate URLs from the constant ``https://api.replicate.com/v1`` and
ignores ``api_base`` for them (``litellm/llms/replicate/chat/transformation.py``,
``get_complete_url``). Its HTTP handler takes the transport of its ``httpx.Client`` from the
module attribute ``litellm.sync_transport`` (``litellm/llms/custom_httpx/http_handler.py``,
``_create_sync_transport``), so a transport that rewrites the scheme, host and port of each
request points it at the loopback. Python runs this file at start-up when its directory is on
``PYTHONPATH`` and ``LITELLM_TEST_REPLICATE_URL`` names the loopback; the programs under
test stay exactly what a user writes.
"""

import os

_URL = os.environ.get("LITELLM_TEST_REPLICATE_URL")

if _URL:
    import httpx
    import litellm

    class _ToLoopback(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            base = httpx.URL(_URL)
            request.url = request.url.copy_with(scheme=base.scheme, host=base.host, port=base.port)
            return super().handle_request(request)

    litellm.sync_transport = _ToLoopback()
