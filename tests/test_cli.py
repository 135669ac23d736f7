"""The command line as a whole: help everywhere, exit codes, ``python -m``, never a token."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from clients import CANARY
from commandline import cli_env, run_cli
from outputs import leaks

import replicate_explain
from replicate_explain.cli import build_parser, main


def _subcommands() -> list[tuple[str, ...]]:
    """Every command path of the parser, e.g. ``("rules", "show")``."""
    found: list[tuple[str, ...]] = []

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append((*prefix, name))
                    walk(sub, (*prefix, name))

    walk(build_parser(), ())
    return found


COMMANDS = _subcommands()
MINE = {
    ("explain",),
    ("doctor",),
    ("rules",),
    ("rules", "list"),
    ("rules", "show"),
    ("rules", "check"),
    ("demo",),
}


def test_the_parser_has_the_commands_of_issue_4() -> None:
    """explain, doctor, rules (list, show, check) and demo are all registered."""
    assert set(COMMANDS) >= MINE


@pytest.mark.e2e
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_subcommand_has_help_with_exit_codes(command: tuple[str, ...]) -> None:
    """``--help`` works on every subcommand, exits 0 and documents the exit status."""
    done = run_cli(*command, "--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"usage: replicate-explain {' '.join(command)}")
    if command in MINE:
        assert "Exit status" in done.stdout


@pytest.mark.e2e
def test_top_level_help_lists_the_commands_and_exit_codes() -> None:
    """The top-level help names each command and the exit codes."""
    done = run_cli("--help")
    assert done.returncode == 0
    for name in ("explain", "doctor", "rules", "demo"):
        assert f"\n    {name} " in done.stdout
    assert "Exit status: 0 healthy or done, 1 problems found, 2 usage error." in done.stdout


@pytest.mark.e2e
def test_python_dash_m_is_the_same_program() -> None:
    """``python -m replicate_explain`` prints exactly what the console script prints."""
    script = run_cli("rules", "list")
    module = subprocess.run(
        [sys.executable, "-m", "replicate_explain", "rules", "list"],
        env=cli_env(),
        capture_output=True,
        encoding="utf-8",
        check=False,
    )
    assert (module.returncode, module.stdout, module.stderr) == (
        script.returncode,
        script.stdout,
        script.stderr,
    )


@pytest.mark.e2e
def test_version_is_the_installed_distribution_version() -> None:
    """``--version`` prints the version pip installed."""
    done = run_cli("--version")
    assert (done.returncode, done.stdout) == (
        0,
        f"replicate-explain {metadata.version('replicate-explain')}\n",
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "usage: replicate-explain"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("doctor", "--format", "xml"), "invalid choice: 'xml'"),
        (("rules", "show"), "the following arguments are required: ID"),
        (("doctor", "--timeout", "0"), "--timeout must be a number of seconds above 0 and at most 3600, got 0"),
    ],
    ids=["no command", "unknown command", "unknown format", "missing argument", "bad timeout"],
)
def test_usage_errors_exit_2_with_a_message_on_stderr(args: tuple[str, ...], expected: str) -> None:
    """Bad command lines exit 2, print nothing on stdout and say what is wrong on stderr."""
    done = run_cli(*args)
    assert (done.returncode, done.stdout) == (2, "")
    assert expected in done.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unknown_flag_prints_the_usage_of_its_own_subcommand(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """``explain --bogus`` (and every other subcommand with a flag it does not have) exits 2 with
    that subcommand's own usage and its name in the error, not the top-level usage."""
    parser = build_parser()
    for name in command:
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[name]
    required = [a for a in parser._actions if not a.option_strings and a.required and a.nargs is None]
    options = [part for a in parser._actions if a.option_strings and a.required for part in (a.option_strings[0], "x")]
    with pytest.raises(SystemExit) as exited:
        main([*command, *["x"] * len(required), *options, "--bogus"])
    err = capsys.readouterr().err
    assert (exited.value.code, err) == (
        2,
        parser.format_usage() + f"{parser.prog}: error: unrecognized arguments: --bogus\n",
    )
    assert parser.prog == "replicate-explain " + " ".join(command)


@pytest.mark.e2e
def test_explain_bogus_prints_the_explain_usage() -> None:
    """The console script: ``explain --bogus`` names ``explain`` and shows its usage."""
    done = run_cli("explain", "--bogus")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("usage: replicate-explain explain [-h]")
    assert done.stderr.endswith("replicate-explain explain: error: unrecognized arguments: --bogus\n")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"",
            "app.log is empty: there is nothing to explain; expected a traceback or a log; paste the "
            "traceback into standard input (end with Ctrl-D) or name the file that holds it.",
        ),
        (
            b" \n\t\n",
            "app.log holds only whitespace (4 characters): there is nothing to explain; expected a "
            "traceback or a log; copy the whole traceback, from 'Traceback (most recent call last):' "
            "to its last line.",
        ),
        (
            b"\x1f\x8b\x08\x00" + bytes(range(256)),
            "app.log holds binary data, not text: there is nothing to explain; expected a traceback "
            "or a log; give the text of the traceback or the log, as UTF-8 (decompress a .gz log "
            "first: gunzip -c LOG | replicate-explain explain).",
        ),
        (
            b"nothing to see\n",
            "found no exception in app.log; expected a traceback or a log line naming the exception.",
        ),
    ],
    ids=["empty", "whitespace", "binary", "text"],
)
def test_explain_says_why_an_input_holds_nothing_to_explain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data: bytes, message: str
) -> None:
    """Empty input, input of only whitespace and binary data each get their own message saying
    what to give instead (exit 1); text with no exception in it says so."""
    (tmp_path / "app.log").write_bytes(data)
    monkeypatch.chdir(tmp_path)
    status = main(["explain", "app.log"])
    assert (status, capsys.readouterr()) == (1, ("", f"replicate-explain: {message}\n"))


def test_explain_reads_utf16_with_a_byte_order_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log saved as UTF-16 with a byte-order mark (PowerShell's ``>``) is read as text."""
    text = "replicate.exceptions.ReplicateError: Invalid token.\n"
    (tmp_path / "app.log").write_bytes(text.encode("utf-16"))
    monkeypatch.chdir(tmp_path)
    main(["explain", "app.log", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert [e["type"] for e in document["chains"][0]["exceptions"]] == ["replicate.exceptions.ReplicateError"]


def _leak_commands(tmp_path: Path) -> list[tuple[str, ...]]:
    log = tmp_path / "app.log"
    log.write_text(
        "Traceback (most recent call last):\n"
        '  File "/srv/app/site-packages/replicate/client.py", line 88, in _request\n'
        "    resp = self._client.request(method, path, **kwargs)\n"
        f"httpx.LocalProtocolError: Illegal header value b'Bearer {CANARY}\\n'\n",
        encoding="utf-8",
    )
    return [
        ("explain", str(log)),
        ("explain", "--echo", str(log)),
        ("explain", "--format", "json", str(log)),
        ("explain", "--rule", "token-whitespace"),
        ("doctor",),
        ("doctor", "--format", "json"),
        ("rules", "list"),
        ("rules", "list", "--format", "json"),
        ("rules", "show", "token-whitespace", "--format", "json"),
        ("rules", "check"),
        ("demo", "--scenario", "token-whitespace"),
        ("demo", "--scenario", "token-whitespace", "--format", "json"),
        ("status",),
    ]


@pytest.mark.e2e
def test_no_subcommand_prints_the_token(tmp_path: Path) -> None:
    """With the canary token in every token variable, no command prints any piece of it."""
    env = cli_env(
        REPLICATE_API_TOKEN=CANARY + "\n",
        REPLICATE_API_KEY=CANARY,
        REPLICATE_TOKEN=f'"{CANARY}"',
    )
    printed = {}
    for command in _leak_commands(tmp_path):
        if command[0] not in {c[0] for c in COMMANDS}:
            continue
        done = run_cli(*command, env=env, cwd=tmp_path)
        printed[" ".join(command)] = leaks(done.stdout + done.stderr, CANARY)
    assert printed == {key: [] for key in printed}
    assert "explain --echo " + str(tmp_path / "app.log") in printed


def _module_imports() -> dict[str, set[str]]:
    """Each module of the package -> the package modules it imports (in functions too)."""
    import ast

    package = Path(replicate_explain.__file__).parent

    def name(path: Path) -> str:
        parts = path.relative_to(package.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    paths = {name(path): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = here.split(".")[: len(here.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                edges.update(c for c in [target, *(f"{target}.{a.name}" for a in node.names)] if c in paths)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in paths)
        graph[module] = edges - {module}
    return graph


def test_command_modules_share_only_the_output_helpers() -> None:
    """In process: a command module imports the pipeline, ``cli._output`` and ``cli._ruledoc``
    but never another command module; only ``__main__`` imports the command line from outside."""
    cli = "replicate_explain.cli"
    output, ruledoc = f"{cli}._output", f"{cli}._ruledoc"
    wrong = {}
    for module, edges in _module_imports().items():
        into_cli = {edge for edge in edges if edge == cli or edge.startswith(cli + ".")}
        if module == cli:
            allowed = into_cli
        elif module == output:
            allowed = set()
        elif module == ruledoc:
            allowed = {output}
        elif module.startswith(cli + "."):
            allowed = {output, ruledoc}
        elif module == "replicate_explain.__main__":
            allowed = {cli}
        else:
            allowed = set()
        if into_cli - allowed:
            wrong[module] = sorted(into_cli - allowed)
    assert wrong == {}
