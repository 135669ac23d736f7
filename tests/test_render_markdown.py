"""The Markdown renderer: an Explanation as escaped Markdown pieces for web pages (Streamlit)."""

from __future__ import annotations

import dataclasses

from test_render import EXPLANATION

from replicate_explain._callsite import CallSite
from replicate_explain._render_markdown import MarkdownPanel, escape, markdown_panel


def test_escape_keeps_code_spans_and_makes_the_rest_literal() -> None:
    """Markdown and Streamlit syntax in text is escaped (emphasis, links, maths, shortcodes,
    HTML); `code` spans are kept as they are."""
    assert [
        escape("Set `REPLICATE_API_TOKEN` (not *TOKEN*)."),
        escape("$HOME costs :red[nothing] <b>[x](y)</b>"),
        escape("a_b `$(cat token.txt)` c_d"),
    ] == [
        "Set `REPLICATE_API_TOKEN` \\(not \\*TOKEN\\*\\)\\.",
        "\\$HOME costs \\:red\\[nothing\\] \\<b\\>\\[x\\]\\(y\\)\\</b\\>",
        "a\\_b `$(cat token.txt)` c\\_d",
    ]


def test_the_short_panel_pieces() -> None:
    """The short view: header with the rule id and call site, title, evidence without the
    installed-version line (the code label names it), three fix steps at most, the code as a
    diff, the long sections for a fold."""
    site = CallSite(file="app.py", line=6, code="replicate.run(MODEL, input={})")
    explanation = dataclasses.replace(EXPLANATION, call_site=site)
    assert markdown_panel(explanation, detail="short") == MarkdownPanel(
        header="**replicate-explain** · `token-whitespace`  \nat **app\\.py\\:6** `replicate.run(MODEL, input={})`",
        title="Title \\[with brackets\\]",
        body=(
            "**Evidence**\n\n- REPLICATE\\_API\\_TOKEN is set, 41 characters, ends with a newline \\(\\\\n\\)"
            "\n\n**Fix**\n\n1. First step\\.\n2. Second step\\.\n\n**Also possible:** `token-unset`"
        ),
        code_label="**Code** for replicate \\<2\\.0\\.0a1 \\(installed\\: 1\\.0\\.7\\), \\- broken, \\+ fixed",
        code="+ import os\n  import replicate\n- replicate.run(x)",
        more=(
            "**What happened**\n\nWhat happened\\.\n\n**Why**\n\nWhy it happens\\.\n\n"
            "**Workaround**\n\nA workaround\\.\n\n**Prevention**\n\nPrevent it\\.\n\n"
            "**Learn more**\n\n- <https://replicate.com/account/api-tokens>"
        ),
    )


def test_to_markdown_fences_the_code_as_a_diff() -> None:
    """One document: header, title as a heading, body, the code in a ```diff fence, the rest."""
    document = markdown_panel(EXPLANATION, detail="short").to_markdown()
    assert document.split("\n\n")[:2] == ["**replicate-explain** · `token-whitespace`", "### Title \\[with brackets\\]"]
    assert "```diff\n+ import os\n  import replicate\n- replicate.run(x)\n```" in document
