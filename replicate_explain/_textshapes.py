"""Bring pasted text to the shape of a CPython traceback, and find exceptions printed otherwise.

What users paste is rarely a clean traceback, nor always UTF-8 (:func:`decode_text`: a BOM,
UTF-16 from PowerShell or Notepad). :func:`normalise_line` removes, line by line, what
wraps the lines: log prefixes (timestamps, ``worker-1  | ``, CI markers), pytest's ``E   ``
and ``>`` markers. :func:`convert_ipython` rewrites IPython/Jupyter tracebacks
(``Name    Traceback (most recent call last)``, ``File path:12, in f``, ``---->`` arrows) as
CPython's, line for line. :func:`loose_exceptions` finds what is left outside traceback blocks:
short class names (``ReplicateError: ...``, resolved by :func:`resolve_short`), the
``ReplicateError Details:`` block inside a line, VS Code's ``Exception has occurred: Name``,
and the replicate client's own messages printed bare. Standard library only.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass

from ._hierarchy import CLIENT_2X_ERRORS
from ._textfacts import TextEvidence

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose BOM starts it
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes) -> str:
    """Bytes of a file or standard input as text: UTF-8 by default, a byte order mark dropped;
    UTF-16 and UTF-32 by their BOM (PowerShell's ``>`` and Notepad write UTF-16 with one), or
    UTF-16 without one, known by a NUL in every other byte. Undecodable bytes become U+FFFD."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, "replace")
    sample = data[:4096]
    if len(sample) >= 8 and sample.count(0) >= len(sample) // 4:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if even == 0 or odd == 0:
            return data.decode("utf-16-le" if even == 0 else "utf-16-be", "replace")
    return data.decode("utf-8", "replace")


_LOG_PREFIXES = (
    # 2023-08-14 12:05:51 / 2025-08-09T15:07:17.327059 - / [2024-05-01 12:00:00,000]
    re.compile(r"^\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?(?:\s+-(?=\s))?(?: |\t|$)"),
    re.compile(r"^\[?\d\d:\d\d:\d\d(?:[.,]\d+)?\]?(?: |\t|$)"),
    # docker compose: "worker-1  | ", "web_1     | "
    re.compile(r"^[A-Za-z][\w.-]*[-_]\d+\s+\| ?"),
    # CI step markers
    re.compile(r"^##\[(?:error|warning|group|endgroup)\]"),
)
_PYTEST_E = re.compile(r"^E(?: {3}|$)")
_PYTEST_SOURCE = re.compile(r"^>(?= )")


def normalise_line(line: str) -> str:
    """``line`` without a log prefix and pytest's ``E   `` / ``>`` markers."""
    for _ in range(3):
        before = line
        for prefix in _LOG_PREFIXES:
            line = prefix.sub("", line, count=1)
        if line == before:
            break
    if _PYTEST_E.match(line):
        return line[4:]
    return _PYTEST_SOURCE.sub(" ", line, count=1)


_IPY_HEADER = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)\s+Traceback \(most recent call last\)\s*$")
_IPY_FILE = re.compile(r"^File (?P<file>.+?):(?P<line>\d+)(?:, in (?P<func>.*))?$")
_IPY_CELL = re.compile(r"^(?:Cell|Input) (?P<cell>In ?\[\s*\d*\]), (?:line (?P<line>\d+)|in .*)")
_IPY_OLD_FRAME = re.compile(r"^(?P<file><ipython-input-[^>]*>|\S.*?\.py) in (?P<func>\S+)\(")
_IPY_RULE = re.compile(r"^-{20,}\s*$")


def convert_ipython(lines: list[str]) -> list[str]:
    """IPython tracebacks rewritten as CPython's (same number of lines)."""
    out: list[str] = []
    name: str | None = None
    for line in lines:
        header = _IPY_HEADER.match(line)
        if header is not None:
            name = header["name"].rpartition(".")[2]
            out.append("Traceback (most recent call last):")
            continue
        if _IPY_RULE.match(line):
            out.append("")
            continue
        if name is None:
            out.append(line)
            continue
        stripped = line.strip()
        if line[:1] not in (" ", "-", "\t", "") and re.match(rf"(?:[\w.]*\.)?{re.escape(name)}(?::|$)", line):
            name = None  # the exception line: the block ends here
            out.append(line)
            continue
        frame = _IPY_FILE.match(line) or _IPY_OLD_FRAME.match(line)
        cell = _IPY_CELL.match(line)
        if frame is not None:
            number = frame.groupdict().get("line") or 0
            out.append(f'  File "{frame["file"]}", line {number}, in {frame["func"] or "?"}')
        elif cell is not None:
            out.append(f'  File "<{cell["cell"]}>", line {cell["line"] or 0}, in <module>')
        elif stripped:
            out.append("    " + re.sub(r"^-*>\s*", "", stripped))
        else:
            out.append("")
    return out


#: Frame lines of every shape, for the text's frame paths (CPython, IPython, pytest, VS Code).
FRAME_PATH = re.compile(
    r'^\s*File "(?P<a>[^"]+)", line \d+|^File (?P<b>\S.*?):\d+, in |^(?P<c>\S+\.py):\d+: (?:in \S+|\w+)$'
)

_SHORT_REPLICATE = ("ReplicateError", "ReplicateException", "ModelError")
_SHORT = re.compile(
    rf"(?<![\w.])(?P<name>{'|'.join(_SHORT_REPLICATE + CLIENT_2X_ERRORS)}): (?P<message>\S.*)$",
)
_OTHER_SDK_WORD = re.compile(r"(?i)\b(?:openai|anthropic|huggingface|hf_hub|cohere|mistral|groq|litellm)\b")


def resolve_short(name: str, message: str, evidence: TextEvidence, line: str) -> str | None:
    """The replicate class a short printed name stands for, or ``None``.

    Only when the text shows the replicate Python client and nothing on the line names
    another SDK; 2.x's names only for 2.x text or its ``Error code: NNN - `` message.
    """
    if not evidence.replicate or evidence.javascript or _OTHER_SDK_WORD.search(line):
        return None
    two = evidence.generation == "2.x" or bool(re.match(r"Error code: \d{3} - ", message))
    if name in CLIENT_2X_ERRORS:
        return f"replicate.{name}" if two else None
    if name == "ReplicateException":
        return None if two else "replicate.exceptions.ReplicateException"
    if name == "ModelError":
        return "replicate.exceptions.ModelError" if not two else None
    if name != "ReplicateError":
        return None
    return "replicate.ReplicateError" if two and "Details:" not in message else "replicate.exceptions.ReplicateError"


_DETAILS_IN_LINE = re.compile(r"(?<![\w.])ReplicateError Details:\s*(?:$|(?=(?:title|status|detail|code): ))")
_DETAIL_KEY = re.compile(r"(?:^|(?<=\s))(?P<key>title|status|detail|code): ")


def unflatten_details(message: str) -> str:
    """The ``Details:`` block of 0.x/1.x's ``ReplicateError`` one key a line, as the client prints it.

    Web pages and chat tools flatten it onto one or a few lines (``ReplicateError Details:
    status: 429 detail: Request was throttled. ...``). Each of ``title``, ``status``, ``detail``
    and ``code`` starts a line where it first follows whitespace; a key seen before is text of
    the value it is in. A message without the block, or already one key a line, is returned as is.
    """
    head, sep, rest = message.partition("Details:")
    if not sep or not rest.strip():
        return message
    flat = " ".join(rest.split())
    starts: list[tuple[int, int, str]] = []
    for found in _DETAIL_KEY.finditer(flat):
        if found["key"] not in {key for _, _, key in starts}:
            starts.append((found.start(), found.end(), found["key"]))
    if not starts or starts[0][0] != 0:
        return message
    values = [
        f"{key}: {flat[end : starts[i + 1][0] if i + 1 < len(starts) else len(flat)].strip()}"
        for i, (_, end, key) in enumerate(starts)
    ]
    return "\n".join([f"{head}Details:", *values])


_DETAIL_LINE = re.compile(r"^\s*(?:title|status|detail|code): ")
_VSCODE = re.compile(r"^Exception has occurred: (?P<name>[A-Za-z_][\w.]*)\b")
_BARE = re.compile(
    r"^(?:(?:Error|Exception|error)\s*:\s*)?(?P<message>"
    r"No API token provided\..*"
    r"|You did not pass (?:a valid|an) authentication token\.?"
    r"|The bearer_token client option must be set.*"
    r"|Invalid token\.?)\s*$"
)
#: A builtin exception on a line of its own (pytest's ``E`` lines), read in replicate text only.
_BUILTIN = re.compile(r"^(?P<name>[A-Z]\w*(?:Error|Exception)): (?P<message>\S.*)$")
#: 0.2x-1.x's ``_create_prediction_body`` refusing a keyword ``replicate.run`` passed on.
REPLICATE_FUNCTION = re.compile(r"(?<![\w.])_create_prediction_body\(\)")
_KEYWORD = re.compile(
    r"^(?:TypeError: )?(?P<message>_create_prediction_body\(\) (?:got|received) an unexpected keyword argument '\w+')"
)


@dataclass(frozen=True)
class Loose:
    """An exception found outside a traceback block."""

    name: str
    message: str
    line: int
    """0-based index of its first line."""
    last: int
    """0-based index of its last line."""
    frames: tuple[str, ...] = ()


def _details(lines: list[str], index: int, first: str) -> tuple[str, int]:
    """``first`` and the ``title:``/``status:``/``detail:`` lines after ``index``."""
    message = [first]
    while index + 1 < len(lines) and _DETAIL_LINE.match(lines[index + 1]) and len(message) < 8:
        index += 1
        message.append(lines[index].strip())
    return "\n".join(message), index


def loose_exceptions(
    lines: list[str],
    consumed: set[int],
    evidence: TextEvidence,
    known: Callable[[str, bool], bool],
) -> list[Loose]:
    """Exceptions on the lines not ``consumed`` by traceback blocks.

    ``known(name, loose)`` says whether a dotted name is a class the matcher knows (``loose``:
    any ``replicate.`` name ending in Error or Exception counts too).
    """
    found: list[Loose] = []
    index = 0
    while index < len(lines):
        if index in consumed:
            index += 1
            continue
        line = lines[index].rstrip()
        # Indented lines are source code or frames (pytest prints them unmarked), not exceptions.
        item = None if line[:1].isspace() else _one(lines, index, line, evidence, known)
        if item is not None:
            found.append(item)
            index = item.last + 1
            continue
        index += 1
    return found


_DOTTED = re.compile(
    r"(?<![\w.])(?P<name>(?:[A-Za-z_][A-Za-z0-9_]*\.)+[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:: (?P<message>.*))?$"
)


Known = Callable[[str, bool], bool]


def _one(lines: list[str], index: int, line: str, evidence: TextEvidence, known: Known) -> Loose | None:
    vscode = _VSCODE.match(line)
    if vscode is not None:
        name = vscode["name"]
        if "." not in name:
            resolved = resolve_short(name, "", evidence, line)
            if resolved is None:
                return None
            name = resolved
        elif not known(name, True):
            return None
        lines_of_message: list[str] = []
        frames: list[str] = []
        last = index
        for later in range(index + 1, min(len(lines), index + 60)):
            text = lines[later].rstrip()
            frame = FRAME_PATH.match(text)
            if frame is not None:
                frames.append(next(g for g in frame.groups() if g))
            elif not frames and text.strip():
                lines_of_message.append(text.strip())
            elif frames and text and not text[:1].isspace():
                break
            last = later
        return Loose(name, "\n".join(lines_of_message), index, last, tuple(frames))
    dotted = _DOTTED.search(line)
    if dotted is not None and known(dotted["name"], dotted["name"].endswith(("Error", "Exception"))):
        first = (dotted["message"] or "").strip()
        message, last = _details(lines, index, first) if "Details:" in first else (first, index)
        return Loose(dotted["name"], message, index, last)
    in_line = _DETAILS_IN_LINE.search(line)
    if in_line is not None and not evidence.javascript:
        message, last = _details(lines, index, line[in_line.start() :].strip())
        return Loose("replicate.exceptions.ReplicateError", message, index, last)
    short = _SHORT.search(line)
    if short is not None:
        first = short["message"].strip()
        name = resolve_short(short["name"], first, evidence, line)
        if name is not None:
            message, last = _details(lines, index, first) if "Details:" in first else (first, index)
            return Loose(name, message, index, last)
    builtin = _BUILTIN.match(line)
    if builtin is not None and evidence.replicate and not evidence.javascript:
        import builtins

        cls = getattr(builtins, builtin["name"], None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return Loose(f"builtins.{builtin['name']}", builtin["message"].strip(), index, index)
    keyword = _KEYWORD.match(line.strip())
    if keyword is not None and not evidence.javascript:
        return Loose("builtins.TypeError", keyword["message"], index, index)
    bare = _BARE.match(line.strip())
    if bare is not None and not evidence.javascript:
        text = bare["message"]
        if text.startswith("Invalid token") and not evidence.replicate:
            return None
        name = "replicate.ReplicateError" if "bearer_token" in text else "replicate.exceptions.ReplicateError"
        return Loose(name, text, index, index)
    return None
