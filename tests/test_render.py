"""Renderers: plain text, JSON and the rich panel, from one Explanation."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from outputs import JSON_KEYS

from replicate_explain._explanation import CodeFix, Explanation
from replicate_explain._render import choose_format, panel, print_explanation, render, render_plain

EXPLANATION = Explanation(
    rule_id="token-whitespace",
    title="Title [with brackets]",
    severity="error",
    summary="What happened.",
    evidence=(
        "REPLICATE_API_TOKEN is set, 41 characters, ends with a newline (\\n)",
        "replicate 1.0.7 is installed (Python 3.11.7)",
    ),
    why="Why it happens.",
    fix=("First step.", "Second step."),
    code=CodeFix(
        broken="import replicate\nreplicate.run(x)\n", fixed="import os\nimport replicate\n", client="<2.0.0a1"
    ),
    workaround="A workaround.",
    prevention="Prevent it.",
    references=("https://replicate.com/account/api-tokens",),
    also=("token-unset",),
    exception="httpx.LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'",
    client_version="1.0.7",
)

PLAIN = """\
replicate-explain: token-whitespace: Title [with brackets]

Evidence:
  - REPLICATE_API_TOKEN is set, 41 characters, ends with a newline (\\n)

Fix:
  1. First step.
  2. Second step.

Code for replicate <2.0.0a1 (installed: 1.0.7), - broken, + fixed:
+ import os
  import replicate
- replicate.run(x)

Also possible: token-unset

More: replicate-explain explain --rule token-whitespace
"""

FULL = """\
replicate-explain: token-whitespace: Title [with brackets]

What happened:
  What happened.

Evidence:
  - REPLICATE_API_TOKEN is set, 41 characters, ends with a newline (\\n)
  - replicate 1.0.7 is installed (Python 3.11.7)

Why:
  Why it happens.

Fix:
  1. First step.
  2. Second step.

Code for replicate <2.0.0a1 (installed: 1.0.7), - broken, + fixed:
+ import os
  import replicate
- replicate.run(x)

Workaround:
  A workaround.

Prevention:
  Prevent it.

Learn more:
  https://replicate.com/account/api-tokens

Also possible: token-unset
"""


def test_plain_text_is_short_by_default_and_whole_in_full() -> None:
    """Plain text: the short view by default (the installed version only in the code's
    label), every section in order with detail="full"."""
    assert render_plain(EXPLANATION, detail="short") == PLAIN
    assert render_plain(EXPLANATION, detail="full") == FULL


def test_json_is_one_line_with_the_public_keys() -> None:
    """JSON is one object on one line, equal to Explanation.to_dict()."""
    text = render(EXPLANATION, "json")
    assert text.count("\n") == 1
    assert json.loads(text) == EXPLANATION.to_dict()
    assert list(json.loads(text)) == JSON_KEYS


def _panel_text(width: int) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(panel(EXPLANATION, width))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_the_panel_shows_id_and_brackets_verbatim() -> None:
    """Data is never parsed as rich markup: brackets in titles survive."""
    text = _panel_text(100)
    assert "replicate-explain · token-whitespace" in text
    assert "Title [with brackets]" in text


def test_code_is_one_diff_at_every_width() -> None:
    """Broken -> fixed is drawn as one diff inside the box at 60 and 100 columns."""
    for width in (60, 100):
        rows = [line[2:].rstrip(" │") for line in _panel_text(width).splitlines() if line[2:4] in ("+ ", "- ", "  ")]
        assert [row for row in rows if row.endswith("import os") or "replicate" in row[:20]] == [
            "+ import os",
            "  import replicate",
            "- replicate.run(x)",
        ]


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("environ", "tty", "expected"),
    [
        ({}, True, "rich"),
        ({}, False, "plain"),
        ({"NO_COLOR": "1"}, True, "plain"),
        ({"TERM": "dumb"}, True, "plain"),
        ({"FORCE_COLOR": "1"}, False, "rich"),
        ({"REPLICATE_EXPLAIN_FORMAT": "json"}, True, "json"),
        ({"REPLICATE_EXPLAIN_FORMAT": "JSON", "NO_COLOR": "1"}, False, "json"),
        ({"REPLICATE_EXPLAIN_FORMAT": "nonsense"}, False, "plain"),
    ],
)
def test_the_format_follows_the_environment_and_the_terminal(environ: dict[str, str], tty: bool, expected: str) -> None:
    """REPLICATE_EXPLAIN_FORMAT, then NO_COLOR / TERM=dumb / FORCE_COLOR, then isatty()."""
    assert choose_format(_Stream(tty), environ) == expected


def test_an_ascii_only_stream_gets_replacement_characters_not_an_error() -> None:
    """A stderr that can only encode ASCII still receives the explanation."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    explanation = Explanation(**{**EXPLANATION.__dict__, "title": "Naïve café — done."})
    print_explanation(explanation, stream, "plain")
    assert "Na?ve caf? ? done." in raw.getvalue().decode("ascii")


@pytest.mark.e2e
def test_rendering_helpers_do_not_import_rich_for_plain_text() -> None:
    """Plain text and JSON need no rich (a log filter must stay light)."""
    code = "import sys; from replicate_explain._render import render_plain, render_json; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "False\n"


def _print_rich_in_subprocess(environ: dict[str, str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = (
        prelude + "import io, sys\n"
        "from replicate_explain._render import print_explanation\n"
        "from test_render import EXPLANATION\n"
        "out = io.StringIO()\n"
        "print_explanation(EXPLANATION, out, 'rich')\n"
        "sys.stdout.write(out.getvalue())\n"
    )
    env = {**os.environ, **environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


@pytest.mark.e2e
def test_a_panel_rich_cannot_draw_falls_back_to_plain_text() -> None:
    """When rich fails while drawing, the same explanation is printed as plain text; with
    REPLICATE_EXPLAIN_DEBUG=1 the failure is reported too."""
    broken = "import rich.console\nrich.console.Console = None\n"
    quiet = _print_rich_in_subprocess({}, broken)
    loud = _print_rich_in_subprocess({"REPLICATE_EXPLAIN_DEBUG": "1"}, broken)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, PLAIN, "")
    assert (loud.returncode, loud.stdout) == (0, PLAIN)
    assert loud.stderr.startswith("replicate-explain: internal error in rendering the rich panel")


@pytest.mark.e2e
def test_sizes_rich_cannot_read_do_not_stop_the_panel() -> None:
    """A 100,000-digit COLUMNS or LINES (Python refuses to convert it) still gives the panel."""
    done = _print_rich_in_subprocess({"COLUMNS": "9" * 100_000, "LINES": "9" * 100_000})
    assert done.returncode == 0
    assert "replicate-explain · token-whitespace" in done.stdout
    assert done.stderr == ""
