"""The logging integration: ``ExplainFilter`` on records, and real programs that log failures.

Unit tests drive the filter on hand-made records in this process; the end-to-end tests run
programs with the real replicate client (1.0.7 and 2.0.0b4) against the loopback API and read
what their handlers wrote, comparing it with what the same program prints without us
(``REPLICATE_EXPLAIN=0``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any, Callable

import pytest
from clients import CANARY, MODEL_REF, REPO_ROOT, run_program
from outputs import ANSI, JSON_KEYS, leaks, masked, rule_shown, same_place

import replicate_explain
from replicate_explain import _state
from replicate_explain._api import explain
from replicate_explain._loopback import LoopbackAPI
from replicate_explain._mask import Redactor
from replicate_explain._render import render_json, render_plain
from replicate_explain.logging import ExplainFilter

VERSIONS = ["1.0.7", "2.0.0b4"]
TOKEN = CANARY + "\n"
OFF = {"REPLICATE_EXPLAIN": "0"}
JSON = {"REPLICATE_EXPLAIN_FORMAT": "json"}
#: The last traceback line of the failure, as it must appear (masked) in the log.
LAST_LINE = {
    "1.0.7": "httpx.LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'",
    "2.0.0b4": "replicate.APIConnectionError: Connection error.",
}

# ---------------------------------------------------------------------------------------------
# Unit tests: the filter on records


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token with a trailing newline in the environment, no format override."""
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    monkeypatch.delenv("REPLICATE_EXPLAIN_FORMAT", raising=False)


def failure() -> BaseException:
    """The exception httpx raises for that token (the 1.x client lets it through), raised."""
    import httpx

    try:
        raise httpx.LocalProtocolError(f"Illegal header value b'Bearer {CANARY}\\n'")
    except httpx.LocalProtocolError as exc:
        return exc


def caught(exc: BaseException) -> BaseException:
    """``exc`` raised and caught, so it has a traceback."""
    try:
        raise exc
    except BaseException as error:
        return error


def chained() -> BaseException:
    """A RuntimeError raised from a KeyError, caught."""
    try:
        raise RuntimeError("outer") from KeyError("missing")
    except RuntimeError as exc:
        return exc


def record(
    msg: object = "call failed",
    args: Any = (),
    exc: BaseException | None = None,
    name: str = "app",
    stack: str | None = None,
) -> logging.LogRecord:
    """A record as ``logger.error(msg, *args, exc_info=exc)`` makes it."""
    info = None if exc is None else (type(exc), exc, exc.__traceback__)
    made = logging.LogRecord(name, logging.ERROR, __file__, 10, msg, args, info, "f", stack)
    return made


def traceback_text(exc: BaseException) -> str:
    """The traceback as the standard formatter writes it, masked."""
    text = logging.Formatter().formatException((type(exc), exc, exc.__traceback__))
    return Redactor.from_environ(os.environ)(text)


def test_a_failure_record_gets_the_explanation_under_its_masked_traceback(token_env: None) -> None:
    """For a Replicate failure the filter keeps the record, attaches the explanation as a dict
    and as plain text, appends the text under the masked traceback, and masks the message."""
    exc = failure()
    rec = record("call failed: %s", (exc,), exc)
    assert ExplainFilter().filter(rec) is True
    explanation = explain(exc)
    assert explanation is not None
    text = render_plain(explanation).rstrip("\n")
    assert text.startswith("replicate-explain: token-whitespace: ")
    assert rec.replicate_explain == explanation.to_dict()  # type: ignore[attr-defined]
    assert rec.replicate_explain_text == text  # type: ignore[attr-defined]
    assert rec.exc_text == traceback_text(exc) + "\n" + text
    # the exception argument is masked at the source: the record keeps msg and args
    assert (rec.getMessage(), rec.args) == ("call failed: Illegal header value b'Bearer [REDACTED]\\n'", (exc,))
    output = logging.Formatter().format(rec)
    assert output == rec.getMessage() + "\n" + rec.exc_text
    assert leaks(output, CANARY) == []
    assert "\x1b[" not in output


def test_with_the_json_format_the_appended_explanation_is_one_json_line(
    token_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``REPLICATE_EXPLAIN_FORMAT=json``: the line under the traceback is the JSON form, the same
    dictionary as ``record.replicate_explain``."""
    monkeypatch.setenv("REPLICATE_EXPLAIN_FORMAT", "json")
    exc = failure()
    rec = record(exc=exc)
    ExplainFilter().filter(rec)
    explanation = explain(exc)
    assert explanation is not None
    assert rec.exc_text == traceback_text(exc) + "\n" + render_json(explanation).rstrip("\n")
    assert json.loads(rec.exc_text.splitlines()[-1]) == rec.replicate_explain  # type: ignore[attr-defined]


def test_one_exception_is_explained_once(token_env: None) -> None:
    """The first record of an exception carries the text under its traceback; a second record
    of the same exception gets the attributes and the masked traceback only; the excepthook
    then has nothing left to explain."""
    from replicate_explain._report import report

    exc = failure()
    first, second = record(exc=exc), record("again", exc=exc)
    ExplainFilter().filter(first)
    ExplainFilter().filter(second)
    text = first.replicate_explain_text  # type: ignore[attr-defined]
    assert first.exc_text == traceback_text(exc) + "\n" + text
    # masked at the source: the second record's traceback needs no text of its own
    assert (second.exc_text, logging.Formatter().formatException(second.exc_info)) == (None, traceback_text(exc))  # type: ignore[arg-type]
    assert second.replicate_explain == first.replicate_explain  # type: ignore[attr-defined]
    assert report(exc) is False


def test_the_filter_is_idempotent(token_env: None) -> None:
    """Filtering a record twice (a filter on the handler and the automatic activation) changes
    nothing the second time."""
    rec = record("call failed: %s", (failure(),), failure())
    ExplainFilter().filter(rec)
    once = dict(vars(rec))
    ExplainFilter().filter(rec)
    assert vars(rec) == once


UNTOUCHED: list[tuple[str, Callable[[], logging.LogRecord]]] = [
    ("a message with arguments", lambda: record("%s took %d ms (%.1f%%)", ("call", 12, 3.5))),
    ("mapping arguments", lambda: record("%(user)s logged in", ({"user": "ada"},))),
    ("an unrelated exception", lambda: record("lookup failed", (), caught(KeyError("missing")))),
    ("a chained exception", lambda: record("x", (), chained())),
    ("a stack", lambda: record("here", stack="Stack (most recent call last):\n  File 'x.py'")),
    ("a broken format string", lambda: record("%d items", ("many",))),
    ("a non-string message", lambda: record(ValueError("not a token"))),
]


@pytest.mark.parametrize(("name", "make"), UNTOUCHED, ids=[u[0] for u in UNTOUCHED])
def test_a_record_with_no_token_and_no_failure_is_left_exactly_as_it_was(
    token_env: None, name: str, make: Callable[[], logging.LogRecord]
) -> None:
    """No attribute added, nothing formatted in advance, message and arguments untouched (even
    with a token problem in the environment)."""
    rec = make()
    before = dict(vars(rec))
    assert ExplainFilter().filter(rec) is True
    assert vars(rec) == before


def test_a_token_is_masked_wherever_a_record_would_show_it(token_env: None) -> None:
    """Message, arguments, stack and the traceback of an unrelated exception: every place
    that carries the token is masked, and only that changes."""
    unrelated = caught(ValueError(f"bad token {CANARY}"))
    cases: list[tuple[logging.LogRecord, dict[str, Any]]] = [
        (record("using %s", (TOKEN,)), {"args": ("[REDACTED]\n",)}),
        (record(f"token={CANARY}"), {"msg": "token=[REDACTED]", "args": ()}),
        (
            record("x", stack=f"Stack:\n  t = {CANARY!r}"),
            {"stack_info": "Stack:\n  t = '[REDACTED]'"},
        ),
        (record("failed", exc=unrelated), {}),  # masked at the source: see the exception below
        (record(f"{CANARY} %d", ("x",)), {"msg": "[REDACTED] %d"}),
        (record("%d %s", ("x", CANARY)), {"args": ("x", "[REDACTED]")}),
    ]
    for rec, changes in cases:
        before = dict(vars(rec))
        ExplainFilter().filter(rec)
        assert vars(rec) == {**before, **changes}
        shown = {key: value for key, value in vars(rec).items() if key != "exc_info"}
        assert leaks(repr(shown), CANARY) == []
    assert unrelated.args == ("bad token [REDACTED]",)


def test_a_bug_in_the_explainer_keeps_the_record_and_still_masks_it(
    token_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When explaining fails the record is kept, nothing is attached, and the token is still
    masked in the message and the traceback."""
    import replicate_explain._api as api

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("explainer bug")

    monkeypatch.setattr(api, "explain", broken)
    exc = failure()
    rec = record("call failed: %s", (exc,), exc)
    assert ExplainFilter().filter(rec) is True
    assert not hasattr(rec, "replicate_explain")
    assert (rec.exc_text, logging.Formatter().formatException(rec.exc_info)) == (None, traceback_text(exc))  # type: ignore[arg-type]
    assert leaks(logging.Formatter().format(rec), CANARY) == []


def test_the_name_limits_the_work_to_one_logger_but_no_record_is_dropped(token_env: None) -> None:
    """``ExplainFilter("app")`` works on ``app`` and its children; other records pass as is."""
    explain_app = ExplainFilter("app")
    other, child = record(f"t={CANARY}", name="web"), record(f"t={CANARY}", name="app.jobs")
    assert explain_app.filter(other) is True
    assert explain_app.filter(child) is True
    assert (other.msg, child.msg) == (f"t={CANARY}", "t=[REDACTED]")
    assert repr(explain_app) == "ExplainFilter(name='app')"


def test_a_name_that_is_not_a_string_is_a_clear_error() -> None:
    """A wrong argument (say, from a dictConfig file) says what is wrong and what is expected."""
    with pytest.raises(TypeError) as info:
        ExplainFilter(3)  # type: ignore[arg-type]
    assert str(info.value) == (
        "ExplainFilter(name=...) must be a logger name (a string), not 3; "
        "use '' (the default) to explain the records of every logger"
    )


class TestActivation:
    """``install()``/``uninstall()`` wrap and unwrap ``logging.Logger.makeRecord``."""

    def setup_method(self) -> None:
        self.was_installed = _state.installed
        replicate_explain.uninstall()
        self.original = logging.Logger.makeRecord

    def teardown_method(self) -> None:
        replicate_explain.uninstall()
        logging.Logger.makeRecord = self.original  # type: ignore[method-assign]
        _state.previous_make_record = None
        if self.was_installed:
            replicate_explain.install()

    def test_install_wraps_make_record_and_uninstall_restores_it(self, token_env: None) -> None:
        """Installed, a logger's records are masked; uninstalled, ``makeRecord`` is the exact
        previous object again and records are untouched."""
        before = logging.Logger.makeRecord
        logger = logging.getLogger("replicate_explain_tests.activation")
        replicate_explain.install()
        replicate_explain.install()
        assert logging.Logger.makeRecord is not before
        made = logger.makeRecord(logger.name, logging.ERROR, "f", 1, "t=%s", (CANARY,), None)
        assert (made.msg, made.args) == ("t=%s", ("[REDACTED]",))
        replicate_explain.uninstall()
        assert logging.Logger.makeRecord is before
        made = logger.makeRecord(logger.name, logging.ERROR, "f", 1, "t=%s", (CANARY,), None)
        assert (made.msg, made.args) == ("t=%s", (CANARY,))

    def test_a_wrapper_over_ours_keeps_working_after_uninstall(self, token_env: None) -> None:
        """When another tool wrapped ``makeRecord`` after us, uninstall leaves the chain in place
        and ours passes records through untouched."""
        replicate_explain.install()
        ours = logging.Logger.makeRecord
        calls: list[str] = []

        def theirs(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
            calls.append("theirs")
            return ours(self, *args, **kwargs)

        logging.Logger.makeRecord = theirs  # type: ignore[method-assign]
        replicate_explain.uninstall()
        assert logging.Logger.makeRecord is theirs
        logger = logging.getLogger("replicate_explain_tests.activation")
        made = logger.makeRecord(logger.name, logging.ERROR, "f", 1, "t=%s", (CANARY,), None)
        assert (made.msg, made.args, calls) == ("t=%s", (CANARY,), ["theirs"])


# ---------------------------------------------------------------------------------------------
# End to end: real programs, real clients, real handlers

CALL = f"""
import replicate
replicate.max_retries = 0  # 2.x would retry the connection error twice


def call():
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
"""

LOG_IT = """
try:
    call()
except Exception as error:
    logging.getLogger("app").exception("call failed: %s", error)
"""


def without_explanations(text: str) -> str:
    """``text`` without the JSON explanation lines (``REPLICATE_EXPLAIN_FORMAT=json``)."""
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith('{"rule_id"'))


FILE_AND_STDERR = (
    "import replicate_explain\nimport logging\n"
    "handlers = [logging.StreamHandler(), logging.FileHandler('app.log', encoding='utf-8')]\n"
    "logging.basicConfig(format='%(levelname)s %(name)s: %(message)s', handlers=handlers)\n"
    + CALL
    + LOG_IT
    + "logging.shutdown()\nprint(open('app.log', encoding='utf-8').read(), end='')\n"
)


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_a_logged_failure_is_explained_in_the_console_and_in_the_log_file(api: LoopbackAPI, version: str) -> None:
    """``logger.exception`` in a program that survives the failure: stderr and the log file
    hold the same text, which is plain Python's log with the token masked and the explanation
    under the traceback, as plain text without ANSI codes even with colour forced."""
    colour = {"NO_COLOR": "", "FORCE_COLOR": "1"}
    hooked = run_program(FILE_AND_STDERR, version, api, TOKEN, colour)
    plain = run_program(FILE_AND_STDERR, version, api, TOKEN, {**colour, **OFF})
    assert hooked.returncode == plain.returncode == 0
    assert leaks(plain.stderr, CANARY) == [CANARY]  # what the filter is for
    assert hooked.stdout == hooked.stderr  # the file is the console, line for line
    expected = masked(plain.stderr, TOKEN)
    assert same_place(hooked.stderr).startswith(same_place(expected))
    tail = hooked.stderr[len(expected) :]
    assert expected.endswith(LAST_LINE[version] + "\n")
    assert tail.startswith("replicate-explain: token-whitespace: ")
    assert "Fix:\n" in tail and tail.endswith("\n")
    assert hooked.stderr.count("replicate-explain: ") == 1
    assert ANSI.search(hooked.stdout + hooked.stderr) is None
    assert leaks(hooked.stdout + hooked.stderr, CANARY) == []


WHERE_LOGGED = [
    (
        "basicConfig before the import",
        "import logging\nlogging.basicConfig()\nimport replicate_explain\n" + CALL + LOG_IT,
    ),
    (
        "basicConfig after the import",
        "import replicate_explain\nimport logging\nlogging.basicConfig()\n" + CALL + LOG_IT,
    ),
    ("no logging configuration at all (lastResort)", "import replicate_explain\nimport logging\n" + CALL + LOG_IT),
    (
        "a handler added to a named logger after the import, error(exc_info=True)",
        "import replicate_explain\nimport logging, sys\n"
        + CALL
        + "log = logging.getLogger('worker')\nlog.addHandler(logging.StreamHandler(sys.stderr))\n"
        "log.propagate = False\n"
        "try:\n    call()\nexcept Exception as error:\n"
        "    log.error('job %d failed: %r', 7, error, exc_info=True)\n",
    ),
    (
        "a logger and handler created before the import",
        "import logging\nlog = logging.getLogger('app')\nlog.addHandler(logging.StreamHandler())\n"
        "log.propagate = False\nimport replicate_explain\n" + CALL + LOG_IT,
    ),
    (
        "asyncio's 'Task exception was never retrieved'",
        "import replicate_explain\nimport asyncio, gc\n" + CALL + "async def job():\n    call()\n\n"
        "async def main():\n    task = asyncio.get_running_loop().create_task(job())\n"
        "    while not task.done():\n        await asyncio.sleep(0)\n"
        "    del task\n    gc.collect()\n\n"
        "asyncio.run(main())\n",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("where", "code"), WHERE_LOGGED, ids=[w[0] for w in WHERE_LOGGED])
def test_a_failure_logged_through_any_logger_is_explained_once(
    api: LoopbackAPI, version: str, where: str, code: str
) -> None:
    """However logging is set up, and whenever ``replicate_explain`` is imported, the log is
    plain Python's with the token masked and exactly one explanation right under the traceback."""
    hooked = run_program(code, version, api, TOKEN, JSON)
    plain = run_program(code, version, api, TOKEN, {**JSON, **OFF})
    assert hooked.returncode == plain.returncode == 0
    assert rule_shown(hooked.stderr) == "token-whitespace"
    lines = hooked.stderr.splitlines()
    shown = next(i for i, line in enumerate(lines) if line.startswith('{"rule_id"'))
    assert lines[shown - 1] == LAST_LINE[version]
    expected = masked(plain.stderr, TOKEN)
    assert same_place(without_explanations(hooked.stderr)) == same_place(expected)
    assert leaks(hooked.stdout + hooked.stderr, CANARY) == []


def dict_config(explain_filter: bool) -> str:
    """A program start that configures logging with ``dictConfig``, with or without our filter."""
    console: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "short"}
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"short": {"format": "%(levelname)s %(name)s: %(message)s"}},
        "handlers": {"console": console},
        "root": {"handlers": ["console"], "level": "WARNING"},
    }
    if explain_filter:
        config["filters"] = {"explain": {"()": "replicate_explain.logging.ExplainFilter"}}
        console["filters"] = ["explain"]
    return f"import logging, logging.config\nlogging.config.dictConfig({config!r})\n"


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_dictconfig_names_the_filter_by_its_dotted_path(api: LoopbackAPI, version: str) -> None:
    """The filter configured by dotted path alone (automatic activation off), the automatic
    activation alone, and both together write the same log: one explanation, token masked."""
    with_filter = "import replicate_explain\n" + dict_config(explain_filter=True)
    without = "import replicate_explain\n" + dict_config(explain_filter=False)
    filter_only = run_program(with_filter + CALL + LOG_IT, version, api, TOKEN, {**JSON, **OFF})
    automatic = run_program(without + CALL + LOG_IT, version, api, TOKEN, JSON)
    both = run_program(with_filter + CALL + LOG_IT, version, api, TOKEN, JSON)
    assert filter_only.returncode == automatic.returncode == both.returncode == 0
    assert rule_shown(filter_only.stderr) == "token-whitespace"
    assert same_place(filter_only.stderr) == same_place(automatic.stderr) == same_place(both.stderr)
    assert leaks(filter_only.stderr, CANARY) == []


JSON_FORMATTER = (
    "import replicate_explain\nimport json, logging\n\n\n"
    "class JsonFormatter(logging.Formatter):\n"
    "    def format(self, record):\n"
    "        super().format(record)\n"
    "        return json.dumps({'message': record.getMessage(), 'exc_text': record.exc_text,\n"
    "                           'explain': getattr(record, 'replicate_explain', None),\n"
    "                           'text': getattr(record, 'replicate_explain_text', None)})\n\n\n"
    "handler = logging.StreamHandler()\nhandler.setFormatter(JsonFormatter())\n"
    "logging.getLogger().addHandler(handler)\n" + CALL + LOG_IT
)


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_a_json_formatter_ships_the_structured_explanation(api: LoopbackAPI, version: str) -> None:
    """``record.replicate_explain`` is the explanation's dictionary (the JSON format's keys),
    ``record.replicate_explain_text`` the plain text, and neither shows the token."""
    result = run_program(JSON_FORMATTER, version, api, TOKEN, JSON)
    assert result.returncode == 0
    shipped = json.loads(result.stderr)
    exc_lines = shipped["exc_text"].splitlines()
    assert exc_lines[-2] == LAST_LINE[version]
    assert shipped["explain"] == json.loads(exc_lines[-1])
    assert list(shipped["explain"]) == JSON_KEYS
    assert shipped["explain"]["rule_id"] == "token-whitespace"
    assert shipped["explain"]["client_version"] == version
    title = shipped["explain"]["title"]
    assert shipped["text"].startswith(f"replicate-explain: token-whitespace: {title}\n")
    assert leaks(result.stderr, CANARY) == []


LOGGED_THEN_CRASH = [
    ("logged to the console", "logging.basicConfig()\nlog = logging.getLogger('app')\n", "log"),
    (
        "logged where nobody sees it (NullHandler)",
        "log = logging.getLogger('quiet')\nlog.addHandler(logging.NullHandler())\nlog.propagate = False\n",
        "crash",
    ),
    (
        "logged below the handlers' level",
        "logging.basicConfig()\nlogging.getLogger().handlers[0].setLevel(logging.CRITICAL)\n"
        "log = logging.getLogger('app')\n",
        "crash",
    ),
    (
        "dropped by the handler's filter",
        "logging.basicConfig()\nlogging.getLogger().handlers[0].addFilter(lambda record: False)\n"
        "log = logging.getLogger('app')\n",
        "crash",
    ),
    (
        "dropped by the logger's filter",
        "logging.basicConfig()\nlog = logging.getLogger('app')\nlog.addFilter(lambda record: False)\n",
        "crash",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("case", "setup", "where"), LOGGED_THEN_CRASH, ids=[c[0] for c in LOGGED_THEN_CRASH])
def test_a_failure_logged_then_crashing_is_explained_once(
    api: LoopbackAPI, version: str, case: str, setup: str, where: str
) -> None:
    """Logged, then re-raised: one explanation, in the log if a handler printed the record,
    else under the crash's traceback; everything else is plain Python's output, masked."""
    code = (
        "import replicate_explain\nimport logging\n"
        + setup
        + CALL
        + "try:\n    call()\nexcept Exception:\n    log.exception('call failed')\n    raise\n"
    )
    hooked = run_program(code, version, api, TOKEN, JSON)
    plain = run_program(code, version, api, TOKEN, {**JSON, **OFF})
    assert hooked.returncode == plain.returncode == 1
    assert rule_shown(hooked.stderr) == "token-whitespace"
    crash = hooked.stderr.rindex("Traceback (most recent call last):")
    shown = hooked.stderr.index('{"rule_id"')
    assert (shown < crash) == (where == "log")
    expected = masked(plain.stderr, TOKEN)
    assert same_place(without_explanations(hooked.stderr)) == same_place(expected)
    assert leaks(hooked.stderr, CANARY) == []


DROPPED_RECORDS = """
import io, logging
import replicate_explain


class Counted:
    calls = 0

    def __str__(self):
        Counted.calls += 1
        return "counted"


log = logging.getLogger("app")
log.setLevel(logging.DEBUG)
log.propagate = False
handler = logging.StreamHandler(io.StringIO())
handler.setLevel(logging.WARNING)
log.addHandler(handler)
for _ in range(1000):
    log.debug("value %s", Counted())
    log.debug("value %s", Counted(), exc_info=ValueError("a"))
print(Counted.calls, repr(handler.stream.getvalue()))
"""


@pytest.mark.e2e
def test_arguments_of_a_record_no_handler_emits_are_never_formatted(api: LoopbackAPI) -> None:
    """2,000 DEBUG records (with and without an exception) under a WARNING handler: nothing
    formats them, so an argument's ``__str__`` is never called, as in plain Python."""
    hooked = run_program(DROPPED_RECORDS, "1.0.7", api, TOKEN)
    plain = run_program(DROPPED_RECORDS, "1.0.7", api, TOKEN, OFF)
    assert (hooked.returncode, hooked.stdout, hooked.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert plain.stdout == "0 ''\n"


UNRELATED = """
import replicate_explain
import json, logging, sys


class OneLine(logging.Formatter):
    def formatException(self, ei):
        return "EXC " + repr(ei[1])


class Attributes(logging.Formatter):
    def format(self, record):
        return json.dumps(sorted(vars(record)))


logging.basicConfig(level=logging.DEBUG, format="%(levelname)s:%(name)s:%(message)s")
other = logging.getLogger("other")
other.propagate = False
for formatter in (OneLine("%(message)s"), Attributes()):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    other.addHandler(handler)
log = logging.getLogger("app")
log.info("plain %s and %d%%", "arguments", 5)
log.warning("%(user)s logged in", {"user": "ada"})
try:
    {}["missing"]
except KeyError:
    log.exception("lookup failed")
    other.error("again", exc_info=True)
try:
    try:
        1 / 0
    except ZeroDivisionError as error:
        raise RuntimeError("wrapped") from error
except RuntimeError:
    log.error("chained", exc_info=True)
log.debug("where", stack_info=True)
log.error("broken format %d", "x")
"""


@pytest.mark.e2e
def test_unrelated_logging_is_byte_for_byte_plain_python(api: LoopbackAPI) -> None:
    """Records that are not Replicate failures and carry no token (unrelated exceptions, a
    custom ``formatException``, a handler error report, stack info) print exactly what plain
    Python prints, with no attribute added, even with a token problem in the environment."""
    hooked = run_program(UNRELATED, "1.0.7", api, TOKEN)
    plain = run_program(UNRELATED, "1.0.7", api, TOKEN, OFF)
    assert "--- Logging error ---" in plain.stderr and "KeyError: 'missing'" in plain.stderr
    assert (hooked.returncode, hooked.stdout, same_place(hooked.stderr)) == (
        plain.returncode,
        plain.stdout,
        same_place(plain.stderr),
    )


@pytest.mark.e2e
def test_logging_is_hooked_only_once_the_program_imports_it() -> None:
    """``import replicate_explain`` does not import logging; importing it afterwards wraps
    ``makeRecord``, and the logging package still sees its real loader."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "import replicate_explain\n"
        "before = 'logging' in sys.modules\n"
        "import logging\n"
        "print(before, logging.Logger.makeRecord.__module__, type(logging.__loader__).__name__,\n"
        "      logging.__spec__.loader is logging.__loader__,\n"
        "      sorted(replicate_explain._state.post_import_hooks))\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "REPLICATE_EXPLAIN": ""},
    )
    # Only IPython's shell module (see _ipython.watch_shells), multiprocessing, rich.traceback,
    # the libraries with an integration (replicate_explain.integrations, Streamlit), unittest's
    # runner (its report is masked and explained: _unittest), the HTTP libraries
    # masked at birth (_birth) and logging itself again (for importlib.reload) are still watched.
    watched = sorted(
        [
            "httpx",
            "logging",
            "requests",
            "IPython.core.interactiveshell",
            "multiprocessing.process",
            "rich.traceback",
            "loguru",
            "opentelemetry.sdk.trace",
            "sentry_sdk",
            "streamlit",
            "structlog",
            "unittest.runner",
        ]
    )
    assert result.stdout == f"False replicate_explain.logging SourceFileLoader True {watched}\n"
    assert result.stderr == ""


BIG_MESSAGES = """
import gc, logging, tracemalloc
import replicate_explain

logging.basicConfig()
logging.getLogger().handlers[0].setLevel(logging.WARNING)
log = logging.getLogger("app")
log.setLevel(logging.INFO)
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
for number in range(64):
    log.info(str(number) + "x" * (1 << 20))
gc.collect()
print((tracemalloc.get_traced_memory()[0] - before) >> 20)
"""


@pytest.mark.e2e
def test_the_cache_of_clean_messages_is_bounded_by_size(api: LoopbackAPI) -> None:
    """64 distinct messages of a megabyte each, logged once (no handler emits them): what stays
    allocated afterwards, in MiB as ``tracemalloc`` counts it, is what plain Python keeps (none)
    plus at most the cache's bound of about one MiB; the cache used to keep every message
    (4,096 of them whatever their size: 64 MiB here)."""
    hooked = run_program(BIG_MESSAGES, "1.0.7", api, TOKEN)
    plain = run_program(BIG_MESSAGES, "1.0.7", api, TOKEN, OFF)
    assert (hooked.returncode, plain.returncode, plain.stdout, hooked.stderr) == (0, 0, "0\n", "")
    assert int(hooked.stdout) <= 1
