"""The excepthook, end to end: real replicate clients, real interpreters, real stderr."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from typing import Any

import pytest
from clients import CANARY, CLIENT_VERSIONS, MODEL_REF, REPO_ROOT, run_program
from outputs import ANSI, explanations, leaks, masked, rule_shown, same_place

import replicate_explain
from replicate_explain import _hook, _state
from replicate_explain._loopback import LoopbackAPI

RUN = f"""
import replicate_explain
import replicate
print(replicate.run({MODEL_REF!r}, input={{"text": "hi"}}))
"""

PLAIN = f"""
import replicate
print(replicate.run({MODEL_REF!r}, input={{"text": "hi"}}))
"""

JSON = {"REPLICATE_EXPLAIN_FORMAT": "json"}
OFF = {"REPLICATE_EXPLAIN": "0"}

CAUSES = [
    # (cause, token value, rule expected)
    ("unset", None, "token-unset"),
    ("empty", "", "token-empty"),
    ("trailing newline", CANARY + "\n", "token-whitespace"),
    ("windows line break", CANARY + "\r\n", "token-whitespace"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
@pytest.mark.parametrize(("cause", "token", "rule"), CAUSES, ids=[c[0] for c in CAUSES])
def test_a_token_problem_is_explained_under_the_untouched_traceback(
    api: LoopbackAPI, version: str, cause: str, token: Any, rule: str
) -> None:
    """Each cause, on each client generation: the traceback plain Python prints (token masked)
    comes first and whole, then exactly one explanation naming the rule; the exit status is
    plain Python's and the token appears nowhere."""
    hooked = run_program(RUN, version, api, token, JSON)
    plain = run_program(RUN, version, api, token, {**JSON, **OFF})
    assert plain.returncode == 1
    assert hooked.returncode == plain.returncode
    assert hooked.stdout == plain.stdout == ""
    secrets = (token,) if token else ()
    assert same_place(hooked.stderr).startswith(same_place(masked(plain.stderr, *secrets)))
    assert rule_shown(hooked.stderr) == rule
    assert leaks(hooked.stdout + hooked.stderr, CANARY) == []


@pytest.mark.e2e
@pytest.mark.parametrize("version", ["1.0.7", "2.0.0b4"])
def test_the_panel_prints_as_plain_text_when_stderr_is_not_a_terminal(api: LoopbackAPI, version: str) -> None:
    """Without a terminal the explanation is clean plain text: rule id, evidence, fixed code
    under a label naming the installed client, no ANSI escape codes, and the evidence describes
    the token without showing it."""
    result = run_program(RUN, version, api, CANARY + "\n", {"NO_COLOR": ""})
    tail = result.stderr[result.stderr.index("replicate-explain: token-whitespace") :]
    assert "\x1b[" not in result.stderr
    assert (
        "REPLICATE_API_TOKEN is set, 41 characters, with a newline (\\n) at its end; the token inside starts with r8_"
    ) in " ".join(tail.split())  # the sentence, however plain text wrapped it
    assert "\nat program.py:" in tail  # the user's own line that made the call
    assert f"(installed: {version}), - broken, + fixed:" in tail
    fixed = "replicate.Replicate(bearer_token=" if version.startswith("2") else "replicate.Client(api_token="
    assert fixed in tail
    assert leaks(result.stderr, CANARY) == []


@pytest.mark.e2e
def test_the_rich_panel_is_used_when_colour_is_forced(api: LoopbackAPI) -> None:
    """FORCE_COLOR gives the rich panel: a box with the rule id in its title, ANSI colours."""
    result = run_program(RUN, "1.0.7", api, CANARY + "\n", {"NO_COLOR": "", "FORCE_COLOR": "1", "COLUMNS": "120"})
    panel = result.stderr[result.stderr.index("╭") :]
    assert "\x1b[" in panel
    assert "replicate-explain" in panel and "token-whitespace" in panel
    assert "Code for replicate" in ANSI.sub("", panel) and "at program.py:" in ANSI.sub("", panel)
    assert leaks(result.stderr, CANARY) == []


UNRELATED = [
    ("a plain ValueError", "import replicate_explain\nraise ValueError('boom')\n"),
    ("an error inside a replicate-using program", "import replicate_explain\nimport replicate\n{}['missing']\n"),
    (
        "a chained error",
        "import replicate_explain\ntry:\n    1/0\nexcept ZeroDivisionError as e:\n    raise RuntimeError('x') from e\n",
    ),
    ("SystemExit with a status", "import replicate_explain\nraise SystemExit(3)\n"),
    ("SystemExit with a message", "import replicate_explain\nraise SystemExit('bye')\n"),
    ("KeyboardInterrupt", "import replicate_explain\nraise KeyboardInterrupt\n"),
    (
        "credential-looking words in an unrelated message",
        "import replicate_explain\nraise ValueError('Token abcdefgh12 expired; Authorization: xyz0000000')\n",
    ),
    (
        "a previous hook that raises",
        "import sys\ndef mine(t, v, tb):\n    raise RuntimeError('hook broke')\n"
        "sys.excepthook = mine\nimport replicate_explain\nraise ValueError('boom')\n",
    ),
    (
        "a previous hook that prints and calls os._exit",
        "import os, sys, traceback\ndef mine(t, v, tb):\n    traceback.print_exception(t, v, tb)\n"
        "    os._exit(3)\nsys.excepthook = mine\nimport replicate_explain\nraise ValueError('boom')\n",
    ),
    (
        "atexit output after the traceback",
        "import atexit, replicate_explain\natexit.register(print, 'atexit ran')\nraise ValueError('boom')\n",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "code"), UNRELATED, ids=[u[0] for u in UNRELATED])
def test_anything_else_prints_exactly_what_plain_python_prints(api: LoopbackAPI, name: str, code: str) -> None:
    """Errors that are not Replicate authentication failures, SystemExit and KeyboardInterrupt:
    byte for byte the output and exit status of plain Python, even with a token problem set."""
    hooked = run_program(code, "1.0.7", api, CANARY + "\n")
    plain = run_program(code, "1.0.7", api, CANARY + "\n", OFF)
    assert (hooked.returncode, hooked.stdout, same_place(hooked.stderr)) == (
        plain.returncode,
        plain.stdout,
        same_place(plain.stderr),
    )


@pytest.mark.e2e
def test_an_error_in_del_at_shutdown_prints_what_plain_python_prints(api: LoopbackAPI) -> None:
    """An exception in ``__del__`` of an object collected at interpreter shutdown (when
    ``sys.meta_path`` is gone and nothing can be imported) goes to the previous unraisable hook
    untouched: plain Python's report, not an ``ImportError`` of ours. Only the object's address
    differs between two runs."""
    code = (
        "import replicate_explain\nclass Dying:\n    def __del__(self):\n        raise ValueError('boom')\n"
        "kept = Dying()\n"
    )
    hooked = run_program(code, "1.0.7", api, CANARY + "\n")
    plain = run_program(code, "1.0.7", api, CANARY + "\n", OFF)
    address = re.compile(r" at 0x[0-9a-f]+>")
    assert (hooked.returncode, hooked.stdout, address.sub(" at 0x?>", same_place(hooked.stderr))) == (
        plain.returncode,
        plain.stdout,
        address.sub(" at 0x?>", same_place(plain.stderr)),
    )
    assert "ValueError: boom" in plain.stderr


FORK_WHILE_A_HOOK_IMPORTS = """\
import os, sys, threading, time
import replicate_explain

importing = threading.Event()


class SlowImport:
    \"\"\"Holds the import lock of the hook's first lazy import for a second.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "replicate_explain._report":
            importing.set()
            time.sleep(1.0)
        return None


sys.meta_path.insert(0, SlowImport())


def fail():
    raise ValueError("in the thread")


thread = threading.Thread(target=fail)
thread.start()
importing.wait(30)
pid = os.fork()
if pid == 0:
    try:
        raise ValueError("in the child")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    os._exit(7)
thread.join()
print("child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.mark.e2e
@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="os.fork() is POSIX only")
def test_a_child_forked_while_a_thread_is_inside_the_hook_does_not_hang(api: LoopbackAPI) -> None:
    """A thread's exception is in our ``threading.excepthook``, importing the hook's code, when
    the main thread forks: the child's own excepthook runs (it used to wait for ever on the
    import lock that the thread, absent in the child, held) and both tracebacks print. The
    subprocess timeout is the guard against the hang."""
    result = run_program(FORK_WHILE_A_HOOK_IMPORTS, "1.0.7", api, CANARY + "\n", timeout=60)
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith("ValueError"))
    assert (result.returncode, result.stdout, errors) == (
        0,
        "child exit 7\n",
        ["ValueError: in the child", "ValueError: in the thread"],
    )


@pytest.mark.e2e
@pytest.mark.parametrize("version", ["1.0.7", "2.0.0b4"])
def test_a_network_outage_with_a_good_token_gets_no_panel(api: LoopbackAPI, version: str) -> None:
    """A refused connection with a well-formed token is not an authentication failure."""
    closed = {"REPLICATE_BASE_URL": "http://127.0.0.1:9/v1" if version.startswith("2") else "http://127.0.0.1:9"}
    hooked = run_program(RUN, version, api, CANARY, {**closed, **JSON, "REPLICATE_MAX_RETRIES": "0"})
    plain = run_program(RUN, version, api, CANARY, {**closed, **JSON, **OFF, "REPLICATE_MAX_RETRIES": "0"})
    assert hooked.returncode == plain.returncode == 1
    assert explanations(hooked.stderr) == []
    assert same_place(hooked.stderr) == same_place(plain.stderr)


@pytest.mark.e2e
def test_a_previous_excepthook_still_runs_exactly_once(api: LoopbackAPI) -> None:
    """A hook installed before ours is chained: it runs once, then the explanation follows."""
    code = (
        "import sys\n"
        "def mine(t, v, tb):\n    sys.stderr.write('MINE %s\\n' % t.__name__)\n"
        "sys.excepthook = mine\n" + RUN
    )
    result = run_program(code, "1.0.7", api, None, JSON)
    lines = result.stderr.splitlines()
    assert lines[0] == "MINE ReplicateError"
    assert lines.count("MINE ReplicateError") == 1
    assert rule_shown(result.stderr) == "token-unset"


@pytest.mark.e2e
def test_replicate_explain_0_turns_the_automatic_hook_off(api: LoopbackAPI) -> None:
    """REPLICATE_EXPLAIN=0 (or off/false): importing the package installs nothing."""
    for value in ("0", "off", "FALSE", "no"):
        result = run_program(RUN, "1.0.7", api, None, {**JSON, "REPLICATE_EXPLAIN": value})
        assert explanations(result.stderr) == []
        assert result.returncode == 1


@pytest.mark.e2e
def test_an_exception_in_a_thread_is_explained(api: LoopbackAPI) -> None:
    """threading.excepthook is covered too, even when threading is imported after us."""
    code = (
        "import replicate_explain, sys\n"
        "assert 'threading' not in sys.modules or True\n"
        "import threading, replicate\n"
        f"t = threading.Thread(target=replicate.run, args=({MODEL_REF!r},), kwargs={{'input': {{}}}})\n"
        "t.start(); t.join()\nprint('main done')\n"
    )
    result = run_program(code, "1.0.7", api, CANARY + "\n", JSON)
    assert result.returncode == 0
    assert result.stdout == "main done\n"
    assert "Exception in thread" in result.stderr
    assert rule_shown(result.stderr) == "token-whitespace"
    assert leaks(result.stderr, CANARY) == []


@pytest.mark.e2e
def test_a_bug_in_the_explainer_never_loses_the_traceback(api: LoopbackAPI) -> None:
    """If explaining fails, the user still gets the full (masked) traceback and the same exit
    status; REPLICATE_EXPLAIN_DEBUG=1 also shows the internal error."""
    code = (
        "import replicate_explain._api as api\n"
        "def broken(*a, **k):\n    raise RuntimeError('explainer bug')\n"
        "api.explain = broken\n" + RUN
    )
    plain = run_program(RUN, "1.0.7", api, CANARY + "\n", OFF)
    quiet = run_program(code, "1.0.7", api, CANARY + "\n")
    loud = run_program(code, "1.0.7", api, CANARY + "\n", {"REPLICATE_EXPLAIN_DEBUG": "1"})
    assert quiet.returncode == loud.returncode == plain.returncode == 1
    # The program is four lines longer, so the traceback points four lines further down.
    expected = same_place(masked(plain.stderr, CANARY + "\n")).replace('program.py", line 4,', 'program.py", line 8,')
    assert same_place(quiet.stderr) == expected
    assert "replicate-explain: internal error in explaining an exception" in loud.stderr
    assert "RuntimeError: explainer bug" in loud.stderr
    assert "Error in sys.excepthook" not in quiet.stderr + loud.stderr


@pytest.mark.e2e
def test_a_broken_rule_file_is_named_and_the_other_rules_still_work(api: LoopbackAPI, tmp_path: Any) -> None:
    """A malformed user rule (a copy of token-empty with one misspelt key): a one-line message
    naming the file, line and key, after the panel."""
    text = (REPO_ROOT / "tests" / "data" / "schema-example-rule.yaml").read_text(encoding="utf-8")
    (tmp_path / "token-empty.yaml").write_text(
        text.replace(
            "    - type: httpx.LocalProtocolError\n      message:",
            "    - type: httpx.LocalProtocolError\n      mesage:",
            1,
        ),
        encoding="utf-8",
    )
    line = text.splitlines().index("    - type: httpx.LocalProtocolError") + 2
    result = run_program(RUN, "1.0.7", api, None, {**JSON, "REPLICATE_EXPLAIN_RULES": str(tmp_path)})
    assert rule_shown(result.stderr) == "token-unset"
    assert result.stderr.splitlines()[-1] == (
        f"replicate-explain: skipped a rule file: {tmp_path / 'token-empty.yaml'}:{line}: match.exceptions[1].mesage: "
        "unknown key; expected one of: type, message, attributes (did you mean 'message'?)"
    )


@pytest.mark.e2e
def test_import_is_free_of_heavy_modules() -> None:
    """``import replicate_explain`` imports none of rich, yaml, packaging, replicate, httpx,
    typing or threading, and installs the hook."""
    code = (
        "import sys, replicate_explain\n"
        "heavy = {'rich', 'yaml', 'packaging', 'replicate', 'httpx', 'typing', 'threading', 'logging', 'IPython'}\n"
        "print(sorted(heavy & set(sys.modules)), sys.excepthook.__module__)\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); "
            + code.replace("\n", "; ", 2).replace("; print", "\nprint"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "[] replicate_explain._hook\n"


class TestInstallUninstall:
    """install()/uninstall() in this process: idempotent, exact restoration."""

    def setup_method(self) -> None:
        replicate_explain.uninstall()

    def teardown_method(self) -> None:
        replicate_explain.uninstall()

    def test_install_is_idempotent_and_uninstall_restores_both_hooks(self) -> None:
        """Installing twice chains once; uninstalling restores the exact previous objects."""

        def mine(*args: Any) -> None:
            """A user's hook."""

        def mine_threads(args: Any) -> None:
            """A user's thread hook."""

        saved = (sys.excepthook, threading.excepthook)
        sys.excepthook, threading.excepthook = mine, mine_threads
        try:
            replicate_explain.install()
            replicate_explain.install()
            assert (sys.excepthook, threading.excepthook) == (_hook.excepthook, _hook.threading_excepthook)
            assert _state.previous_excepthook is mine
            assert replicate_explain.is_installed()
            replicate_explain.uninstall()
            replicate_explain.uninstall()
            assert (sys.excepthook, threading.excepthook) == (mine, mine_threads)
            assert not replicate_explain.is_installed()
        finally:
            sys.excepthook, threading.excepthook = saved

    def test_a_hook_installed_over_ours_keeps_working_after_uninstall(self, capsys: Any) -> None:
        """When another tool chained over our hook, uninstall leaves it in place and our hook
        becomes a pass-through to the hook before us."""
        calls: list[str] = []

        def before(*args: Any) -> None:
            calls.append("before")

        saved = sys.excepthook
        sys.excepthook = before
        try:
            replicate_explain.install()
            ours = sys.excepthook

            def after(*args: Any) -> None:
                calls.append("after")
                ours(*args)

            sys.excepthook = after
            replicate_explain.uninstall()
            assert sys.excepthook is after
            error = ValueError("x")
            sys.excepthook(ValueError, error, None)
            assert calls == ["after", "before"]
        finally:
            sys.excepthook = saved


@pytest.mark.e2e
def test_a_users_own_folder_named_replicate_is_not_the_client(api: LoopbackAPI, tmp_path: Any) -> None:
    """Code in ./replicate/ is the user's, not the client's: its errors print as plain Python's,
    even when they look like the client's (an unexpected keyword, an invalid header value)."""
    from clients import client_env

    folder = tmp_path / "replicate"
    folder.mkdir()
    script = folder / "app.py"
    script.write_text(
        "import replicate_explain\n"
        "class Config:\n    def __init__(self, name):\n        pass\n"
        "try:\n    Config(name='x', key='abc')\nexcept TypeError:\n"
        "    raise ValueError('Invalid header value in config')\n",
        encoding="utf-8",
    )
    outputs = []
    for extra in ({}, OFF):
        env = client_env("1.0.7", api, CANARY + " ", {**JSON, **extra})
        done = subprocess.run([sys.executable, str(script)], env=env, cwd=folder, capture_output=True, text=True)
        outputs.append((done.returncode, done.stderr))
    assert outputs[0] == outputs[1]
    assert explanations(outputs[0][1]) == []
