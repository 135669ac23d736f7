"""Explaining tracebacks given as text: the parser, the class table, ``replicate-explain explain``.

The central property: a traceback printed by a real client, pasted into ``explain``, gives the
same exceptions (types, messages, attributes) as the live exception's snapshot, and the same
rule as the hook showed under it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from clients import CANARY, CLIENT_VERSIONS, MODEL_REF, client_path, run_program
from commandline import cli_env, run_cli, run_json
from outputs import explanations, leaks

from replicate_explain._hierarchy import KNOWN_BASES, types_for
from replicate_explain._loopback import LoopbackAPI
from replicate_explain._pasted import Chain, Found, attributes_for, exception_infos, find_chains
from replicate_explain._snapshot import snapshot_from_data

# ---------------------------------------------------------------------------------------------
# Real tracebacks of every client generation

TOKENS: dict[str, str | None] = {
    "unset": None,
    "empty": "",
    "newline": CANARY + "\n",
    "rejected": CANARY,
    "quoted": f'"{CANARY}"',
}

# Prints the live snapshot of the exceptions that the traceback shows (Python hides a context
# suppressed by ``raise ... from None``, which the snapshot keeps), then lets the hook run.
_PROGRAM = f"""
import json
import replicate_explain
from replicate_explain._snapshot import iter_chain, take_snapshot
import replicate

def printed(exc):
    shown = set()
    while exc is not None and id(exc) not in shown:
        shown.add(id(exc))
        if exc.__cause__ is not None:
            exc = exc.__cause__
        elif exc.__context__ is not None and not exc.__suppress_context__:
            exc = exc.__context__
        else:
            exc = None
    return shown

try:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
except BaseException as exc:
    shown = printed(exc)
    infos = zip(iter_chain(exc), take_snapshot(exc).exceptions)
    described = [
        [list(i.types), i.message, dict(i.attributes), i.in_replicate]
        for e, i in infos
        if id(e) in shown
    ]
    print(json.dumps(described))
    raise
"""


def _described(infos: Any) -> list[list[Any]]:
    return [[list(i.types), i.message, dict(i.attributes), i.in_replicate] for i in infos]


@pytest.mark.e2e
@pytest.mark.parametrize("cause", list(TOKENS))
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_printed_traceback_reads_back_as_the_live_exceptions(
    api: LoopbackAPI, tmp_path: Path, version: str, cause: str
) -> None:
    """The text of a real traceback gives the live snapshot's exceptions, and the hook's rule."""
    token = TOKENS[cause]
    done = run_program(_PROGRAM, version, api, token, extra_env={"REPLICATE_EXPLAIN_FORMAT": "json"})
    live = json.loads(done.stdout)
    shown = explanations(done.stderr)
    traceback_text = "\n".join(line for line in done.stderr.splitlines() if not line.startswith('{"rule_id"'))
    environ = {} if token is None else {"REPLICATE_API_TOKEN": token}

    chains = find_chains(traceback_text)
    assert len(chains) == 1
    parsed = snapshot_from_data(exception_infos(chains[0]), environ, version)
    assert _described(parsed.exceptions) == live

    log = tmp_path / "traceback.txt"
    log.write_text(traceback_text, encoding="utf-8")
    status, document = run_json("explain", str(log), "--here", "--client", version, env=cli_env(environ), cwd=tmp_path)
    rules = [chain["explanation"]["rule_id"] if chain["explanation"] else None for chain in document["chains"]]
    assert (status, rules) == ((0, [shown[0]["rule_id"]]) if shown else (1, [None]))
    assert leaks(json.dumps(document), CANARY) == []


@pytest.mark.e2e
def test_class_table_matches_the_real_packages() -> None:
    """KNOWN_BASES equals the MRO of each class in the releases that define it."""
    probe = (
        "import importlib, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    module, _, attr = name.rpartition('.')\n"
        "    try:\n"
        "        cls = getattr(importlib.import_module(module), attr)\n"
        "    except Exception:\n"
        "        continue\n"
        "    dotted = [f'{c.__module__}.{c.__qualname__}' for c in cls.__mro__ if c is not "
        "object]\n"
        "    if dotted[0] == name:\n"
        "        out[name] = dotted[1:]\n"
        "print(json.dumps(out))\n"
    )
    seen: dict[str, tuple[str, ...]] = {}
    for version in CLIENT_VERSIONS:
        done = subprocess.run(
            [sys.executable, "-c", probe, *KNOWN_BASES],
            env={**cli_env(), "PYTHONPATH": str(client_path(version))},
            capture_output=True,
            text=True,
            check=True,
        )
        for name, bases in json.loads(done.stdout).items():
            assert seen.setdefault(name, tuple(bases)) == tuple(bases), name
    assert seen == dict(KNOWN_BASES)


# ---------------------------------------------------------------------------------------------
# The parser on its own

_1X_UNSET = """\
Traceback (most recent call last):
  File "/app/main.py", line 3, in <module>
    replicate.run("acme/hello-world", input={})
  File "/venv/lib/python3.11/site-packages/replicate/client.py", line 407, in _raise_for_status
    raise ReplicateError.from_response(resp)
replicate.exceptions.ReplicateError: ReplicateError Details:
title: Unauthenticated
status: 401
detail: You did not pass an authentication token
"""

_2X_EMPTY = """\
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/httpx/_transports/default.py", line 118, in map_exc
    raise mapped_exc(message) from exc
httpx.LocalProtocolError: Illegal header value b'Bearer '

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/main.py", line 3, in <module>
  File "/venv/lib/python3.11/site-packages/replicate/_base_client.py", line 1012, in request
    raise APIConnectionError(request=request) from err
replicate.APIConnectionError: Connection error.
"""

_FOUND_1X = Found(
    "replicate.exceptions.ReplicateError",
    "ReplicateError Details:\ntitle: Unauthenticated\nstatus: 401\ndetail: You did not pass an authentication token",
    ("/app/main.py", "/venv/lib/python3.11/site-packages/replicate/client.py"),
    6,
)


def _names(chains: list[Chain]) -> list[list[tuple[str, str, int]]]:
    return [[(f.name, f.message, f.line) for f in chain.exceptions] for chain in chains]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_1X_UNSET, [[(_FOUND_1X.name, _FOUND_1X.message, 6)]]),
        (
            _2X_EMPTY,
            [
                [
                    ("replicate.APIConnectionError", "Connection error.", 12),
                    ("httpx.LocalProtocolError", "Illegal header value b'Bearer '", 4),
                ]
            ],
        ),
        # docker compose prefixes every line; ANSI colours; Windows line ends
        (
            "".join(f"web-1  | {line}\r\n" for line in _1X_UNSET.splitlines()).replace(
                "Traceback", "\x1b[31mTraceback\x1b[0m", 1
            ),
            [[(_FOUND_1X.name, _FOUND_1X.message, 6)]],
        ),
        # a log record right after the traceback ends the message
        (
            "2024-05-01 12:00:00,000 ERROR app: prediction failed\n"
            + _1X_UNSET
            + "2024-05-01 12:00:01,000 INFO app: retrying\n",
            [[(_FOUND_1X.name, _FOUND_1X.message, 7)]],
        ),
        # a message with a blank line inside (0.x), and unrelated text after a blank line
        (
            'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
            "replicate.exceptions.ReplicateError: No API token provided.\n\nYou can find your API "
            "key on https://replicate.com\n"
            "\n    indented trailing text\n",
            [
                [
                    (
                        "replicate.exceptions.ReplicateError",
                        "No API token provided.\n\nYou can find your API key on https://replicate.com",
                        3,
                    )
                ]
            ],
        ),
        # a lone exception line in a log, outside any traceback
        (
            "ERROR:worker:failed: replicate.exceptions.ReplicateError: You did not pass a valid authentication token\n",
            [
                [
                    (
                        "replicate.exceptions.ReplicateError",
                        "You did not pass a valid authentication token",
                        1,
                    )
                ]
            ],
        ),
        # lone lines naming classes we do not know are ignored; so is plain text
        ("ERROR: myapp.errors.QuotaError: too many requests\nall good here\n", []),
        ("", []),
    ],
    ids=[
        "1.x",
        "2.x chain",
        "prefixed ansi crlf",
        "log records",
        "paragraphs",
        "lone line",
        "unknown",
        "empty",
    ],
)
def test_find_chains(text: str, expected: list[list[tuple[str, str, int]]]) -> None:
    """Traceback blocks and lone lines become chains, outermost exception first, with lines."""
    assert _names(find_chains(text)) == expected


def test_exception_group_members_join_the_group_chain() -> None:
    """A Python 3.11 exception group and its members, decoration removed, form one chain."""
    text = (
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "x.py", line 9, in <module>\n'
        "  | ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | Traceback (most recent call last):\n"
        '    |   File "/venv/site-packages/replicate/client.py", line 3, in f\n'
        "    | replicate.exceptions.ReplicateError: You did not pass an authentication token\n"
        "    +---------------- 2 ----------------\n"
        "    | ValueError: b\n"
        "    +------------------------------------\n"
    )
    assert _names(find_chains(text)) == [
        [
            ("ExceptionGroup", "unhandled errors in a TaskGroup (2 sub-exceptions)", 3),
            ("replicate.exceptions.ReplicateError", "You did not pass an authentication token", 7),
            ("ValueError", "b", 9),
        ]
    ]


def test_exception_infos_of_a_parsed_chain() -> None:
    """Types come from the class table, attributes from the message, in_replicate from frames."""
    (chain,) = find_chains(_1X_UNSET)
    (info,) = exception_infos(chain)
    assert (info.types, info.message, dict(info.attributes), info.in_replicate) == (
        (
            "replicate.exceptions.ReplicateError",
            "replicate.exceptions.ReplicateException",
            "builtins.Exception",
            "builtins.BaseException",
        ),
        _FOUND_1X.message,
        {
            "title": "Unauthenticated",
            "status": "401",
            "detail": "You did not pass an authentication token",
        },
        True,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ValueError", ("builtins.ValueError", "builtins.Exception", "builtins.BaseException")),
        ("MyError", ("__main__.MyError",)),
        ("acme.Boom", ("acme.Boom",)),
        (
            "h11.LocalProtocolError",
            (
                "h11._util.LocalProtocolError",
                "h11.LocalProtocolError",
                "h11._util.ProtocolError",
                "h11.ProtocolError",
                "builtins.Exception",
                "builtins.BaseException",
            ),
        ),
        (
            "replicate.APIConnectionError",
            (
                "replicate.APIConnectionError",
                "replicate.APIError",
                "replicate.ReplicateError",
                "builtins.Exception",
                "builtins.BaseException",
            ),
        ),
    ],
)
def test_types_for(name: str, expected: tuple[str, ...]) -> None:
    """Builtins resolve from this Python, known classes from the table, aliases to their class."""
    assert types_for(name) == expected


@pytest.mark.parametrize(
    ("name", "message", "expected"),
    [
        (
            "replicate.AuthenticationError",
            "Error code: 401 - {'title': 'Unauthenticated'}",
            {"status_code": "401"},
        ),
        (
            "replicate.exceptions.ReplicateError",
            "ReplicateError Details:\nstatus: 404\ndetail: Not found",
            {"status": "404", "detail": "Not found"},
        ),
        (
            "replicate.exceptions.ReplicateError",
            "You did not pass a valid authentication token",
            {},
        ),
        ("myapp.Error", "Error code: 401 - nope", {}),
    ],
)
def test_attributes_for(name: str, message: str, expected: dict[str, str]) -> None:
    """What a printed message reveals of status, status_code, title and detail."""
    assert dict(attributes_for(name, message)) == expected


# ---------------------------------------------------------------------------------------------
# The command


@pytest.mark.e2e
def test_explain_from_stdin_plain(tmp_path: Path) -> None:
    """A traceback piped in is echoed as its exception lines, then explained; exit 0."""
    done = run_cli("explain", "--format", "plain", stdin=_1X_UNSET, cwd=tmp_path, env=cli_env())
    assert done.returncode == 0
    assert done.stdout.startswith(
        "<stdin>, lines 1-9:\n"
        "  replicate.exceptions.ReplicateError: ReplicateError Details:\n\n"
        "replicate-explain: token-unset: REPLICATE_API_TOKEN is not set\n"
    )


@pytest.mark.e2e
def test_explain_echo_masks_the_token(tmp_path: Path) -> None:
    """``--echo`` reprints the traceback found, with the token masked."""
    text = _2X_EMPTY.replace("b'Bearer '", f"b'Bearer {CANARY}\\n'")
    done = run_cli(
        "explain",
        "--echo",
        "-",
        stdin=text,
        cwd=tmp_path,
        env=cli_env(REPLICATE_API_TOKEN=CANARY + "\n"),
    )
    assert done.returncode == 0
    assert "httpx.LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'" in done.stdout
    assert "replicate-explain: token-whitespace:" in done.stdout
    assert leaks(done.stdout + done.stderr, CANARY) == []


@pytest.mark.e2e
def test_explain_json_document(tmp_path: Path) -> None:
    """``--format json`` gives every chain: its lines, exceptions, explanation and candidates."""
    status, document = run_json("explain", "-", stdin=_2X_EMPTY, cwd=tmp_path, env=cli_env(REPLICATE_API_TOKEN=""))
    (chain,) = document["chains"]
    assert status == 0
    assert (document["source"], document["explained"], chain["lines"]) == ("<stdin>", 1, [1, 12])
    assert [e["type"] for e in chain["exceptions"]] == [
        "replicate.APIConnectionError",
        "httpx.LocalProtocolError",
    ]
    assert (chain["explanation"]["rule_id"], chain["candidates"]) == ("token-empty", [])


@pytest.mark.e2e
def test_explain_says_when_the_text_does_not_show_enough(tmp_path: Path) -> None:
    """2022's "Invalid token." meant no token or a refused one, and the text does not say which:
    exit 1 and the rules the shape resembles, with the way to add this shell's facts."""
    text = "replicate.exceptions.ReplicateError: Invalid token.\n"
    status, document = run_json("explain", "-", stdin=text, cwd=tmp_path, env=cli_env())
    (chain,) = document["chains"]
    assert (status, chain["explanation"]) == (1, None)
    assert "token-unset" in chain["candidates"]
    done = run_cli("explain", "-", stdin=text, cwd=tmp_path, env=cli_env())
    assert "the text does not show enough to tell which rule applies" in " ".join(done.stdout.split())
    assert "replicate-explain explain --here" in " ".join(done.stdout.split())


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("text", "stderr"),
    [
        ("nothing to see\n", "replicate-explain: found no exception in <stdin>"),
        (
            "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'x'\n",
            "replicate-explain: no explanation for <stdin>",
        ),
    ],
)
def test_explain_exits_1_when_nothing_is_recognised(tmp_path: Path, text: str, stderr: str) -> None:
    """No exception, or an unrelated one: exit 1 with a message on stderr."""
    done = run_cli("explain", "-", stdin=text, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(stderr)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("explain", "/no/such/file.log"),
            "cannot read '/no/such/file.log': No such file or directory",
        ),
        (
            ("explain", "--client", "one", "-"),
            "--client 'one' is not a version; expected a release such as 1.0.7",
        ),
        (
            ("explain", "--rule", "token-unst"),
            "no rule with id 'token-unst'; did you mean 'token-unset'?",
        ),
        (("explain", "--rule", "token-unset", "x.log"), "give either FILE or --rule ID, not both"),
    ],
)
def test_explain_usage_errors(args: tuple[str, ...], message: str) -> None:
    """Unreadable files, bad versions and unknown rule ids exit 2 and say what was expected."""
    done = run_cli(*args, stdin="")
    assert (done.returncode, done.stdout) == (2, "")
    assert message in done.stderr


@pytest.mark.e2e
def test_explain_rule_is_rules_show() -> None:
    """``explain --rule ID`` prints the same long explanation as ``rules show ID``."""
    explained = run_cli("explain", "--rule", "token-whitespace")
    shown = run_cli("rules", "show", "token-whitespace")
    assert (explained.returncode, explained.stdout) == (0, shown.stdout)
    assert explained.stdout.startswith(
        "token-whitespace: REPLICATE_API_TOKEN has whitespace or a line break around it\n"
    )


@pytest.mark.e2e
def test_explain_reads_no_environment_unless_here(tmp_path: Path) -> None:
    """By default the shell's token does not count (the text says none was sent: token-unset);
    ``--here`` adds this shell's environment, where the variable is set."""
    env = cli_env(REPLICATE_API_TOKEN=CANARY)
    status, document = run_json("explain", "-", stdin=_1X_UNSET, cwd=tmp_path, env=env)
    (chain,) = document["chains"]
    assert (status, chain["explanation"]["rule_id"]) == (0, "token-unset")
    assert chain["explanation"]["evidence"][:2] == [
        "the API's answer says the request carried no token",
        "the text shows replicate 1.x on Python 3.11; no environment was read (--here reads this shell's)",
    ]
    here_status, here = run_json("explain", "--here", "-", stdin=_1X_UNSET, cwd=tmp_path, env=env)
    # Here the variable holds a token, and the failed request sent none: not an unset variable.
    assert (here_status, [c["explanation"]["rule_id"] for c in here["chains"]]) == (0, ["token-stale-in-process"])
    assert leaks(json.dumps(document) + json.dumps(here), CANARY) == []
