"""Streamlit: an uncaught Replicate failure's red box masked, and the explanation drawn under it.

A Streamlit app never reaches ``sys.excepthook``: Streamlit catches the exception of a script
run and draws it in the page (type, message, traceback) for every visitor, and a token in the
message would be shown to all of them. What the page shows with this integration:

* Every uncaught exception's box is masked: the exception chain is masked in place
  (``_birth.mask_exception``) before Streamlit draws it, so the message and the chained causes show no token
  (this environment's secrets and ``r8_`` tokens; the ``Bearer``/``Token`` heuristics too for
  a failure that touches replicate). An unrelated exception gets Streamlit's box unchanged.
* A Replicate authentication or account failure gets the explanation under the box, drawn with
  Streamlit's own elements in a bordered container: the rule and the user's line, the title,
  the evidence, the fix steps, the code as a diff in a code block (with Streamlit's copy
  button), and the long sections in an expander (``_render_markdown``). Only when Streamlit
  shows the exception's message (``client.showErrorDetails`` ``full``, the default): an app
  that hides error details from its visitors gets none, its log still explains.

Explicitly, with Streamlit 1.58 or later and ``st.App`` (its public extension point)::

    import streamlit as st
    from replicate_explain.integrations.streamlit import on_script_error

    app = st.App("main.py", on_script_error=on_script_error)

Automatically, after ``import replicate_explain`` in the app (or a start-up install): once
streamlit is imported, the integration chains :func:`on_script_error` at the one place
Streamlit dispatches that extension point (``error_util.invoke_script_error_handler``, 1.58 and
later), after the app's own handler (which sees the masked exception first; if it suppresses
Streamlit's box, the page is left to it). ``streamlit run`` offers no other way to register a
handler for every session. Before 1.58 there is no extension point: there the integration
wraps the function that draws the box (``error_util._show_exception``). The console gets the
masked exception too: ``error_util._print_rich_exception`` (Streamlit's rich traceback, the
default when rich is installed) is wrapped to mask first; without rich, Streamlit logs through
:mod:`logging`, which the logging integration masks and explains. The wrapped functions are
module attributes, never ``__code__``; ``REPLICATE_EXPLAIN=0`` or ``uninstall()`` turns the
automatic activation off. Tested with streamlit 1.67.0 and 1.57.0.
"""

from __future__ import annotations

from typing import Any

from .. import _state
from . import _common

__all__ = ["on_script_error"]

#: Set on an exception once its page was drawn (the explicit and the automatic handler alike).
HANDLED_ATTR = "__replicate_explain_streamlit__"
#: The values of ``client.showErrorDetails`` under which Streamlit shows the message.
_MESSAGE_SHOWN = ("full", "true")


def on_script_error(exc: Exception) -> bool | None:
    """``st.App(on_script_error=...)``: mask ``exc``; for a Replicate failure, draw Streamlit's
    box and the explanation under it and return ``True`` (the box is drawn); otherwise
    ``None`` (Streamlit draws its box). Never raises."""
    if getattr(exc, HANDLED_ATTR, False):
        return True
    try:
        explanation = _prepare(exc)
        if explanation is None:
            return None
        from streamlit import error_util

        error_util.show_uncaught_app_exception(exc)
    except Exception:
        _state.report_internal_error("the Streamlit integration")
        return None
    _draw_safely(exc, explanation)
    return True


def _mask(exc: BaseException) -> None:
    from .._birth import mask_exception

    mask_exception(exc, _common.redactor(exc))


def _prepare(exc: BaseException) -> Any:
    """Mask ``exc``; its explanation if the page is to show one (once per exception)."""
    if getattr(exc, HANDLED_ATTR, False):
        return None
    _mask(exc)
    explanation = _common.explain(exc)
    if explanation is None or not _message_shown():
        return None
    try:
        setattr(exc, HANDLED_ATTR, True)
    except Exception:
        pass
    return explanation


def _draw_safely(exc: BaseException, explanation: Any) -> None:
    try:
        _draw(explanation)
        _common.mark_explained(exc)
    except Exception:
        _state.report_internal_error("drawing the Streamlit explanation")


def _message_shown() -> bool:
    from streamlit import config

    value = config.get_option("client.showErrorDetails")
    return value is True or str(value).strip().lower() in _MESSAGE_SHOWN


def _draw(explanation: Any) -> None:
    """The explanation in the page's main area, under the box Streamlit drew there."""
    from streamlit.delta_generator_singletons import get_dg_singleton_instance

    from .._render_markdown import markdown_panel

    pieces = markdown_panel(explanation)
    box = get_dg_singleton_instance().main_dg.container(border=True)
    box.caption(pieces.header)
    box.subheader(pieces.title, anchor=False)
    box.markdown(pieces.body)
    if pieces.code:
        box.markdown(pieces.code_label)
        box.code(pieces.code, language="diff")
    box.expander(pieces.more_label).markdown(pieces.more)


# ---------------------------------------------------------------------------------------------
# Automatic activation


def _mask_if_installed(exc: BaseException) -> None:
    if _state.installed:
        try:
            _mask(exc)
        except Exception:
            _state.report_internal_error("masking a Streamlit exception")


def _activate(module: Any) -> None:
    """Automatic activation (``replicate_explain.integrations.activate``): once per process."""
    state = _state.integrations.setdefault("streamlit", {})
    if "wrapped" in state:
        return
    from streamlit import error_util

    state["wrapped"] = wrapped = {}
    print_rich = getattr(error_util, "_print_rich_exception", None)
    if print_rich is not None:  # the console, when rich is installed (``logger.enableRich``)

        def _print_rich_exception(ex: BaseException) -> None:
            _mask_if_installed(ex)
            print_rich(ex)

        wrapped["_print_rich_exception"] = _wrap(error_util, print_rich, _print_rich_exception)
    dispatch = getattr(error_util, "invoke_script_error_handler", None)
    if dispatch is not None:  # 1.58 and later: ours after the app's own handler

        def invoke_script_error_handler(ex: Exception, handler: Any) -> bool:
            _mask_if_installed(ex)
            suppressed: bool = dispatch(ex, handler)
            if suppressed or not _state.installed or handler is on_script_error:
                return suppressed
            return on_script_error(ex) is True

        wrapped["invoke_script_error_handler"] = _wrap(error_util, dispatch, invoke_script_error_handler)
        return
    show = getattr(error_util, "_show_exception", None)
    if show is None:
        _state.report_internal_error("the Streamlit integration (this streamlit has no known place to draw)")
        return

    def _show_exception(ex: BaseException) -> None:  # 1.37 to 1.57: around the box
        explanation = None
        if _state.installed:
            try:
                explanation = _prepare(ex)
            except Exception:
                _state.report_internal_error("the Streamlit integration")
        show(ex)
        if explanation is not None:
            _draw_safely(ex, explanation)

    wrapped["_show_exception"] = _wrap(error_util, show, _show_exception)


def _wrap(module: Any, original: Any, wrapper: Any) -> Any:
    """Put ``wrapper`` in ``module`` in place of ``original`` (same name); return the original."""
    wrapper.__wrapped__ = original
    wrapper.__doc__ = original.__doc__
    setattr(module, original.__name__, wrapper)
    return original
