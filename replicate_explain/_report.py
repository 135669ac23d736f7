"""The adapters' one entry point: explain once, print under the output lock, warn about rules.

:func:`report` is what the excepthooks (through :func:`print_and_explain`, which first prints
the previous hook's output with tokens masked) and the IPython integration run when an
exception arrives; the logging integration, which renders into the record instead of printing,
uses its steps :func:`explain_once` and :func:`warn_rule_errors`. Imported at the first
exception, never at start-up.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from . import _state

if TYPE_CHECKING:
    from types import TracebackType

    from ._explanation import Explanation
    from ._facts import FactValue


class RedactingStream:
    """A text stream proxy that masks tokens in everything written through it.

    Everything else (``isatty``, ``fileno``, ``encoding``, ...) is the wrapped stream's, so the
    previous hook keeps its colours and its interactive behaviour (a post-mortem debugger).
    """

    def __init__(self, stream: Any, redactor: Callable[[str], str]) -> None:
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        if self._buffer is not None and isinstance(text, str):
            self._buffer.append(text)
            if text.endswith("\n"):  # held no longer than a line: a hook may end the process
                self.drain()  # (``os._exit()``) right after printing, and lose what is held
            return len(text)
        try:
            masked = self._redactor(text) if isinstance(text, str) else text
        except Exception:
            masked = text
        self._stream.write(masked)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    #: ``buffered()`` streams keep the writes until a write ends a line, ``flush()`` or the end
    #: of the hook, then mask the joined text, so a secret a printer wrapped over lines in one
    #: write (rich writes a whole traceback at once) is masked whole.
    _buffer: list[str] | None = None

    def buffered(self) -> RedactingStream:
        self._buffer = []
        return self

    def flush(self) -> None:
        self.drain()
        flush = getattr(self._stream, "flush", None)
        if flush is not None:
            flush()

    def drain(self) -> None:
        """Write what was buffered, masked as one text (over line breaks too)."""
        if not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        if not text:
            return
        try:
            wrapped = getattr(self._redactor, "wrapped", None)
            masked = wrapped(text) if wrapped is not None else self._redactor(text)
        except Exception:
            masked = text
        self._stream.write(masked)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _DrainFirst:
    """A stdout proxy that writes out a buffered stderr before each of its own writes."""

    def __init__(self, stream: Any, pending: RedactingStream) -> None:
        self._stream = stream
        self._pending = pending

    def write(self, text: str) -> int:
        try:
            self._pending.flush()
        except Exception:
            pass
        result: int = self._stream.write(text)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def redactor_for(exc: BaseException | None) -> Callable[[str], str] | None:
    """The redactor for printing ``exc``: every token-shaped credential is masked when the
    failure touches replicate; otherwise only the environment's secrets and ``r8_`` tokens, so
    that an unrelated error prints as plain Python prints it. ``None`` if building it failed."""
    try:
        from ._mask import Redactor
        from ._snapshot import is_relevant

        relevant = exc is None or is_relevant(exc)
        return Redactor.from_environ(os.environ, heuristics=relevant)
    except Exception:
        _state.report_internal_error("building the redactor")
        return None


class PreviousHookFailed(Exception):
    """The previous hook raised ``error``; ``traceback`` starts at the previous hook's own frame
    (without ours), as Python shows a failing hook it called itself."""

    def __init__(self, error: Exception, traceback: TracebackType | None) -> None:
        super().__init__(error)
        self.error = error
        self.traceback = traceback


def _call_previous(previous: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        previous(*args)
    except Exception as error:
        here = error.__traceback__
        raise PreviousHookFailed(error, here.tb_next if here is not None else None) from None


def excepthook_failed(failure: PreviousHookFailed, exc_type: Any, exc: Any, tb: Any) -> None:
    """What Python prints when ``sys.excepthook`` raises, with none of our frames: the hook's
    error, then the original exception (masked, as always)."""
    stream = sys.stderr
    if stream is None:
        return
    error = failure.error.with_traceback(failure.traceback)
    stream.write("Error in sys.excepthook:\n")
    print_traceback_masked(sys.__excepthook__, type(error), error, failure.traceback, exc=error)
    stream.write("\nOriginal exception was:\n")
    print_traceback_masked(sys.__excepthook__, exc_type, exc, tb, exc=exc)


def print_traceback_masked(previous: Callable[..., Any], *args: Any, exc: BaseException | None = None) -> None:
    """Call ``previous(*args)`` with ``sys.stderr`` masking tokens; restore stderr afterwards.

    Raises :class:`PreviousHookFailed` if ``previous`` raises."""
    with _state.hook_guard():
        redactor = redactor_for(exc)
    original = sys.stderr
    if redactor is None or original is None:
        _call_previous(previous, args)
        return
    with _state.hook_guard():
        from ._birth import mask_exception

        mask_exception(exc, redactor)  # before the previous hook formats it (rich wraps lines)
    stream = RedactingStream(original, redactor).buffered()
    sys.stderr = stream
    # An interactive hook (a post-mortem debugger) prompts on stdout: the traceback held in
    # the buffer is written out before anything reaches stdout, so it shows above the prompt.
    out = sys.stdout
    if out is not None:
        sys.stdout = _DrainFirst(out, stream)
    try:
        _call_previous(previous, args)
    finally:
        if sys.stderr is stream:
            sys.stderr = original
        if out is not None and isinstance(sys.stdout, _DrainFirst):
            sys.stdout = out
        try:
            stream.drain()
        except Exception:
            _state.report_internal_error("writing the masked traceback")


def explain_once(
    exc: BaseException, *, extra_facts: Mapping[str, FactValue] | None = None, mark: bool = True
) -> Explanation | None:
    """The first step of every adapter: the explanation of ``exc``, or ``None`` when it is not
    a Replicate authentication failure or (``mark``) has been explained already in this process.

    With ``mark``, ``exc`` counts as explained from now on; an adapter that only sometimes
    shows the explanation (logging: a record no handler emits) passes ``mark=False`` and calls
    ``_state.mark_explained`` when it does show it. ``extra_facts``: the ``ADAPTER_FACTS`` the
    adapter observed. Never raises: an internal failure gives ``None`` (and, with
    ``REPLICATE_EXPLAIN_DEBUG=1``, prints the internal error).
    """
    try:
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            return None
        from ._api import explain

        explanation = explain(exc, extra_facts=extra_facts)
        if explanation is None or (mark and not _state.mark_explained(exc)):
            return None
        return explanation
    except Exception:
        _state.report_internal_error("explaining an exception")
        return None


#: Rule-file warnings printed at most per process; one line counts the rest.
MAX_WARNINGS = 5


def warn_rule_errors() -> None:
    """Print each error of the rule set in force once per process to stderr, tokens masked
    (a rule file may quote one), at most :data:`MAX_WARNINGS` of them and then one line for the
    rest (3,000 broken files must not add 3,000 lines under a traceback). Never raises."""
    try:
        from ._api import rules
        from ._mask import Redactor

        errors = rules().errors
        pending = [str(error) for error in errors if str(error) not in _state.warned]
        stream = sys.stderr
        if not pending or stream is None:
            return
        redactor = Redactor.from_environ(os.environ)
        printed = sum(1 for text in _state.warned if not text.startswith("\0"))
        for text in pending:
            _state.warned.add(text)
            if printed >= MAX_WARNINGS:
                continue
            printed += 1
            stream.write(f"replicate-explain: skipped a rule file: {redactor(text)}\n")
        rest = len(errors) - MAX_WARNINGS
        if printed >= MAX_WARNINGS and rest > 0 and "\0rest" not in _state.warned:
            _state.warned.add("\0rest")
            stream.write(
                f"replicate-explain: {rest} more rule-file problems not shown; "
                "run `replicate-explain rules check` to see them all\n"
            )
    except Exception:
        _state.report_internal_error("warning about rule files")


def report(
    exc: BaseException,
    stream: Any = None,
    *,
    extra_facts: Mapping[str, FactValue] | None = None,
    show: Callable[[Explanation], None] | None = None,
) -> bool:
    """The adapters' entry point: explain ``exc`` once, show it, then warn about rule files.

    The sequence every adapter that prints runs (the excepthooks, IPython): :func:`explain_once`
    (explain, mark explained), then, under the output lock, ``show(explanation)`` (default:
    print it to ``stream``, default ``sys.stderr``) and :func:`warn_rule_errors`. Returns
    whether something was shown. Never raises: an internal failure shows nothing (or, with
    ``REPLICATE_EXPLAIN_DEBUG=1``, the internal error).
    """
    try:
        explanation = explain_once(exc, extra_facts=extra_facts)
        if explanation is None:
            return False
        target = sys.stderr if stream is None else stream
        if show is None and target is None:
            return False
        with _state.output_lock():
            if show is not None:
                show(explanation)
            else:
                from ._render import print_explanation

                print_explanation(explanation, target)  # falls back to plain text if rich fails
            warn_rule_errors()
        return True
    except Exception:
        _state.report_internal_error("explaining an exception")
        return False


def print_and_explain(
    previous: Callable[..., Any],
    args: tuple[Any, ...],
    exc: BaseException | None,
    fallback: Callable[..., Any] | None = None,
    *,
    on_failure: Callable[..., None] | None = None,
) -> None:
    """Under the output lock (so concurrent failures never interleave): ``previous(*args)``
    with tokens masked, then the explanation of ``exc``.

    Re-entered in the same thread (another tool's hook, chained over ours, that ours calls as
    its previous hook and that calls ours again): ``fallback(*args)``, the standard printer,
    still writing through the outer call's masking stream, instead of recursing.

    ``previous`` raising: ``on_failure(failure, *args)`` prints it as Python would (then the
    explanation follows); without ``on_failure`` its error is raised again, from the previous
    hook's frame (none of ours)."""
    import _thread

    ident = _thread.get_ident()
    if ident in _state.active_hooks and fallback is not None:
        fallback(*args)
        return
    _state.active_hooks.add(ident)
    try:
        _print_and_explain(previous, args, exc, on_failure)
    except PreviousHookFailed as failure:
        error = failure.error
        raise error.with_traceback(failure.traceback) from None
    finally:
        _state.active_hooks.discard(ident)


def _print_and_explain(
    previous: Callable[..., Any],
    args: tuple[Any, ...],
    exc: BaseException | None,
    on_failure: Callable[..., None] | None,
) -> None:
    lock = None
    try:
        lock = _state.output_lock()
        lock.acquire()
    except Exception:
        lock = None
    try:
        try:
            print_traceback_masked(previous, *args, exc=exc)
        except PreviousHookFailed as failure:
            if on_failure is None:
                raise
            on_failure(failure, *args)
        if exc is not None:
            with _state.hook_guard():
                report(exc)
    finally:
        if lock is not None:
            lock.release()
