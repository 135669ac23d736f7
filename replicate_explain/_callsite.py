"""Find the user's own line that made the failing call (the call site), as frozen data.

The call site is the innermost traceback frame that is not library code: not the replicate
package, not its HTTP stack (httpx, httpcore, h11, requests, urllib3 and their helpers), not
this package, not the standard library and not anything installed in site-packages. That is
where the fix goes when the token is passed in code. A cell of IPython or Jupyter is named the
way IPython's own traceback names it (``Cell In[2], line 2``). Standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import TracebackType

from ._frozen import frozen

#: Top-level modules whose frames are never the user's (the client and its HTTP stack).
LIBRARY_MODULES = frozenset(
    {
        "replicate",
        "replicate_explain",
        "httpx",
        "httpcore",
        "h11",
        "h2",
        "requests",
        "urllib3",
        "anyio",
        "sniffio",
        "certifi",
        "idna",
        "charset_normalizer",
        "pydantic",
        "typing_extensions",
        "IPython",
        "ipykernel",
        "runpy",
    }
)
MAX_CODE = 200
MAX_FRAMES = 500


@frozen
class CallSite:
    """Where the user's code made the call that failed. Contains no secret."""

    file: str
    """The file, relative to the working directory when it is under it; for an IPython or
    Jupyter cell, the cell as IPython names it (``Cell In[2]``)."""
    line: int
    code: str
    """The source line, stripped and redacted ("" when the source is unavailable)."""
    cell: bool = False
    """Whether :attr:`file` names an IPython cell rather than a file."""

    def to_dict(self) -> dict[str, object]:
        """The JSON form: ``{"file", "line", "code"}``."""
        return {"file": self.file, "line": self.line, "code": self.code}

    def location(self) -> str:
        """``file:line``, or for a cell what IPython's own traceback says: ``Cell In[2], line 2``."""
        return f"{self.file}, line {self.line}" if self.cell else f"{self.file}:{self.line}"


def ipython_cell_name(filename: str) -> str | None:
    """``Cell In[2]`` when ``filename`` is the code of an IPython or Jupyter cell (the temporary
    file ipykernel compiles a cell as, or terminal IPython's ``<ipython-input-...>``), as
    IPython's traceback names it (its compiler's ``format_code_name``); ``None`` otherwise, and
    outside IPython. IPython is never imported here: only a running shell is asked."""
    module = sys.modules.get("IPython")
    if module is None:
        return None
    try:
        shell = module.get_ipython()
        named = shell.compile.format_code_name(filename) if shell is not None else None
        if named is None:
            return None
        label, name = named
        return f"{label} {name}"
    except Exception:
        return None


def _library_dirs() -> tuple[str, ...]:
    """Directories of the standard library and of installed packages, each ending with a separator."""
    import sysconfig

    dirs: set[str] = set()
    for scheme_path in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            path = sysconfig.get_paths().get(scheme_path)
        except Exception:
            path = None
        if path:
            dirs.add(os.path.join(os.path.abspath(path), ""))
    return tuple(sorted(dirs))


def is_library_file(filename: str, module: str, library_dirs: tuple[str, ...], replicate_dirs: tuple[str, ...]) -> bool:
    """Whether a frame of ``filename`` running module ``module`` is library code, not the user's."""
    if module.split(".", 1)[0] in LIBRARY_MODULES:
        return True
    if filename.startswith("<frozen ") or filename.startswith("<frozen_"):
        return True
    if not filename or filename.startswith("<"):
        return False  # python -c, exec(): the user's own code
    path = os.path.abspath(filename)
    parts = path.replace("\\", "/").split("/")
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return path.startswith(replicate_dirs) or path.startswith(library_dirs)


def _display_path(filename: str, cwd: str | None) -> str:
    if filename.startswith("<") or cwd is None:
        return filename
    try:
        path = os.path.abspath(filename)
        base = os.path.join(os.path.abspath(cwd), "")
        return os.path.relpath(path, base) if path.startswith(base) else path
    except (OSError, ValueError):
        return filename


def _frames(tb: TracebackType | None) -> list[tuple[str, str, int, dict[str, object]]]:
    frames: list[tuple[str, str, int, dict[str, object]]] = []
    while tb is not None and len(frames) < MAX_FRAMES:
        frame = tb.tb_frame
        try:
            module = frame.f_globals.get("__name__", "")
        except Exception:
            module = ""
        frames.append(
            (frame.f_code.co_filename, module if isinstance(module, str) else "", tb.tb_lineno, frame.f_globals)
        )
        tb = tb.tb_next
    return frames


def find_call_site(
    exc: BaseException,
    redact: Callable[[str], str],
    *,
    cwd: str | None = None,
    replicate_dirs: tuple[str, ...] = (),
) -> CallSite | None:
    """The innermost non-library frame of ``exc``'s traceback (or of the first exception in its
    chain that has one), with its source line redacted by ``redact``; ``None`` when every frame
    is library code. Never raises."""
    try:
        import linecache

        library = _library_dirs()
        here = os.getcwd() if cwd is None else cwd
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen and len(seen) < 32:
            seen.add(id(current))
            for filename, module, lineno, module_globals in reversed(_frames(current.__traceback__)):
                if is_library_file(filename, module, library, replicate_dirs):
                    continue
                source = linecache.getline(filename, lineno, module_globals).strip()
                code = redact(source)
                if len(code) > MAX_CODE:
                    code = code[: MAX_CODE - 3] + "..."
                cell = ipython_cell_name(filename)
                if cell is not None:
                    return CallSite(cell, lineno, code, cell=True)
                return CallSite(_display_path(filename, here), lineno, code)
            current = current.__cause__ or current.__context__
        return None
    except Exception:
        return None
