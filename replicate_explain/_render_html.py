"""The HTML renderer: an explanation as a self-contained HTML panel, for Jupyter front ends.

It follows the terminal panel (``_render``, whose pure helpers it reuses: the code label, the
diff, the evidence and fix steps shown): the title, the user's call site, the evidence, the fix
steps and the code as a diff. The long sections (further fix steps, what happened, why,
workaround, prevention, links) are in a ``<details>`` element, open from the start when
``REPLICATE_EXPLAIN_DETAIL=full``: in a notebook one click opens it (no kernel restart with
another environment), and a notebook exported to HTML keeps every section. Standard library
only (rich stays inside ``_render``'s functions): inline styles, no script, every text from the
data escaped. Colours are the border red, translucent tints and ``inherit``, so the panel reads
on light and dark notebook themes.
"""

from __future__ import annotations

import re

from ._render import choose_detail, code_label, diff_lines, shown_evidence, shown_fix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._explanation import Explanation

__all__ = ["explanation_html"]

_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_BORDER = "#d33c3c"
_HEADING = 'style="margin:0.8em 0 0.2em 0;font-size:1em"'
# Removed lines: a red tint, and left out of a copy (with every mark), so that selecting the
# code block copies the fixed program. Added lines: a green tint.
_LINE_STYLES = {
    " ": "display:block",
    "-": "display:block;background:rgba(211,60,60,0.16);user-select:none;-webkit-user-select:none",
    "+": "display:block;background:rgba(46,160,67,0.2)",
}
_MARK_STYLE = "user-select:none;-webkit-user-select:none;opacity:0.7"


def _esc(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _prose(text: str) -> str:
    return _CODE_SPAN.sub(r"<code>\1</code>", _esc(text))


def _section(title: str, body: str) -> str:
    return f'<h4 {_HEADING}>{title}</h4><p style="margin:0">{_prose(body)}</p>'


def _code(explanation: Explanation) -> list[str]:
    """The code as a diff in one block that scrolls sideways rather than wrap or clip a line."""
    assert explanation.code is not None
    label = code_label(explanation)
    rows = []
    for mark, line in diff_lines(explanation.code.broken, explanation.code.fixed):
        rows.append(f'<span style="{_LINE_STYLES[mark]}"><span style="{_MARK_STYLE}">{mark} </span>{_esc(line)}</span>')
    pre = "margin:0;padding:6px 8px;overflow-x:auto;white-space:pre;background:rgba(127,127,127,0.12);border-radius:3px"
    return [
        f'<h4 {_HEADING}>Code <span style="font-weight:normal;opacity:0.75">{_esc(label[len("Code ") :])}, '
        "- broken, + fixed</span></h4>",
        f'<pre style="{pre}">' + "".join(rows) + "</pre>",
    ]


def _link(ref: str) -> str:
    if not ref.startswith(("https://", "http://")):
        return f"<li>{_esc(ref)}</li>"
    # The text's own colour, underlined: readable on any background (a fixed blue is not).
    style = "color:inherit;text-decoration:underline"
    return f'<li><a href="{_esc(ref)}" target="_blank" rel="noopener" style="{style}">{_esc(ref)}</a></li>'


def explanation_html(explanation: Explanation, *, detail: str | None = None) -> str:
    """The explanation as a self-contained HTML panel (inline styles; no script, no markup
    from the data: every text is escaped). The long sections are in a ``<details>`` element,
    open when ``detail`` (default: ``REPLICATE_EXPLAIN_DETAIL``) is ``full``."""
    full = (detail or choose_detail()) == "full"
    parts = [
        f'<div class="replicate-explain" data-rule-id="{_esc(explanation.rule_id)}" '
        f'style="border:1px solid {_BORDER};border-left:6px solid {_BORDER};border-radius:4px;'
        'padding:6px 12px 10px 12px;margin:6px 0;line-height:1.45">',
        f'<div style="font-size:0.9em;opacity:0.8"><b>replicate-explain</b> · '
        f"<code>{_esc(explanation.rule_id)}</code></div>",
        f'<div style="font-weight:bold;font-size:1.15em;color:{_BORDER};margin-top:2px">'
        f"{_esc(explanation.title)}</div>",
    ]
    site = explanation.call_site
    if site is not None:
        parts.append(
            f'<div style="margin-top:2px"><span style="opacity:0.75">at</span> <b>{_esc(site.location())}</b>'
            f"&nbsp; <code>{_esc(site.code)}</code></div>"
        )
    parts.append(f'<h4 {_HEADING}>Evidence</h4><ul style="margin:0">')
    parts += [f"<li>{_prose(line)}</li>" for line in shown_evidence(explanation, full)]
    parts.append("</ul>")
    parts.append(f'<h4 {_HEADING}>Fix</h4><ol style="margin:0">')
    steps = shown_fix(explanation, full)
    parts += [f"<li>{_prose(step)}</li>" for step in steps]
    parts.append("</ol>")
    if explanation.code is not None:
        parts += _code(explanation)
    if explanation.also:
        parts.append(f'<p style="margin:0.8em 0 0 0"><b>Also possible:</b> {_esc(", ".join(explanation.also))}</p>')
    more = []
    if len(steps) < len(explanation.fix):
        more += [
            f'<h4 {_HEADING}>More fix steps</h4><ol start="{len(steps) + 1}" style="margin:0">',
            *(f"<li>{_prose(step)}</li>" for step in explanation.fix[len(steps) :]),
            "</ol>",
        ]
    more += [_section("What happened", explanation.summary), _section("Why", explanation.why)]
    more += [
        _section(name, body)
        for name, body in (("Workaround", explanation.workaround), ("Prevention", explanation.prevention))
        if body
    ]
    if explanation.references:
        more += [f'<h4 {_HEADING}>Learn more</h4><ul style="margin:0">', *map(_link, explanation.references), "</ul>"]
    parts += [
        f'<details{" open" if full else ""} style="margin-top:0.8em">',
        '<summary style="cursor:pointer;opacity:0.8">What happened, why, and what else to do</summary>',
        *more,
        "</details>",
        "</div>",
    ]
    return "\n".join(parts) + "\n"
