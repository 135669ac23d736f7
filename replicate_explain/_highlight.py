"""Python code -> highlight categories, as Pygments' Python lexer classifies the code rules show.

The panel colours its broken/fixed code. Pygments compiles some 85 regular expressions for
its Python lexer on first use, which was the largest single cost of the first rich panel;
the standard library's ``tokenize`` (which the traceback module has imported already) splits
the same code at a fraction of that. ``categories(code)`` gives ``(start, end, category)``
for every coloured token, cut where Pygments cuts them (so the terminal output and the SVG
picture are byte for byte the same; its quirks included: the name after ``raise ... from`` is
a namespace), or ``None`` for code with what it does not
classify the same way (f-strings, ``match``/``case``, tabs, imaginary numbers, anything
``tokenize`` rejects): the renderer then asks Pygments. Standard library only; no rich.
"""

from __future__ import annotations

import io
import tokenize
from typing import Any

KEYWORDS = frozenset((
    "assert", "async", "await", "break", "continue", "del", "elif", "else", "except", "finally",
    "for", "global", "if", "lambda", "pass", "raise", "nonlocal", "return", "try", "while", "yield",
    "as", "with",
))  # fmt: skip
CONSTANTS = frozenset(("True", "False", "None"))
OPERATOR_WORDS = frozenset(("in", "is", "and", "or", "not"))
BUILTINS = frozenset((
    "__import__", "abs", "aiter", "all", "any", "bin", "bool", "bytearray", "breakpoint", "bytes",
    "callable", "chr", "classmethod", "compile", "complex", "delattr", "dict", "dir", "divmod",
    "enumerate", "eval", "filter", "float", "format", "frozendict", "frozenset", "getattr",
    "globals", "hasattr", "hash", "hex", "id", "input", "int", "isinstance", "issubclass", "iter",
    "len", "list", "locals", "map", "max", "memoryview", "min", "next", "object", "oct", "open",
    "ord", "pow", "print", "property", "range", "repr", "reversed", "round", "sentinel", "set",
    "setattr", "slice", "sorted", "staticmethod", "str", "sum", "super", "tuple", "type", "vars",
    "zip",
))  # fmt: skip
PSEUDO = frozenset(("self", "Ellipsis", "NotImplemented", "cls"))
EXCEPTIONS = frozenset((
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BufferError",
    "BytesWarning", "DeprecationWarning", "EOFError", "EnvironmentError", "Exception",
    "FloatingPointError", "FutureWarning", "GeneratorExit", "IOError", "ImportError",
    "ImportWarning", "IndentationError", "IndexError", "KeyError", "KeyboardInterrupt",
    "LookupError", "MemoryError", "NameError", "NotImplementedError", "OSError", "OverflowError",
    "PendingDeprecationWarning", "ReferenceError", "ResourceWarning", "RuntimeError",
    "RuntimeWarning", "StopIteration", "SyntaxError", "SyntaxWarning", "SystemError", "SystemExit",
    "TabError", "TypeError", "UnboundLocalError", "UnicodeDecodeError", "UnicodeEncodeError",
    "UnicodeError", "UnicodeTranslateError", "UnicodeWarning", "UserWarning", "ValueError",
    "VMSError", "Warning", "WindowsError", "ZeroDivisionError", "BlockingIOError",
    "ChildProcessError", "ConnectionError", "BrokenPipeError", "ConnectionAbortedError",
    "ConnectionRefusedError", "ConnectionResetError", "FileExistsError", "FileNotFoundError",
    "InterruptedError", "IsADirectoryError", "NotADirectoryError", "PermissionError",
    "ProcessLookupError", "TimeoutError", "StopAsyncIteration", "ModuleNotFoundError",
    "RecursionError", "EncodingWarning",
))  # fmt: skip
MAGIC_FUNCTIONS = frozenset((
    "__abs__", "__add__", "__aenter__", "__aexit__", "__aiter__", "__and__", "__anext__",
    "__await__", "__bool__", "__bytes__", "__call__", "__complex__", "__contains__", "__del__",
    "__delattr__", "__delete__", "__delitem__", "__dir__", "__divmod__", "__enter__", "__eq__",
    "__exit__", "__float__", "__floordiv__", "__format__", "__ge__", "__get__", "__getattr__",
    "__getattribute__", "__getitem__", "__gt__", "__hash__", "__iadd__", "__iand__",
    "__ifloordiv__", "__ilshift__", "__imatmul__", "__imod__", "__imul__", "__index__", "__init__",
    "__instancecheck__", "__int__", "__invert__", "__ior__", "__ipow__", "__irshift__", "__isub__",
    "__iter__", "__itruediv__", "__ixor__", "__le__", "__len__", "__length_hint__", "__lshift__",
    "__lt__", "__matmul__", "__missing__", "__mod__", "__mul__", "__ne__", "__neg__", "__new__",
    "__next__", "__or__", "__pos__", "__pow__", "__prepare__", "__radd__", "__rand__",
    "__rdivmod__", "__repr__", "__reversed__", "__rfloordiv__", "__rlshift__", "__rmatmul__",
    "__rmod__", "__rmul__", "__ror__", "__round__", "__rpow__", "__rrshift__", "__rshift__",
    "__rsub__", "__rtruediv__", "__rxor__", "__set__", "__setattr__", "__setitem__", "__str__",
    "__sub__", "__subclasscheck__", "__truediv__", "__xor__",
))  # fmt: skip
MAGIC_VARIABLES = frozenset((
    "__annotations__", "__bases__", "__class__", "__closure__", "__code__", "__defaults__",
    "__dict__", "__doc__", "__file__", "__func__", "__globals__", "__kwdefaults__", "__module__",
    "__mro__", "__name__", "__objclass__", "__qualname__", "__self__", "__slots__", "__weakref__",
))  # fmt: skip

#: The categories, each named after the Pygments token type it stands for.
CATEGORIES = (
    "keyword",  # Keyword, Keyword.Constant, Keyword.Namespace
    "operator-word",  # Operator.Word
    "builtin",  # Name.Builtin, Name.Builtin.Pseudo, Name.Exception
    "function",  # Name.Function, Name.Function.Magic
    "class",  # Name.Class
    "namespace",  # Name.Namespace
    "decorator",  # Name.Decorator
    "variable",  # Name.Variable.Magic
    "string",  # String and every kind of it
    "number",  # Number
    "comment",  # Comment
    "whitespace",  # Whitespace: line ends, and the spaces of import, from, def and class
)

# The inside of a string, one Pygments token per match (its ``innerstring_rules`` and escapes).
_INNER = (
    r"%(\(\w+\))?[-#0 +]*([0-9]+|[*])?(\.([0-9]+|[*]))?[hlL]?[E-GXc-giorsaux%]"
    r"|\{((\w+)((\.\w+)|(\[[^\]]+\]))*)?(\![sra])?(\:(.?[<>=\^])?[-+ ]?#?0?(\d+)?,?(\.\d+)?[E-GXb-gnosx%]?)?\}"
    r"|[^\\'\"%{\n]+|['\"\\]|%|\{{1,2}"
)
_BYTES_ESCAPE = r"\\([\\abfnrtv\"']|\n|x[a-fA-F0-9]{2}|[0-7]{1,3})"
_STRING_ESCAPE = r"\\(N\{.*?\}|u[a-fA-F0-9]{4}|U[a-fA-F0-9]{8})|" + _BYTES_ESCAPE
_BODIES: dict[tuple[str, str], object] = {}


#: rich.syntax's ``ansi_dark`` theme, for the categories of ``_highlight``.
CODE_STYLES = {
    "keyword": "bright_blue",
    "operator-word": "bright_magenta",
    "builtin": "bright_cyan",
    "function": "bright_green",
    "class": "bright_green underline",
    "namespace": "bright_cyan underline",
    "decorator": "bold bright_magenta",
    "variable": "bright_red",
    "string": "yellow",
    "number": "bright_blue",
    "comment": "dim",
    "whitespace": "bright_black",
}


def _body(quote: str, escapes: str) -> object:
    """The compiled rules of a string's inside, by quote and escape kind, in Pygments' order."""
    key = (quote, escapes)
    if key not in _BODIES:
        import re

        rules = [escapes] if escapes else []
        rules.append(re.escape(quote))
        if len(quote) == 1:
            rules.append(rf"\\\\|\\{quote}|\\\n")
        rules.append(_INNER)
        if len(quote) == 3:
            rules.append(r"\n")
        _BODIES[key] = re.compile("|".join(f"(?:{rule})" for rule in rules))
    return _BODIES[key]


def _string(code: str, start: int, end: int, at_line_start: bool) -> tuple[list[tuple[int, int, str]], bool] | None:
    """A string token as Pygments splits it: the prefix, the quotes, each piece of the inside;
    and whether it is a docstring (one token after its prefix, its indentation coloured)."""
    text = code[start:end]
    opening = min(i for i in (text.find("'"), text.find('"')) if i >= 0)
    prefix = text[:opening]
    if set(prefix) & set("fFtT"):
        return None  # f-strings: Pygments lexes the code inside
    quote = text[opening : opening + 3] if text[opening : opening + 3] in ('"""', "'''") else text[opening]
    out: list[tuple[int, int, str]] = []
    if len(quote) == 3 and at_line_start and len(prefix) <= 2 and not set(prefix) - set("rRuUbB"):
        if prefix:
            out.append((start, start + opening, "string"))
        return [*out, (start + opening, end, "string")], True
    if prefix:
        out.append((start, start + opening, "string"))
    out.append((start + opening, start + opening + len(quote), "string"))
    raw = "r" in prefix.lower()
    escapes = "" if raw else (_BYTES_ESCAPE if "b" in prefix.lower() else _STRING_ESCAPE)
    body: Any = _body(quote, escapes)
    position = start + opening + len(quote)
    while position < end:
        found = body.match(code, position, end)
        if found is None or found.end() == position:
            return None
        out.append((position, found.end(), "string"))
        position = found.end()
    return out, False


def _skip_space(code: str, position: int) -> int:
    while code[position : position + 1].isspace():
        position += 1
    return position


def _name(word: str, after_dot: bool) -> str | None:
    if word in KEYWORDS or word in CONSTANTS:
        return "keyword"
    if word in OPERATOR_WORDS:
        return "operator-word"
    if not after_dot and (word in BUILTINS or word in PSEUDO or word in EXCEPTIONS):
        return "builtin"
    if word in MAGIC_FUNCTIONS:
        return "function"
    if word in MAGIC_VARIABLES:
        return "variable"
    return None


def categories(code: str) -> list[tuple[int, int, str]] | None:
    """The coloured tokens of ``code`` as ``(start, end, category)`` offsets, in order, cut
    where Pygments cuts them; ``None`` when ``code`` holds something Pygments would lex
    differently (ask Pygments then)."""
    if "\t" in code or "\r" in code or "\f" in code or not code.endswith("\n"):
        return None
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    out: list[tuple[int, int, str]] = []

    def space(begin: int, finish: int) -> None:
        if finish > begin:
            out.append((begin, finish, "whitespace"))

    state = ""  # "import", "from", "def", "class": the statement a name is part of
    previous_end = 0
    previous_text = ""
    for token in tokens:
        kind, text = token.type, token.string
        start = starts[token.start[0] - 1] + token.start[1]
        end = starts[token.end[0] - 1] + token.end[1]
        line_start = starts[token.start[0] - 1]
        gap_start, gap = previous_end, code[previous_end:start]
        if kind in (tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        if kind in (tokenize.NEWLINE, tokenize.NL):
            if text == "\n":
                out.append((start, end, "whitespace"))
            state, previous_end, previous_text = "", end, ""
            continue
        if kind == tokenize.ERRORTOKEN:
            return None
        category: str | None = None
        if kind == tokenize.COMMENT:
            state, category = "", "comment"
        elif kind == tokenize.STRING:
            found = _string(code, start, end, not code[line_start:start].strip())
            if found is None:
                return None
            if found[1]:
                space(line_start, start)  # a docstring's indentation
            out.extend(found[0])
            state, previous_end, previous_text = "", end, text
            continue
        elif kind == tokenize.NUMBER:
            if text[-1] in "jJ":
                return None
            state, category = "", "number"
        elif kind == tokenize.NAME:
            if not code[line_start:start].strip() and text in ("match", "case"):
                return None
            if state in ("def", "class"):
                category = "function" if state == "def" else "class"
                state = ""
            elif state == "import":
                if text == "as" and gap and gap.isspace() and code[end : end + 1].isspace():
                    space(gap_start, start)
                    space(end, _skip_space(code, end))
                    category = "keyword"
                else:
                    category = "namespace"
            elif state == "from":
                if text == "import" and gap and gap.isspace():
                    space(gap_start, start)
                    state, category = "", "keyword"
                elif text == "None":
                    state, category = "", "keyword"
                else:
                    category = "namespace"
            elif text == "from" and previous_text == "yield" and gap == " ":
                out[-1] = (out[-1][0], end, "keyword")  # "yield from" is one token
                previous_end, previous_text = end, text
                continue
            elif text in ("def", "class", "import", "from") and code[end : end + 1].isspace():
                category, state = "keyword", text
                space(end, _skip_space(code, end))  # the spaces after it
            elif previous_text == "@" and gap == "":
                out[-1] = (out[-1][0], end, "decorator")
                previous_end, previous_text = end, text
                continue
            else:
                category = _name(text, code[start - 1 : start] == ".")
        elif kind == tokenize.OP:
            if state in ("import", "from") and text == ".":
                category = "namespace"
            elif state == "import" and text == ",":
                space(gap_start, start)
                space(end, _skip_space(code, end))
            else:
                state = ""
            if text == "@":
                category = "@"  # a decorator if a name follows at once (dropped otherwise)
        else:
            return None
        if out and out[-1][2] == "@":
            out.pop()
        if category is not None:
            out.append((start, end, category))
        previous_end, previous_text = end, text
    return sorted(piece for piece in out if piece[2] != "@")
