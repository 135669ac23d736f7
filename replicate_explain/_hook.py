"""The excepthook adapter: installs, chains and removes the hooks; nothing else at start-up.

This module runs in every interpreter of an environment after ``replicate-explain install``,
so it holds only what must exist before the first exception: ``install()``/``uninstall()``,
the two hooks themselves and the post-import machinery. What the hooks do when an exception
arrives (mask the traceback, explain it) lives in ``_report``, imported at that moment.
"""

import os
import sys

from . import _state

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, Callable

OFF_VALUES = ("0", "off", "false", "no")
ENABLE_ENV = "REPLICATE_EXPLAIN"


def enabled_by_environment() -> bool:
    """Whether ``REPLICATE_EXPLAIN`` leaves the automatic activation on."""
    return os.environ.get(ENABLE_ENV, "").strip().lower() not in OFF_VALUES


def _passing_through() -> bool:
    """Whether the hooks only call the previous ones: uninstalled, or the interpreter is shutting
    down (``sys.meta_path`` may be gone: an import of ours would fail with its own error)."""
    return not _state.installed or sys.is_finalizing() or sys.meta_path is None


def _report_module() -> "Any":
    """``_report``, imported under the hook guard (see ``_state.hook_guard``: no fork happens
    while a thread is inside this import)."""
    with _state.hook_guard():  # an import, not sys.modules: it waits while another thread
        from . import _report  # is still running the module's code

    return _report


def excepthook(exc_type: "type[BaseException]", exc: BaseException, tb: "TracebackType | None") -> None:
    """``sys.excepthook``: the previous hook's output, masked, then our explanation."""
    previous = _state.previous_excepthook or sys.__excepthook__
    if _passing_through() or isinstance(exc, (KeyboardInterrupt, SystemExit)):
        previous(exc_type, exc, tb)
        return
    report = _report_module()
    report.print_and_explain(
        previous, (exc_type, exc, tb), exc, sys.__excepthook__, on_failure=report.excepthook_failed
    )


def threading_excepthook(args: "Any") -> None:
    """``threading.excepthook``: the same for an exception that ends a thread."""
    previous = _state.previous_threading_excepthook
    if previous is None:
        import threading

        previous = threading.__excepthook__
    if _passing_through():
        previous(args)
        return
    exc = getattr(args, "exc_value", None)
    import threading

    report = _report_module()
    fallback = threading.__excepthook__
    report.print_and_explain(previous, (args,), exc if isinstance(exc, BaseException) else None, fallback)


def unraisablehook(unraisable: "Any") -> None:
    """``sys.unraisablehook`` ("Exception ignored in ...": ``__del__``, ``atexit``...): the same."""
    previous = _state.previous_unraisablehook or sys.__unraisablehook__
    if _passing_through():
        previous(unraisable)
        return
    with _state.hook_guard():
        from ._channels import unraisable as handle

    handle(previous, unraisable)


def _hook_multiprocessing(process_module: "Any") -> None:
    """Post-import callback for ``multiprocessing.process``: mask and explain in children."""
    from ._channels import hook_multiprocessing

    hook_multiprocessing(process_module)


def _hook_rich_traceback(module: "Any") -> None:
    """Post-import callback for ``rich.traceback``: stay on top of a later ``install()``."""
    from ._channels import hook_rich_traceback

    hook_rich_traceback(module, excepthook)


def _set_threading_hook(threading_module: "Any") -> None:
    """Post-import callback for ``threading``: chain our ``threading.excepthook``."""
    if not _state.installed:
        return
    if getattr(threading_module, "excepthook", None) is threading_excepthook:
        return
    _state.previous_threading_excepthook = threading_module.excepthook
    threading_module.excepthook = threading_excepthook


def _hook_logging(logging_module: "Any") -> None:
    """Post-import callback for ``logging``: explain records logged through any logger."""
    if not _state.installed:
        return
    from .logging import _activate

    _activate()
    # ``importlib.reload(logging)`` runs the module again with a new Logger class: watch for it.
    _register("logging", [_hook_logging])


def _hook_ipython(shell_module: "Any") -> None:
    """Post-import callback for IPython: integrate every shell created from now on (cell errors
    never reach ``sys.excepthook``). Shells created before are left to ``import``/``%load_ext``."""
    if not _state.installed:
        return
    from ._ipython import watch_shells

    watch_shells(shell_module)


def _hook_unittest(runner_module: "Any") -> None:
    """Post-import callback for ``unittest.runner``: explain failures in unittest's report."""
    from ._unittest import hook_unittest

    hook_unittest(runner_module)


#: What :func:`install` attaches to modules the program imports later (and :func:`uninstall`
#: detaches): module name, post-import callback. The one table of our post-import hooks.
# ---------------------------------------------------------------------------------------------
# Integrations (``replicate_explain.integrations``): each turns on once its library is imported.

#: The modules whose import turns on an integration (see ``integrations.activate``).
INTEGRATED_MODULES = ("sentry_sdk", "structlog", "loguru", "opentelemetry.sdk.trace", "streamlit")


def _hook_integration(module: "Any") -> None:
    """Post-import callback for an integrated library: turn its integration on."""
    if not _state.installed:
        return
    from .integrations import activate

    activate(module)


# ---------------------------------------------------------------------------------------------
# Masked at birth (``_birth``): the HTTP libraries' boundary methods, wrapped once imported.

#: The modules whose boundary methods ``_birth.patch`` wraps.
BIRTH_MODULES = ("httpx", "requests")


def _hook_birth(module: "Any") -> None:
    """Post-import callback for ``httpx``/``requests``: mask their exceptions at birth."""
    if not _state.birth_masking:
        return
    from ._birth import patch

    patch(module)


def install_birth_masking() -> None:
    """Mask exceptions leaving ``httpx``/``requests`` at birth from now on (idempotent; modules
    imported already are wrapped now, the others when the program imports them). ``install()``
    calls it; so may a pytest plugin that does not install the hooks."""
    _state.birth_masking = True
    for name in BIRTH_MODULES:
        when_imported(name, _hook_birth)


def uninstall_birth_masking() -> None:
    """Stop masking at birth: the wrappers pass through (they stay where they are)."""
    _state.birth_masking = False
    for name in BIRTH_MODULES:
        cancel_when_imported(name, _hook_birth)


ON_IMPORT: "tuple[tuple[str, Callable[[Any], None]], ...]" = (
    ("threading", _set_threading_hook),
    ("logging", _hook_logging),
    (_state.IPYTHON_SHELL_MODULE, _hook_ipython),
    ("multiprocessing.process", _hook_multiprocessing),
    ("rich.traceback", _hook_rich_traceback),
    ("unittest.runner", _hook_unittest),
    *((name, _hook_integration) for name in INTEGRATED_MODULES),
)


# ---------------------------------------------------------------------------------------------
# Post-import hooks: run a callback once a module is imported, without importing it ourselves.


def when_imported(name: str, callback: "Callable[[Any], None]") -> None:
    """Call ``callback(module)`` once the module ``name`` is imported.

    Right away if it already is; otherwise right after the program first imports it, before
    the ``import`` statement returns. ``name`` is never imported by us: importing ``threading``
    or ``logging`` ourselves would cost start-up time in every interpreter. A failing callback
    is reported like any internal error (``REPLICATE_EXPLAIN_DEBUG=1``) and never raises.
    """
    module = sys.modules.get(name)
    if module is not None:
        _run_callbacks(name, module, [callback])
        return
    _register(name, [callback])


def cancel_when_imported(name: str, callback: "Callable[[Any], None]") -> None:
    """Forget a callback registered with :func:`when_imported` that has not run yet."""
    pending = _state.post_import_hooks.get(name)
    if pending is not None:
        while callback in pending:
            pending.remove(callback)
        if not pending:
            del _state.post_import_hooks[name]
    if not _state.post_import_hooks:
        _remove_watcher()


def _register(name: str, callbacks: "list[Callable[[Any], None]]") -> None:
    pending = _state.post_import_hooks.setdefault(name, [])
    pending.extend(callback for callback in callbacks if callback not in pending)
    if _state.import_watcher is None:
        watcher = _PostImportFinder()
        _state.import_watcher = watcher
        sys.meta_path.insert(0, watcher)


def _run_callbacks(name: str, module: "Any", callbacks: "list[Callable[[Any], None]]") -> None:
    for callback in callbacks:
        try:
            callback(module)
        except Exception:
            _state.report_internal_error(f"the post-import hook for {name}")


class _PostImportFinder:
    """A meta-path finder that wraps the loader of each watched module (as wrapt's post-import
    hooks do). Every other import costs one dictionary lookup; the finder takes itself out of
    ``sys.meta_path`` once nothing is left to watch.
    """

    def find_spec(self, fullname: str, path: "Any" = None, target: "Any" = None) -> "Any":
        # The callbacks stay registered until the module's code has actually run: a spec may be
        # looked up without any import (``importlib.util.find_spec("threading")``).
        if fullname not in _state.post_import_hooks:
            return None
        spec = None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PostImportLoader(spec.loader, fullname)
        return spec


class _PostImportLoader:
    """Wraps the real loader of a watched module; runs the callbacks right after the module.

    The module itself only ever sees the real loader: ``__loader__`` and ``__spec__.loader``
    are put back before its code runs.
    """

    def __init__(self, loader: "Any", name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: "Any") -> "Any":
        create = getattr(self._loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: "Any") -> None:
        try:
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self._loader
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self._loader
        except Exception:
            _state.report_internal_error(f"restoring the loader of {self._name}")
        self._loader.exec_module(module)  # if it fails, the callbacks wait for the next import
        callbacks = _state.post_import_hooks.pop(self._name, None)
        if not _state.post_import_hooks:
            _remove_watcher()
        if callbacks:
            _run_callbacks(self._name, module, callbacks)

    def __getattr__(self, name: str) -> "Any":
        return getattr(self._loader, name)


def _remove_watcher() -> None:
    watcher = _state.import_watcher
    _state.import_watcher = None
    if watcher is not None and watcher in sys.meta_path:
        sys.meta_path.remove(watcher)


def install() -> None:
    """Install the hooks (idempotent). The previous hooks keep running, exactly once each.

    ``sys.excepthook`` now; ``threading.excepthook``, the logging integration
    (:mod:`replicate_explain.logging`) and the IPython integration of every shell created
    afterwards (``_ipython.watch_shells``) as soon as the program imports those modules.
    """
    if _state.installed:
        return
    _state.hook_guard()  # registers the at-fork handlers before any hook can run
    # A hook recorded as "previous" may itself call ours (a tool chained over ours before an
    # uninstall()/install()): ``_report.print_and_explain`` then sees itself re-entered and
    # prints with the standard printer instead of looping.
    if sys.excepthook is not excepthook:
        _state.previous_excepthook = sys.excepthook
        sys.excepthook = excepthook
    if getattr(sys, "unraisablehook", None) is not None and sys.unraisablehook is not unraisablehook:
        _state.previous_unraisablehook = sys.unraisablehook
        sys.unraisablehook = unraisablehook
    _state.installed = True
    for name, callback in ON_IMPORT:
        when_imported(name, callback)
    install_birth_masking()


def uninstall() -> None:
    """Restore exactly the hooks that were in place before :func:`install` (idempotent)."""
    if not _state.installed:
        return
    for name, callback in ON_IMPORT:
        cancel_when_imported(name, callback)
    uninstall_birth_masking()
    # A hook installed after ours may chain to ours: then we cannot take ours out, so we keep
    # the previous hook recorded and pass everything through to it (see ``excepthook``).
    _state.installed = False
    if sys.excepthook is excepthook:
        sys.excepthook = _state.previous_excepthook or sys.__excepthook__
        _state.previous_excepthook = None
    if getattr(sys, "unraisablehook", None) is unraisablehook:
        sys.unraisablehook = _state.previous_unraisablehook or sys.__unraisablehook__
        _state.previous_unraisablehook = None
    threading_module: Any = sys.modules.get("threading")
    if threading_module is not None and getattr(threading_module, "excepthook", None) is threading_excepthook:
        threading_module.excepthook = _state.previous_threading_excepthook or threading_module.__excepthook__
        _state.previous_threading_excepthook = None

    if _state.logging_active or _state.previous_make_record is not None:
        try:
            from .logging import _deactivate

            _deactivate()
        except Exception:
            _state.report_internal_error("unhooking logging")
    if _state.shells_watched:
        try:
            from ._ipython import unwatch_shells

            unwatch_shells()
        except Exception:
            _state.report_internal_error("unhooking IPython")


def is_installed() -> bool:
    """Whether our ``sys.excepthook`` is in place."""
    return _state.installed and sys.excepthook is excepthook
