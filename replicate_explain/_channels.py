"""The other channels an exception reaches the user through, masked and explained.

``sys.unraisablehook``, the traceback a ``multiprocessing`` child prints, and a
``rich.traceback.install()`` made after ours.

Imported only when one of them happens (``_hook`` holds the tiny hooks that run at start-up).
Every one of them masks at the source first (``_scrub.scrub_exception``), then lets the
standard printer print, then explains.
"""

from __future__ import annotations

import sys
from typing import Any

from . import _state

#: Marks the functions we wrapped, so wrapping twice is a no-op.
MARK = "__replicate_explain_wrapped__"


def unraisable(previous: Any, unraisable: Any) -> None:
    """``sys.unraisablehook``: "Exception ignored in ...", masked, then the explanation."""
    from ._report import print_and_explain

    exc = getattr(unraisable, "exc_value", None)
    exc = exc if isinstance(exc, BaseException) else None
    print_and_explain(previous, (unraisable,), exc, sys.__unraisablehook__)


# ---------------------------------------------------------------------------------------------
# multiprocessing: ``BaseProcess._bootstrap`` prints a failed child's traceback with
# ``traceback.print_exc()`` itself; no hook is called.


def hook_multiprocessing(process_module: Any) -> None:
    """Post-import callback for ``multiprocessing.process``: wrap ``BaseProcess._bootstrap``.

    A child (fork: inherited; spawn and forkserver: the main module imports us again before the
    child starts) masks its exception at the source, prints the standard traceback through a
    masking stderr, and explains it under the traceback.
    """
    cls = getattr(process_module, "BaseProcess", None)
    original = getattr(cls, "_bootstrap", None)
    if cls is None or original is None or getattr(original, MARK, False):
        return

    def _bootstrap(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _state.installed:
            return original(self, *args, **kwargs)
        failures: list[BaseException] = []
        saved: list[Any] = []
        run = self.run

        def run_masked() -> Any:
            try:
                return run()
            except BaseException as exc:
                if not isinstance(exc, (SystemExit, KeyboardInterrupt)):
                    _on_failure(exc, failures, saved)
                raise

        self.run = run_masked
        try:
            return original(self, *args, **kwargs)
        finally:
            try:
                del self.run
            except Exception:
                pass
            if saved and isinstance(sys.stderr, _masking_stream_type()):
                sys.stderr = saved[0]
            if failures:
                _explain_child(failures[0])

    setattr(_bootstrap, MARK, True)
    _bootstrap.__wrapped__ = original  # type: ignore[attr-defined]
    cls._bootstrap = _bootstrap


def _masking_stream_type() -> Any:
    from ._report import RedactingStream

    return RedactingStream


def _on_failure(exc: BaseException, failures: list[BaseException], saved: list[Any]) -> None:
    try:
        from ._report import RedactingStream
        from ._scrub import redactor_for, scrub_exception

        redactor = redactor_for(exc)
        scrub_exception(exc, redactor)
        failures.append(exc)
        if sys.stderr is not None:  # the source lines print_exc() shows may hold a token too
            saved.append(sys.stderr)
            sys.stderr = RedactingStream(sys.stderr, redactor)
    except Exception:
        _state.report_internal_error("masking a multiprocessing child's exception")


def _explain_child(exc: BaseException) -> None:
    try:
        from ._report import report

        report(exc)
        if sys.stderr is not None:
            sys.stderr.flush()
    except Exception:
        _state.report_internal_error("explaining a multiprocessing child's exception")


# ---------------------------------------------------------------------------------------------
# rich.traceback.install() replaces sys.excepthook without chaining to the hook it replaces.


def hook_rich_traceback(module: Any, excepthook: Any) -> None:
    """Post-import callback for ``rich.traceback``: after its ``install()`` replaced our
    ``sys.excepthook`` (``_hook`` passes it), put ours back on top with rich's as the previous
    hook, so rich's output is masked at the source (and wrapped lines masked whole) and then
    explained."""
    original = getattr(module, "install", None)
    if original is None or getattr(original, MARK, False):
        return

    def install(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        try:
            if _state.installed and sys.excepthook is not excepthook:
                _state.previous_excepthook = sys.excepthook
                sys.excepthook = excepthook
        except Exception:
            _state.report_internal_error("chaining after rich.traceback.install()")
        return result

    setattr(install, MARK, True)
    install.__wrapped__ = original  # type: ignore[attr-defined]
    install.__doc__ = original.__doc__
    module.install = install
