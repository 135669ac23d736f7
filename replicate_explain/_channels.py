"""The other channels an exception reaches the user through, masked and explained.

``sys.unraisablehook``, the traceback a ``multiprocessing`` child prints, and a
``rich.traceback.install()`` made after ours.

Imported only when one of them happens (``_hook`` holds the tiny hooks that run at start-up).
Every one of them masks at the source first (``_birth.mask_exception``), then lets the
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
        from ._birth import mask_exception, redactor_for
        from ._report import RedactingStream

        redactor = redactor_for(exc)
        mask_exception(exc, redactor)
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
    explained. And every traceback rich extracts (``console.print_exception(show_locals=True)``
    in the program's own ``except``, ``RichHandler(tracebacks_show_locals=True)``) has its frame
    locals, messages and notes masked (:func:`_mask_trace`): locals cannot be masked at birth."""
    _wrap_extract(getattr(module, "Traceback", None))
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


def _wrap_extract(cls: Any) -> None:
    """Wrap ``rich.traceback.Traceback.extract`` (a classmethod): mask the ``Trace`` it returns."""
    original = getattr(cls, "extract", None) if isinstance(cls, type) else None
    if original is None or getattr(original, MARK, False):
        return

    def extract(owner: Any, exc_type: Any, exc_value: Any, *args: Any, **kwargs: Any) -> Any:
        trace = original.__func__(owner, exc_type, exc_value, *args, **kwargs)
        if _state.installed or _state.birth_masking:
            try:
                from ._birth import redactor_for

                _mask_trace(trace, redactor_for(exc_value if isinstance(exc_value, BaseException) else None))
            except Exception:
                _state.report_internal_error("masking a rich traceback")
        return trace

    setattr(extract, MARK, True)
    extract.__wrapped__ = original.__func__  # type: ignore[attr-defined]
    extract.__doc__ = original.__doc__
    cls.extract = classmethod(extract)


def _mask_trace(trace: Any, redactor: Any, depth: int = 0) -> None:
    """Mask, in place, the text of a ``rich.traceback.Trace`` (rich's own extracted copy): each
    stack's message, notes and syntax error, and each frame's locals (``pretty.Node`` trees)."""
    for stack in getattr(trace, "stacks", None) or ():
        if isinstance(getattr(stack, "exc_value", None), str):
            stack.exc_value = redactor(stack.exc_value)
        notes = getattr(stack, "notes", None)
        if isinstance(notes, list):
            notes[:] = [redactor(note) if isinstance(note, str) else note for note in notes]
        error = getattr(stack, "syntax_error", None)
        if error is not None:
            for name in ("line", "msg"):
                if isinstance(getattr(error, name, None), str):
                    setattr(error, name, redactor(getattr(error, name)))
        for frame in getattr(stack, "frames", None) or ():
            for node in (getattr(frame, "locals", None) or {}).values():
                _mask_node(node, redactor, 0)
        if depth < 8:
            for member in getattr(stack, "exceptions", None) or ():
                _mask_trace(member, redactor, depth + 1)


def _mask_node(node: Any, redactor: Any, depth: int) -> None:
    for name in ("key_repr", "value_repr"):
        text = getattr(node, name, None)
        if isinstance(text, str) and text:
            setattr(node, name, redactor(text))
    if depth < 32:
        for child in getattr(node, "children", None) or ():
            _mask_node(child, redactor, depth + 1)
