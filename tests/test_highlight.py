"""``_highlight``: the panel's code coloured as rich.syntax with Pygments colours it, without
Pygments' Python lexer (whose first use compiles some 85 regular expressions).

Compared with ``rich.syntax.Syntax`` (the ``ansi_dark`` theme), span by span (the same cuts,
so the same terminal output and the same SVG picture), on every broken and fixed example of
every bundled rule and on snippets of the constructs Pygments treats specially.
"""

from __future__ import annotations

import io

import pytest
from pygments.lexers.python import PythonLexer
from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from replicate_explain import _highlight
from replicate_explain._render import highlighted
from replicate_explain._rules import load_rules

CONSOLE = Console(file=io.StringIO(), width=100, color_system="truecolor", force_terminal=True)

EXAMPLES = sorted(
    {code for rule in load_rules().rules for example in rule.examples for code in (example.broken, example.fixed)}
)
SNIPPETS = [
    "import os, sys as system\nimport a.b.c as d\nfrom . import x\nfrom .m import (y, z)\n",
    "from a.b import c as d, e\nraise ValueError('x') from None\nraise KeyError() from err\n",
    "def f(self, cls):\n    return self.print(len(x)), print, x.len\n\nclass C(Base):\n    pass\n",
    "@decorator\n@app.route('/')\ndef __init__(self):\n    a @b\n    return __name__, x.__class__\n",
    "x = 1 + 2.5 - 0x1F * 1_000 / 1e5 % 0o7 // 0b1\ny = not a and b or c in d is not e\n",
    "s = b'\\x00' + r'\\d' + u'x' + '''doc\nstring''' + \"%s %(a)d {0} {b!r}\" % (1,)\n",
    "async def g():\n    await h()\n    yield from gen()\n    async for i in it: ...\n",
    "try:\n    pass\nexcept (OSError, Exception) as error:  # comment\n    raise\nfinally:\n    del x\n",
    "lambda: None if True else False\nwhile x: break\nglobal y\nassert z, 'msg'\nwith open(p) as f: continue\n",
    "x = [i for i in range(3)]; d = {'k': v}; t = (1,)\nx \\\n  = 2\nprint(*args, **kwargs)\n",
    "type(x)\nmatchx = 1\n_ = casey\nself.cls = Ellipsis, NotImplemented\n",
]


def _visible(text: Text) -> list[tuple[str, object]]:
    """Each character with its style as drawn (for whitespace, what shows: background, underline)."""
    out: list[tuple[str, object]] = []
    for offset, char in enumerate(text.plain):
        style = text.get_style_at_offset(CONSOLE, offset)
        shown = (style.bgcolor, style.underline, style.reverse, style.strike) if char.isspace() else style
        out.append((char, shown))
    return out


def _pygments(code: str) -> list[Text]:
    syntax = Syntax("", "python", theme="ansi_dark", background_color="default")
    return list(syntax.highlight(code.rstrip() + "\n").split("\n", allow_blank=True))


@pytest.mark.parametrize("code", EXAMPLES + SNIPPETS, ids=range(len(EXAMPLES) + len(SNIPPETS)))
def test_code_is_coloured_as_pygments_colours_it(code: str) -> None:
    """Every line: the same text cut in the same pieces with the same styles (so the same
    terminal output and SVG), the same style on every character, the same line settings."""
    assert _highlight.categories(code.rstrip() + "\n") is not None  # not handed to Pygments
    ours, theirs = highlighted(code), _pygments(code)
    assert [(line.plain, line.spans, line.style, line.justify, line.no_wrap) for line in ours] == [
        (line.plain, line.spans, line.style, line.justify, line.no_wrap) for line in theirs
    ]
    assert [_visible(line) for line in ours] == [_visible(line) for line in theirs]


@pytest.mark.parametrize(
    "code",
    [
        "f'{x}'\n",
        "rf'{x}'\n",
        "match x:\n    case 1: pass\n",
        "x = 1j\n",
        "if x:\n\tpass\n",
        "s = 'unterminated\n",
        "x = $\n",
    ],
)
def test_what_pygments_classifies_otherwise_is_left_to_pygments(code: str) -> None:
    """f-strings, soft keywords, imaginary numbers, tabs and code ``tokenize`` rejects: no
    categories (the renderer asks Pygments), and the lines are then exactly Pygments'."""
    assert _highlight.categories(code) is None
    ours, theirs = highlighted(code), _pygments(code)
    assert [(line.plain, line.spans, line.style) for line in ours] == [
        (line.plain, line.spans, line.style) for line in theirs
    ]


def test_the_word_lists_are_pygments_own() -> None:
    """The keyword, builtin, exception and magic-name lists are those of the installed
    Pygments' Python lexer (a Pygments upgrade that changes them fails here)."""
    lists: dict[str, set[str]] = {}
    for state in ("keywords", "expr-keywords", "builtins", "magicfuncs", "magicvars"):
        for rule in PythonLexer.tokens[state]:
            words = getattr(rule[0], "words", None)
            if words is not None:
                lists.setdefault(str(rule[1]), set()).update(words)
    assert lists == {
        "Token.Keyword": set(_highlight.KEYWORDS) | {"yield from", "async for"},
        "Token.Keyword.Constant": set(_highlight.CONSTANTS),
        "Token.Name.Builtin": set(_highlight.BUILTINS),
        "Token.Name.Exception": set(_highlight.EXCEPTIONS),
        "Token.Name.Function.Magic": set(_highlight.MAGIC_FUNCTIONS),
        "Token.Name.Variable.Magic": set(_highlight.MAGIC_VARIABLES),
    }
