"""Step three: turn an :class:`Explanation` into a rich panel, plain text or JSON.

This is the only module that imports rich. Data is handed to rich as ``Text`` and ``Syntax``
objects, never as markup, so brackets in ids and messages survive.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from ._common import plain_width
from ._common import wrap as wrap_to
from ._explanation import Explanation

if TYPE_CHECKING:
    from rich.console import RenderableType

FORMATS = ("rich", "plain", "json")
FORMAT_ENV = "REPLICATE_EXPLAIN_FORMAT"
DETAIL_ENV = "REPLICATE_EXPLAIN_DETAIL"
ERROR_EVIDENCE = "the error raised: "
#: The evidence line that names the installed client (the matcher's wording).
INSTALLED = re.compile(r"replicate \S+ is installed \(Python |the replicate package is not installed \(Python ")
#: The fix steps the short view shows; the rest are in the full view.
SHORT_FIX_STEPS = 3


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


def choose_detail(environ: Mapping[str, str] | None = None) -> str:
    """``full`` when ``REPLICATE_EXPLAIN_DETAIL=full``, else ``short`` (the default)."""
    env = os.environ if environ is None else environ
    return "full" if env.get(DETAIL_ENV, "").strip().lower() == "full" else "short"


def code_label(explanation: Explanation) -> str:
    """One label for the code: the client versions it is written for, and the one installed
    (or, for pasted text, where the text shows the client: ``the text shows replicate 1.x``)."""
    version = explanation.client_version
    installed = f"installed: {version}" if version else "replicate is not installed"
    if explanation.code is not None and explanation.code.basis:
        installed = explanation.code.basis
    spec = explanation.code.client if explanation.code is not None else ""
    target = f"replicate {spec}" if spec else "any replicate version"
    return f"Code for {target} ({installed})"


def diff_lines(broken: str, fixed: str) -> list[tuple[str, str]]:
    """Broken -> fixed as a diff with full context: ``(" ", line)`` kept, ``("-", line)``
    removed, ``("+", line)`` added. The ``" "`` and ``"+"`` lines are the fixed code."""
    import difflib

    old, new = broken.rstrip().splitlines(), fixed.rstrip().splitlines()
    out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out += [(" ", line) for line in new[j1:j2]]
        else:
            out += [("-", line) for line in old[i1:i2]]
            out += [("+", line) for line in new[j1:j2]]
    return out


def shown_fix(explanation: Explanation, full: bool) -> tuple[str, ...]:
    """The fix steps to show: the short view shows the first ``SHORT_FIX_STEPS``."""
    return explanation.fix if full else explanation.fix[:SHORT_FIX_STEPS]


def more_hint(explanation: Explanation) -> str:
    """Where the short view's missing sections (and fix steps it leaves out) are."""
    hidden = len(explanation.fix) - len(shown_fix(explanation, False))
    steps = f" (+{hidden} fix step{'s' if hidden != 1 else ''})" if hidden else ""
    return f"More{steps}: replicate-explain explain --rule {explanation.rule_id}"


def shown_evidence(explanation: Explanation, full: bool) -> tuple[str, ...]:
    """The evidence to show: the short view leaves out the error's own line (the traceback
    right above ends with it) and, when there is code, the installed version (the code's label
    names it)."""
    if full:
        return explanation.evidence
    return tuple(
        line
        for line in explanation.evidence
        if not line.startswith(ERROR_EVIDENCE) and not (explanation.code is not None and INSTALLED.match(line))
    )


def _call_site_line(explanation: Explanation, columns: int | None = None) -> str | None:
    """``at FILE:LINE  CODE``; with ``columns``, the code is cut (``...``) to fit (the traceback
    above shows it whole; the location is never cut)."""
    site = explanation.call_site
    if site is None:
        return None
    line = f"at {site.location()}  {site.code}".rstrip()
    if columns is not None and len(line) > columns:
        head = f"at {site.location()}  "
        room = columns - len(head) - 3
        line = head + site.code[:room].rstrip() + "..." if room >= 10 else f"at {site.location()}"
    return line


def render_plain(explanation: Explanation, *, detail: str | None = None, width: int | None = None) -> str:
    """The explanation as plain text: no colour, no box drawing, ready for logs. Short unless
    ``detail`` (default: ``REPLICATE_EXPLAIN_DETAIL``) is ``full``. Prose wraps to ``width``
    (default: ``COLUMNS``, else 80); code lines are never wrapped."""
    full = (detail or choose_detail()) == "full"
    columns = plain_width() if width is None else width

    def wrap(text: str, hanging: int = 0, indent: int = 2) -> str:
        return wrap_to(text, indent, hanging, columns)

    out = [wrap(f"replicate-explain: {explanation.rule_id}: {explanation.title}", hanging=2, indent=0)]
    site = _call_site_line(explanation, columns)
    if site:
        out.append(site)
    if full:
        out += ["", "What happened:", wrap(explanation.summary)]
    out += ["", "Evidence:"]
    out += [wrap(f"- {line}", hanging=2) for line in shown_evidence(explanation, full)]
    if full:
        out += ["", "Why:", wrap(explanation.why)]
    out += ["", "Fix:"]
    out += [wrap(f"{number}. {step}", hanging=3) for number, step in enumerate(shown_fix(explanation, full), 1)]
    if explanation.code is not None:
        out += ["", wrap(f"{code_label(explanation)}, - broken, + fixed:", hanging=2, indent=0)]
        out += [f"{mark} {line}".rstrip() for mark, line in diff_lines(explanation.code.broken, explanation.code.fixed)]
    if full and explanation.workaround:
        out += ["", "Workaround:", wrap(explanation.workaround)]
    if full and explanation.prevention:
        out += ["", "Prevention:", wrap(explanation.prevention)]
    if full and explanation.references:
        out += ["", "Learn more:"] + [f"  {ref}" for ref in explanation.references]
    if explanation.also:
        out += ["", wrap(f"Also possible: {', '.join(explanation.also)}", hanging=2, indent=0)]
    if not full:
        out += ["", wrap(more_hint(explanation), hanging=2, indent=0)]
    return "\n".join(out) + "\n"


def render_json(explanation: Explanation) -> str:
    """The explanation as one line of JSON (the :meth:`Explanation.to_dict` keys)."""
    return json.dumps(explanation.to_dict(), ensure_ascii=True, sort_keys=False) + "\n"


class _Unwrapped:
    """Lines rich must neither wrap nor crop (code too wide for the box): printed as they are,
    so the terminal folds them visually and a copy still gives whole lines."""

    def __init__(self, lines: list[Any]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        for line in self.lines:
            yield from line.render(console, end="")
            yield Segment.line()


def highlighted(code: str) -> list[Any]:
    """``code`` as highlighted ``Text`` lines, as ``rich.syntax.Syntax`` with the ``ansi_dark``
    theme colours them; the pieces come from ``_highlight`` (Pygments only for code it leaves
    to Pygments: its Python lexer costs tens of milliseconds the first time)."""
    from rich.style import Style
    from rich.text import Text

    from ._highlight import CODE_STYLES, categories

    source = code.rstrip() + "\n"
    pieces = categories(source)
    if pieces is None:
        from rich.syntax import Syntax

        text = Syntax("", "python", theme="ansi_dark", background_color="default").highlight(source)
    else:
        text = Text(justify="default", style=Style(bgcolor="default"), tab_size=4, no_wrap=True)
        position = 0
        for start, end, category in pieces:
            text.append(source[position:start])
            text.append(source[start:end], Style.parse(CODE_STYLES[category]))
            position = end
        text.append(source[position:])
        text.stylize("on default")
    return list(text.split("\n", allow_blank=True))


def _code_rows(explanation: Explanation) -> list[Any]:
    """The diff as ``Text`` rows: a coloured mark, then the highlighted line."""
    from rich.text import Text

    assert explanation.code is not None

    rows = []
    old, new = highlighted(explanation.code.broken), highlighted(explanation.code.fixed)
    old_plain = [line.plain for line in old]
    new_plain = [line.plain for line in new]
    styles = {" ": "dim", "-": "bold red", "+": "bold green"}
    for mark, line in diff_lines(explanation.code.broken, explanation.code.fixed):
        source, plain = (old, old_plain) if mark == "-" else (new, new_plain)
        body = source[plain.index(line)].copy() if line in plain else Text(line)
        if mark == "-":
            body.stylize("dim")
        row = Text.assemble((mark, styles[mark]), " ", body, no_wrap=True, overflow="ellipsis")
        row.rstrip()
        rows.append(row)
    return rows


def panel(explanation: Explanation, width: int = 100, *, detail: str | None = None) -> RenderableType:
    """The rich renderable: the panel, short unless ``detail`` (default: the environment) is
    ``full``. Code that does not fit inside the box follows it, unwrapped (print with
    ``crop=False`` to keep it whole)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    full = (detail or choose_detail()) == "full"

    def heading(label: str) -> Text:
        return Text(label, style="bold")

    parts: list[RenderableType] = [Text(explanation.title, style="bold red")]
    site = explanation.call_site
    if site is not None:
        parts.append(
            Text.assemble(("at ", "dim"), (site.location(), "bold"), "  ", site.code, no_wrap=True, overflow="ellipsis")
        )
    if full:
        parts += [Text(), heading("What happened"), Text(explanation.summary)]
    evidence = shown_evidence(explanation, full)
    parts += [Text(), heading("Evidence"), _listing(["•"] * len(evidence), evidence)]
    if full:
        parts += [Text(), heading("Why"), Text(explanation.why)]
    parts += [Text(), heading("Fix")] if full else [heading("Fix")]
    steps = shown_fix(explanation, full)
    parts.append(_listing([f"{n}." for n in range(1, len(steps) + 1)], steps))
    after: list[Any] = []
    if explanation.code is not None:
        rows = _code_rows(explanation)
        fits = max(row.cell_len for row in rows) <= width - 4
        label = code_label(explanation) + ("" if fits else ", below the box (too wide for it)")
        parts += [Text()] if full else []
        parts.append(Text.assemble(("Code", "bold"), (label[len("Code") :], "dim")))
        if fits:
            parts += rows
        else:
            after = rows
    for name, body in (("Workaround", explanation.workaround), ("Prevention", explanation.prevention)):
        if full and body:
            parts += [Text(), heading(name), Text(body)]
    if full and explanation.references:
        parts += [Text(), heading("Learn more")]
        parts += [Text(f"  {ref}", style=f"link {ref}") for ref in explanation.references]
    if explanation.also:
        also = Text.assemble(("Also possible: ", "bold"), ", ".join(explanation.also))
        parts += [Text(), also] if full else [also]
    hint = more_hint(explanation)
    subtitle = None
    if not full and len(hint) + 6 <= width:
        subtitle = Text(hint, style="dim")
    elif not full:
        parts.append(Text(hint, style="dim"))
    title = Text.assemble(("replicate-explain", "bold"), " · ", (explanation.rule_id, "bold cyan"))
    box = Panel(
        Group(*parts),
        title=title,
        title_align="left",
        subtitle=subtitle,
        subtitle_align="right",
        border_style="red",
        expand=True,
    )
    return Group(box, _Unwrapped(after)) if after else box


def _listing(marks: list[str], items: tuple[str, ...]) -> RenderableType:
    """Bullets or numbers with a hanging indent."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="bold", no_wrap=True)
    grid.add_column(ratio=1)
    for mark, item in zip(marks, items):
        grid.add_row(Text(mark), Text(item))
    return grid


def wants_color(stream: Any, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a panel written to ``stream`` gets colour, decided as rich decides for the
    excepthook: ``NO_COLOR`` or ``TERM=dumb`` say no, ``FORCE_COLOR`` says yes (even into a file
    or a pipe), otherwise only a terminal gets colour. The CLI uses this too, so
    ``FORCE_COLOR=1 replicate-explain demo > file`` draws like a program's own hook."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    if env.get("FORCE_COLOR"):
        return True
    try:
        return bool(stream.isatty())
    except Exception:
        return False


def _console(file: IO[str], width: int | None, height: int | None, color: bool | None) -> Any:
    """The one way a rich Console is built here (the hook, the CLI, tests): ``color=None`` leaves
    colour to rich's own reading of the environment and the stream."""
    from rich.console import Console

    if color is None:
        return Console(file=file, width=width, height=height, legacy_windows=False, soft_wrap=False)
    return Console(
        file=file,
        width=width,
        height=height,
        force_terminal=color,
        color_system="truecolor" if color else None,
        legacy_windows=False,
        soft_wrap=False,
    )


def render_rich(explanation: Explanation, *, width: int = 100, color: bool = True, detail: str | None = None) -> str:
    """The panel rendered to a string (ANSI colours unless ``color`` is false)."""
    import io

    buffer = io.StringIO()
    console = _console(buffer, width, None, color)
    console.print(panel(explanation, width, detail=detail), crop=False)
    return buffer.getvalue()


def render(explanation: Explanation, format: str = "plain", *, width: int = 100, detail: str | None = None) -> str:
    """Render ``explanation`` as ``rich`` (ANSI panel), ``plain`` text or ``json`` (always every
    field). ``detail="full"`` gives every section (``explain --rule`` uses it)."""
    if format == "json":
        return render_json(explanation)
    if format == "rich":
        return render_rich(explanation, width=width, detail=detail)
    if format == "plain":
        return render_plain(explanation, detail=detail)
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


MIN_PANEL_WIDTH = 40
"""Narrower than this (``COLUMNS=0``, ``1``...), a panel cannot hold the text: plain text instead."""
MAX_PANEL_WIDTH = 200
"""The widest panel drawn: a wider terminal gets a 200-column panel."""


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


def print_explanation(explanation: Explanation, file: IO[str] | None = None, format: str | None = None) -> None:
    """Print ``explanation`` to ``file`` (default ``sys.stderr``) in the format that suits it."""
    import sys

    stream = sys.stderr if file is None else file
    chosen = format or choose_format(stream)
    if chosen == "rich":
        try:
            width, height = _sane_size()
            console = _console(stream, width, height, None)
            if console.width < MIN_PANEL_WIDTH:  # COLUMNS=0 or 1: a panel would print nothing
                text = render_plain(explanation)
            else:
                if console.width > MAX_PANEL_WIDTH:  # COLUMNS=99999 would pad every line
                    console = _console(stream, MAX_PANEL_WIDTH, height or console.height, None)
                with console.capture() as capture:
                    console.print(panel(explanation, console.width), crop=False)
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
