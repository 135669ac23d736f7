"""The HTML renderer: an explanation as a self-contained HTML panel, for Jupyter front ends.

Standard library only (rich stays in ``_render``): inline styles, no script, and every text
from the data escaped.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._explanation import Explanation

__all__ = ["explanation_html"]

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
