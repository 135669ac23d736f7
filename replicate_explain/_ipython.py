"""The IPython and Jupyter adapter: ``%load_ext replicate_explain``, or the package's import.

Cell errors never reach ``sys.excepthook``: IPython catches them in ``run_code`` and shows them
itself. The integration uses three of IPython's own mechanisms, none of them exclusive:

* ``shell._showtraceback(etype, evalue, stb)`` is where every traceback IPython shows ends up
  (the override point IPython documents for subclasses: the terminal prints ``stb``, ipykernel
  sends it as the cell's ``error`` output). Our wrapper, set on the shell instance, masks tokens
  in ``stb`` and in the text of ``evalue`` and changes nothing else, so ``%tb``, ``%xmode`` and
  another extension's custom handler that calls ``showtraceback`` all keep working, masked.
* ``shell.showtraceback`` is wrapped to mask ``sys.stderr`` while it runs: IPython falls back to
  ``traceback.print_exc()`` for exception groups.
* a ``post_run_cell`` event callback shows the explanation after the cell's traceback: an HTML
  panel (``text/html`` + ``text/plain``) where the front end renders HTML (Jupyter), the ANSI
  panel in a terminal, plain text otherwise.

``set_custom_exc`` is left alone: it holds a single handler, and taking it would evict another
extension's (or be evicted by it). Unloading restores exactly the attributes that were there; a
wrapper someone else wrapped in turn stays in their chain and passes everything through.

The state of the integration lives on the shell instance (``_replicate_explain_integration``),
one per shell; IPython is never imported here, the shell is handed to us.

Shells created after the package was imported (``replicate-explain install`` imports it at
interpreter start-up, long before ipykernel or terminal IPython create their shell) are
integrated through :func:`watch_shells`, the post-import callback of
``IPython.core.interactiveshell`` (``_hook.install()`` registers it, ``uninstall()`` undoes it).
It wraps ``InteractiveShell.__init__`` once, at class level: once a shell has finished
IPython's own initialisation (events, display formatter and extension manager exist), the
integration is activated on it and recorded in ``shell.extension_manager.loaded``, exactly as
if the extension had been loaded, so ``%unload_ext``/``%reload_ext`` work and a later
``%load_ext`` or ``import replicate_explain`` finds it loaded (IPython answers "already
loaded"). IPython offers no official hook that runs for every new shell without user
configuration: the ``shell_initialized`` event exists only on the shell being built ("it can
only be set by subclassing", IPython's docs), and ``InteractiveShellApp.extensions`` is read
from config files we would have to write, and is honoured by apps only, not by
``IPython.embed()`` or a bare ``InteractiveShell.instance()``. The constructor covers every
shell: ipykernel's ``ZMQInteractiveShell``, ``TerminalInteractiveShell`` and embedded shells
all run it through ``super().__init__``. A failure in our part never breaks the shell's
start-up: the shell is built first, our activation is guarded. ``uninstall()`` puts the
original constructor back (or, when something wrapped it after us, leaves ours in their chain
as a pass-through); shells already integrated keep the integration until ``%unload_ext``.
"""

from __future__ import annotations

import contextlib
import os
import sys

from . import _state

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import Any, Callable

    from ._explanation import Explanation

__all__ = ["is_loaded", "load_ipython_extension", "unload_ipython_extension"]

EXTENSION_NAME = "replicate_explain"
STATE_ATTR = "_replicate_explain_integration"
_PATCHED = ("_showtraceback", "showtraceback")

# ---------------------------------------------------------------------------------------------
# Showing it


def _renders_html(shell: Any) -> bool:
    """Whether the shell's front end takes rich output (a Jupyter kernel, not the terminal)."""
    try:
        return "text/html" in shell.display_formatter.active_types
    except Exception:
        return False


def show(explanation: Explanation, shell: Any) -> None:
    """Show ``explanation`` below the cell's traceback, in the form the front end renders."""
    from ._render import FORMAT_ENV, print_explanation, render_plain
    from ._render_html import explanation_html

    wanted = os.environ.get(FORMAT_ENV, "").strip().lower()
    if _renders_html(shell) and wanted not in ("plain", "json"):
        import IPython.display

        display: Any = IPython.display.display  # untyped in IPython
        display(
            {"text/html": explanation_html(explanation), "text/plain": render_plain(explanation)},
            raw=True,
        )
        return
    stream = sys.stdout
    if stream is not None:
        print_explanation(explanation, stream)


class _MaskedValue(Exception):
    """Stands in for an exception whose text holds a token, where a shell prints ``str(evalue)``
    (ipykernel's ``error`` output keeps it as ``evalue`` in the saved notebook)."""

    def __init__(self, original: BaseException, text: str) -> None:
        super().__init__(text)
        self.original = original
        self._text = text

    def __str__(self) -> str:
        return self._text


def _masked_value(value: Any, redactor: Callable[[str], str]) -> Any:
    if not isinstance(value, BaseException):
        return value
    try:
        text = str(value)
    except Exception:
        return value
    masked = redactor(text)
    return value if masked == text else _MaskedValue(value, masked)


def _scrub_at_source(value: Any, redactor: Callable[[str], str]) -> None:
    from ._birth import mask_exception

    mask_exception(value if isinstance(value, BaseException) else None, redactor)


class _Patch:
    """One wrapper we set on the shell instance, and what was there before it."""

    def __init__(self, name: str, had_own: bool, own: Any, previous: Callable[..., Any]) -> None:
        self.name = name
        self.had_own = had_own
        """Whether the instance itself had the attribute (else the class's method showed)."""
        self.own = own
        self.previous = previous
        self.enabled = True
        self.wrapper: Callable[..., Any] | None = None


def _wrap_show(patch: _Patch) -> Callable[..., Any]:
    def _showtraceback(etype: Any, evalue: Any, stb: Any, *args: Any, **kwargs: Any) -> Any:
        if patch.enabled:
            from ._report import redactor_for

            redactor = redactor_for(evalue if isinstance(evalue, BaseException) else None)
            if redactor is not None:
                try:
                    _scrub_at_source(evalue, redactor)
                    if isinstance(stb, list):
                        stb = [redactor(line) if isinstance(line, str) else line for line in stb]
                    elif isinstance(stb, str):
                        stb = redactor(stb)
                    evalue = _masked_value(evalue, redactor)
                except Exception:
                    _state.report_internal_error("masking an IPython traceback")
        return patch.previous(etype, evalue, stb, *args, **kwargs)

    return _showtraceback


def _wrap_showtraceback(patch: _Patch) -> Callable[..., Any]:
    def showtraceback(*args: Any, **kwargs: Any) -> Any:
        if not patch.enabled:
            return patch.previous(*args, **kwargs)
        from ._report import RedactingStream, redactor_for

        redactor = redactor_for(sys.exc_info()[1])
        if redactor is None:
            return patch.previous(*args, **kwargs)
        # At the source: ipykernel's execute_reply (and so nbclient's CellExecutionError) carries
        # str() of this very exception, not the traceback we mask.
        _scrub_at_source(sys.exc_info()[1], redactor)
        # stderr: IPython's traceback.print_exc() fallback for exception groups; stdout: what
        # another traceback printer chained before us prints itself.
        saved = (sys.stdout, sys.stderr)
        if saved[0] is not None:
            sys.stdout = RedactingStream(saved[0], redactor)
        if saved[1] is not None:
            sys.stderr = RedactingStream(saved[1], redactor)
        try:
            return patch.previous(*args, **kwargs)
        finally:
            if isinstance(sys.stdout, RedactingStream):
                sys.stdout = saved[0]
            if isinstance(sys.stderr, RedactingStream):
                sys.stderr = saved[1]

    return showtraceback


class Integration:
    """The integration with one IPython shell (kept on the shell as ``STATE_ATTR``)."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.patches: list[_Patch] = []
        self.active = False

    def activate(self) -> None:
        """Wrap the traceback display and register the callback (idempotent)."""
        if self.active:
            return
        shell = self.shell
        patches = []
        for name, factory in zip(_PATCHED, (_wrap_show, _wrap_showtraceback)):
            own = vars(shell).get(name)
            patch = _Patch(name, name in vars(shell), own, getattr(shell, name))
            patch.wrapper = factory(patch)
            patches.append(patch)
        for patch in patches:
            setattr(shell, patch.name, patch.wrapper)
        self.patches = patches
        shell.events.register("post_run_cell", self.post_run_cell)
        self.active = True

    def deactivate(self) -> None:
        """Restore what was there before :meth:`activate` (idempotent)."""
        if not self.active:
            return
        self.active = False
        with contextlib.suppress(ValueError):
            self.shell.events.unregister("post_run_cell", self.post_run_cell)
        for patch in reversed(self.patches):
            patch.enabled = False
            if vars(self.shell).get(patch.name) is not patch.wrapper:
                continue  # wrapped again by someone else: stays in their chain, passing through
            if patch.had_own:
                setattr(self.shell, patch.name, patch.own)
            else:
                delattr(self.shell, patch.name)
        self.patches = []

    def post_run_cell(self, result: Any = None) -> None:
        """After a cell: explain its error, if it is a Replicate authentication failure."""
        try:
            exc = getattr(result, "error_in_exec", None)
            if not self.active or not isinstance(exc, Exception):
                return
            from ._notebook import session_facts
            from ._report import report
            from ._snapshot import is_relevant

            if not is_relevant(exc):  # the cheap pre-filter, before reading the session's history
                return
            shell = self.shell
            report(exc, extra_facts=session_facts(shell), show=lambda explanation: show(explanation, shell))
        except Exception:
            _state.report_internal_error("explaining an IPython cell error")


def _integration(shell: Any, create: bool) -> Integration | None:
    current = vars(shell).get(STATE_ATTR)
    if isinstance(current, Integration) or not create:
        return current if isinstance(current, Integration) else None
    created = Integration(shell)
    setattr(shell, STATE_ATTR, created)
    return created


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext replicate_explain``: mask tokens in tracebacks and explain failures."""
    integration = _integration(ipython, create=True)
    if integration is not None:
        integration.activate()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext replicate_explain``: restore exactly what was there before loading."""
    integration = _integration(ipython, create=False)
    if integration is not None:
        integration.deactivate()
        if vars(ipython).get(STATE_ATTR) is integration:
            delattr(ipython, STATE_ATTR)


def is_loaded(ipython: Any) -> bool:
    """Whether the integration is active on ``ipython``."""
    integration = _integration(ipython, create=False)
    return integration is not None and integration.active


def _activate_as_extension(shell: Any) -> bool:
    """Load the integration into ``shell`` and mark the extension loaded in IPython's extension
    manager, so that ``%unload_ext replicate_explain`` works afterwards (idempotent)."""
    if shell is None or not hasattr(shell, "events"):
        return False
    load_ipython_extension(shell)
    manager = getattr(shell, "extension_manager", None)
    loaded = getattr(manager, "loaded", None)
    if isinstance(loaded, set):
        loaded.add(EXTENSION_NAME)
    return True


def activate_in_running_shell() -> bool:
    """Called by ``import replicate_explain``: load the extension into the running IPython,
    if there is one (``IPython`` already imported and ``get_ipython()`` returns a shell).

    Never imports IPython and never raises.
    """
    try:
        ipython_module = sys.modules.get("IPython")
        getter = getattr(ipython_module, "get_ipython", None)
        return _activate_as_extension(getter() if callable(getter) else None)
    except Exception:
        _state.report_internal_error("activating the IPython integration")
        return False


# ---------------------------------------------------------------------------------------------
# Shells created after the import (the start-up install): see the module docstring


def _shell_class(module: Any) -> Any:
    """IPython's ``InteractiveShell`` class in ``module`` (``None`` if it is not there)."""
    cls = getattr(module, "InteractiveShell", None)
    return cls if isinstance(cls, type) else None


def _shell_init(self: Any, *args: Any, **kwargs: Any) -> None:
    """``InteractiveShell.__init__`` while shells are watched: IPython's own constructor, then
    the integration, if the shell was built (an error of IPython's propagates untouched)."""
    previous: Any = _state.previous_shell_init  # set before this wrapper is, and never cleared
    previous(self, *args, **kwargs)
    if _state.shells_watched:
        try:
            _activate_as_extension(self)
        except Exception:
            _state.report_internal_error("activating the IPython integration in a new shell")


def watch_shells(module: Any) -> None:
    """Integrate every IPython shell created from now on (idempotent): the post-import callback
    of ``IPython.core.interactiveshell``. Shells that exist already are left alone."""
    cls = _shell_class(module)
    if cls is None:
        return
    _state.shells_watched = True
    if not _state.shell_init_wrapped:
        _state.previous_shell_init = cls.__init__
        _state.shell_init_wrapped = True
        cls.__init__ = _shell_init


def unwatch_shells() -> None:
    """Undo :func:`watch_shells`: restore IPython's constructor, or stay chained, passing
    through, when something wrapped it after us. Integrated shells keep their integration."""
    _state.shells_watched = False
    cls = _shell_class(sys.modules.get(_state.IPYTHON_SHELL_MODULE))
    if cls is not None and vars(cls).get("__init__") is _shell_init:
        cls.__init__ = _state.previous_shell_init
        _state.shell_init_wrapped = False
