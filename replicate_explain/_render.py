"""Step three: turn an :class:`Explanation` into a rich panel, plain text or JSON.

This is the only module that imports rich. Data is handed to rich as ``Text`` and ``Syntax``
objects, never as markup, so brackets in ids and messages survive.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from ._common import indent, wrap
from ._explanation import Explanation

if TYPE_CHECKING:
    from rich.console import RenderableType

FORMATS = ("rich", "plain", "json")
FORMAT_ENV = "REPLICATE_EXPLAIN_FORMAT"
SIDE_BY_SIDE_MIN_WIDTH = 100


def choose_format(stream: Any, environ: Mapping[str, str] | None = None) -> str:
    """Pick ``rich``, ``plain`` or ``json`` for ``stream`` from the environment and the terminal.

    ``REPLICATE_EXPLAIN_FORMAT`` wins; then ``NO_COLOR`` and ``TERM=dumb`` give plain text,
    ``FORCE_COLOR`` gives the panel; otherwise a terminal gets the panel and anything else
    (a pipe, a file, a log) gets plain text.
    """
    env = os.environ if environ is None else environ
    wanted = env.get(FORMAT_ENV, "").strip().lower()
    if wanted in FORMATS:
        return wanted
    if env.get("NO_COLOR"):
        return "plain"
    if env.get("FORCE_COLOR"):
        return "rich"
    if env.get("TERM") == "dumb":
        return "plain"
    try:
        return "rich" if stream.isatty() else "plain"
    except Exception:
        return "plain"


def _code_label(explanation: Explanation) -> str:
    version = explanation.client_version
    installed = f"replicate {version}" if version else "replicate (not installed)"
    if explanation.code is not None and explanation.code.client:
        return f"for {installed} (code for versions {explanation.code.client})"
    return f"for {installed}"


def render_plain(explanation: Explanation) -> str:
    """The explanation as plain text: no colour, no box drawing, ready for logs."""
    out = [f"replicate-explain: {explanation.rule_id}: {explanation.title}", ""]
    out += ["What happened:", wrap(explanation.summary), "", "Evidence:"]
    out += [wrap(f"- {line}", hanging=2) for line in explanation.evidence]
    out += ["", "Why:", wrap(explanation.why), "", "Fix:"]
    out += [wrap(f"{number}. {step}", hanging=3) for number, step in enumerate(explanation.fix, 1)]
    if explanation.code is not None:
        out += ["", f"Broken, {_code_label(explanation)}:", indent(explanation.code.broken.rstrip(), 4)]
        out += ["", "Fixed:", indent(explanation.code.fixed.rstrip(), 4)]
    if explanation.workaround:
        out += ["", "Workaround:", wrap(explanation.workaround)]
    if explanation.prevention:
        out += ["", "Prevention:", wrap(explanation.prevention)]
    if explanation.references:
        out += ["", "Learn more:"] + [f"  {ref}" for ref in explanation.references]
    if explanation.also:
        out += ["", f"Also possible: {', '.join(explanation.also)}"]
    return "\n".join(out) + "\n"


def render_json(explanation: Explanation) -> str:
    """The explanation as one line of JSON (the :meth:`Explanation.to_dict` keys)."""
    return json.dumps(explanation.to_dict(), ensure_ascii=True, sort_keys=False) + "\n"


def panel(explanation: Explanation, width: int = 100) -> RenderableType:
    """The rich renderable: a panel with the sections, code side by side when ``width`` allows."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    def heading(label: str) -> Text:
        return Text(label, style="bold")

    parts: list[RenderableType] = [Text(explanation.title, style="bold red"), Text()]
    parts += [heading("What happened"), Text(explanation.summary), Text()]
    parts += [heading("Evidence"), _listing(["•"] * len(explanation.evidence), explanation.evidence)]
    parts += [Text(), heading("Why"), Text(explanation.why), Text(), heading("Fix")]
    parts.append(_listing([f"{n}." for n in range(1, len(explanation.fix) + 1)], explanation.fix))
    if explanation.code is not None:
        parts += [Text(), Text.assemble(("Code ", "bold"), (_code_label(explanation), "dim"))]

        def code_box(label: str, code: str, style: str) -> Panel:
            syntax = Syntax(code.rstrip(), "python", theme="ansi_dark", background_color="default", word_wrap=True)
            return Panel(syntax, title=Text(label, style=style), title_align="left", border_style=style)

        broken = code_box("Broken", explanation.code.broken, "red")
        fixed = code_box("Fixed", explanation.code.fixed, "green")
        widest = max(
            len(line) for code in (explanation.code.broken, explanation.code.fixed) for line in code.splitlines()
        )
        if width >= SIDE_BY_SIDE_MIN_WIDTH and widest + 6 <= (width - 4) // 2:
            grid = Table.grid(expand=True, padding=(0, 1))
            grid.add_column(ratio=1)
            grid.add_column(ratio=1)
            grid.add_row(broken, fixed)
            parts.append(grid)
        else:
            parts += [broken, fixed]
    for label, body in (("Workaround", explanation.workaround), ("Prevention", explanation.prevention)):
        if body:
            parts += [Text(), heading(label), Text(body)]
    if explanation.references:
        parts += [Text(), heading("Learn more")]
        parts += [Text(f"  {ref}", style=f"link {ref}") for ref in explanation.references]
    if explanation.also:
        parts += [Text(), Text.assemble(("Also possible: ", "bold"), ", ".join(explanation.also))]
    title = Text.assemble(("replicate-explain", "bold"), " · ", (explanation.rule_id, "bold cyan"))
    return Panel(Group(*parts), title=title, title_align="left", border_style="red", expand=True)


def _listing(marks: list[str], items: tuple[str, ...]) -> RenderableType:
    """Bullets or numbers with a hanging indent."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="bold", no_wrap=True)
    grid.add_column(ratio=1)
    for mark, item in zip(marks, items):
        grid.add_row(Text("  " + mark), Text(item))
    return grid


def render_rich(explanation: Explanation, *, width: int = 100, color: bool = True) -> str:
    """The panel rendered to a string (ANSI colours unless ``color`` is false)."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="truecolor" if color else None,
        legacy_windows=False,
        soft_wrap=False,
    )
    console.print(panel(explanation, width))
    return buffer.getvalue()


def render(explanation: Explanation, format: str = "plain", *, width: int = 100) -> str:
    """Render ``explanation`` as ``rich`` (ANSI panel), ``plain`` text or ``json``."""
    if format == "json":
        return render_json(explanation)
    if format == "rich":
        return render_rich(explanation, width=width)
    if format == "plain":
        return render_plain(explanation)
    raise ValueError(f"unknown format {format!r}; expected one of: {', '.join(FORMATS)}")


def write_safely(stream: IO[str], text: str) -> None:
    """Write ``text``, replacing what the stream's encoding cannot represent (an ASCII stderr)."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "replace").decode(encoding, "replace"))
    try:
        stream.flush()
    except Exception:
        pass


def _sane_size() -> tuple[int | None, int | None]:
    """Width and height for rich when COLUMNS or LINES hold digits it cannot convert (Python
    refuses int() on more than 4,300 digits). rich reads both variables again unless it is given
    both sizes, so then both are given; ``(None, None)`` lets rich read them itself."""
    import shutil

    values = {name: os.environ.get(name, "") for name in ("COLUMNS", "LINES")}
    if not any(value.isdigit() and len(value) > 5 for value in values.values()):
        return None, None
    fallback = shutil.get_terminal_size((100, 25))

    def size(name: str, default: int) -> int:
        value = values[name]
        return int(value) if value.isdigit() and len(value) <= 5 else default

    return size("COLUMNS", fallback.columns), size("LINES", fallback.lines)


#: Narrower than this (``COLUMNS=0``, ``1``...), a panel cannot hold the text: plain text instead.
MIN_PANEL_WIDTH = 40


def print_explanation(explanation: Explanation, file: IO[str] | None = None, format: str | None = None) -> None:
    """Print ``explanation`` to ``file`` (default ``sys.stderr``) in the format that suits it."""
    import sys

    stream = sys.stderr if file is None else file
    chosen = format or choose_format(stream)
    if chosen == "rich":
        try:
            from rich.console import Console

            width, height = _sane_size()
            console = Console(file=stream, legacy_windows=False, soft_wrap=False, width=width, height=height)
            if console.width < MIN_PANEL_WIDTH:  # COLUMNS=0 or 1: a panel would print nothing
                text = render_plain(explanation)
            else:
                with console.capture() as capture:
                    console.print(panel(explanation, console.width))
                text = capture.get()
        except ImportError:  # rich is not installed (or broken): not our bug, say nothing
            text = render_plain(explanation)
        except Exception:
            # rich missing or broken, or an environment it cannot cope with (COLUMNS=garbage):
            # the same content as plain text is still worth printing.
            from ._state import report_internal_error

            report_internal_error("rendering the rich panel; printing plain text instead")
            text = render_plain(explanation)
        write_safely(stream, text)
    else:
        write_safely(stream, render(explanation, chosen))
