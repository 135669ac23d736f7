"""Read exceptions from text (a pasted traceback, a log) and explain them from what it shows.

The text is first cleaned line for line (:mod:`._textshapes`: ANSI codes, log prefixes, pytest
markers; IPython tracebacks rewritten as CPython's). The parser then reads its traceback blocks
(``Traceback (most recent call last):`` ... the exception line, chained by "The above exception
was the direct cause..." or "During handling..."), and, outside them, exceptions printed
otherwise (lone or short-named lines, the details block, VS Code, bare client messages); the
same exception printed twice counts once. Each chain becomes a list of
:class:`~replicate_explain._snapshot.ExceptionInfo`:

* ``types``: the printed dotted name, then its bases (:func:`._hierarchy.types_for`);
* ``message``: the text after ``Name: ``, with its continuation lines;
* ``attributes``: what the printed message reveals (``status``/``title``/``detail`` of a 0.x/1.x
  ``ReplicateError``'s details block, ``status_code`` of 2.x ``Error code: 401 - ...``);
* ``in_replicate``: a frame lies in a ``replicate`` package directory.

:func:`explain_text` builds a snapshot of each chain from the facts the text shows
(:mod:`._textfacts`); no environment is read unless the caller passes one (``explain --here``).
No argparse and no printing here; standard library only at import time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from ._explanation import Explanation
from ._hierarchy import ALIASES, KNOWN_BASES, types_for
from ._rules import RuleSet
from ._snapshot import ExceptionInfo, Snapshot
from ._textfacts import TextEvidence, read_text, text_snapshot
from ._textshapes import (
    FRAME_PATH,
    REPLICATE_FUNCTION,
    convert_ipython,
    loose_exceptions,
    normalise_line,
    resolve_short,
    unflatten_details,
)
from ._wrappers import BY_NAME

TRACEBACK_HEADERS = (
    "Traceback (most recent call last):",
    "Exception Group Traceback (most recent call last):",
)
CHAIN_SEPARATORS = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
MAX_MESSAGE_LINES = 40
MAX_CHAINS = 200

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_HEADER = re.compile(rf"^(?P<name>{_NAME})(?:: (?P<message>.*)|:)?$")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line \d+')
# Decoration of exception groups (Python 3.11+): "  | " and "  + " prefixes, "+-+---- 1 ----" rules.
_GROUP_PREFIX = re.compile(r"^\s*[|+](?: |$)")
_GROUP_RULE = re.compile(r"^\s*\+[-+]*-{4,}[^|]*$")
# A line that starts a new log record ends a message (timestamps, level names).
_LOG_RECORD = re.compile(
    r"^(?:\[?\d{4}-\d\d-\d\d[ T]|\[?\d\d:\d\d:\d\d[ "
    r",.]|(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b[:\s])"
)
# Outside traceback blocks: a dotted name ending in Error/Exception, then ": message".
_DETAILS = re.compile(r"^(?P<key>title|status|detail|code): (?P<value>.*)$")
_ERROR_CODE = re.compile(r"^Error code: (?P<code>\d{3})\b")
# A frame of the client's package (a wrapper's ``llms/replicate/`` directory is not the client).
_REPLICATE_DIR = re.compile(r"(?<![\\/]llms)[\\/]replicate[\\/]")


@dataclass(frozen=True)
class Found:
    """One exception line found in the text, before it becomes an :class:`ExceptionInfo`."""

    name: str
    message: str
    frames: tuple[str, ...] = ()
    """File names of the frames of its traceback block (empty for a lone line)."""
    line: int = 0
    """1-based line number of the exception line in the text."""


@dataclass(frozen=True)
class Chain:
    """The exceptions of one traceback, outermost first (the order of ``Snapshot.exceptions``)."""

    exceptions: tuple[Found, ...]
    start: int
    """1-based line where the chain's first block starts."""
    end: int
    """1-based line of the chain's last line."""
    text: str = field(default="", repr=False)
    """The chain's lines as they appear in the input (for the echo; not yet redacted)."""


def attributes_for(name: str, message: str) -> Mapping[str, str]:
    """The attributes a printed message reveals, as the live exception would report them."""
    found: dict[str, str] = {}
    lines = unflatten_details(message).splitlines()
    if lines and lines[0].strip().endswith("Details:"):  # 0.x/1.x ReplicateError.__str__
        for line in lines[1:]:
            match = _DETAILS.match(line.strip())
            if match:
                found[match["key"]] = match["value"].strip()
    code = _ERROR_CODE.match(message)
    if code and name.startswith("replicate."):  # 2.x APIStatusError: "Error code: 401 - {...}"
        found["status_code"] = code["code"]
    return MappingProxyType(found)


@dataclass(frozen=True)
class _Line:
    text: str
    """The line without ANSI codes, a log prefix or exception-group decoration."""
    grouped: bool
    """It carried exception-group decoration."""
    rule: bool
    """It is an exception-group rule such as ``+---------------- 1 ----------------``."""


def clean_lines(text: str) -> list[str]:
    """The lines of ``text`` without ANSI codes, log prefixes, pytest markers; IPython as CPython."""
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return convert_ipython([normalise_line(line) for line in text.split("\n")])


def _prepare(text: str) -> list[_Line]:
    """Split ``text`` into lines without ANSI codes, carriage returns or decoration.

    A prefix repeated on every line of a traceback (``web-1  | `` in docker compose output) is
    taken from the line that holds ``Traceback (most recent call last):`` and removed from the
    lines that follow and start with it.
    """
    out: list[_Line] = []
    prefix: str | None = None
    for line in clean_lines(text):
        index = line.find(TRACEBACK_HEADERS[0])
        if index > 0 and line[:index].strip() and not _GROUP_PREFIX.match(line[:index]):
            prefix = line[:index]
        elif index == 0:
            prefix = None
        if prefix and line.startswith(prefix):
            line = line[len(prefix) :]
        line = line.rstrip()
        if _GROUP_RULE.match(line):
            out.append(_Line("", True, True))
            continue
        match = _GROUP_PREFIX.match(line)
        if match:
            out.append(_Line(line[match.end() :], True, False))
        else:
            out.append(_Line(line, False, False))
    return out


def _is_header(line: _Line) -> bool:
    return line.text.strip() in TRACEBACK_HEADERS


def _ends_message(line: _Line, grouped: bool) -> bool:
    stripped = line.text.strip()
    return bool(
        line.rule
        or line.grouped != grouped
        or stripped in TRACEBACK_HEADERS
        or stripped in CHAIN_SEPARATORS
        or _LOG_RECORD.match(line.text)
        or _FRAME.match(line.text)
    )


def _prose_follows(lines: list[_Line], index: int, grouped: bool) -> bool:
    """Whether the paragraph at ``index`` (after a blank line) reads as more of the message.

    Messages may hold blank lines (0.x: "No API token provided...\n\nYou can find your API
    key..."), but what follows a traceback in a log is usually something else: a paragraph
    counts only if it is unindented text that runs to a blank line or the end.
    """
    seen = False
    while index < len(lines) and lines[index].text.strip():
        line = lines[index]
        if _ends_message(line, grouped):
            return seen
        if line.text[:1].isspace():
            return False
        seen = True
        index += 1
    return seen


def _read_message(lines: list[_Line], index: int, first: str, grouped: bool) -> tuple[str, int]:
    """The exception message starting with ``first``; returns it and the index after it."""
    message = [first]
    while index < len(lines) and len(message) < MAX_MESSAGE_LINES:
        line = lines[index]
        if _ends_message(line, grouped):
            break
        if not line.text.strip():
            after = index
            while after < len(lines) and not lines[after].rule and not lines[after].text.strip():
                after += 1
            if not _prose_follows(lines, after, grouped):
                break
        message.append(line.text)
        index += 1
    while len(message) > 1 and not message[-1].strip():
        message.pop()
    return "\n".join(message), index


def _read_block(lines: list[_Line], index: int) -> tuple[Found | None, int]:
    """The ``Traceback ...`` block whose header is at ``index``: its exception, the next index."""
    grouped = lines[index].grouped
    index += 1
    frames: list[str] = []
    while index < len(lines):
        line = lines[index]
        if line.rule or line.grouped != grouped or (line.text.strip() and not line.text[:1].isspace()):
            break
        frame = _FRAME.match(line.text)
        if frame:
            frames.append(frame["file"])
        index += 1
    if index >= len(lines) or lines[index].rule or lines[index].grouped != grouped:
        return None, index
    header = _HEADER.match(lines[index].text.strip())
    if header is None or _is_header(lines[index]) or lines[index].text.strip() in CHAIN_SEPARATORS:
        return None, index
    line_number = index + 1
    message, index = _read_message(lines, index + 1, header["message"] or "", grouped)
    return Found(header["name"], message, tuple(frames), line_number), index


def _skip_blank(lines: list[_Line], index: int) -> int:
    while index < len(lines) and not lines[index].rule and not lines[index].text.strip():
        index += 1
    return index


def _read_chain(lines: list[_Line], index: int) -> tuple[list[Found], int]:
    """A chain from the header at ``index``: blocks linked by separators, and group members."""
    grouped = lines[index].grouped
    found: list[Found] = []
    segment: list[Found] = []
    while index < len(lines):
        exception, index = _read_block(lines, index)
        if exception is not None:
            segment.append(exception)
        after = _skip_blank(lines, index)
        if after < len(lines) and lines[after].text.strip() in CHAIN_SEPARATORS:
            after = _skip_blank(lines, after + 1)
            if after < len(lines) and _is_header(lines[after]):
                index = after
                continue
            index = after
        found.extend(reversed(segment))  # printed innermost first; snapshots are outermost first
        segment = []
        if not grouped:
            break
        # Inside an exception group: more members follow while the decoration goes on.
        while index < len(lines) and (lines[index].grouped or lines[index].rule):
            line = lines[index]
            if _is_header(line):
                break
            text = line.text
            header = _HEADER.match(text.strip()) if text.strip() and not text[:1].isspace() else None
            if header is not None and index > 0 and lines[index - 1].rule:
                line_number = index + 1
                message, index = _read_message(lines, index + 1, header["message"] or "", True)
                found.append(Found(header["name"], message, (), line_number))
                continue
            index += 1
        if index >= len(lines) or not _is_header(lines[index]):
            break
    found.extend(reversed(segment))
    return found, index


def find_chains(text: str) -> list[Chain]:
    """Every exception chain in ``text`` in order: traceback blocks, and lone exception lines."""
    lines = _prepare(text)
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    chains: list[Chain] = []
    consumed: set[int] = set()
    index = 0
    while index < len(lines) and len(chains) < MAX_CHAINS:
        if not _is_header(lines[index]):
            index += 1
            continue
        start = index
        found, index = _read_chain(lines, index)
        end = index
        while end > start and not lines[end - 1].text.strip():
            end -= 1
        consumed.update(range(start, max(index, start + 1)))
        if found:
            chains.append(Chain(tuple(found), start + 1, end, "\n".join(raw[start:end])))
    evidence = read_text("\n".join(line.text for line in lines))
    chains = [_resolved(chain, evidence) for chain in chains]
    frames = tuple(
        next(g for g in match.groups() if g)
        for match in (FRAME_PATH.match(line.text) for line in lines)
        if match is not None
    )
    texts = [line.text for line in lines]
    # A line that repeats an exception printed before (a log printing the error, then its
    # traceback; pytest's E lines, then its short summary) is the same failure: it counts once.
    seen = {_key(found) for chain in chains for found in chain.exceptions}

    def known(name: str, loose: bool) -> bool:
        # A wrapper's own exception (litellm.AuthenticationError) when the text shows that wrapper.
        wrapper = BY_NAME.get(evidence.wrapper or "")
        package = wrapper.exception_package if wrapper is not None else None
        return _known(name, loose) or (package is not None and loose and name.split(".", 1)[0] == package)

    for loose in loose_exceptions(texts, consumed, evidence, known):
        if len(chains) >= MAX_CHAINS:
            break
        item = Found(loose.name, loose.message, loose.frames or frames, loose.line + 1)
        if _key(item) in seen:
            continue
        seen.add(_key(item))
        chains.append(Chain((item,), loose.line + 1, loose.last + 1, "\n".join(raw[loose.line : loose.last + 1])))
    chains.sort(key=lambda chain: chain.start)
    return chains


def _resolved(chain: Chain, evidence: TextEvidence) -> Chain:
    """The chain with short names (IPython prints ``ReplicateError: ...``) read as replicate's
    classes when the text shows the replicate client; other names unchanged."""
    found = tuple(
        replace(item, name=resolve_short(item.name, item.message, evidence, "") or _by_frame(item))
        if "." not in item.name
        else item
        for item in chain.exceptions
    )
    return replace(chain, exceptions=found)


def _by_frame(item: Found) -> str:
    """A short name of the HTTP stack (``LocalProtocolError``) read as the class of the package
    whose frame raised it (the block's last frame), when the class table has one; else as is."""
    import builtins

    if isinstance(getattr(builtins, item.name, None), type):
        return item.name
    last = item.frames[-1].replace("\\", "/") if item.frames else ""
    for dotted in KNOWN_BASES:
        package = dotted.split(".", 1)[0]
        if dotted.rpartition(".")[2] == item.name and f"/{package}/" in last:
            return dotted
    return item.name


def _known(name: str, loose: bool) -> bool:
    return ALIASES.get(name, name) in KNOWN_BASES or (loose and name.startswith("replicate."))


def _key(found: Found) -> tuple[str, str]:
    first = found.message.strip().splitlines()[0].strip() if found.message.strip() else ""
    return ALIASES.get(found.name, found.name), first


def exception_infos(chain: Chain) -> list[ExceptionInfo]:
    """The chain's exceptions as the matcher sees them (messages are redacted later)."""
    return [
        ExceptionInfo(
            types=types_for(found.name),
            message=unflatten_details(found.message),
            attributes=attributes_for(found.name, found.message),
            in_replicate=any(_REPLICATE_DIR.search(frame) for frame in found.frames)
            or bool(REPLICATE_FUNCTION.search(found.message)),
        )
        for found in chain.exceptions
    ]


@dataclass(frozen=True)
class Result:
    """One chain of the text, the snapshot built from it, and its explanation (if any)."""

    chain: Chain
    snapshot: Snapshot
    explanation: Explanation | None
    candidates: tuple[str, ...] = ()
    """Rules whose exception shapes match but whose environment facts or client range do not."""


def shape_candidates(snapshot: Snapshot, rules: RuleSet) -> tuple[str, ...]:
    """Ids of the rules that match the exceptions alone (ignoring facts and version ranges)."""
    from ._matcher import pattern_hit, shows_replicate

    if not snapshot.relevant or not shows_replicate(snapshot):
        return ()
    return tuple(
        sorted(
            rule.id
            for rule in rules.rules
            if any(
                pattern_hit(pattern, info)
                for match in rule.matches
                for pattern in match.exceptions
                for info in snapshot.exceptions
            )
        )
    )


def explain_text(
    text: str,
    rules: RuleSet,
    environ: Mapping[str, str] | None = None,
    *,
    client: str | None = None,
    cwd: str | None = None,
) -> list[Result]:
    """Find every exception chain in ``text`` and explain each one from what the text shows.

    ``environ`` ``None`` (the default): no environment is observed; the token facts come from
    the text alone. A mapping (``explain --here`` passes ``os.environ``): that environment's
    token and ``.env`` facts (``cwd``, default the working directory) complete what the text
    shows, which takes precedence. ``client`` names a client version (``"detect"``: the
    installed one); by default none.
    """
    import os

    from ._matcher import explain_snapshot
    from ._snapshot import client_version, snapshot_from_data

    here = environ is not None
    env: Mapping[str, str] = environ if environ is not None else {}
    version = client_version() if client == "detect" else client
    where = (os.getcwd() if cwd is None else cwd) if here else None
    evidence = read_text("\n".join(clean_lines(text)))
    results = []
    for chain in find_chains(text):
        snapshot = snapshot_from_data(
            exception_infos(chain), env, version, cwd=where, variable_known=here, wrapper=evidence.wrapper
        )
        snapshot = text_snapshot(snapshot, evidence, here)
        explanation = explain_snapshot(snapshot, rules)
        candidates = () if explanation is not None else shape_candidates(snapshot, rules)
        results.append(Result(chain, snapshot, explanation, candidates))
    return results
