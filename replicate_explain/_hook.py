"""The excepthook adapter: print the original traceback (token masked), then the explanation.

Free to import: only ``sys`` and ``os`` at module level. Everything heavy is imported inside
:func:`report`, which runs only when an exception actually reaches the hook.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import Any, Callable, Optional
    from types import TracebackType

import os
import sys

from . import _state

OFF_VALUES = ("0", "off", "false", "no")
ENABLE_ENV = "REPLICATE_EXPLAIN"


def enabled_by_environment() -> bool:
    """Whether ``REPLICATE_EXPLAIN`` leaves the automatic activation on."""
    return os.environ.get(ENABLE_ENV, "").strip().lower() not in OFF_VALUES


class RedactingStream:
    """A text stream proxy that masks tokens in everything written through it.

    Everything else (``isatty``, ``fileno``, ``encoding``, ...) is the wrapped stream's, so the
    previous hook keeps its colours and its interactive behaviour (a post-mortem debugger).
    """

    def __init__(self, stream: Any, redactor: Callable[[str], str]) -> None:
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        try:
            masked = self._redactor(text) if isinstance(text, str) else text
        except Exception:
            masked = text
        self._stream.write(masked)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _redactor() -> Optional[Callable[[str], str]]:
    try:
        from ._redact import Redactor

        return Redactor.from_environ(os.environ)
    except Exception:
        _state.report_internal_error("building the redactor")
        return None


def print_traceback_masked(previous: Callable[..., Any], *args: Any) -> None:
    """Call ``previous(*args)`` with ``sys.stderr`` masking tokens; restore stderr afterwards."""
    redactor = _redactor()
    original = sys.stderr
    if redactor is None or original is None:
        previous(*args)
        return
    sys.stderr = RedactingStream(original, redactor)  # type: ignore[assignment]
    try:
        previous(*args)
    finally:
        if isinstance(sys.stderr, RedactingStream):
            sys.stderr = original


def report(exc: BaseException, stream: Any = None) -> bool:
    """Explain ``exc`` under its traceback if it is a Replicate authentication failure.

    Returns whether something was printed. Never raises: an internal failure prints nothing
    (or, with ``REPLICATE_EXPLAIN_DEBUG=1``, the internal error).
    """
    try:
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            return False
        from ._api import explain, rules, warn_rule_errors
        from ._render import print_explanation

        explanation = explain(exc)
        if explanation is None or not _state.mark_explained(exc):
            return False
        target = sys.stderr if stream is None else stream
        if target is None:
            return False
        with _state.output_lock():
            print_explanation(explanation, target)
            warn_rule_errors(rules())
        return True
    except Exception:
        _state.report_internal_error("explaining an exception")
        return False


def excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: Optional[TracebackType]
) -> None:
    """``sys.excepthook``: the previous hook's output, masked, then our explanation."""
    previous = _state.previous_excepthook or sys.__excepthook__
    if not _state.installed or isinstance(exc, (KeyboardInterrupt, SystemExit)):
        previous(exc_type, exc, tb)
        return
    lock = None
    try:
        lock = _state.output_lock()
        lock.acquire()
    except Exception:
        lock = None
    try:
        print_traceback_masked(previous, exc_type, exc, tb)
        report(exc)
    finally:
        if lock is not None:
            lock.release()


def threading_excepthook(args: Any) -> None:
    """``threading.excepthook``: the same for an exception that ends a thread."""
    previous = _state.previous_threading_excepthook
    if previous is None:
        import threading

        previous = threading.__excepthook__
    exc = getattr(args, "exc_value", None)
    if not _state.installed:
        previous(args)
        return
    lock = None
    try:
        lock = _state.output_lock()
        lock.acquire()
    except Exception:
        lock = None
    try:
        print_traceback_masked(previous, args)
        if isinstance(exc, BaseException):
            report(exc)
    finally:
        if lock is not None:
            lock.release()


def _set_threading_hook(threading_module: Any) -> None:
    if getattr(threading_module, "excepthook", None) is threading_excepthook:
        return
    _state.previous_threading_excepthook = threading_module.excepthook
    threading_module.excepthook = threading_excepthook


class _ThreadingWatcher:
    """A meta-path finder that sets ``threading.excepthook`` once ``threading`` is imported.

    Importing ``threading`` ourselves would cost start-up time in every interpreter, so when it
    is not loaded yet we wait for the program to import it (as wrapt's post-import hooks do).
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "threading":
            return None
        _remove_watcher()
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _ThreadingLoader(spec.loader)
                return spec
            if spec is not None:
                return spec
        return None


class _ThreadingLoader:
    """Wraps the real loader of ``threading``; sets our hook right after the module runs."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        try:
            if _state.installed:
                _set_threading_hook(module)
        except Exception:
            _state.report_internal_error("setting threading.excepthook")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def _remove_watcher() -> None:
    watcher = _state.threading_watcher
    _state.threading_watcher = None
    if watcher is not None:
        try:
            sys.meta_path.remove(watcher)  # type: ignore[arg-type]
        except ValueError:
            pass


def install() -> None:
    """Install the hooks (idempotent). The previous hooks keep running, exactly once each."""
    if _state.installed:
        return
    if sys.excepthook is not excepthook:
        _state.previous_excepthook = sys.excepthook
        sys.excepthook = excepthook
    threading_module = sys.modules.get("threading")
    if threading_module is not None:
        _set_threading_hook(threading_module)
    else:
        watcher = _ThreadingWatcher()
        _state.threading_watcher = watcher
        sys.meta_path.insert(0, watcher)  # type: ignore[arg-type]
    _state.installed = True


def uninstall() -> None:
    """Restore exactly the hooks that were in place before :func:`install` (idempotent)."""
    if not _state.installed:
        return
    _remove_watcher()
    # A hook installed after ours may chain to ours: then we cannot take ours out, so we keep
    # the previous hook recorded and pass everything through to it (see ``excepthook``).
    _state.installed = False
    if sys.excepthook is excepthook:
        sys.excepthook = _state.previous_excepthook or sys.__excepthook__
        _state.previous_excepthook = None
    threading_module = sys.modules.get("threading")
    if threading_module is not None and getattr(threading_module, "excepthook", None) is threading_excepthook:
        threading_module.excepthook = _state.previous_threading_excepthook or threading_module.__excepthook__
        _state.previous_threading_excepthook = None


def is_installed() -> bool:
    """Whether our ``sys.excepthook`` is in place."""
    return _state.installed and sys.excepthook is excepthook
