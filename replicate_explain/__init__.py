"""replicate-explain: explains Replicate authentication failures under the original traceback.

``import replicate_explain`` installs ``sys.excepthook`` and ``threading.excepthook`` (unless
``REPLICATE_EXPLAIN=0``). Importing this package is free: rich, PyYAML, packaging, replicate
and httpx are imported only when an exception actually needs explaining.
"""

from ._hook import install, is_installed, uninstall

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import Any

    from ._api import explain
    from ._errors import RuleError
    from ._explanation import CodeFix, Explanation
    from ._render import print_explanation, render

__all__ = [
    "CodeFix",
    "Explanation",
    "RuleError",
    "__version__",
    "explain",
    "install",
    "is_installed",
    "print_explanation",
    "render",
    "uninstall",
]

_LAZY = {
    "RuleError": "._errors",
    "explain": "._api",
    "Explanation": "._explanation",
    "CodeFix": "._explanation",
    "render": "._render",
    "print_explanation": "._render",
}


def __getattr__(name: str) -> "Any":
    """Resolve the heavier public names on first use (PEP 562), keeping the import free."""
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("replicate-explain")
        except PackageNotFoundError:
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: "Any") -> None:
    """``%load_ext replicate_explain``: mask tokens in cell tracebacks and explain failures;
    HTTP errors are masked at birth from now on (even with ``REPLICATE_EXPLAIN=0``)."""
    from ._hook import install_birth_masking
    from ._ipython import load_ipython_extension as load

    install_birth_masking()
    load(ipython)


def unload_ipython_extension(ipython: "Any") -> None:
    """``%unload_ext replicate_explain``: restore what was there before loading."""
    from ._ipython import unload_ipython_extension as unload

    unload(ipython)


def _activate() -> None:
    import sys

    from ._hook import enabled_by_environment

    if enabled_by_environment():
        install()
        # Cell errors never reach sys.excepthook. Shells created from now on (a kernel started
        # with the sitecustomize install) get the IPython integration through install()'s
        # post-import hook; a running shell (a notebook cell ran the import) gets it here.
        # IPython is never imported here.
        if sys.modules.get("IPython") is not None:
            try:
                from ._ipython import activate_in_running_shell

                activate_in_running_shell()
            except Exception:
                pass


_activate()
