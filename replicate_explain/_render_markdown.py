"""The Markdown renderer: an explanation as Markdown pieces, for web pages (Streamlit).

It follows the HTML panel (``_render_html``) and reuses the same pure helpers of ``_render``
(the code label, the diff, the evidence and fix steps shown): a header line (rule id, the
user's call site), the title, the evidence and the fix steps, the code as a diff, and the long
sections (further fix steps, what happened, why, workaround, prevention, links) for a page to
fold away. Standard library only. Every text from the data is escaped (Markdown, and the
``$...$`` maths and ``:name:`` shortcodes of Streamlit's Markdown); the rules' inline
```` `code` ```` spans stay code.
"""

from __future__ import annotations

import re

from ._frozen import frozen
from ._render import choose_detail, code_label, diff_lines, shown_evidence, shown_fix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._explanation import Explanation

__all__ = ["MarkdownPanel", "markdown_panel"]

_CODE_SPAN = re.compile(r"(`[^`\n]+`)")
#: Characters that mean something in Markdown or in Streamlit's extensions of it.
_SPECIAL = re.compile(r"([\\*_\[\]{}()<>#+\-.!|$:~&^=])")


@frozen
class MarkdownPanel:
    """An explanation as Markdown pieces a page lays out as it likes (each escaped)."""

    header: str
    """``replicate-explain · `rule-id```, and the user's call site on a second line."""
    title: str
    body: str
    """The evidence (a bullet list) and the fix steps (a numbered list), with their headings."""
    code_label: str
    """What the code is (client versions, broken and fixed), or ``""`` without code."""
    code: str
    """The code as a diff (``-`` broken, ``+`` fixed lines), raw text for a code block."""
    more: str
    """The long sections: further fix steps, what happened, why, workaround, prevention, links."""
    more_label: str = "What happened, why, and what else to do"

    def to_markdown(self) -> str:
        """The whole panel as one Markdown document (the code in a fenced ``diff`` block)."""
        parts = [self.header, f"### {self.title}", self.body]
        if self.code:
            fence = "```" + "`" * max((len(run) for run in re.findall(r"`+", self.code)), default=0)
            parts += [self.code_label, f"{fence}diff\n{self.code}\n{fence}"]
        parts += [f"**{self.more_label}**", self.more]
        return "\n\n".join(parts) + "\n"


def escape(text: str) -> str:
    """``text`` as literal Markdown: special characters escaped outside its `` `code` `` spans."""
    pieces = _CODE_SPAN.split(text)
    return "".join(piece if index % 2 else _SPECIAL.sub(r"\\\1", piece) for index, piece in enumerate(pieces))


def _literal(text: str) -> str:
    """``text`` with every special character escaped, backticks too (no code span)."""
    return _SPECIAL.sub(r"\\\1", text).replace("`", "\\`")


def _code_span(text: str) -> str:
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _section(name: str, body: str) -> str:
    return f"**{name}**\n\n{escape(body)}"


def markdown_panel(explanation: Explanation, *, detail: str | None = None) -> MarkdownPanel:
    """The explanation as :class:`MarkdownPanel` pieces; the short view unless ``detail``
    (default: ``REPLICATE_EXPLAIN_DETAIL``) is ``full`` (then ``more`` holds only what the
    body does not: the long sections)."""
    full = (detail or choose_detail()) == "full"
    header = f"**replicate-explain** · {_code_span(explanation.rule_id)}"
    site = explanation.call_site
    if site is not None:
        header += f"  \nat **{_literal(site.location())}** {_code_span(site.code)}"
    evidence = [f"- {escape(line)}" for line in shown_evidence(explanation, full)]
    steps = shown_fix(explanation, full)
    fix = [f"{number}. {escape(step)}" for number, step in enumerate(steps, 1)]
    body = "\n\n".join(["**Evidence**", "\n".join(evidence), "**Fix**", "\n".join(fix)])
    if explanation.also:
        body += "\n\n**Also possible:** " + ", ".join(_code_span(rule) for rule in explanation.also)
    label = code = ""
    if explanation.code is not None:
        label = f"**Code** {_literal(code_label(explanation)[len('Code ') :])}, \\- broken, \\+ fixed"
        rows = diff_lines(explanation.code.broken, explanation.code.fixed)
        code = "\n".join(f"{mark} {line}".rstrip() for mark, line in rows)
    more = []
    if len(steps) < len(explanation.fix):
        further = enumerate(explanation.fix[len(steps) :], len(steps) + 1)
        more.append("**More fix steps**\n\n" + "\n".join(f"{number}. {escape(step)}" for number, step in further))
    more += [_section("What happened", explanation.summary), _section("Why", explanation.why)]
    more += [
        _section(name, body)
        for name, body in (("Workaround", explanation.workaround), ("Prevention", explanation.prevention))
        if body
    ]
    if explanation.references:
        links = [
            f"- <{ref}>" if ref.startswith(("https://", "http://")) else f"- {escape(ref)}"
            for ref in explanation.references
        ]
        more.append("**Learn more**\n\n" + "\n".join(links))
    return MarkdownPanel(
        header=header,
        title=escape(explanation.title),
        body=body,
        code_label=label,
        code=code,
        more="\n\n".join(more),
    )
