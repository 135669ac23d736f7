"""``replicate-explain explain [FILE|-]`` and ``explain --rule ID``: explain pasted text, or one rule.

The text comes from FILE or standard input; :func:`~replicate_explain._pasted.explain_text` finds
and explains its exception chains, and this module prints them (``--echo``: the masked traceback
above each one). The facts come from the text alone (the client generation its frames and
messages show, what it says about the token sent); ``--here`` adds the environment of the shell
running the command (the variable, ``.env``, the installed client), ``--client`` names a client
version.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._pasted import Found, Result, explain_text
from .._textshapes import decode_text
from ._output import EXIT_OK, EXIT_PROBLEMS, FORMAT_CHOICES, HelpFormatter, UsageError, add_format, write, write_json
from ._ruledoc import find_rule, print_rule

EPILOG = """\
Exit status: 0 at least one failure explained (or the rule shown), 1 nothing recognised as a
Replicate authentication failure, 2 usage error (unreadable file, unknown rule id).

The facts come from the text: the header value it prints, what the API's answer says about
the token sent ("You did not pass an authentication token": none was sent), the client
generation and Python version its frames and messages show. This shell's environment is not
read, so a traceback from CI or a colleague's machine is explained as it is. With --here, the
token facts (is REPLICATE_API_TOKEN set, its shape), the .env file and the installed client of
this shell are added (what the text shows still takes precedence): use it where the failing
program runs. Tokens in the input are masked in the output.
"""


def _read_input(source: str | None) -> tuple[str, str]:
    """The text to explain and a name for it."""
    import sys

    if source in (None, "-"):
        if source is None and sys.stdin is not None and sys.stdin.isatty():
            sys.stderr.write("Paste a traceback, then press Ctrl-D (on Windows: Ctrl-Z, Enter):\n")
            sys.stderr.flush()
        if sys.stdin is None:
            raise UsageError("no standard input to read; name a FILE")
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        return decode_text(data), "<stdin>"
    try:
        with open(source, "rb") as handle:
            return decode_text(handle.read()), source
    except OSError as error:
        reason = error.strerror or str(error)
        raise UsageError(
            f"cannot read {source!r}: {reason}; expected a text file with a traceback or a log, or - for standard input"
        ) from None


#: Control characters that text never holds (tab, line breaks, form feed and ESC are text).
_NOT_TEXT = frozenset(chr(code) for code in range(32) if chr(code) not in "\t\n\r\x0c\x1b") | {"\ufffd"}


def unusable_input(text: str) -> str | None:
    """Why ``text`` holds nothing to explain, when that is plain from the text itself: it is
    empty, only whitespace, or binary data (a NUL byte, or more than one character in ten that
    is a control character or a byte that is not UTF-8). ``None`` when it is text."""
    if not text:
        return "is empty"
    if not text.strip():
        return f"holds only whitespace ({len(text)} character{'s' if len(text) != 1 else ''})"
    odd = sum(1 for char in text if char in _NOT_TEXT)
    if "\x00" in text or odd * 10 > len(text):
        return "holds binary data, not text"
    return None


_WHAT_TO_DO = {
    "is empty": "paste the traceback into standard input (end with Ctrl-D) or name the file that holds it",
    "holds only whitespace": "copy the whole traceback, from 'Traceback (most recent call last):' to its last line",
    "holds binary data": "give the text of the traceback or the log, as UTF-8 (decompress a .gz log first: "
    "gunzip -c LOG | replicate-explain explain)",
}


def _check_version(value: str | None) -> str | None:
    if value is None:
        return None
    from packaging.version import InvalidVersion, Version

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

    from .._api import rules
    from .._mask import Redactor

    ruleset = rules()
    if args.rule is not None:
        if args.file is not None:
            raise UsageError("give either FILE or --rule ID, not both")
        return print_rule(find_rule(ruleset, args.rule), ruleset, args.format)
    client = _check_version(args.client) or ("detect" if args.here else None)
    text, name = _read_input(args.file)
    results = explain_text(text, ruleset, os.environ if args.here else None, client=client)
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
    from .._common import wrap
    from .._render import choose_format, render

    fmt = choose_format(sys.stdout) if args.format == "auto" else args.format
    if fmt == "json":  # REPLICATE_EXPLAIN_FORMAT=json with --format auto
        fmt = "plain"
    if not results:
        reason = unusable_input(text)
        if reason is not None:
            hint = next(value for key, value in _WHAT_TO_DO.items() if reason.startswith(key))
            message = f"{name} {reason}: there is nothing to explain; expected a traceback or a log; {hint}."
        else:
            message = f"found no exception in {name}; expected a traceback or a log line naming the exception."
        write(f"replicate-explain: {message}\n", sys.stderr)
        return EXIT_PROBLEMS
    import shutil

    width = shutil.get_terminal_size((80, 24)).columns
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
            shapes = ", ".join(result.candidates)
            hint = (
                "This looks like a Replicate authentication failure, but in this shell's environment "
                f"no rule applies (the shapes of {shapes} match). Run `replicate-explain explain "
                "--here` (or `replicate-explain doctor`) where the failing program runs, or name its "
                "client version with --client."
                if args.here
                else "This looks like a Replicate authentication failure, but the text does not show "
                f"enough to tell which rule applies (the shapes of {shapes} match). Run "
                "`replicate-explain explain --here` where the failing program runs to add that "
                "shell's environment (the variable, .env, the installed client), or name the "
                "client version with --client."
            )
            out.append(wrap(hint) + "\n")
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
    parser = subparsers.add_parser(
        "explain",
        help="explain a pasted traceback or a log file; --rule ID explains one rule",
        description=(
            "Explain the Replicate authentication failures in a traceback or a log file "
            "(FILE, or - or nothing for standard input). With --rule ID, print the full "
            "explanation of one rule instead, with every example for every client version."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
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
        "--here",
        action="store_true",
        help="also read this shell's environment (REPLICATE_API_TOKEN, .env, the installed client); "
        "by default only the text counts",
    )
    parser.add_argument(
        "--echo",
        action="store_true",
        help="print each traceback found (tokens masked) above its explanation",
    )
    add_format(parser, FORMAT_CHOICES)
    parser.set_defaults(handler=_explain)
