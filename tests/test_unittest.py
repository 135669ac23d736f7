"""unittest (``python -m unittest``, ``unittest.main()``, Django's test runner) with
replicate-explain active: real runs (subprocesses) of test modules that call the real replicate
client (1.0.7 and 2.0.0b4) against the loopback API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clients import CANARY, MODEL_REF, client_env, extra_path, run_program
from outputs import leaks

from replicate_explain._loopback import LoopbackAPI

VERSIONS = ["1.0.7", "2.0.0b4"]
TOKEN = CANARY + "\n"
DJANGO = "Django==5.2.20"

APP = f"""\
import replicate


def generate():
    return replicate.run({MODEL_REF!r}, input={{"text": "hello"}})
"""

TESTS = """\
import os
import unittest

import replicate_explain

from app import generate


class GenerateTest(unittest.TestCase):
    def test_generates(self):
        print("using", os.environ.get("REPLICATE_API_TOKEN"))
        self.assertTrue(generate())
"""

UNRELATED = """\
import unittest

import replicate_explain


class OtherTest(unittest.TestCase):
    def test_fails(self):
        print("some output")
        self.assertEqual(sorted([3, 1, 2]), [1, 2, 4])

    def test_errors(self):
        raise KeyError("missing")
"""

#: ``replicate_explain`` imported before ``unittest``: the post-import hook patches it.
MAIN_FIRST = """\
import replicate_explain
import unittest

unittest.main(module="test_app", argv=["test_app", "-b"])
"""

DJANGO_RUN = """\
import sys

import django
from django.conf import settings

settings.configure(DATABASES={}, INSTALLED_APPS=[])
django.setup()
from django.test.runner import DiscoverRunner

sys.exit(bool(DiscoverRunner(verbosity=1, buffer=True).run_tests(["test_app"])))
"""

SCRIPT = """\
import replicate_explain
from app import generate

generate()
"""


def run_python(
    tmp_path: Path, api: LoopbackAPI, version: str, token: str | None, files: dict[str, str], *args: str,
    extra_env: dict[str, str] | None = None, paths: tuple[Path, ...] = (),
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``python ARGS`` in ``tmp_path`` (holding ``files``), replicate ``version`` on ``api``."""
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    env = client_env(version, api, token, extra_env)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *map(str, paths), env["PYTHONPATH"]])
    return subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True,
        encoding="utf-8", errors="replace", timeout=180, check=False,
    )  # fmt: skip


def plain_explanation(tmp_path: Path, api: LoopbackAPI, version: str, token: str | None) -> str:
    """What the excepthook prints under the traceback of the same call, as plain text."""
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    path = os.pathsep.join([str(tmp_path), client_env(version, api, token)["PYTHONPATH"]])
    result = run_program(SCRIPT, version, api, token, {"PYTHONPATH": path}, cwd=tmp_path)
    return result.stderr[result.stderr.index("replicate-explain: ") :]


def explanation_in(stderr: str) -> str:
    """The explanation unittest printed under the failure, up to the next report line."""
    start = stderr.index("replicate-explain: ")
    end = re.search(r"^(?:={20,}|-{20,})$", stderr[start:], re.M)
    return stderr[start : start + end.start() if end else len(stderr)].rstrip("\n") + "\n"


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("runner", ["python -m unittest", "unittest.main after the import"])
def test_a_replicate_failure_is_explained_under_the_unittest_error(
    tmp_path: Path, api: LoopbackAPI, version: str, runner: str
) -> None:
    """A token with a trailing newline: unittest's ERROR report ends with exactly the plain
    explanation the excepthook prints for the same call, once; the token is masked in the
    traceback and in the buffered stdout (``-b``)."""
    files = {"app.py": APP, "test_app.py": TESTS, "main_first.py": MAIN_FIRST}
    args = ("-m", "unittest", "-b", "test_app") if runner.startswith("python -m") else ("main_first.py",)
    result = run_python(tmp_path, api, version, TOKEN, files, *args)
    assert result.returncode == 1
    assert "ERROR: test_generates (test_app.GenerateTest" in result.stderr
    assert "using [REDACTED]" in result.stderr
    expected = plain_explanation(tmp_path, api, version, TOKEN)
    assert expected.startswith("replicate-explain: token-whitespace: ")
    assert explanation_in(result.stderr) == expected
    assert result.stderr.count("replicate-explain: token-whitespace: ") == 1
    assert leaks(result.stdout + result.stderr, CANARY) == []


@pytest.mark.e2e
def test_unrelated_unittest_failures_print_exactly_what_unittest_prints(tmp_path: Path, api: LoopbackAPI) -> None:
    """Failures that have nothing to do with Replicate: byte for byte what unittest prints with
    replicate-explain off (``REPLICATE_EXPLAIN=0``), the run's duration aside."""
    args = ("-m", "unittest", "-b", "-v", "test_other")
    on = run_python(tmp_path, api, "1.0.7", CANARY, {"test_other.py": UNRELATED}, *args)
    off = run_python(tmp_path, api, "1.0.7", CANARY, {"test_other.py": UNRELATED}, *args,
                     extra_env={"REPLICATE_EXPLAIN": "0"})  # fmt: skip

    def normalized(text: str) -> str:
        return re.sub(r"Ran (\d+) tests? in \d+\.\d+s", r"Ran \1 tests in Ns", text)

    assert on.returncode == off.returncode == 1
    assert (on.stdout, normalized(on.stderr)) == (off.stdout, normalized(off.stderr))
    assert "FAIL: test_fails" in on.stderr and "ERROR: test_errors" in on.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_djangos_test_runner_shows_the_explanation(tmp_path: Path, api: LoopbackAPI, version: str) -> None:
    """Django's DiscoverRunner (unittest's TextTestRunner underneath): the same explanation
    under the error, the token nowhere."""
    files = {"app.py": APP, "test_app.py": TESTS, "run_django.py": DJANGO_RUN}
    result = run_python(tmp_path, api, version, TOKEN, files, "run_django.py", paths=(extra_path(DJANGO),))
    assert result.returncode == 1, result.stderr
    assert "ERROR: test_generates (test_app.GenerateTest" in result.stderr
    assert explanation_in(result.stderr) == plain_explanation(tmp_path, api, version, TOKEN)
    assert leaks(result.stdout + result.stderr, CANARY) == []


def test_hooking_twice_wraps_once_and_other_failures_read_as_unittest_writes_them() -> None:
    """``hook_unittest`` is idempotent (``install()`` after ``uninstall()``), and a failure that
    is not Replicate's reads exactly as the unwrapped ``TestResult`` formats it."""
    import io
    import unittest
    import unittest.runner

    from replicate_explain._unittest import MARK, hook_unittest

    hook_unittest(unittest.runner)
    wrapper = unittest.runner.TextTestResult._exc_info_to_string
    hook_unittest(unittest.runner)
    assert unittest.runner.TextTestResult._exc_info_to_string is wrapper
    assert getattr(wrapper, MARK) is True

    class Sample(unittest.TestCase):
        def test_fails(self) -> None:
            self.assertEqual([1, 2, 3], [1, 2, 4])

    test = Sample("test_fails")
    result = unittest.runner.TextTestResult(io.StringIO(), descriptions=True, verbosity=1)
    test.run(result)
    plain = unittest.TestResult()  # the base class: not wrapped
    test.run(plain)
    assert [text for _, text in result.failures] == [text for _, text in plain.failures]
    assert "AssertionError: Lists differ" in result.failures[0][1]
