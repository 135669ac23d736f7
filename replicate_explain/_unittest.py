"""The unittest adapter: a failure or error of ``TextTestResult``, masked, with the explanation.

``python -m unittest`` and the runners built on it (Django's ``manage.py test``) print each
failure from the text that ``TestResult._exc_info_to_string`` returns, never through an
excepthook. When the program imports ``unittest`` (post-import hook ``_hook.ON_IMPORT``, or at
``install()`` if it already has), :func:`hook_unittest` wraps that method on ``TextTestResult``
(so on its subclasses too): the text is masked, and under a Replicate authentication or account
failure the explanation follows the traceback, as in the pytest plugin's section. Any other
failure's text is what unittest prints (only the environment's secrets and ``r8_`` tokens are
masked). After ``uninstall()`` the wrapper passes the text through untouched.
"""

from __future__ import annotations

from typing import Any

from . import _state

#: Marks our wrapper, so that hooking twice (``install()`` after ``uninstall()``) wraps once.
MARK = "_replicate_explain_wrapped"


def hook_unittest(runner_module: Any) -> None:
    """Post-import callback for ``unittest.runner``: wrap ``TextTestResult._exc_info_to_string``."""
    cls = getattr(runner_module, "TextTestResult", None)
    current = getattr(cls, "_exc_info_to_string", None)
    if cls is None or current is None or getattr(current, MARK, False):
        return
    own = cls.__dict__.get("_exc_info_to_string")

    def _exc_info_to_string(self: Any, err: Any, test: Any) -> str:
        text: str = own(self, err, test) if own is not None else super(cls, self)._exc_info_to_string(err, test)
        if not _state.installed:
            return text
        return explained_text(text, err, self)

    setattr(_exc_info_to_string, MARK, True)
    _exc_info_to_string.__doc__ = getattr(current, "__doc__", None)
    cls._exc_info_to_string = _exc_info_to_string
    _hook_mirrored_output(cls)


def _hook_mirrored_output(cls: Any) -> None:
    """With ``-b``, a failing test's captured output is also written straight to the real
    streams (``TestResult._restoreStdout``): mask those writes too."""
    restore = getattr(cls, "_restoreStdout", None)
    if restore is None or getattr(restore, MARK, False):
        return

    def _restoreStdout(self: Any) -> None:
        if not (_state.installed and getattr(self, "_mirrorOutput", False)):
            restore(self)
            return
        saved = (getattr(self, "_original_stdout", None), getattr(self, "_original_stderr", None))
        try:
            from .integrations._common import redactor_with

            redact = redactor_with(heuristics=bool(getattr(self, RELATED, False)))
            self._original_stdout, self._original_stderr = (_Masking(s, redact) for s in saved)
        except Exception:
            _state.report_internal_error("masking unittest's buffered output")
        try:
            restore(self)
        finally:
            self._original_stdout, self._original_stderr = saved

    setattr(_restoreStdout, MARK, True)
    cls._restoreStdout = _restoreStdout


#: Set on a result whose last failure touched replicate (its mirrored output is masked with the
#: credential heuristics, like the failure's text).
RELATED = "_replicate_explain_related"


class _Masking:
    """A stream whose ``write`` masks; the rest is the wrapped stream's."""

    def __init__(self, stream: Any, redact: Any) -> None:
        self._stream = stream
        self._redact = redact

    def write(self, text: Any) -> Any:
        if isinstance(text, str):
            try:
                text = self._redact(text)
            except Exception:
                pass
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def explained_text(text: str, err: Any, result: Any = None) -> str:
    """``text`` (a formatted failure of the ``exc_info`` tuple ``err``) masked, and followed by
    the explanation when the exception is a Replicate authentication or account failure.
    Never raises: an internal failure returns ``text`` as it is."""
    try:
        from .integrations._common import exception_of, explain, mark_explained, redactor_with, relevant

        exc = exception_of(err)
        related = exc is not None and relevant(exc)
        if result is not None:
            setattr(result, RELATED, related)
        redact = redactor_with(heuristics=related)
        masked = redact(text)
        if not related or exc is None:
            return masked
        explanation = explain(exc)
        if explanation is None:
            return masked
        from ._render import render_plain

        mark_explained(exc)
        return masked + ("" if masked.endswith("\n") else "\n") + "\n" + redact(render_plain(explanation))
    except Exception:
        _state.report_internal_error("explaining a unittest failure")
        return text
