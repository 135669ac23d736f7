"""Integrations with the tools a fleet reads its errors in: Sentry, structlog, loguru, OpenTelemetry.

Each lives in its own module, named by path in the library's configuration
(``replicate_explain.integrations.sentry``, ``.structlog``, ``.loguru``, ``.opentelemetry``),
and uses that library's own extension point. ``import replicate_explain`` imports none of them
(nor the libraries): a post-import hook (``_hook.when_imported``) calls :func:`activate` once the
program imports the library, and the integration turns itself on automatically. Configuring one
explicitly works as well, with or without the automatic activation (``REPLICATE_EXPLAIN=0``).

Every integration attaches the same dictionary, :meth:`~replicate_explain.Explanation.to_dict`,
under the name ``replicate_explain``, as the logging integration does.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import Any

#: The integration module each library's import activates, by the name of the module watched
#: for (``_hook.INTEGRATED_MODULES``).
WATCHED = {
    "sentry_sdk": "sentry",
    "structlog": "structlog",
    "loguru": "loguru",
    "opentelemetry.sdk.trace": "opentelemetry",
    "streamlit": "streamlit",
}


def activate(module: Any) -> None:
    """Post-import callback: turn on the integration for the library ``module`` (idempotent)."""
    from importlib import import_module

    name = WATCHED.get(getattr(module, "__name__", ""))
    if name is not None:
        import_module(f"{__name__}.{name}")._activate(module)
