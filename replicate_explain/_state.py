"""All process-wide state of replicate-explain lives here, and only here.

Everything else in the package is a pure function or a frozen dataclass. Keeping the mutable
parts in one module makes ``install()``/``uninstall()`` exact and lets tests reset them.
This module must stay free to import: standard library only, nothing heavy.
"""

import sys

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import Any, Callable

#: The ``sys.excepthook`` that was in place when :func:`replicate_explain.install` ran.
previous_excepthook: "Callable[..., Any] | None" = None
#: The ``threading.excepthook`` that was in place when ours was set (``None``: not set yet).
previous_threading_excepthook: "Callable[..., Any] | None" = None
#: The ``sys.unraisablehook`` that was in place when ours was set.
previous_unraisablehook: "Callable[..., Any] | None" = None
#: Idents of the threads inside one of our hooks: a hook re-entered (a loop of hooks calling
#: each other) falls back to the standard printer instead of recursing.
active_hooks: "set[int]" = set()
#: Whether the hooks are installed (``install()`` is idempotent).
installed: bool = False
#: The meta-path finder running post-import callbacks (``_hook.when_imported``); ``None``: idle.
import_watcher: "object | None" = None
#: Callbacks waiting for a module to be imported, by module name (see ``_hook.when_imported``).
post_import_hooks: "dict[str, list[Callable[[Any], None]]]" = {}
#: The ``logging.Logger.makeRecord`` that ours wraps (``None``: logging is not hooked).
previous_make_record: "Callable[..., Any] | None" = None
#: The ``logging.Logger`` class whose ``makeRecord`` we wrapped (a reload makes a new class).
logger_class: "object | None" = None
#: Whether our ``makeRecord`` wrapper explains records (it stays chained, inert, when another
#: tool wrapped it after us and ``uninstall()`` could not take it out).
logging_active: bool = False
#: IPython's module defining ``InteractiveShell``: its import lets shells be created (the
#: post-import hook of ``_hook.ON_IMPORT`` that runs ``_ipython.watch_shells``).
IPYTHON_SHELL_MODULE = "IPython.core.interactiveshell"
#: The ``InteractiveShell.__init__`` our wrapper calls (see ``_ipython.watch_shells``); set before
#: the wrapper is installed and never cleared, so a reference to the wrapper keeps working.
previous_shell_init: "Callable[..., Any] | None" = None
#: Whether our wrapper is in ``InteractiveShell.__init__``'s chain (it stays there, passing
#: through, when something wrapped it after us and ``uninstall()`` could not take it out).
shell_init_wrapped: bool = False
#: Whether new IPython shells get the integration (``install()`` until ``uninstall()``).
shells_watched: bool = False
#: Whether exceptions leaving the HTTP layer are masked at birth (``_hook.install_birth_masking``;
#: the wrappers of ``_birth`` stay in place and pass through when this is off).
birth_masking: bool = False
#: The redactor of ``_birth``, with the environment key it was built for.
birth_redactor: "tuple[object, Callable[[str], str]] | None" = None
#: The redactor for plain log messages, with the environment key it was built for.
log_redactor: "tuple[object, Callable[[str], str]] | None" = None

#: What the integrations (``replicate_explain.integrations``) registered, by integration name:
#: each registers its hooks once per process; uninstalled, the automatic ones pass through.
integrations: "dict[str, Any]" = {}

#: Attribute set on an exception once it has been explained, so one exception is explained
#: once even when it is logged and then crashes the program.
EXPLAINED_ATTR = "__replicate_explain_explained__"
#: Fallback for exceptions that refuse new attributes: ``id()`` of the ones explained (bounded).
explained_ids: "dict[int, None]" = {}
EXPLAINED_MAX = 256

#: Loaded rule set, cached after the first explanation (``None``: not loaded yet).
rules_cache: "object | None" = None
#: Warnings about rule files already printed in this process (printed once each).
warned: "set[str]" = set()

#: Serialises output so panels of exceptions from concurrent threads never interleave.
_lock: "Any | None" = None


def output_lock() -> "Any":
    """Return the process-wide lock for writing explanations (created on first use)."""
    global _lock
    if _lock is None:
        import threading

        _lock = threading.RLock()
        import os

        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_forget_lock)
    return _lock


def _forget_lock() -> None:
    """After ``fork()``: the child has one thread; a lock another thread of the parent held
    would stay held for ever (and the child's excepthook would block), so start a new one."""
    global _lock
    if _lock is not None:
        import threading

        _lock = threading.RLock()
    active_hooks.clear()


#: Held by a hook while it imports and runs our code (not while the previous hook runs), and by
#: a thread that forks, around ``fork()``: so no thread is inside one of our imports when the
#: process forks (the child would wait for ever on that module's import lock). An ``_thread``
#: lock: free to create at start-up.
_hook_guard: "Any | None" = None
#: Whether the at-fork handlers are registered (``os.register_at_fork`` cannot unregister).
_fork_handlers = False
#: Whether the thread that forks holds the guard (``_before_fork`` waited at most this long).
_fork_held = False
FORK_WAIT_SECONDS = 10.0


def hook_guard() -> "Any":
    """The lock our hooks hold while they import and run our code (see ``_hook_guard``)."""
    global _hook_guard, _fork_handlers
    if _hook_guard is None:
        import _thread

        _hook_guard = _thread.RLock()
    if not _fork_handlers:
        _fork_handlers = True
        import os

        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child
            )
    return _hook_guard


def _before_fork() -> None:
    """Wait (bounded) until no other thread is inside our hooks' imports, then keep them out."""
    global _fork_held
    guard = _hook_guard
    try:
        _fork_held = guard is not None and bool(guard.acquire(True, FORK_WAIT_SECONDS))
    except Exception:  # never stop a fork
        _fork_held = False


def _after_fork_parent() -> None:
    global _fork_held
    if _fork_held and _hook_guard is not None:
        _fork_held = False
        try:
            _hook_guard.release()
        except Exception:
            pass


def _after_fork_child() -> None:
    """The child has one thread: a fresh guard (the parent's may be held by a thread gone here)."""
    global _hook_guard, _fork_held
    if _hook_guard is not None:
        import _thread

        _hook_guard = _thread.RLock()
    _fork_held = False


def is_explained(exc: BaseException) -> bool:
    """Whether ``exc`` has been explained (see :func:`mark_explained`), without marking it."""
    try:
        if getattr(exc, EXPLAINED_ATTR, False):
            return True
    except Exception:
        pass
    return id(exc) in explained_ids


def mark_explained(exc: BaseException) -> bool:
    """Record that ``exc`` was explained; return ``False`` if it already had been."""
    if getattr(exc, EXPLAINED_ATTR, False):
        return False
    try:
        setattr(exc, EXPLAINED_ATTR, True)
        return True
    except Exception:
        pass
    key = id(exc)
    if key in explained_ids:
        return False
    explained_ids[key] = None
    while len(explained_ids) > EXPLAINED_MAX:
        del explained_ids[next(iter(explained_ids))]
    return True


def reset() -> None:
    """Forget caches (for tests and after rule directories change)."""
    global rules_cache, log_redactor, birth_redactor
    rules_cache = None
    log_redactor = None
    birth_redactor = None
    warned.clear()
    explained_ids.clear()


def debug_enabled() -> bool:
    """Whether ``REPLICATE_EXPLAIN_DEBUG`` asks for internal errors to be printed."""
    import os

    return os.environ.get("REPLICATE_EXPLAIN_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def report_internal_error(where: str) -> None:
    """Print the current internal error when debugging is on; never raise."""
    try:
        if debug_enabled():
            import traceback

            sys.stderr.write(f"replicate-explain: internal error in {where}:\n")
            sys.stderr.write(traceback.format_exc())
    except Exception:  # pragma: no cover - stderr itself is broken
        pass
