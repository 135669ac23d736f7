"""Python code -> highlight categories, as Pygments' Python lexer classifies the code rules show.

The panel colours its broken/fixed code. Pygments compiles some 85 regular expressions for
its Python lexer on first use, which was the largest single cost of the first rich panel;
the standard library's ``tokenize`` (which the traceback module has imported already) splits
the same code at a fraction of that. ``categories(code)`` gives ``(start, end, category)``
for every coloured piece, the same pieces Pygments would colour (its quirks included: the
name after ``raise ... from`` is a namespace), or ``None`` for code with what it does not
classify the same way (f-strings, ``match``/``case``, tabs, imaginary numbers, anything
``tokenize`` rejects): the renderer then asks Pygments. Standard library only; no rich.
"""

from __future__ import annotations

import io
import tokenize

KEYWORDS = frozenset(
    [
        "assert",
        "async",
        "await",
        "break",
        "continue",
        "del",
        "elif",
        "else",
        "except",
        "finally",
        "for",
        "global",
        "if",
        "lambda",
        "pass",
        "raise",
        "nonlocal",
        "return",
        "try",
        "while",
        "yield",
        "as",
        "with",
    ]
)
CONSTANTS = frozenset(("True", "False", "None"))
OPERATOR_WORDS = frozenset(("in", "is", "and", "or", "not"))
BUILTINS = frozenset(
    [
        "__import__",
        "abs",
        "aiter",
        "all",
        "any",
        "bin",
        "bool",
        "bytearray",
        "breakpoint",
        "bytes",
        "callable",
        "chr",
        "classmethod",
        "compile",
        "complex",
        "delattr",
        "dict",
        "dir",
        "divmod",
        "enumerate",
        "eval",
        "filter",
        "float",
        "format",
        "frozendict",
        "frozenset",
        "getattr",
        "globals",
        "hasattr",
        "hash",
        "hex",
        "id",
        "input",
        "int",
        "isinstance",
        "issubclass",
        "iter",
        "len",
        "list",
        "locals",
        "map",
        "max",
        "memoryview",
        "min",
        "next",
        "object",
        "oct",
        "open",
        "ord",
        "pow",
        "print",
        "property",
        "range",
        "repr",
        "reversed",
        "round",
        "sentinel",
        "set",
        "setattr",
        "slice",
        "sorted",
        "staticmethod",
        "str",
        "sum",
        "super",
        "tuple",
        "type",
        "vars",
        "zip",
    ]
)
PSEUDO = frozenset(("self", "Ellipsis", "NotImplemented", "cls"))
EXCEPTIONS = frozenset(
    [
        "ArithmeticError",
        "AssertionError",
        "AttributeError",
        "BaseException",
        "BufferError",
        "BytesWarning",
        "DeprecationWarning",
        "EOFError",
        "EnvironmentError",
        "Exception",
        "FloatingPointError",
        "FutureWarning",
        "GeneratorExit",
        "IOError",
        "ImportError",
        "ImportWarning",
        "IndentationError",
        "IndexError",
        "KeyError",
        "KeyboardInterrupt",
        "LookupError",
        "MemoryError",
        "NameError",
        "NotImplementedError",
        "OSError",
        "OverflowError",
        "PendingDeprecationWarning",
        "ReferenceError",
        "ResourceWarning",
        "RuntimeError",
        "RuntimeWarning",
        "StopIteration",
        "SyntaxError",
        "SyntaxWarning",
        "SystemError",
        "SystemExit",
        "TabError",
        "TypeError",
        "UnboundLocalError",
        "UnicodeDecodeError",
        "UnicodeEncodeError",
        "UnicodeError",
        "UnicodeTranslateError",
        "UnicodeWarning",
        "UserWarning",
        "ValueError",
        "VMSError",
        "Warning",
        "WindowsError",
        "ZeroDivisionError",
        "BlockingIOError",
        "ChildProcessError",
        "ConnectionError",
        "BrokenPipeError",
        "ConnectionAbortedError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "FileExistsError",
        "FileNotFoundError",
        "InterruptedError",
        "IsADirectoryError",
        "NotADirectoryError",
        "PermissionError",
        "ProcessLookupError",
        "TimeoutError",
        "StopAsyncIteration",
        "ModuleNotFoundError",
        "RecursionError",
        "EncodingWarning",
    ]
)
MAGIC_FUNCTIONS = frozenset(
    [
        "__abs__",
        "__add__",
        "__aenter__",
        "__aexit__",
        "__aiter__",
        "__and__",
        "__anext__",
        "__await__",
        "__bool__",
        "__bytes__",
        "__call__",
        "__complex__",
        "__contains__",
        "__del__",
        "__delattr__",
        "__delete__",
        "__delitem__",
        "__dir__",
        "__divmod__",
        "__enter__",
        "__eq__",
        "__exit__",
        "__float__",
        "__floordiv__",
        "__format__",
        "__ge__",
        "__get__",
        "__getattr__",
        "__getattribute__",
        "__getitem__",
        "__gt__",
        "__hash__",
        "__iadd__",
        "__iand__",
        "__ifloordiv__",
        "__ilshift__",
        "__imatmul__",
        "__imod__",
        "__imul__",
        "__index__",
        "__init__",
        "__instancecheck__",
        "__int__",
        "__invert__",
        "__ior__",
        "__ipow__",
        "__irshift__",
        "__isub__",
        "__iter__",
        "__itruediv__",
        "__ixor__",
        "__le__",
        "__len__",
        "__length_hint__",
        "__lshift__",
        "__lt__",
        "__matmul__",
        "__missing__",
        "__mod__",
        "__mul__",
        "__ne__",
        "__neg__",
        "__new__",
        "__next__",
        "__or__",
        "__pos__",
        "__pow__",
        "__prepare__",
        "__radd__",
        "__rand__",
        "__rdivmod__",
        "__repr__",
        "__reversed__",
        "__rfloordiv__",
        "__rlshift__",
        "__rmatmul__",
        "__rmod__",
        "__rmul__",
        "__ror__",
        "__round__",
        "__rpow__",
        "__rrshift__",
        "__rshift__",
        "__rsub__",
        "__rtruediv__",
        "__rxor__",
        "__set__",
        "__setattr__",
        "__setitem__",
        "__str__",
        "__sub__",
        "__subclasscheck__",
        "__truediv__",
        "__xor__",
    ]
)
MAGIC_VARIABLES = frozenset(
    [
        "__annotations__",
        "__bases__",
        "__class__",
        "__closure__",
        "__code__",
        "__defaults__",
        "__dict__",
        "__doc__",
        "__file__",
        "__func__",
        "__globals__",
        "__kwdefaults__",
        "__module__",
        "__mro__",
        "__name__",
        "__objclass__",
        "__qualname__",
        "__self__",
        "__slots__",
        "__weakref__",
    ]
)

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
)


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
    """The coloured pieces of ``code`` as ``(start, end, category)`` offsets, in order; ``None``
    when ``code`` holds something Pygments would classify differently (ask Pygments then)."""
    if "\t" in code or "\r" in code or "\f" in code:
        return None
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    out: list[tuple[int, int, str]] = []
    state = ""  # "import", "from", "def", "class": the statement a name is part of
    previous: tokenize.TokenInfo | None = None
    line_start = True
    for token in tokens:
        kind, text = token.type, token.string
        start = starts[token.start[0] - 1] + token.start[1]
        end = starts[token.end[0] - 1] + token.end[1]
        space_after = code[end : end + 1].isspace()
        space_before = start > 0 and code[start - 1].isspace()
        if kind in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            if kind in (tokenize.NEWLINE, tokenize.NL):
                state, line_start = "", True
            continue
        if kind == tokenize.ERRORTOKEN:
            return None
        first_on_line, line_start = line_start, False
        category: str | None = None
        if kind == tokenize.COMMENT:
            state, category = "", "comment"
        elif kind == tokenize.STRING:
            prefix = text[: min(i for i in (text.find("'"), text.find('"')) if i >= 0)]
            if set(prefix) & set("fFtT"):
                return None
            state, category = "", "string"
        elif kind == tokenize.NUMBER:
            if text[-1] in "jJ":
                return None
            state, category = "", "number"
        elif kind == tokenize.NAME:
            if first_on_line and text in ("match", "case"):
                return None
            if state == "def" or state == "class":
                category = "function" if state == "def" else "class"
                state = ""
            elif state == "import":
                category = "keyword" if text == "as" and space_before and space_after else "namespace"
            elif state == "from":
                if (text == "import" and space_before) or text == "None":
                    state, category = "", "keyword"
                else:
                    category = "namespace"
            elif text in ("def", "class", "import", "from") and space_after:
                yield_from = (
                    text == "from"
                    and previous is not None
                    and previous.string == "yield"
                    and code[starts[previous.end[0] - 1] + previous.end[1] : start] == " "
                )
                category = "keyword"
                state = "" if yield_from else text
            elif previous is not None and previous.string == "@" and previous.end == token.start:
                category = "decorator"
                out[-1] = (out[-1][0], end, "decorator")
                previous = token
                continue
            else:
                category = _name(text, start > 0 and code[start - 1] == ".")
        elif kind == tokenize.OP:
            if state in ("import", "from") and text == ".":
                category = "namespace"
            elif state == "import" and text == ",":
                pass
            else:
                state = ""
            if text == "@":
                out.append((start, end, ""))  # a decorator if a name follows at once
                previous = token
                continue
        else:
            return None
        if out and out[-1][2] == "":
            out.pop()
        if category is not None:
            out.append((start, end, category))
        previous = token
    return [piece for piece in out if piece[2]]
