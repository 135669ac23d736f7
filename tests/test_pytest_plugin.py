"""The pytest plugin, end to end: real pytest runs (subprocesses) of test files that call the real
replicate client (1.0.7 and 2.0.0b4) against the loopback API.

The plugin is found as users find it, through the ``pytest11`` entry point of the installed
package. Each test states what a reader of the run's output (terminal, ``-n 2``, JUnit XML,
GitHub Actions) sees.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from clients import CANARY, MODEL_REF, client_env, run_program
from outputs import leaks

from replicate_explain import _pytest_report
from replicate_explain._loopback import LoopbackAPI

VERSIONS = ["1.0.7", "2.0.0b4"]
TOKEN = CANARY + "\n"

#: The user's code: one function that calls Replicate (its line is the explanation's call site).
APP = f"""\
import replicate


def generate():
    return replicate.run({MODEL_REF!r}, input={{"text": "hello"}})
"""

#: The user's tests: the token in a local (--showlocals), on stdout and in a log record.
TESTS = """\
import logging
import os

import pytest

from app import generate


def test_generates():
    token = os.environ.get("REPLICATE_API_TOKEN")
    print("using", token)
    logging.getLogger("app").warning("token is %s", token)
    assert generate()


@pytest.fixture
def output():
    return generate()


def test_in_setup(output):
    assert output
"""

#: What a plain run of the same call prints under its traceback (the excepthook's explanation).
SCRIPT = """\
import replicate_explain
from app import generate

generate()
"""

UNRELATED = """\
import os


def helper(values):
    return sorted(values)


def test_unrelated():
    data = {"a": 1, "b": [3, 1, 2]}
    print("some output")
    assert helper(data["b"]) == [1, 2, 4]


def test_error():
    raise KeyError("missing")
"""

SECTION_RULE = re.compile(r"^-+ replicate-explain -+$", re.M)


def _require_entry_point() -> None:
    names = {ep.name for ep in entry_points(group="pytest11")}
    if "replicate_explain" not in names:
        raise AssertionError(
            "the pytest11 entry point replicate_explain is not installed in this environment: "
            f"reinstall the package ({sys.executable} -m pip install -e .)"
        )


def run_pytest(
    tmp_path: Path,
    api: LoopbackAPI,
    version: str,
    token: str | None,
    files: dict[str, str],
    *args: str,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pytest ARGS`` in ``tmp_path`` (holding ``files`` and an empty pytest.ini)
    with replicate ``version`` pointed at ``api``."""
    _require_entry_point()
    for name, text in {"pytest.ini": "[pytest]\n", **files}.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    env = {k: v for k, v in client_env(version, api, token, extra_env).items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    env.pop("GITHUB_ACTIONS", None)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=180,
        check=False,
    )


def sections(output: str) -> list[str]:
    """The text of each ``replicate-explain`` section in a pytest terminal report."""
    found = []
    for match in SECTION_RULE.finditer(output):
        rest = output[match.end() + 1 :]
        end = re.search(r"^(?:[-_=]{3,}.*|- generated xml file: .*|\S+\.py:\d+: \w+)$", rest, re.M)
        found.append(rest[: end.start() if end else len(rest)].rstrip("\n"))
    return found


def plain_explanation(tmp_path: Path, api: LoopbackAPI, version: str, token: str | None) -> str:
    """What the excepthook prints under the traceback of the same call, as plain text."""
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    path = os.pathsep.join([str(tmp_path), client_env(version, api, token)["PYTHONPATH"]])
    result = run_program(SCRIPT, version, api, token, {"PYTHONPATH": path}, cwd=tmp_path)
    start = result.stderr.index("replicate-explain: ")
    return result.stderr[start:].rstrip("\n")


def normalized(output: str) -> str:
    """pytest's output without the run's duration (and the width of its line, which follows it),
    and without this plugin in the header's ``plugins:`` line (the one line naming the plugins)."""
    output = re.sub(r"^(plugins: .*)replicate-explain-[^,\n]+, ", r"\1", output, flags=re.M)
    output = re.sub(r" in \d+\.\d+s( \([0-9:]+\))?", " in Ns", output)
    return re.sub(r"^=+ (.* in Ns) =+$", r"== \1 ==", output, flags=re.M)


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_a_replicate_failure_gets_the_section_and_the_report_is_masked(
    tmp_path: Path, api: LoopbackAPI, version: str
) -> None:
    """A token with a trailing newline, a failure in the test and one in a fixture: each report
    has a replicate-explain section that is exactly the plain explanation the excepthook prints
    for the same call; the token shows nowhere (E lines, --showlocals, captured stdout and log,
    the -rA summary)."""
    result = run_pytest(tmp_path, api, version, TOKEN, {"app.py": APP, "test_app.py": TESTS}, "--showlocals", "-rA")
    assert result.returncode == 1, result.stdout + result.stderr
    expected = plain_explanation(tmp_path, api, version, TOKEN)
    assert expected.startswith("replicate-explain: token-whitespace: ")
    assert sections(result.stdout) == [expected, expected]
    assert "ERROR test_app.py::test_in_setup" in result.stdout
    assert "token is [REDACTED]" in result.stdout or "token is '[REDACTED]" in result.stdout
    assert leaks(result.stdout + result.stderr, CANARY) == []


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_xdist_and_junit_xml_carry_the_section(tmp_path: Path, api: LoopbackAPI, version: str) -> None:
    """With ``-n 2`` the section survives the trip from the worker, and ``--junitxml`` has it in
    the failure's text (where CI systems show failures); neither holds the token."""
    result = run_pytest(
        tmp_path, api, version, TOKEN, {"app.py": APP, "test_app.py": TESTS}, "-n", "2", "--junitxml=out.xml"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    expected = plain_explanation(tmp_path, api, version, TOKEN)
    assert sections(result.stdout) == [expected, expected]
    xml = (tmp_path / "out.xml").read_text(encoding="utf-8")
    texts = {
        case.get("name"): [(child.tag, child.text or "") for child in case]
        for case in ET.fromstring(xml).iter("testcase")
    }
    assert sorted(texts) == ["test_generates", "test_in_setup"]
    for name, children in texts.items():
        ((tag, text),) = [child for child in children if child[0] in ("failure", "error")]
        assert tag == ("failure" if name == "test_generates" else "error")
        assert "-------- replicate-explain --------" in re.sub(r"-{9,}", "--------", text)
        assert expected in text
    assert leaks(result.stdout + result.stderr + xml, CANARY) == []


@pytest.mark.e2e
@pytest.mark.parametrize("style", ["short", "native", "line", "no"])
def test_tb_styles_are_respected(tmp_path: Path, api: LoopbackAPI, style: str) -> None:
    """``--tb=short`` and ``native`` show the short panel; ``line`` (whose report pytest keeps
    to the crash lines) only its headline and where to read more; ``no`` no section at all. The
    token shows nowhere."""
    result = run_pytest(tmp_path, api, "1.0.7", TOKEN, {"app.py": APP, "test_app.py": TESTS}, f"--tb={style}")
    assert result.returncode == 1, result.stdout + result.stderr
    headline = "replicate-explain: token-whitespace: REPLICATE_API_TOKEN has whitespace or a line break around it"
    more = "More (+1 fix step): replicate-explain explain --rule token-whitespace"
    shown = sections(result.stdout)
    if style == "no":
        assert shown == []
    elif style == "line":
        assert shown == [f"{headline}\n{more}"] * 2
    else:
        assert [(text.splitlines()[0], text.splitlines()[-1], len(text.splitlines()) > 10) for text in shown] == [
            (headline, more, True)
        ] * 2
    assert leaks(result.stdout + result.stderr, CANARY) == []


@pytest.mark.e2e
# ``-n 1``: the reports still travel from an xdist worker, in an order that does not vary by run.
@pytest.mark.parametrize("args", [("--showlocals", "-rA"), ("-n", "1", "-rA"), ("--tb=native",)])
def test_unrelated_failures_print_exactly_what_pytest_prints(
    tmp_path: Path, api: LoopbackAPI, args: tuple[str, ...]
) -> None:
    """A failing test that has nothing to do with Replicate: the output is byte for byte the
    output of the same run without the plugin (``-p no:replicate_explain``), durations aside."""
    files = {"test_other.py": UNRELATED}
    with_plugin = run_pytest(tmp_path, api, "1.0.7", CANARY, files, *args)
    without = run_pytest(tmp_path, api, "1.0.7", CANARY, files, *args, "-p", "no:replicate_explain")
    assert with_plugin.returncode == without.returncode == 1
    assert normalized(with_plugin.stdout) == normalized(without.stdout)
    assert with_plugin.stderr == without.stderr


@pytest.mark.e2e
def test_replicate_explain_0_turns_the_plugin_off(tmp_path: Path, api: LoopbackAPI) -> None:
    """``REPLICATE_EXPLAIN=0``: the run prints what it prints without the plugin."""
    files = {"app.py": APP, "test_app.py": TESTS}
    off = run_pytest(tmp_path, api, "1.0.7", TOKEN, files, extra_env={"REPLICATE_EXPLAIN": "0"})
    without = run_pytest(tmp_path, api, "1.0.7", TOKEN, files, "-p", "no:replicate_explain")
    assert off.returncode == without.returncode == 1
    assert normalized(off.stdout) == normalized(without.stdout)
    assert sections(off.stdout) == []


@pytest.mark.e2e
def test_a_collection_error_is_masked(tmp_path: Path, api: LoopbackAPI) -> None:
    """A test module that fails at import with the token in its message: the collection error
    pytest prints holds no token."""
    code = 'import os\n\nraise RuntimeError("configured with " + os.environ["REPLICATE_API_TOKEN"])\n'
    result = run_pytest(tmp_path, api, "1.0.7", CANARY, {"test_broken.py": code}, "-rA")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "RuntimeError: configured with [REDACTED]" in result.stdout
    assert leaks(result.stdout + result.stderr, CANARY) == []


FORK_EVENT = {
    "pull_request": {
        "head": {"repo": {"full_name": "contributor/app"}},
        "base": {"repo": {"full_name": "acme/app"}},
    }
}


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_github_actions_gets_one_annotation_per_explained_failure(
    tmp_path: Path, api: LoopbackAPI, version: str, workers: list[str]
) -> None:
    """On GitHub Actions, a fork's pull request without the secret: one ``::error`` line per
    explained failure (once under xdist), at the test file's line that called the failing code,
    its path relative to GITHUB_WORKSPACE, the title the rule's, and the explanation saying
    that forks get no secrets."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps(FORK_EVENT), encoding="utf-8")
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
    }
    (tmp_path / "tests").mkdir()
    result = run_pytest(
        tmp_path, api, version, None, {"app.py": APP, "tests/test_app.py": TESTS, "test_other.py": UNRELATED},
        *workers, extra_env=github,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    heads = [line.split("::")[1] for line in annotations]
    title = "title=replicate-explain%3A token-unset%3A REPLICATE_API_TOKEN is not set"
    assert sorted(heads) == [
        f"error file=tests/test_app.py,line=13,{title}",
        f"error file=tests/test_app.py,line=18,{title}",
    ]
    fork = "this is a GitHub Actions run of a pull request from a fork"
    for line in annotations:
        message = line.split("::", 2)[2]
        assert message.replace("%0A", "\n").startswith("replicate-explain: token-unset: ")
        assert fork in message.replace("%0A    ", " ").replace("%0A", " ")
    assert fork in " ".join(" ".join(sections(result.stdout)).split())


@pytest.mark.e2e
def test_no_annotation_outside_github_actions(tmp_path: Path, api: LoopbackAPI) -> None:
    """Without ``GITHUB_ACTIONS=true`` there is no workflow command, and a run that is not a
    fork's pull request says nothing about forks."""
    result = run_pytest(tmp_path, api, "1.0.7", None, {"app.py": APP, "test_app.py": TESTS})
    assert result.returncode == 1
    assert [line for line in result.stdout.splitlines() if line.startswith("::")] == []
    assert "fork" not in result.stdout
    assert len(sections(result.stdout)) == 2


# ---------------------------------------------------------------------------------------------
# Pure helpers.


@pytest.mark.parametrize(
    ("text", "data", "prop"),
    [
        ("plain", "plain", "plain"),
        ("a: b, c", "a: b, c", "a%3A b%2C c"),
        ("100%\r\nnext", "100%25%0D%0Anext", "100%25%0D%0Anext"),
    ],
)
def test_workflow_command_escaping(text: str, data: str, prop: str) -> None:
    """Messages escape %, CR and LF; properties also escape : and , (actions/toolkit)."""
    assert (_pytest_report.escape_data(text), _pytest_report.escape_property(text)) == (data, prop)


def test_the_plugin_module_imports_nothing_heavy() -> None:
    """Importing the plugin after pytest (pytest does in every run) loads no rich, yaml,
    packaging, replicate or httpx, and of the package exactly what ``import replicate_explain``
    loads there, plus the plugin module."""

    def loaded(module: str) -> list[str]:
        code = (
            "import sys, pytest\n"
            "before = set(sys.modules)\n"
            f"import {module}\n"
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
            "('rich', 'yaml', 'packaging', 'replicate', 'httpx', 'replicate_explain')))\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "REPLICATE_"))}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        return list(json.loads(run.stdout.replace("'", '"')))

    package = loaded("replicate_explain")
    assert loaded("replicate_explain._pytest_plugin") == sorted([*package, "replicate_explain._pytest_plugin"])
    assert [name for name in package if not name.startswith("replicate_explain")] == []


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_a_replicate_failure_at_collection_is_explained(tmp_path: Path, api: LoopbackAPI, version: str) -> None:
    """A test module that calls Replicate at import, without a token: the collection error has
    the section (terminal and JUnit XML), the same text the excepthook prints."""
    module = "from app import generate\n\nOUTPUT = generate()\n\n\ndef test_output():\n    assert OUTPUT\n"
    files = {"app.py": APP, "test_module.py": module}
    result = run_pytest(tmp_path, api, version, None, files, "--junitxml=out.xml")
    assert result.returncode in (1, 2), result.stdout + result.stderr
    expected = plain_explanation(tmp_path, api, version, None)
    assert expected.startswith("replicate-explain: token-unset: ")
    assert sections(result.stdout) == [expected]
    (error,) = ET.parse(tmp_path / "out.xml").iter("error")
    assert expected in (error.text or "")
