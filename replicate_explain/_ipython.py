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
import re
import sys

from . import _state
from ._hook import IPYTHON_SHELL_MODULE

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Callable

    from ._explanation import Explanation

__all__ = [
    "explanation_html",
    "is_loaded",
    "load_ipython_extension",
    "session_facts",
    "shell_export",
    "unload_ipython_extension",
]

EXTENSION_NAME = "replicate_explain"
STATE_ATTR = "_replicate_explain_integration"
_PATCHED = ("_showtraceback", "showtraceback")

# ---------------------------------------------------------------------------------------------
# Facts from the session's own history


TOKEN_VARIABLE = "REPLICATE_API_TOKEN"

#: Cells run by a shell: %%bash, %%sh, %%script, %%cmd, %%powershell, %%system, %%! ...
_SHELL_CELL = re.compile(r"^\s*%%(?:bash|sh|zsh|ksh|fish|script|cmd|powershell|pwsh|system|sx|!)\b|^\s*%%!")
#: Lines run by a shell: !cmd, !!cmd, x = !cmd, %sx/%system (also without %), os.system(...),
#: os.popen(...), subprocess.*(...), get_ipython().system(...)/getoutput(...).
_SHELL_LINE = re.compile(
    r"^\s*(?:[\w.]+\s*=\s*)?(?:!|%(?:sx|system)\b|(?:sx|system)\s)"
    r"|\b(?:os\.system|os\.popen|subprocess\.\w+|get_ipython\(\)\.(?:system|getoutput))\s*\("
)
#: How shells set a variable: export/declare -x/typeset -x (sh), setenv (csh), set [-gx] (fish,
#: cmd), setx (Windows, for future shells only), $env: (PowerShell), or NAME=value.
_SETS_TOKEN = re.compile(
    r"(?i)\b(?:export|declare\s+-x|typeset\s+-x|setenv|setx|set(?:\s+-[a-z]+)*)\s+[\"']?"
    + TOKEN_VARIABLE
    + r"\b|\$env:"
    + TOKEN_VARIABLE
    + r"\s*=|(?:^|[\s;&|(!\"'`])"
    + TOKEN_VARIABLE
    + "="
)
_LITERAL = re.compile(TOKEN_VARIABLE + r"""\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s;&|"'`)]+)""")
#: Shell start-up files a kernel's environment may be expected to come from.
PROFILE_FILES = (
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".config/fish/config.fish",
)
_PROFILE_READ_LIMIT = 262144


def _shell_lines(cell: str) -> Iterable[str]:
    """The lines of ``cell`` that a shell runs rather than the kernel."""
    lines = cell.splitlines()
    if lines and _SHELL_CELL.match(lines[0]):
        yield from lines[1:]
        return
    for line in lines:
        if _SHELL_LINE.search(line):
            yield line


def _literal(line: str) -> str | None:
    """The value a shell line assigns to the token, if it is a plain literal (else ``None``)."""
    found = _LITERAL.search(line)
    if found is None:
        return None
    value = found.group("value")
    if value[:1] in "\"'":
        value = value[1:-1]
    if "$" in value or "`" in value or "%" in value:
        return None  # expanded by the shell: $(cat file), ${VAR}, %VAR%
    return value


def _differs(value: str, current: str) -> bool:
    from ._common import same_secret

    return not same_secret(value, current)


def _profile_sets_token(home: str | None) -> bool:
    if not home:
        return False
    for name in PROFILE_FILES:
        try:
            with open(os.path.join(home, name), encoding="utf-8", errors="replace") as handle:
                text = handle.read(_PROFILE_READ_LIMIT)
        except OSError:
            continue
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("#") or TOKEN_VARIABLE not in stripped:
                continue
            if _SETS_TOKEN.search(stripped):
                return True
    return False


def shell_export(cells: Iterable[str], environ: Mapping[str, str], home: str | None = None) -> str | None:
    """The ``notebook.shell_export`` fact for a session whose input cells are ``cells``.

    ``"subshell"``: a shell command of the session (``!export``, ``!set``, ``%%bash``,
    ``os.system``...) set REPLICATE_API_TOKEN, and the kernel does not have that value (it has
    none, or the literal value set there differs, compared by digest). ``"profile"``: the kernel
    has no token, but a shell profile under ``home`` sets one. ``None`` otherwise. The result never
    contains a value from the history or the environment.
    """
    current = environ.get(TOKEN_VARIABLE)
    missing = current is None or not current.strip()
    found = False
    for cell in cells:
        if not isinstance(cell, str) or TOKEN_VARIABLE not in cell:
            continue
        for line in _shell_lines(cell):
            if TOKEN_VARIABLE not in line or not _SETS_TOKEN.search(line):
                continue
            found = True
            if missing:
                return "subshell"
            value = _literal(line)
            if value is not None and current is not None and _differs(value, current):
                return "subshell"
    if not found and missing and _profile_sets_token(home):
        return "profile"
    return None


def _history(shell: Any) -> list[str]:
    """The raw input cells of the current session (``In``), current cell included."""
    manager = getattr(shell, "history_manager", None)
    cells = getattr(manager, "input_hist_raw", None)
    if not isinstance(cells, list):
        namespace = getattr(shell, "user_ns", None)
        cells = namespace.get("In") if isinstance(namespace, dict) else None
    return [cell for cell in cells if isinstance(cell, str)] if isinstance(cells, list) else []


def session_facts(shell: Any, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The adapter facts of ``shell``'s session, for ``take_snapshot(extra_facts=...)``."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    home = env.get("HOME") or env.get("USERPROFILE")
    return {"notebook.shell_export": shell_export(_history(shell), env, home)}


def explain_in_session(exc: BaseException, shell: Any) -> Explanation | None:
    """Explain ``exc`` with the facts of ``shell``'s session; ``None`` if it is not ours."""
    from ._api import rules
    from ._matcher import explain_snapshot
    from ._snapshot import take_snapshot

    snapshot = take_snapshot(exc)
    if not snapshot.relevant:
        return None
    extra = session_facts(shell)
    if any(value is not None for value in extra.values()):
        snapshot = take_snapshot(exc, extra_facts=extra)
    return explain_snapshot(snapshot, rules())


# ---------------------------------------------------------------------------------------------
# HTML for Jupyter (standard library only: rich stays in _render)

_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_BORDER = "#d33c3c"


def _prose(text: str) -> str:
    import html

    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(text, quote=True))


def _pre(code: str) -> str:
    import html

    style = (
        "margin:0;padding:6px 8px;overflow-x:auto;white-space:pre;background:rgba(127,127,127,0.12);border-radius:3px"
    )
    return f'<pre style="{style}">{html.escape(code.rstrip(), quote=True)}</pre>'


def explanation_html(explanation: Explanation) -> str:
    """The explanation as a self-contained HTML panel (inline styles; no script, no markup
    from the data: every text is escaped)."""
    import html

    esc = html.escape
    heading = 'style="margin:0.8em 0 0.2em 0;font-size:1em"'
    parts = [
        f'<div class="replicate-explain" data-rule-id="{esc(explanation.rule_id, quote=True)}" '
        f'style="border:1px solid {_BORDER};border-left:6px solid {_BORDER};border-radius:4px;'
        'padding:6px 12px 10px 12px;margin:6px 0;line-height:1.45">',
        f'<div style="font-size:0.9em;opacity:0.8"><b>replicate-explain</b> · '
        f"<code>{esc(explanation.rule_id)}</code></div>",
        f'<div style="font-weight:bold;font-size:1.15em;color:{_BORDER};margin-top:2px">{esc(explanation.title)}</div>',
        f'<h4 {heading}>What happened</h4><p style="margin:0">{_prose(explanation.summary)}</p>',
        f'<h4 {heading}>Evidence</h4><ul style="margin:0">',
        *(f"<li>{_prose(line)}</li>" for line in explanation.evidence),
        "</ul>",
        f'<h4 {heading}>Why</h4><p style="margin:0">{_prose(explanation.why)}</p>',
        f'<h4 {heading}>Fix</h4><ol style="margin:0">',
        *(f"<li>{_prose(step)}</li>" for step in explanation.fix),
        "</ol>",
    ]
    if explanation.code is not None:
        version = explanation.client_version
        label = f"replicate {version}" if version else "replicate (not installed)"
        if explanation.code.client:
            label += f" (code for versions {explanation.code.client})"
        box = 'style="flex:1 1 340px;min-width:0"'
        parts += [
            f'<h4 {heading}>Code <span style="font-weight:normal;opacity:0.75">for {esc(label)}</span></h4>',
            '<div style="display:flex;flex-wrap:wrap;gap:8px">',
            f'<div {box}><div style="color:{_BORDER};font-weight:bold">Broken</div>'
            f"{_pre(explanation.code.broken)}</div>",
            f'<div {box}><div style="color:#2e8b57;font-weight:bold">Fixed</div>{_pre(explanation.code.fixed)}</div>',
            "</div>",
        ]
    for title, body in (
        ("Workaround", explanation.workaround),
        ("Prevention", explanation.prevention),
    ):
        if body:
            parts.append(f'<h4 {heading}>{title}</h4><p style="margin:0">{_prose(body)}</p>')
    if explanation.references:
        parts.append(f'<h4 {heading}>Learn more</h4><ul style="margin:0">')
        for ref in explanation.references:
            if ref.startswith(("https://", "http://")):
                target = esc(ref, quote=True)
                parts.append(f'<li><a href="{target}" target="_blank" rel="noopener">{esc(ref)}</a></li>')
            else:
                parts.append(f"<li>{esc(ref)}</li>")
        parts.append("</ul>")
    if explanation.also:
        also = esc(", ".join(explanation.also))
        parts.append(f'<p style="margin:0.8em 0 0 0"><b>Also possible:</b> {also}</p>')
    parts.append("</div>")
    return "\n".join(parts) + "\n"


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
    from ._scrub import scrub_exception

    scrub_exception(value if isinstance(value, BaseException) else None, redactor)


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
            explanation = explain_in_session(exc, self.shell)
            if explanation is None or not _state.mark_explained(exc):
                return
            with _state.output_lock():
                show(explanation, self.shell)
                from ._api import rules, warn_rule_errors

                warn_rule_errors(rules())
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

SHELL_MODULE = IPYTHON_SHELL_MODULE


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
    cls = _shell_class(sys.modules.get(SHELL_MODULE))
    if cls is not None and vars(cls).get("__init__") is _shell_init:
        cls.__init__ = _state.previous_shell_init
        _state.shell_init_wrapped = False
