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


def redactor_for(exc: BaseException | None) -> Callable[[str], str] | None:
    """The redactor for printing ``exc``: every token-shaped credential is masked when the
    failure touches replicate; otherwise only the environment's secrets and ``r8_`` tokens, so
    that an unrelated error prints as plain Python prints it. ``None`` if building it failed."""
    try:
        from ._redact import Redactor
        from ._snapshot import is_relevant

        relevant = exc is None or is_relevant(exc)
        return Redactor.from_environ(os.environ, heuristics=relevant)
    except Exception:
        _state.report_internal_error("building the redactor")
        return None


def print_traceback_masked(previous: Callable[..., Any], *args: Any, exc: BaseException | None = None) -> None:
    """Call ``previous(*args)`` with ``sys.stderr`` masking tokens; restore stderr afterwards."""
    redactor = redactor_for(exc)
    original = sys.stderr
    if redactor is None or original is None:
        previous(*args)
        return
    sys.stderr = RedactingStream(original, redactor)
    try:
        previous(*args)
    finally:
        if isinstance(sys.stderr, RedactingStream):
            sys.stderr = original


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


def warn_rule_errors() -> None:
    """Print each error of the rule set in force once per process to stderr, tokens masked
    (a rule file may quote one). Never raises."""
    try:
        from ._api import rules
        from ._redact import Redactor

        errors = rules().errors
        if not errors:
            return
        redactor = Redactor.from_environ(os.environ)
        for error in errors:
            text = str(error)
            if text in _state.warned:
                continue
            _state.warned.add(text)
            stream = sys.stderr
            if stream is not None:
                stream.write(f"replicate-explain: skipped a rule file: {redactor(text)}\n")
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


def print_and_explain(previous: Callable[..., Any], args: tuple[Any, ...], exc: BaseException | None) -> None:
    """Under the output lock (so concurrent failures never interleave): ``previous(*args)``
    with tokens masked, then the explanation of ``exc``."""
    lock = None
    try:
        lock = _state.output_lock()
        lock.acquire()
    except Exception:
        lock = None
    try:
        print_traceback_masked(previous, *args, exc=exc)
        if exc is not None:
            report(exc)
    finally:
        if lock is not None:
            lock.release()
