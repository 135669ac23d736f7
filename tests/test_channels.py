"""Every channel an exception or a log record reaches the user through is sealed (issue 11).

Masking happens at the source (``_birth.mask_exception``) before any formatter sees the
exception; the channels: rich tracebacks (wrapped lines, local variables), JSON and rich logging
handlers, record arguments and ``extra`` fields, ``sys.unraisablehook``, ``multiprocessing``
children (fork and spawn), ipykernel's ``execute_reply``/nbclient's ``CellExecutionError``,
post-import hooks after ``find_spec``, ``doctor --online`` redirects. Plus the hangs and crashes
of the same issue (alias bombs, FIFOs, forks under the output lock, hook loops, odd CLI input)
and unrelated output kept byte for byte.
"""

from __future__ import annotations

import http.server
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import CANARY, REPO_ROOT, client_env, run_program

from replicate_explain import _state
from replicate_explain._birth import mask_exception as scrub_exception
from replicate_explain._loopback import LoopbackAPI
from replicate_explain._mask import MASK, Redactor, is_secret_variable

CLIENTS = ("1.0.7", "2.0.0b4")
#: The whitespace mistake: httpx refuses the header and quotes the token in its message.
BROKEN_TOKEN = CANARY + "\n"
CALL = """\
import replicate
try:
    from replicate import Replicate
except ImportError:
    Replicate = None
MODEL = "acme/hello-world:5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


def call():
    if Replicate is not None:
        return Replicate().run(MODEL, input={"text": "hi"})
    return replicate.run(MODEL, input={"text": "hi"})
"""


def leaks(text: str) -> list[str]:
    """The pieces of the canary found in ``text`` (whole, or a fragment a printer cut off)."""
    body = CANARY[3:]
    pieces = [CANARY, CANARY[:9], body[:12], body[12:24], body[24:]]
    return [piece for piece in pieces if piece in text]


# ---------------------------------------------------------------------------------------------
# Item 15: what counts as a secret


def test_r8_words_and_loose_variable_names_print_unchanged() -> None:
    """Only the token shape (word-bounded ``r8_`` + 8 or more letters and digits with a digit or
    capital, or the whole 37) and credential variables are masked; words that merely contain
    ``r8_`` and values of variables that only mention TOKEN/KEY stay as they are."""
    environ = {"REPLICATE_KEY_NAME": "default", "REPLICATE_TOKEN_FILE": "/srv/app", "REPLICATE_API_TOKEN": CANARY}
    redactor = Redactor.from_environ(environ, heuristics=False)
    text = "user8_email r8_data and arr8_items r8_database default /srv/app"
    assert redactor(text) == text
    assert redactor(f"t={CANARY} cut=r8_Ab3dEf9h... two={CANARY}{CANARY} rich='r8_CANA…'") == (
        f"t={MASK} cut={MASK}... two={MASK}{MASK} rich='{MASK}…'"
    )
    names = ["REPLICATE_API_TOKEN", "MY_REPLICATE_TOKEN", "replicate_org_key", "REPLICATE_SECRET"]
    assert [is_secret_variable(n) for n in names] == [True, True, True, True]
    names = ["REPLICATE_KEY_NAME", "REPLICATE_TOKEN_FILE", "API_TOKEN", "REPLICATE_BASE_URL"]
    assert [is_secret_variable(n) for n in names] == [False, False, False, False]


def test_a_secret_wrapped_over_lines_is_masked_whole() -> None:
    """``Redactor.wrapped`` masks a token a printer cut over several lines, inside a box border,
    keeping the line breaks; the plain call masks the token on one line."""
    boxed = f"│ api_token = '{CANARY[:14]} │\n│ {CANARY[14:32]} │\n│ {CANARY[32:]}' │\n"
    assert Redactor([]).wrapped(boxed) == f"│ api_token = '{MASK} │\n│  │\n│ ' │\n"
    assert Redactor([CANARY]).wrapped(f"x {CANARY[:20]}\n{CANARY[20:]} y") == f"x {MASK}\n y"


# ---------------------------------------------------------------------------------------------
# Masking at the source


class _Failure(Exception):
    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def test_scrub_exception_masks_args_notes_attributes_and_the_chain_keeping_types() -> None:
    """Strings, bytes, nested tuples, ``__notes__``, string attributes and the exceptions of the
    chain are masked in place; numbers and the types of containers stay."""
    cause = OSError(13, f"denied {CANARY}")
    error = _Failure(f"Illegal header value b'Bearer {CANARY}\\n'", f"detail {CANARY}")
    error.args = (error.args[0], (CANARY.encode(), 7))
    error.__cause__ = cause
    if hasattr(error, "add_note"):
        error.add_note(f"note {CANARY}")
    else:
        error.__notes__ = [f"note {CANARY}"]
    scrub_exception(error, Redactor([CANARY]))
    assert error.args == (f"Illegal header value b'Bearer {MASK}\\n'", (MASK.encode(), 7))
    assert (error.detail, error.__notes__, cause.strerror) == (f"detail {MASK}", [f"note {MASK}"], f"denied {MASK}")
    assert leaks(str(error) + repr(error) + str(cause)) == []


# ---------------------------------------------------------------------------------------------
# Items 2, 3, 16, 17: logging


@pytest.fixture
def hooked_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """A logger through the automatic integration, the canary in the environment."""
    import replicate_explain
    from replicate_explain import logging as rel

    monkeypatch.setenv("REPLICATE_API_TOKEN", CANARY)
    _state.reset()
    replicate_explain.install()
    rel._activate()
    logger = logging.getLogger("channels-test")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.handlers.clear()
    _state.reset()


def _capture(logger: logging.Logger, formatter: logging.Formatter | None = None) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    if formatter is not None:
        handler.setFormatter(formatter)
    logger.handlers[:] = [handler]
    return stream


def _header_error() -> ValueError:
    try:
        raise ValueError(f"Illegal header value b'Bearer {CANARY}\\n'")
    except ValueError as error:
        return error


def test_extra_fields_and_dict_arguments_are_masked(hooked_logging: logging.Logger) -> None:
    """``extra={...}`` fields printed through ``%(tok)s`` and the dict arguments shown under
    "--- Logging error ---" never show the token; tuple arguments keep their type."""
    stream = _capture(hooked_logging, logging.Formatter("%(message)s|%(tok)s"))
    hooked_logging.info("value %s", f"Bearer {CANARY}", extra={"tok": CANARY})
    assert stream.getvalue() == f"value Bearer {MASK}|{MASK}\n"
    record = hooked_logging.makeRecord("x", logging.INFO, "f", 1, "%s", (f"Bearer {CANARY}",), None)
    assert record.args == (f"Bearer {MASK}",)
    errors = io.StringIO()
    saved = sys.stderr
    sys.stderr = errors
    try:
        hooked_logging.error("%(h)d", {"h": "Bearer " + CANARY})
    finally:
        sys.stderr = saved
    assert "--- Logging error ---" in errors.getvalue()
    assert f"Arguments: {{'h': 'Bearer {MASK}'}}" in errors.getvalue()
    assert leaks(errors.getvalue()) == []


def test_an_unrelated_record_is_not_masked_by_guesswork(hooked_logging: logging.Logger) -> None:
    """The Bearer/Token heuristics are for records that touch replicate: an unrelated message
    about a JSON token prints unchanged, a replicate logger's is masked."""
    stream = _capture(hooked_logging)
    hooked_logging.warning("Unexpected token 1234567890 in JSON")
    logging.getLogger("replicate.client").handlers[:] = hooked_logging.handlers
    logging.getLogger("replicate.client").propagate = False
    logging.getLogger("replicate.client").warning("sent Token 1234567890abc")
    logging.getLogger("replicate.client").handlers.clear()
    assert stream.getvalue() == f"Unexpected token 1234567890 in JSON\nsent Token {MASK}\n"


def test_formatters_that_format_exc_info_themselves_see_masked_text(hooked_logging: logging.Logger) -> None:
    """python-json-logger's JsonFormatter and a Formatter overriding ``formatException`` format
    ``record.exc_info`` themselves: the exception was masked at record creation."""
    try:
        from pythonjsonlogger.json import JsonFormatter
    except ImportError:
        from pythonjsonlogger.jsonlogger import JsonFormatter  # type: ignore[no-redef]

    class Own(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return record.getMessage() + "\n" + self.formatException(record.exc_info)  # type: ignore[arg-type]

    for formatter in (JsonFormatter(), Own()):
        stream = _capture(hooked_logging, formatter)
        hooked_logging.error("failed", exc_info=_header_error())
        out = stream.getvalue()
        assert "Illegal header value" in out
        assert leaks(out) == []


def test_rich_logging_handler_with_rich_tracebacks_is_masked(hooked_logging: logging.Logger) -> None:
    """``RichHandler(rich_tracebacks=True)`` renders ``exc_info`` itself, at any width."""
    from rich.console import Console
    from rich.logging import RichHandler

    for width in (30, 80):
        stream = io.StringIO()
        handler = RichHandler(console=Console(file=stream, width=width), rich_tracebacks=True)
        hooked_logging.handlers[:] = [handler]
        hooked_logging.error("failed", exc_info=_header_error())
        joined = "".join(ch for ch in stream.getvalue() if not ch.isspace() and ch not in "│╭╮╰╯─")
        assert "Illegalheadervalue" in joined
        assert leaks(joined) == []


# ---------------------------------------------------------------------------------------------
# Items 9, 10, 14: rule files


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """A ~500-byte alias bomb is a rule-file error with a clear message, found in well under a
    second, by the loader and by ``rules check``."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for number in range(1, 9):
        prev, name = chr(ord("a") + number - 1), chr(ord("a") + number)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = "\n".join(lines) + "\n"
    assert len(bomb) < 600
    (tmp_path / "bomb.yaml").write_text(bomb, encoding="utf-8")
    from replicate_explain._rules import load_rules

    start = time.perf_counter()
    ruleset = load_rules([tmp_path])
    assert time.perf_counter() - start < 1.0
    assert [str(e) for e in ruleset.errors] == [
        f"{tmp_path / 'bomb.yaml'}:2: uses a YAML alias (*name); rule files may not use anchors or aliases"
    ]
    done = subprocess.run(
        [sys.executable, "-m", "replicate_explain", "rules", "check", str(tmp_path / "bomb.yaml")],
        capture_output=True, text=True, timeout=30, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert "may not use anchors or aliases" in done.stdout + done.stderr
    assert done.returncode != 0


def test_a_fifo_is_skipped_and_many_files_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only regular files are opened (a FIFO named x.yaml would block; it is reported instead);
    past MAX_RULE_FILES one error says how many were left unread."""
    from replicate_explain import _rules

    os.mkfifo(tmp_path / "a-fifo.yaml")
    for number in range(5):
        (tmp_path / f"bad-{number}.yaml").write_text("title: [", encoding="utf-8")
    monkeypatch.setattr(_rules, "MAX_RULE_FILES", 3)
    ruleset = _rules.load_rules([tmp_path])
    assert [e.path for e in ruleset.errors] == [
        str(tmp_path),
        str(tmp_path / "a-fifo.yaml"),
        *(str(tmp_path / f"bad-{n}.yaml") for n in range(2)),
    ]
    assert str(ruleset.errors[0]).endswith("holds 6 rule files; only the first 3 (by name) were read")
    assert str(ruleset.errors[1]).endswith(
        "is not a regular file (a directory, a FIFO or a device); expected a YAML rule file"
    )


def test_rule_file_warnings_are_masked_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hook's warnings about rule files mask tokens (as ``rules check`` does) and stop after
    MAX_WARNINGS with one line for the rest."""
    from replicate_explain._report import MAX_WARNINGS, warn_rule_errors
    from replicate_explain._rules import load_rules

    monkeypatch.setenv("REPLICATE_API_TOKEN", CANARY)
    for number in range(MAX_WARNINGS + 3):
        (tmp_path / f"bad-{number}.yaml").write_text(f"title: {CANARY}\n  x: [", encoding="utf-8")
    _state.reset()
    _state.rules_cache = load_rules([tmp_path])  # the rule set in force
    warn_rule_errors()
    err = capsys.readouterr().err
    _state.reset()
    assert leaks(err) == []
    assert err.count("skipped a rule file") == MAX_WARNINGS
    assert err.splitlines()[-1] == (
        "replicate-explain: 3 more rule-file problems not shown; run `replicate-explain rules check` to see them all"
    )


# ---------------------------------------------------------------------------------------------
# Item 8: doctor --online and redirects


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[int, str | None]]
    target: str = ""

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        type(self).seen.append((port, self.headers.get("Authorization")))
        if self.target:
            self.send_response(302)
            self.send_header("Location", self.target + self.path)
            self.end_headers()
            return
        body = b'{"type": "user", "username": "x"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _server(target: str, seen: list[tuple[int, str | None]]) -> http.server.HTTPServer:
    handler = type("Handler", (_Recorder,), {"seen": seen, "target": target})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_doctor_online_never_sends_the_token_to_another_origin() -> None:
    """A redirect from the API's origin to another port is followed without ``Authorization``;
    a redirect within the origin keeps it."""
    from replicate_explain._checks import online_findings
    from replicate_explain._rules import load_rules

    seen: list[tuple[int, str | None]] = []
    other = _server("", seen)
    first = _server(f"http://127.0.0.1:{other.server_address[1]}", seen)
    try:
        env = {"REPLICATE_API_TOKEN": CANARY, "REPLICATE_BASE_URL": f"http://127.0.0.1:{first.server_address[1]}"}
        online_findings(env, load_rules(), 5.0)
    finally:
        for server in (first, other):
            server.shutdown()
            server.server_close()
    assert seen == [(first.server_address[1], f"Bearer {CANARY}"), (other.server_address[1], None)]


# ---------------------------------------------------------------------------------------------
# Item 17: narrow terminals


@pytest.mark.parametrize("columns", ["0", "1"])
def test_a_zero_or_one_column_terminal_still_gets_the_explanation(
    columns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``COLUMNS=0``/``1`` with ``FORCE_COLOR``: the plain text, never nothing or two borders."""
    from test_render import EXPLANATION

    from replicate_explain._render import print_explanation, render_plain

    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setenv("FORCE_COLOR", "1")
    stream = io.StringIO()
    print_explanation(EXPLANATION, stream, "rich")
    assert stream.getvalue() == render_plain(EXPLANATION)


# ---------------------------------------------------------------------------------------------
# Subprocess channels (e2e)


def _python(code: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_")}
    base.update({"PYTHONPATH": str(REPO_ROOT), "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"})
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=base, capture_output=True, text=True, timeout=kwargs.pop("timeout", 60), check=False, **kwargs,
    )  # fmt: skip


RICH_PROGRAM = (
    CALL
    + """
import os, sys
if "@ORDER@" == "before":
    from rich.traceback import install; install(show_locals=True)
import replicate_explain
if "@ORDER@" == "after":
    from rich.traceback import install; install(show_locals=True)


def main():
    api_token = os.environ["REPLICATE_API_TOKEN"]
    call()

main()
"""
)


@pytest.mark.e2e
@pytest.mark.parametrize("columns", ["30", "80"])
@pytest.mark.parametrize("order", ["before", "after"])
@pytest.mark.parametrize("version", CLIENTS)
def test_rich_traceback_with_locals_never_shows_the_token(
    api: LoopbackAPI, version: str, order: str, columns: str
) -> None:
    """``rich.traceback.install(show_locals=True)`` before or after us, at 30 and 80 columns: the
    message is masked at the source, the local variable masked over its wrapped lines, and the
    explanation follows."""
    done = run_program(
        RICH_PROGRAM.replace("@ORDER@", order),
        version, api, BROKEN_TOKEN, {"COLUMNS": columns, "FORCE_COLOR": "1"},
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert leaks(out) == []
    assert "locals" in out  # rich printed it, with the local variables
    assert "replicate-explain: token-whitespace" in out or "token-whitespace" in out
    assert done.returncode == 1


@pytest.mark.e2e
@pytest.mark.parametrize("version", CLIENTS)
def test_unraisable_auth_failures_are_masked_and_explained(api: LoopbackAPI, version: str) -> None:
    """An auth failure in ``__del__`` prints "Exception ignored in", masked, then the explanation."""
    code = (
        CALL
        + """
import replicate_explain


class Closer:
    def __del__(self):
        call()


Closer()
print("done")
"""
    )
    done = run_program(code, version, api, BROKEN_TOKEN)
    assert "Exception ignored in" in done.stderr
    assert "replicate-explain: token-whitespace" in done.stderr
    assert leaks(done.stdout + done.stderr) == []
    assert done.returncode == 0


@pytest.mark.e2e
@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("version", CLIENTS)
def test_multiprocessing_children_print_masked_tracebacks(api: LoopbackAPI, version: str, method: str) -> None:
    """A child process failing on the token prints its traceback masked (fork and spawn), then the
    explanation."""
    code = (
        CALL
        + f"""
import multiprocessing
import replicate_explain

if __name__ == "__main__":
    context = multiprocessing.get_context({method!r})
    child = context.Process(target=call)
    child.start()
    child.join()
    print("exit", child.exitcode)
"""
    )
    done = run_program(code, version, api, BROKEN_TOKEN, timeout=120)
    assert "exit 1" in done.stdout
    assert "Traceback (most recent call last)" in done.stderr
    assert "replicate-explain: token-whitespace" in done.stderr
    assert leaks(done.stdout + done.stderr) == []


@pytest.mark.e2e
@pytest.mark.parametrize("module", ["threading", "logging"])
def test_post_import_hooks_survive_find_spec(module: str) -> None:
    """``importlib.util.find_spec`` before the real import does not consume the hooks: the
    thread's error and the log record are masked afterwards."""
    code = f"""
    import importlib.util, os, sys
    import replicate_explain
    assert {module!r} not in sys.modules
    importlib.util.find_spec({module!r})
    import threading, logging
    def fail():
        raise ValueError("Illegal header value b'Bearer " + os.environ["REPLICATE_API_TOKEN"] + "'")
    if {module!r} == "threading":
        thread = threading.Thread(target=fail)
        thread.start(); thread.join()
    else:
        logging.getLogger("x").error("value %s", os.environ["REPLICATE_API_TOKEN"])
    """
    done = _python(code, {"REPLICATE_API_TOKEN": CANARY})
    assert done.returncode == 0, done.stderr
    assert MASK in done.stderr
    assert leaks(done.stderr) == []


@pytest.mark.e2e
def test_fork_while_another_thread_holds_the_output_lock() -> None:
    """The child's excepthook does not block on a lock a parent thread held at fork time."""
    code = """
    import os, sys, threading
    import replicate_explain
    from replicate_explain import _state
    lock = _state.output_lock()
    holding, release = threading.Event(), threading.Event()

    def hold():
        with lock:
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    pid = os.fork()
    if pid == 0:
        try:
            raise RuntimeError("child failed")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
        os._exit(3)
    _, status = os.waitpid(pid, 0)
    release.set()
    holder.join()
    print("child", os.waitstatus_to_exitcode(status))
    """
    done = _python(code, timeout=20)
    assert done.stdout == "child 3\n"
    assert "RuntimeError: child failed" in done.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["sys", "threading"])
def test_reinstall_under_a_hook_chained_over_ours_does_not_loop(kind: str) -> None:
    """import → another tool chains over our hook → uninstall() → install(): one masked
    traceback, no RecursionError, no "Error in sys.excepthook"."""
    code = f"""
    import os, sys, threading
    import replicate_explain
    if {kind!r} == "sys":
        saved = sys.excepthook
        def other(*args):
            sys.stderr.write("other hook\\n")
            saved(*args)
        sys.excepthook = other
    else:
        saved = threading.excepthook
        def other(args):
            sys.stderr.write("other hook\\n")
            saved(args)
        threading.excepthook = other
    replicate_explain.uninstall()
    replicate_explain.install()
    def fail():
        raise ValueError("bad " + os.environ["REPLICATE_API_TOKEN"])
    if {kind!r} == "sys":
        fail()
    t = threading.Thread(target=fail); t.start(); t.join()
    """
    done = _python(code, {"REPLICATE_API_TOKEN": CANARY})
    assert done.stderr.count("other hook") == 1
    assert done.stderr.count(f"ValueError: bad {MASK}") == 1
    assert "RecursionError" not in done.stderr
    assert leaks(done.stderr) == []


@pytest.mark.e2e
@pytest.mark.parametrize("value", ["inf", "1e20", "nan", "-1", "0"])
def test_doctor_refuses_an_unusable_timeout(value: str) -> None:
    """``--timeout`` outside (0, 3600] (infinite, huge, nan, negative) is a usage error, exit 2."""
    done = _python(
        "from replicate_explain.cli import main; raise SystemExit(main(['doctor', '--online', '--timeout', "
        + repr(value)
        + "]))",
        {"REPLICATE_API_TOKEN": CANARY},
    )
    assert done.returncode == 2
    assert "--timeout must be a number of seconds above 0 and at most 3600" in done.stderr
    assert "internal error" not in done.stderr.lower()


@pytest.mark.e2e
def test_doctor_in_a_deleted_directory_is_a_usage_error(tmp_path: Path) -> None:
    """``doctor`` from a working directory that was deleted: exit 2 with the reason."""
    gone = tmp_path / "gone"
    gone.mkdir()
    code = f"""
    import os, shutil
    os.chdir({str(gone)!r}); shutil.rmtree({str(gone)!r})
    from replicate_explain.cli import main
    raise SystemExit(main(["doctor"]))
    """
    done = _python(code)
    assert done.returncode == 2
    assert "working directory no longer exists" in done.stderr


def _kernel_env(api: LoopbackAPI, home: Path) -> dict[str, str]:
    env = client_env("1.0.7", api, BROKEN_TOKEN)
    env["HOME"] = str(home)
    env["IPYTHONDIR"] = str(home / ".ipython")
    return env


@pytest.mark.e2e
def test_execute_reply_and_cell_execution_error_are_masked(api: LoopbackAPI, tmp_path: Path) -> None:
    """ipykernel's ``execute_reply`` ``evalue`` (what nbclient's ``CellExecutionError`` and so
    papermill and CI print) is ``str(exc)``: masked at the source."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    cells = ["%load_ext replicate_explain", CALL + "\ncall()"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    with pytest.raises(CellExecutionError) as caught:
        client.execute(env=_kernel_env(api, tmp_path))
    assert "Illegal header value" in caught.value.evalue
    assert leaks(str(caught.value) + caught.value.evalue + json.dumps(notebook)) == []


def test_the_filter_masks_extra_fields_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ExplainFilter`` (configured by hand, without the automatic integration) masks the
    ``extra`` fields of a record as well, keeping their types."""
    from replicate_explain.logging import ExplainFilter

    monkeypatch.setenv("REPLICATE_API_TOKEN", CANARY)
    _state.reset()
    record = logging.LogRecord("app", logging.INFO, "f", 1, "m", (), None)
    record.tok = CANARY
    record.count = 3
    ExplainFilter().filter(record)
    assert (record.tok, record.count) == (MASK, 3)


def test_an_interactive_previous_hook_shows_the_traceback_before_its_prompt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The previous hook's stderr is held to be masked as one text, but written out before the
    hook writes to stdout (a post-mortem debugger's prompt), so the order is kept."""
    import traceback

    from replicate_explain._report import print_traceback_masked

    order: list[str] = []

    class Recorder(io.StringIO):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def write(self, text: str) -> int:
            order.append(f"{self.name}:{text.strip()}")
            return len(text)

    monkeypatch.setattr(sys, "stderr", Recorder("err"))
    monkeypatch.setattr(sys, "stdout", Recorder("out"))

    def debugger_hook(*args: Any) -> None:
        traceback.print_exception(*args)
        print("(Pdb) ")

    error = ValueError(f"bad {CANARY}")
    print_traceback_masked(debugger_hook, ValueError, error, None, exc=error)
    assert order == [f"err:ValueError: bad {MASK}", "out:(Pdb)", "out:"]
