"""``replicate-explain demo``: real replicate failures, explained, in a few seconds.

Each scenario is a tiny program using the *installed* replicate client, run in its own
interpreter (``sys.executable``) against a :class:`~replicate_explain._loopback.LoopbackAPI` that
this command starts on 127.0.0.1: no network and no real token (the demo never passes the
caller's ``REPLICATE_*`` variables on; its tokens are fake and refused). What is printed under
each header is the child's own stderr: the original traceback, tokens masked by the hook (a
``File`` line wider than the width has its library path cut to ``…/``), then the explanation.
Scenarios whose rule is not loaded, or that do not apply to the installed client, are skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._output import EXIT_OK, EXIT_PROBLEMS, FORMAT_CHOICES, HelpFormatter, UsageError, add_format, write, write_json

DEMO_TOKEN = "r8_" + "Demo0Token0Not0Real".ljust(37, "0")
"""A well-formed token that the demo's loopback API refuses (it accepts none)."""

MODEL = "acme/hello-world"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
_MODEL_LINES = f"""\
MODEL = "{MODEL}"
VERSION = "{VERSION}"
"""  # the programs are listed indented by 4: every line fits in 80 columns

_RUN = f"""\
import replicate_explain  # the only line replicate-explain asks you to add
import replicate

{_MODEL_LINES}
output = replicate.run(f"{{MODEL}}:{{VERSION}}", input={{"text": "hello"}})
print(output)
"""

_RENAMED_2X = f"""\
import os

import replicate_explain
import replicate

{_MODEL_LINES}
client = replicate.Replicate(api_token=os.environ["REPLICATE_API_TOKEN"])
print(client.run(f"{{MODEL}}:{{VERSION}}", input={{"text": "hello"}}))
"""

_RENAMED_1X = f"""\
import os

import replicate_explain
import replicate

{_MODEL_LINES}
client = replicate.Client(bearer_token=os.environ["REPLICATE_API_TOKEN"])
print(client.run(f"{{MODEL}}:{{VERSION}}", input={{"text": "hello"}}))
"""

EPILOG = """\
Exit status: 0 every scenario was explained by its rule, 1 a scenario showed another rule or
none (printed at the end), 2 usage error (an unknown scenario).

No network is used and no real token: the scenarios run against a loopback stand-in for the
Replicate API on 127.0.0.1, with fake tokens, and without your REPLICATE_* variables.
"""


@dataclass(frozen=True)
class Scenario:
    """One failure to show: the rule that should explain it, the environment, the program."""

    rule: str
    setting: str
    """How the environment is set up, for the header (no secret in it)."""
    token: str | None
    """REPLICATE_API_TOKEN for the program (``None``: unset)."""
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    program: str = _RUN
    program_2x: str | None = None
    """The program for 2.x clients when it differs."""
    clients: str = ""
    """The client versions the scenario applies to (a packaging specifier; empty: all)."""

    def code(self, version: str | None) -> str:
        if self.program_2x is not None and _major(version) >= 2:
            return self.program_2x
        return self.program


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("token-unset", "REPLICATE_API_TOKEN is not set", None),
    Scenario(
        "token-whitespace",
        "REPLICATE_API_TOKEN holds a token and a trailing newline (read from a file)",
        DEMO_TOKEN + "\n",
    ),
    Scenario("token-empty", 'REPLICATE_API_TOKEN="" (an unfilled .env line or a missing CI secret)', ""),
    Scenario(
        "token-quoted",
        'REPLICATE_API_TOKEN="r8_..." with the quotes kept (Windows `set VAR="..."`)',
        f'"{DEMO_TOKEN}"',
    ),
    Scenario("token-scheme-prefixed", 'REPLICATE_API_TOKEN="Bearer r8_..."', f"Bearer {DEMO_TOKEN}"),
    Scenario(
        "token-lookalike-var",
        "REPLICATE_API_KEY is set, REPLICATE_API_TOKEN is not",
        None,
        MappingProxyType({"REPLICATE_API_KEY": DEMO_TOKEN}),
    ),
    Scenario(
        "dotenv-not-loaded",
        "a .env file in the working directory defines the token; nothing loads it",
        None,
        files=MappingProxyType({".env": f"REPLICATE_API_TOKEN={DEMO_TOKEN}\n"}),
    ),
    Scenario(
        "token-rejected",
        "REPLICATE_API_TOKEN holds a well-formed token the API refuses (revoked)",
        DEMO_TOKEN,
        clients=">=0.15.4",
    ),
    Scenario(
        "client-param-renamed",
        "the token is passed with the keyword of another client generation",
        DEMO_TOKEN,
        program=_RENAMED_1X,
        program_2x=_RENAMED_2X,
        clients=">=0.15.4",
    ),
)
DEFAULT = ("token-unset", "token-whitespace", "token-empty", "token-quoted")
"""The scenarios shown without ``--all`` or ``--scenario`` (those whose rules exist)."""


def _major(version: str | None) -> int:
    if not version:
        return 0
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def applies(scenario: Scenario, version: str | None) -> bool:
    """Whether the scenario applies to the installed client ``version``."""
    from .._common import version_in

    return version is not None and (not scenario.clients or version_in(scenario.clients, version))


def select(names: Sequence[str], everything: bool, rule_ids: Sequence[str], version: str | None) -> list[Scenario]:
    """The scenarios to run: named ones (rule ids), all, or the default few; only runnable ones."""
    known = {s.rule: s for s in SCENARIOS}
    if names:
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UsageError(f"unknown scenario {', '.join(map(repr, unknown))}; expected one of: {', '.join(known)}")
        chosen = [known[name] for name in names]
        missing = [s.rule for s in chosen if s.rule not in rule_ids]
        if missing:
            raise UsageError(
                f"no rule {', '.join(missing)} is loaded, so there is nothing to show (see "
                "`replicate-explain rules list`)"
            )
        off = [s.rule for s in chosen if not applies(s, version)]
        if off:
            raise UsageError(f"scenario {', '.join(off)} does not apply to replicate {version or '(not installed)'}")
        return chosen
    pool = SCENARIOS if everything else tuple(known[name] for name in DEFAULT)
    return [s for s in pool if s.rule in rule_ids and applies(s, version)]


@dataclass(frozen=True)
class Outcome:
    """What one scenario's program did."""

    scenario: Scenario
    code: str
    exit_status: int
    stderr: str
    shown: str | None
    """The rule id of the explanation the program printed (``None``: none)."""


def child_environ(api_url: str, version: str | None, fmt: str, width: int, color: bool) -> dict[str, str]:
    """The environment of a scenario's program, before its own token settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith("REPLICATE_") or key in ("REPLICATE_EXPLAIN_RULES", "REPLICATE_EXPLAIN_DEBUG")
    }
    # The directory holding the replicate_explain package (this file is replicate_explain/cli/_demo.py).
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH", "")]))
    env["REPLICATE_BASE_URL"] = f"{api_url}/v1" if _major(version) >= 2 else api_url
    env["REPLICATE_API_BASE_URL"] = api_url
    env["REPLICATE_POLL_INTERVAL"] = "0.01"
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    env["REPLICATE_EXPLAIN_FORMAT"] = fmt
    env["PYTHONIOENCODING"] = "utf-8"
    env["COLUMNS"] = str(width)
    env.pop("PYTHONSTARTUP", None)
    env.pop("NO_COLOR" if color else "FORCE_COLOR", None)
    env["FORCE_COLOR" if color else "NO_COLOR"] = "1"
    return env


_JSON_START = '{"rule_id"'


def _shown_rule(stderr: str, fmt: str) -> str | None:
    import json
    import re

    if fmt == "json":
        for line in stderr.splitlines():
            if line.startswith(_JSON_START):
                try:
                    value = json.loads(line).get("rule_id")
                except ValueError:
                    continue
                return value if isinstance(value, str) else None
        return None
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\", "", stderr)
    match = re.search(r"^replicate-explain: ([a-z0-9-]+): ", plain, re.M) or re.search(
        r"replicate-explain · ([a-z0-9-]+)", plain
    )
    return match.group(1) if match else None


def run_scenario(scenario: Scenario, base_env: Mapping[str, str], version: str | None, fmt: str) -> Outcome:
    """Run one scenario's program in a fresh interpreter and collect its stderr."""
    import subprocess
    import tempfile

    from .._mask import Redactor

    code = scenario.code(version)
    env = dict(base_env)
    if scenario.token is not None:
        env["REPLICATE_API_TOKEN"] = scenario.token
    env.update(scenario.env)
    with tempfile.TemporaryDirectory(prefix="replicate-explain-demo-") as workdir:
        for name, text in scenario.files.items():
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        script = os.path.join(workdir, "demo.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(code)
        try:
            done = subprocess.run(
                [sys.executable, script],
                env=env,
                cwd=workdir,
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                timeout=120,
                check=False,
            )
            status, stderr = done.returncode, done.stderr
        except subprocess.TimeoutExpired:
            status, stderr = -1, "the program did not finish within 120 seconds\n"
    secrets = [DEMO_TOKEN, *(v for v in scenario.env.values())]
    if scenario.token:
        secrets.append(scenario.token)
    redactor = Redactor(secrets)
    # JSON explanations stay intact here (masking serialised JSON could break an escape);
    # their strings are masked when the demo prints them (``write_json``).
    lines = [
        line if line.startswith(_JSON_START) else redactor(line)
        for line in stderr.replace(workdir, "<demo>").split("\n")
    ]
    stderr = "\n".join(lines)
    return Outcome(scenario, code, status, stderr, _shown_rule(stderr, fmt))


def run_all(scenarios: Sequence[Scenario], version: str | None, fmt: str, width: int, color: bool) -> Any:
    """Start the loopback API, run the scenarios two at a time, yield outcomes in order."""
    from concurrent.futures import ThreadPoolExecutor

    from .._loopback import LoopbackAPI

    with LoopbackAPI(tokens=()) as api, ThreadPoolExecutor(max_workers=2) as pool:
        base = child_environ(api.url, version, fmt, width, color)
        futures = [pool.submit(run_scenario, s, base, version, fmt) for s in scenarios]
        for future in futures:
            yield future.result()


def _header(number: int, total: int, outcome: Outcome, version: str | None, width: int) -> str:
    from .._common import indent

    scenario = outcome.scenario
    title = f"=== {number}/{total}  {scenario.rule} "
    lines = [title + "=" * max(3, min(width, 100) - len(title)), ""]
    lines.append(_wrap(f"Setting: {scenario.setting}", width, 9))
    lines.append(
        _wrap(f"Client:  replicate {version}, talking to a loopback stand-in for the API (no network)", width, 9)
    )
    lines.append("Program (demo.py):")
    lines.append(indent(outcome.code.rstrip(), 4))
    lines.append("")
    lines.append(_wrap(f"$ python demo.py   (exit status {outcome.exit_status}; what it printed to stderr:)", width, 2))
    lines.append("")
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int, hanging: int = 0) -> str:
    from .._common import wrap

    return wrap(text, 0, hanging, columns=width)


def _demo(args: argparse.Namespace) -> int:
    import shutil

    from .._api import rules
    from .._render import choose_format, wants_color
    from .._snapshot import client_version
    from ._output import PATHS_NOTE, shorten_traceback_paths

    version = client_version()
    if args.list:
        ids = {r.id for r in rules().rules}
        lines = []
        for scenario in SCENARIOS:
            state = "default" if scenario.rule in DEFAULT else "--all"
            if scenario.rule not in ids:
                state = "skipped: rule not loaded"
            elif not applies(scenario, version):
                state = f"skipped: not for replicate {version}"
            lines.append(f"{scenario.rule:<24} {scenario.setting}  [{state}]")
        write("\n".join(lines) + "\n")
        return EXIT_OK
    if version is None:
        write(
            "replicate-explain demo: the replicate package is not installed here; install it with "
            "`pip install replicate`.\n",
            sys.stderr,
        )
        return EXIT_PROBLEMS
    chosen = select(args.scenario or [], args.all, [r.id for r in rules().rules], version)
    if not chosen:
        write(
            f"replicate-explain demo: no scenario applies to replicate {version} with the rules loaded.\n",
            sys.stderr,
        )
        return EXIT_PROBLEMS
    fmt = args.format
    if fmt == "auto":
        fmt = choose_format(sys.stdout)
    # COLUMNS, else the terminal's width, else 80 (a pipe); the programs get it as COLUMNS.
    width = min(200, max(60, shutil.get_terminal_size((80, 24)).columns))
    color = fmt == "rich" and wants_color(sys.stdout)  # as the excepthook decides (FORCE_COLOR too)
    failures: list[str] = []
    if fmt == "json":
        items = []
        for outcome in run_all(chosen, version, fmt, width, color):
            items.append(_outcome_dict(outcome))
            if outcome.shown != outcome.scenario.rule:
                failures.append(outcome.scenario.rule)
        write_json({"client_version": version, "ok": not failures, "scenarios": items})
        return EXIT_PROBLEMS if failures else EXIT_OK
    opening = (
        f"replicate-explain demo: {len(chosen)} real replicate {version} failures, each run in its own "
        "Python against a loopback API (no network, fake tokens)."
    )
    write(_wrap(opening, width) + "\n\n")
    for number, outcome in enumerate(run_all(chosen, version, fmt, width, color), 1):
        write(_header(number, len(chosen), outcome, version, width))
        text, shortened = shorten_traceback_paths(outcome.stderr.rstrip("\n"), width)
        write(text + "\n" + (_wrap(PATHS_NOTE.format(os.sep, width), width - 2) + "\n" if shortened else "") + "\n")
        if outcome.shown != outcome.scenario.rule:
            failures.append(f"{outcome.scenario.rule}: showed {outcome.shown or 'no explanation'}")
    if failures:
        write(
            "replicate-explain demo: scenarios not explained as expected: " + "; ".join(failures) + "\n",
            sys.stderr,
        )
        return EXIT_PROBLEMS
    runnable = select([], True, [r.id for r in rules().rules], version)
    others = [s.rule for s in runnable if s not in chosen]
    more = (
        f" More: replicate-explain demo --all ({', '.join(others)})."
        if others and not args.all and not args.scenario
        else ""
    )
    write(_wrap(f"Each failure above was explained under its own traceback.{more}", width) + "\n")
    return EXIT_OK


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    import json

    explanation = None
    traceback_lines = []
    for line in outcome.stderr.splitlines():
        if line.startswith(_JSON_START) and explanation is None:
            try:
                explanation = json.loads(line)
                continue
            except ValueError:
                pass
        traceback_lines.append(line)
    return {
        "rule": outcome.scenario.rule,
        "setting": outcome.scenario.setting,
        "program": outcome.code,
        "exit_status": outcome.exit_status,
        "stderr": "\n".join(traceback_lines) + "\n",
        "shown": outcome.shown,
        "ok": outcome.shown == outcome.scenario.rule,
        "explanation": explanation,
    }


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="watch real replicate failures explained (no network, no token)",
        description=(
            "Run small programs that fail the way Replicate authentication really fails, with the "
            "installed replicate client against a loopback API, and show what each prints: the "
            "original traceback (tokens masked), then the explanation."
        ),
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="RULE",
        help="show only this scenario (a rule id; repeatable)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="show every scenario that applies to the installed client",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    add_format(parser, FORMAT_CHOICES)
    parser.set_defaults(handler=_demo)
