"""Explain a traceback given as text: pasted into ``replicate-explain explain`` or read from a log.

Text is not an exception: the class hierarchy is gone and only printed names remain. This module
reads the traceback blocks of the text (``Traceback (most recent call last):`` ... the exception
line, chained by "The above exception was the direct cause..." or "During handling of the above
exception..."), and, outside those blocks, lone lines that name a known exception class. Each
chain becomes a list of :class:`~replicate_explain._snapshot.ExceptionInfo`:

* ``types``: the printed dotted name, then its bases from :data:`KNOWN_BASES`, a table of the
  exception classes of every replicate client generation and its HTTP stack, measured from the
  real packages (``tests/test_textmatch.py`` checks it against the installed releases); builtins
  (``ValueError``) are resolved from this interpreter;
* ``message``: the text after ``Name: ``, with its continuation lines;
* ``attributes``: what the printed message reveals (``status``/``title``/``detail`` of a 0.x/1.x
  ``ReplicateError``'s details block, ``status_code`` of 2.x ``Error code: 401 - ...``);
* ``in_replicate``: a frame of the block lies in a ``replicate`` package directory.

The environment facts (token state, ``.env``, client version) are those of the process running
the command, so the explanation fits the machine it runs on; ``--client`` names another version.
Standard library only at import time.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._explanation import Explanation
from ._rules import RuleSet
from ._snapshot import ExceptionInfo, Snapshot, public_names

#: The direct bases of exception classes as tracebacks print them (``module.QualName``), measured
#: with the real releases 0.11.0, 0.15.3, 0.15.8, 1.0.7 and 2.0.0b4 and the httpx, httpcore,
#: h11 and requests they install; builtin bases are written without ``builtins.``; an indented
#: line continues the bases of the line above. The full MRO follows by C3 linearisation.
_BASES_TABLE = """
replicate.exceptions.ReplicateException: Exception
replicate.exceptions.ReplicateError: replicate.exceptions.ReplicateException
replicate.exceptions.ModelError: replicate.exceptions.ReplicateException
replicate.ReplicateError: Exception
replicate.APIError: replicate.ReplicateError
replicate.APIConnectionError: replicate.APIError
replicate.APITimeoutError: replicate.APIConnectionError
replicate.APIResponseValidationError: replicate.APIError
replicate.APIStatusError: replicate.APIError
replicate.AuthenticationError: replicate.APIStatusError
replicate.BadRequestError: replicate.APIStatusError
replicate.ConflictError: replicate.APIStatusError
replicate.InternalServerError: replicate.APIStatusError
replicate.NotFoundError: replicate.APIStatusError
replicate.PermissionDeniedError: replicate.APIStatusError
replicate.RateLimitError: replicate.APIStatusError
replicate.UnprocessableEntityError: replicate.APIStatusError
replicate._exceptions.ModelError: replicate.ReplicateError
httpx.HTTPError: Exception
httpx.RequestError: httpx.HTTPError
httpx.TransportError: httpx.RequestError
httpx.ProtocolError: httpx.TransportError
httpx.LocalProtocolError: httpx.ProtocolError
httpx.RemoteProtocolError: httpx.ProtocolError
httpx.NetworkError: httpx.TransportError
httpx.ConnectError: httpx.NetworkError
httpx.ReadError: httpx.NetworkError
httpx.WriteError: httpx.NetworkError
httpx.CloseError: httpx.NetworkError
httpx.TimeoutException: httpx.TransportError
httpx.ConnectTimeout: httpx.TimeoutException
httpx.ReadTimeout: httpx.TimeoutException
httpx.WriteTimeout: httpx.TimeoutException
httpx.PoolTimeout: httpx.TimeoutException
httpx.ProxyError: httpx.TransportError
httpx.UnsupportedProtocol: httpx.TransportError
httpx.DecodingError: httpx.RequestError
httpx.TooManyRedirects: httpx.RequestError
httpx.HTTPStatusError: httpx.HTTPError
httpx.InvalidURL: Exception
httpx.CookieConflict: Exception
httpx.StreamError: RuntimeError
httpcore.ProtocolError: Exception
httpcore.LocalProtocolError: httpcore.ProtocolError
httpcore.RemoteProtocolError: httpcore.ProtocolError
httpcore.NetworkError: Exception
httpcore.ConnectError: httpcore.NetworkError
httpcore.ReadError: httpcore.NetworkError
httpcore.WriteError: httpcore.NetworkError
httpcore.TimeoutException: Exception
httpcore.ConnectTimeout: httpcore.TimeoutException
httpcore.ReadTimeout: httpcore.TimeoutException
httpcore.WriteTimeout: httpcore.TimeoutException
httpcore.PoolTimeout: httpcore.TimeoutException
httpcore.UnsupportedProtocol: Exception
httpcore.ProxyError: Exception
h11._util.ProtocolError: Exception
h11._util.LocalProtocolError: h11._util.ProtocolError
h11._util.RemoteProtocolError: h11._util.ProtocolError
requests.exceptions.RequestException: OSError
requests.exceptions.InvalidHeader: requests.exceptions.RequestException ValueError
requests.exceptions.HTTPError: requests.exceptions.RequestException
requests.exceptions.ConnectionError: requests.exceptions.RequestException
requests.exceptions.ProxyError: requests.exceptions.ConnectionError
requests.exceptions.SSLError: requests.exceptions.ConnectionError
requests.exceptions.Timeout: requests.exceptions.RequestException
requests.exceptions.ConnectTimeout: requests.exceptions.ConnectionError requests.exceptions.Timeout
requests.exceptions.ReadTimeout: requests.exceptions.Timeout
requests.exceptions.InvalidURL: requests.exceptions.RequestException ValueError
requests.exceptions.MissingSchema: requests.exceptions.RequestException ValueError
requests.exceptions.InvalidSchema: requests.exceptions.RequestException ValueError
requests.exceptions.InvalidJSONError: requests.exceptions.RequestException
requests.exceptions.JSONDecodeError: requests.exceptions.InvalidJSONError
    json.decoder.JSONDecodeError
requests.exceptions.TooManyRedirects: requests.exceptions.RequestException
requests.exceptions.RetryError: requests.exceptions.RequestException
json.decoder.JSONDecodeError: ValueError
"""


def _parse_table(text: str) -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    last = ""
    for line in text.strip("\n").splitlines():
        if line[:1].isspace():
            table[last].extend(line.split())
            continue
        name, _, bases = line.partition(":")
        last = name.strip()
        table[last] = bases.split()
    return {name: tuple(bases) for name, bases in table.items()}


def _linearise(name: str, direct: Mapping[str, tuple[str, ...]], memo: dict[str, list[str]]) -> list[str]:
    """The C3 MRO of ``name`` (dotted names, ``builtins.object`` last)."""
    if name in memo:
        return memo[name]
    if name not in direct:
        import builtins

        cls = getattr(builtins, name.rpartition(".")[2], None)
        if "." in name.removeprefix("builtins.") or not isinstance(cls, type):
            raise ValueError(f"unknown base class {name!r} in the table of exception classes")
        result = [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__]
    else:
        bases = [base if "." in base else f"builtins.{base}" for base in direct[name]]
        sequences = [list(_linearise(base, direct, memo)) for base in bases] + [bases]
        result = [name]
        while any(sequences):
            for sequence in sequences:
                if sequence and not any(sequence[0] in other[1:] for other in sequences):
                    head = sequence[0]
                    break
            else:
                raise ValueError(f"inconsistent bases for {name!r} in the table of exception classes")
            result.append(head)
            sequences = [[item for item in seq if item != head] for seq in sequences]
    memo[name] = result
    return result


def _known_bases(text: str) -> Mapping[str, tuple[str, ...]]:
    direct = _parse_table(text)
    memo: dict[str, list[str]] = {}
    return MappingProxyType(
        {name: tuple(b for b in _linearise(name, direct, memo)[1:] if b != "builtins.object") for name in direct}
    )


KNOWN_BASES: Mapping[str, tuple[str, ...]] = _known_bases(_BASES_TABLE)
"""Printed dotted name -> dotted names of its bases along the MRO (``object`` left out)."""

#: Other spellings of a known class, as users and wrappers print them.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        # h11 defines its exceptions in h11._util and re-exports them from h11.
        "h11.LocalProtocolError": "h11._util.LocalProtocolError",
        "h11.RemoteProtocolError": "h11._util.RemoteProtocolError",
        "h11.ProtocolError": "h11._util.ProtocolError",
        # 2.x re-exports its exceptions from replicate.exceptions and replicate._exceptions.
        **{
            f"replicate.{module}.{name}": f"replicate.{name}"
            for module in ("exceptions", "_exceptions")
            for name in (
                "APIError",
                "APIConnectionError",
                "APITimeoutError",
                "APIResponseValidationError",
                "APIStatusError",
                "AuthenticationError",
                "BadRequestError",
                "ConflictError",
                "InternalServerError",
                "NotFoundError",
                "PermissionDeniedError",
                "RateLimitError",
                "UnprocessableEntityError",
            )
        },
    }
)

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
_LONE = re.compile(
    r"(?<![\w.])(?P<name>(?:[A-Za-z_][A-Za-z0-9_]*\.)+[A-Za-z_][A-Za-z0-9_]*(?:Error|Exception))"
    r"(?:: (?P<message>.*))?$"
)
_DETAILS = re.compile(r"^(?P<key>title|status|detail|code): (?P<value>.*)$")
_ERROR_CODE = re.compile(r"^Error code: (?P<code>\d{3})\b")
_REPLICATE_DIR = re.compile(r"[\\/]replicate[\\/]")


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


def types_for(name: str) -> tuple[str, ...]:
    """The dotted MRO names for a printed exception name (the name itself first)."""
    dotted = name
    if "." not in name:
        import builtins

        candidate = getattr(builtins, name, None)
        if isinstance(candidate, type) and issubclass(candidate, BaseException):
            return tuple(f"{c.__module__}.{c.__qualname__}" for c in candidate.__mro__ if c is not object)
        dotted = f"__main__.{name}"
    canonical = ALIASES.get(dotted, dotted)
    bases = KNOWN_BASES.get(canonical)
    if bases is None:
        return (dotted,)
    names = [dotted] if canonical == dotted else [canonical]
    return tuple(alias for each in (*names, *bases) for alias in public_names(each))


def attributes_for(name: str, message: str) -> Mapping[str, str]:
    """The attributes a printed message reveals, as the live exception would report them."""
    found: dict[str, str] = {}
    lines = message.splitlines()
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


def _prepare(text: str) -> list[_Line]:
    """Split ``text`` into lines without ANSI codes, carriage returns or decoration.

    A prefix repeated on every line of a traceback (``web-1  | `` in docker compose output) is
    taken from the line that holds ``Traceback (most recent call last):`` and removed from the
    lines that follow and start with it.
    """
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    out: list[_Line] = []
    prefix: str | None = None
    for line in text.split("\n"):
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
    for number, line in enumerate(lines):
        if number in consumed or len(chains) >= MAX_CHAINS:
            continue
        match = _LONE.search(line.text)
        if match is None:
            continue
        name = match["name"]
        if ALIASES.get(name, name) not in KNOWN_BASES and not name.startswith("replicate."):
            continue
        lone = Found(name, (match["message"] or "").strip(), (), number + 1)
        chains.append(Chain((lone,), number + 1, number + 1, raw[number]))
    chains.sort(key=lambda chain: chain.start)
    return chains


def exception_infos(chain: Chain) -> list[ExceptionInfo]:
    """The chain's exceptions as the matcher sees them (messages are redacted later)."""
    return [
        ExceptionInfo(
            types=types_for(found.name),
            message=found.message,
            attributes=attributes_for(found.name, found.message),
            in_replicate=any(_REPLICATE_DIR.search(frame) for frame in found.frames),
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
    from ._matcher import pattern_hit

    if not snapshot.relevant:
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
    client: str | None = "detect",
    cwd: str | None = None,
) -> list[Result]:
    """Find every exception chain in ``text`` and explain each one in this environment.

    ``environ`` (default ``os.environ``) and ``cwd`` (default: the working directory) give the
    token and ``.env`` facts; ``client`` is the client version (``"detect"``: the installed one).
    """
    import os

    from ._matcher import explain_snapshot
    from ._snapshot import client_version, snapshot_from_data

    env: Mapping[str, str] = os.environ if environ is None else environ
    version = client_version() if client == "detect" else client
    where = os.getcwd() if cwd is None else cwd
    results = []
    for chain in find_chains(text):
        snapshot = snapshot_from_data(exception_infos(chain), env, version, cwd=where)
        explanation = explain_snapshot(snapshot, rules)
        candidates = () if explanation is not None else shape_candidates(snapshot, rules)
        results.append(Result(chain, snapshot, explanation, candidates))
    return results


# ---------------------------------------------------------------------------------------------
# The ``explain`` command

EPILOG = """\
Exit status: 0 at least one failure explained (or the rule shown), 1 nothing recognised as a
Replicate authentication failure, 2 usage error (unreadable file, unknown rule id).

The token facts (is REPLICATE_API_TOKEN set, its shape), the .env file and the client version
are those of this shell and environment: run the command where the failing program runs, or
name the program's client version with --client. Tokens in the input are masked in the output.
"""


def _read_input(source: str | None) -> tuple[str, str]:
    """The text to explain and a name for it."""
    import sys

    from ._cli import UsageError

    if source in (None, "-"):
        if source is None and sys.stdin is not None and sys.stdin.isatty():
            sys.stderr.write("Paste a traceback, then press Ctrl-D (on Windows: Ctrl-Z, Enter):\n")
            sys.stderr.flush()
        if sys.stdin is None:
            raise UsageError("no standard input to read; name a FILE")
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        return data.decode("utf-8", "replace"), "<stdin>"
    try:
        with open(source, "rb") as handle:
            return handle.read().decode("utf-8", "replace"), source
    except OSError as error:
        reason = error.strerror or str(error)
        raise UsageError(
            f"cannot read {source!r}: {reason}; expected a text file with a traceback or a log, or - for standard input"
        ) from None


def _check_version(value: str | None) -> str | None:
    if value is None:
        return None
    from packaging.version import InvalidVersion, Version

    from ._cli import UsageError

    try:
        Version(value)
    except InvalidVersion:
        raise UsageError(f"--client {value!r} is not a version; expected a release such as 1.0.7 or 2.0.0b4") from None
    return value


def _headline(found: Found, redactor: Any) -> str:
    first = found.message.splitlines()[0] if found.message else ""
    text = f"{found.name}: {first}" if first else found.name
    if len(text) > 200:
        text = text[:197] + "..."
    return str(redactor(text))


def _result_dict(result: Result) -> dict[str, Any]:
    return {
        "lines": [result.chain.start, result.chain.end],
        "exceptions": [
            {
                "type": info.name,
                "types": list(info.types),
                "message": info.message,
                "attributes": dict(info.attributes),
                "in_replicate": info.in_replicate,
            }
            for info in result.snapshot.exceptions
        ],
        "explanation": None if result.explanation is None else result.explanation.to_dict(),
        "candidates": list(result.candidates),
    }


def _explain(args: argparse.Namespace) -> int:
    import os
    import sys

    from ._api import rules
    from ._cli import EXIT_OK, EXIT_PROBLEMS, UsageError, write, write_json
    from ._redact import Redactor

    ruleset = rules()
    if args.rule is not None:
        if args.file is not None:
            raise UsageError("give either FILE or --rule ID, not both")
        from ._rulescmd import find_rule, print_rule

        return print_rule(find_rule(ruleset, args.rule), ruleset, args.format)
    client = _check_version(args.client) or "detect"
    text, name = _read_input(args.file)
    results = explain_text(text, ruleset, client=client)
    explained = [r for r in results if r.explanation is not None]
    redactor = Redactor.from_environ(os.environ)
    if args.format == "json":
        write_json(
            {
                "source": name,
                "client_version": results[0].snapshot.client_version if results else None,
                "explained": len(explained),
                "chains": [_result_dict(r) for r in results],
            }
        )
        return EXIT_OK if explained else EXIT_PROBLEMS
    from ._common import wrap
    from ._render import choose_format, render

    fmt = choose_format(sys.stdout) if args.format == "auto" else args.format
    if fmt == "json":  # REPLICATE_EXPLAIN_FORMAT=json with --format auto
        fmt = "plain"
    if not results:
        write(
            f"replicate-explain: found no exception in {name}; expected a traceback or a log line "
            "naming the exception.\n",
            sys.stderr,
        )
        return EXIT_PROBLEMS
    import shutil

    width = shutil.get_terminal_size((100, 24)).columns
    shown: set[tuple[str, str]] = set()
    out: list[str] = []
    for result in results:
        span = (
            f"line {result.chain.start}"
            if result.chain.start == result.chain.end
            else f"lines {result.chain.start}-{result.chain.end}"
        )
        if args.echo:
            out.append(f"--- {name}, {span} (tokens masked) ---")
            out.append(redactor(result.chain.text).rstrip("\n"))
            out.append("---")
        else:
            out.append(f"{name}, {span}:")
            out.extend(f"  {_headline(found, redactor)}" for found in result.chain.exceptions)
        explanation = result.explanation
        if explanation is None and result.candidates:
            out.append(
                wrap(
                    "This looks like a Replicate authentication failure, but in this shell's "
                    "environment "
                    f"no rule applies (the shapes of {', '.join(result.candidates)} match). The "
                    "token "
                    "facts are read from the environment the command runs in: run "
                    "`replicate-explain "
                    "explain` (or `replicate-explain doctor`) where the failing program runs, or "
                    "name its "
                    "client version with --client."
                )
                + "\n"
            )
            continue
        if explanation is None:
            out.append("  (not a Replicate authentication failure that replicate-explain knows)\n")
            continue
        key = (explanation.rule_id, explanation.exception)
        if key in shown:
            out.append(f"  (the same failure as above: {explanation.rule_id})\n")
            continue
        shown.add(key)
        out.append("")
        out.append(render(explanation, fmt, width=width).rstrip("\n") + "\n")
    write("\n".join(out) + "\n")
    if not explained:
        write(f"replicate-explain: no explanation for {name} (see above).\n", sys.stderr)
    return EXIT_OK if explained else EXIT_PROBLEMS


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``explain`` subcommand."""
    from ._cli import FORMAT_CHOICES, add_format

    parser = subparsers.add_parser(
        "explain",
        help="explain a pasted traceback or a log file; --rule ID explains one rule",
        description=(
            "Explain the Replicate authentication failures in a traceback or a log file "
            "(FILE, or - or nothing for standard input). With --rule ID, print the full "
            "explanation of one rule instead, with every example for every client version."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="a file with a traceback or log; - for standard input",
    )
    parser.add_argument("--rule", metavar="ID", help="print the full explanation of rule ID (see `rules list`)")
    parser.add_argument("--client", metavar="VERSION", help="explain as if this replicate version were installed")
    parser.add_argument(
        "--echo",
        action="store_true",
        help="print each traceback found (tokens masked) above its explanation",
    )
    add_format(parser, FORMAT_CHOICES)
    parser.set_defaults(handler=_explain)
