"""The Sentry, structlog, loguru and OpenTelemetry integrations, with the real libraries.

In-process tests drive each library on a real exception chain (httpx's refusal of a token with
a trailing newline, as the 1.x client lets it through) and read what the library would send or
print: an in-memory Sentry transport, structlog and loguru writing to a string, the OpenTelemetry
SDK's in-memory exporter. The end-to-end tests run programs with the real replicate client
(1.0.7 and 2.0.0b4) against the loopback API, with the automatic activation and with the
explicit configuration (``REPLICATE_EXPLAIN=0``), and check the same.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from clients import CANARY, MODEL_REF, REPO_ROOT, run_program
from outputs import ANSI, JSON_KEYS, leaks

import replicate_explain
from replicate_explain import _state
from replicate_explain._api import explain
from replicate_explain._loopback import LoopbackAPI
from replicate_explain._mask import Redactor
from replicate_explain._render import render_json, render_plain

TOKEN = CANARY + "\n"
VERSIONS = ["1.0.7", "2.0.0b4"]
LIBRARIES = ("sentry_sdk", "structlog", "loguru", "opentelemetry")


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token with a trailing newline in the environment, no format override."""
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    monkeypatch.delenv("REPLICATE_EXPLAIN_FORMAT", raising=False)


def failure() -> BaseException:
    """httpx's refusal of the token, raised from a frame whose local variable holds it."""
    import httpx

    def send(token: str) -> None:
        header = f"Bearer {token}"
        raise httpx.LocalProtocolError(f"Illegal header value {header.encode()!r}")

    try:
        send(TOKEN)
    except httpx.LocalProtocolError as exc:
        return exc
    raise AssertionError("unreachable")


def unrelated() -> BaseException:
    """A KeyError with nothing to do with Replicate or tokens."""
    try:
        {}["missing"]
    except KeyError as exc:
        return exc
    raise AssertionError("unreachable")


def masked(text: str) -> str:
    return Redactor.from_environ(os.environ)(text)


def explanation_of(exc: BaseException) -> Any:
    found = explain(exc)
    assert found is not None
    return found


# ---------------------------------------------------------------------------------------------
# Sentry


@contextlib.contextmanager
def sentry_events(**options: Any) -> Iterator[list[dict[str, Any]]]:
    """The real SDK with an in-memory transport; on exit, the list holds the event payloads it
    would have sent (the serialized envelopes are checked for the canary first)."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    sent: list[bytes] = []

    class Capture(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            sent.append(envelope.serialize())
            for item in envelope.items:
                if item.headers.get("type") == "event":
                    events.append(json.loads(item.payload.get_bytes()))

    events: list[dict[str, Any]] = []
    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=Capture(), **options)
    try:
        yield events
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
    text = b"\n".join(sent).decode()
    assert leaks(text, CANARY) == []


def test_sentry_event_of_a_failure_has_the_context_and_the_tag() -> None:
    """Explicit integration: a Replicate failure's event carries ``contexts["replicate_explain"]``
    (the explanation's dictionary) and the tag ``replicate_explain.rule``; its exception value and
    the frame variable holding the token are masked; the unrelated error's event has neither key;
    a breadcrumb and request headers (added by a scope processor, after ours) with the token
    are masked. Nothing sent has the canary."""
    import sentry_sdk

    from replicate_explain.integrations.sentry import ReplicateExplainIntegration

    exc, other = failure(), unrelated()
    with sentry_events(default_integrations=False, integrations=[ReplicateExplainIntegration()]) as events:
        sentry_sdk.add_breadcrumb(message=f"token is {CANARY}")
        sentry_sdk.capture_exception(exc)
        sentry_sdk.capture_exception(other)
        headers = {"X-Upstream": f"Bearer {CANARY}"}  # (sentry-sdk filters Authorization itself)
        with sentry_sdk.new_scope() as scope:  # as a web framework adds the request, after ours

            def add_request(event: Any, hint: Any) -> Any:
                return {**event, "request": {"headers": headers}}

            scope.add_event_processor(add_request)
            sentry_sdk.capture_message("request")
    first, second, third = events
    assert first["contexts"]["replicate_explain"] == explanation_of(exc).to_dict()
    assert first["tags"] == {"replicate_explain.rule": "token-whitespace"}
    value = first["exception"]["values"][-1]
    assert value["value"] == "Illegal header value b'Bearer [REDACTED]\\n'"
    # (sentry-sdk filters a variable named ``token`` by itself; ``header`` is ours to mask)
    assert value["stacktrace"]["frames"][-1]["vars"]["header"] == "'Bearer [REDACTED]\\n'"
    assert first["breadcrumbs"]["values"][-1]["message"] == "token is [REDACTED]"
    assert "replicate_explain" not in second.get("contexts", {}) and "tags" not in second
    assert second["exception"]["values"][-1]["value"] == "'missing'"
    assert third["request"]["headers"] == {"X-Upstream": "Bearer [REDACTED]"}


def test_sentry_integration_off_leaves_events_alone() -> None:
    """With the automatic activation uninstalled and no integration configured, the event
    processor passes events through untouched (the SDK itself sends the token)."""
    from replicate_explain.integrations.sentry import process_event

    was = _state.installed
    replicate_explain.uninstall()
    try:
        import sentry_sdk

        assert sentry_sdk.get_client().get_integration("replicate_explain") is None
        event = {"message": f"token {CANARY}"}
        assert process_event(event, {}) is event
        assert event == {"message": f"token {CANARY}"}
    finally:
        if was:
            replicate_explain.install()


# ---------------------------------------------------------------------------------------------
# structlog


def structlog_output(renderer: Any, exc: BaseException, **values: Any) -> str:
    """What a structlog logger with ``ExplainProcessor`` before ``renderer`` prints for
    ``log.error("call failed", exc_info=exc, **values)``."""
    import structlog

    from replicate_explain.integrations.structlog import ExplainProcessor

    out = io.StringIO()
    processors = [structlog.processors.add_log_level, ExplainProcessor(), structlog.processors.format_exc_info]
    log = structlog.wrap_logger(structlog.PrintLogger(out), processors=[*processors, renderer])
    log.error("call failed", exc_info=exc, **values)
    return out.getvalue()


def test_structlog_json_has_the_explanation_and_the_masked_traceback() -> None:
    """JSONRenderer: ``replicate_explain`` is the explanation's dictionary, ``exception`` the
    masked traceback with the plain-text explanation under it (first event of the exception only),
    other values are masked; the unrelated error's event is what structlog prints without us."""
    import structlog

    exc = failure()
    first = json.loads(structlog_output(structlog.processors.JSONRenderer(), exc, using=TOKEN))
    second = json.loads(structlog_output(structlog.processors.JSONRenderer(), exc))
    explanation = explanation_of(exc)
    trace = masked("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))).rstrip("\n")
    assert first == {
        "using": "[REDACTED]\n",
        "event": "call failed",
        "level": "error",
        "replicate_explain": explanation.to_dict(),
        "exception": trace + "\n" + render_plain(explanation).rstrip("\n"),
    }
    assert list(first["replicate_explain"]) == JSON_KEYS
    assert second["exception"] == trace
    other = unrelated()
    plain = structlog.wrap_logger(
        structlog.PrintLogger(out := io.StringIO()),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    plain.error("call failed", exc_info=other)
    assert structlog_output(structlog.processors.JSONRenderer(), other) == out.getvalue()


def test_structlog_console_renderer_prints_the_explanation_under_the_traceback() -> None:
    """ConsoleRenderer (no colours): the masked traceback, then the explanation; no canary, even
    for an unrelated error whose frame holds the token in a local variable (rich would show it)."""
    import structlog

    exc = failure()
    text = structlog_output(structlog.dev.ConsoleRenderer(colors=False), exc)
    explanation = explanation_of(exc)
    assert text.endswith("Illegal header value b'Bearer [REDACTED]\\n'\n" + render_plain(explanation))
    assert text.count("replicate-explain: token-whitespace") == 1
    assert leaks(text, CANARY) == []

    def holds_the_token() -> None:
        secret = TOKEN
        raise ValueError(f"bad length {len(secret)}")

    try:
        holds_the_token()
    except ValueError as error:
        other = error
    from replicate_explain.integrations.structlog import ExplainProcessor

    log = structlog.wrap_logger(
        structlog.PrintLogger(out := io.StringIO()),
        processors=[ExplainProcessor(), structlog.dev.ConsoleRenderer(colors=False)],
    )
    log.error("failed", exc_info=other)
    assert "ValueError: bad length 41" in out.getvalue()
    assert "replicate_explain" not in out.getvalue()
    assert leaks(out.getvalue(), CANARY) == []


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        (["add_log_level", "ConsoleRenderer"], ["add_log_level", "ExplainProcessor", "ConsoleRenderer"]),
        (
            ["add_log_level", "format_exc_info", "TimeStamper", "JSONRenderer"],
            ["add_log_level", "ExplainProcessor", "format_exc_info", "TimeStamper", "JSONRenderer"],
        ),
        (["dict_tracebacks", "JSONRenderer"], ["ExplainProcessor", "dict_tracebacks", "JSONRenderer"]),
        (["ExplainProcessor", "JSONRenderer"], ["ExplainProcessor", "JSONRenderer"]),
        ([], ["ExplainProcessor"]),
    ],
)
def test_structlog_automatic_activation_inserts_one_processor(chain: list[str], expected: list[str]) -> None:
    """The automatic activation puts the processor before the first exception formatter, else
    before the renderer, and never twice."""
    import structlog

    from replicate_explain.integrations.structlog import ExplainProcessor, with_processor

    known: dict[str, Any] = {
        "add_log_level": structlog.processors.add_log_level,
        "format_exc_info": structlog.processors.format_exc_info,
        "dict_tracebacks": structlog.processors.dict_tracebacks,
        "TimeStamper": structlog.processors.TimeStamper(),
        "JSONRenderer": structlog.processors.JSONRenderer(),
        "ConsoleRenderer": structlog.dev.ConsoleRenderer(colors=False),
        "ExplainProcessor": ExplainProcessor(),
    }
    result = with_processor([known[name] for name in chain])
    names = [
        "ExplainProcessor"
        if isinstance(p, ExplainProcessor)
        else next(name for name, value in known.items() if value is p)
        for p in result
    ]
    assert names == expected


# ---------------------------------------------------------------------------------------------
# loguru


@pytest.fixture
def loguru_logger() -> Iterator[Any]:
    """loguru's logger with no sink (the default stderr sink is put back afterwards)."""
    from loguru import logger

    logger.remove()
    yield logger
    logger.remove()
    logger.add(sys.stderr)


def test_loguru_prints_the_explanation_under_the_masked_traceback(loguru_logger: Any) -> None:
    """``logger.patch(ExplainPatcher())``: a stream sink with ``diagnose`` and ``backtrace`` prints
    the masked traceback (variable values included) and the plain-text explanation under it; a
    ``serialize=True`` sink ships the dictionary in ``extra`` and the masked exception value."""
    from replicate_explain.integrations.loguru import ExplainPatcher

    text, data = io.StringIO(), io.StringIO()
    loguru_logger.add(text, diagnose=True, backtrace=True, colorize=False, format="{message}")
    loguru_logger.add(data, serialize=True)
    exc = failure()
    log = loguru_logger.patch(ExplainPatcher())
    log.opt(exception=exc).error("call failed with {}", TOKEN)
    explanation = explanation_of(exc)
    printed = text.getvalue()
    assert printed.startswith("call failed with [REDACTED]\n\nTraceback (most recent call last):\n")
    assert "'Bearer [REDACTED]\\n'" in printed  # the value diagnose=True shows for `header`
    assert printed.endswith("Illegal header value b'Bearer [REDACTED]\\n'\n" + render_plain(explanation))
    assert leaks(printed, CANARY) == []
    record = json.loads(data.getvalue())["record"]
    assert record["extra"] == {"replicate_explain": explanation.to_dict()}
    assert record["exception"] == {
        "type": "LocalProtocolError",
        "value": "Illegal header value b'Bearer [REDACTED]\\n'",
        "traceback": True,
    }
    assert record["message"] == "call failed with [REDACTED]\n"
    assert leaks(data.getvalue(), CANARY) == []


def test_loguru_unrelated_error_gets_nothing(loguru_logger: Any) -> None:
    """An unrelated exception: no ``replicate_explain`` in ``extra``, no explanation printed, the
    exception value as loguru serializes it."""
    from replicate_explain.integrations.loguru import ExplainPatcher

    data = io.StringIO()
    loguru_logger.add(data, serialize=True, diagnose=True, backtrace=True)
    loguru_logger.patch(ExplainPatcher()).opt(exception=unrelated()).error("lookup failed")
    shipped = json.loads(data.getvalue())
    assert shipped["record"]["extra"] == {}
    assert shipped["record"]["exception"]["value"] == "'missing'"
    assert shipped["text"].endswith("KeyError: 'missing'\n")
    assert "replicate-explain" not in shipped["text"]


# ---------------------------------------------------------------------------------------------
# OpenTelemetry


def spans_of(exc: BaseException, *, explicit: bool = True) -> Any:
    """The spans the SDK's in-memory exporter holds after a span recorded ``exc``."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from replicate_explain.integrations.opentelemetry import ExplainSpanProcessor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    if explicit:
        provider.add_span_processor(ExplainSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with pytest.raises(type(exc)), provider.get_tracer("tests").start_as_current_span("call"):
        raise exc
    return exporter.get_finished_spans()


def plain_event(exc: BaseException) -> dict[str, Any]:
    """The attributes of the exception event the SDK records for ``exc`` without us."""
    replicate_explain.uninstall()
    try:
        (span,) = spans_of(exc, explicit=False)
    finally:
        replicate_explain.install()
    (event,) = span.events
    return dict(event.attributes)


def test_opentelemetry_span_names_the_rule_and_masks_the_exception_event() -> None:
    """A span recording a Replicate failure gets ``replicate_explain.rule_id``; its exception
    event has the SDK's message and stack trace, masked, and the explanation as JSON; the status
    description is masked; the exported JSON has no canary."""
    plain = plain_event(failure())  # a fresh exception each: raising one again extends its traceback
    exc = failure()
    assert leaks(plain["exception.stacktrace"], CANARY) == [CANARY]  # what the processor is for
    (span,) = spans_of(exc)
    explanation = explanation_of(exc)
    (event,) = span.events
    trace = plain["exception.stacktrace"]
    assert dict(span.attributes) == {"replicate_explain.rule_id": "token-whitespace"}
    assert dict(event.attributes) == {
        "exception.type": "httpx.LocalProtocolError",
        "exception.message": "Illegal header value b'Bearer [REDACTED]\\n'",
        "exception.stacktrace": masked(trace),
        "exception.escaped": "False",
        "replicate_explain.rule_id": "token-whitespace",
        "replicate_explain": render_json(explanation).rstrip("\n"),
    }
    assert span.status.description == "LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'"
    assert leaks(span.to_json(), CANARY) == []


def test_opentelemetry_unrelated_error_is_recorded_as_the_sdk_records_it() -> None:
    """An unrelated exception's event has exactly the SDK's attributes and the span no rule."""
    plain = plain_event(unrelated())
    (span,) = spans_of(unrelated())
    (event,) = span.events
    assert dict(span.attributes) == {}
    assert dict(event.attributes) == plain
    assert plain["exception.message"] == "'missing'"


def test_opentelemetry_automatic_activation_adds_the_processor_to_new_providers() -> None:
    """After ``import replicate_explain`` (this process), a TracerProvider created without our
    processor still masks and names the rule."""
    replicate_explain.install()  # the import installed it; another test in this worker may have uninstalled
    assert _state.installed
    (span,) = spans_of(failure(), explicit=False)
    assert dict(span.attributes) == {"replicate_explain.rule_id": "token-whitespace"}
    assert leaks(span.to_json(), CANARY) == []


# ---------------------------------------------------------------------------------------------
# Start-up


def test_import_imports_none_of_the_integrated_libraries() -> None:
    """``import replicate_explain`` imports neither the libraries nor our integration modules;
    it only watches for their import."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "import replicate_explain\n"
        f"names = {LIBRARIES!r} + ('replicate_explain.integrations',)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in names or m.startswith(names)))\n"
        "print(sorted(replicate_explain._state.post_import_hooks))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "REPLICATE_EXPLAIN": ""},
    )
    imported, watched = result.stdout.splitlines()
    assert imported == "[]"
    assert {"loguru", "opentelemetry.sdk.trace", "sentry_sdk", "structlog"} <= set(eval(watched))


# ---------------------------------------------------------------------------------------------
# End to end: real clients against the loopback API

CALL = f"""
import replicate
replicate.max_retries = 0  # 2.x would retry the connection error twice


def call():
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})


def lookup():
    return {{}}["missing"]
"""

SENTRY = """
import json
import sentry_sdk
from sentry_sdk.transport import Transport
{explicit_import}
events, raw = [], []


class Capture(Transport):
    def capture_envelope(self, envelope):
        raw.append(envelope.serialize().decode("utf-8", "replace"))
        for item in envelope.items:
            if item.headers.get("type") == "event":
                events.append(json.loads(item.payload.get_bytes()))


sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=Capture(){explicit_option})
{call}
for work in (call, lookup):
    try:
        work()
    except Exception as error:
        sentry_sdk.capture_exception(error)
sentry_sdk.flush()
print(json.dumps({{"events": events, "raw": raw}}))
"""

STRUCTLOG = """
import structlog
{explicit_import}
structlog.configure(processors=[
    structlog.processors.add_log_level,{explicit_option}
    structlog.processors.format_exc_info,
    structlog.processors.JSONRenderer(),
])
log = structlog.get_logger()
{call}
for work in (call, lookup):
    try:
        work()
    except Exception:
        log.exception(work.__name__ + " failed")
"""

LOGURU = """
import sys
from loguru import logger
{explicit_import}
logger.remove()
logger.add(sys.stderr, diagnose=True, backtrace=True, colorize=False)
logger.add(sys.stdout, serialize=True)
{explicit_option}
{call}
for work in (call, lookup):
    try:
        work()
    except Exception:
        logger.exception(work.__name__ + " failed")
"""

OPENTELEMETRY = """
import json
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
{explicit_import}
exporter = InMemorySpanExporter()
provider = TracerProvider()
{explicit_option}
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("program")
{call}
for work in (call, lookup):
    try:
        with tracer.start_as_current_span(work.__name__):
            work()
    except Exception:
        pass
print(json.dumps([json.loads(span.to_json()) for span in exporter.get_finished_spans()]))
"""

#: Per library: the program, and its explicit configuration (import, option).
PROGRAMS = {
    "sentry": (
        SENTRY,
        "from replicate_explain.integrations.sentry import ReplicateExplainIntegration",
        ", integrations=[ReplicateExplainIntegration()]",
    ),
    "structlog": (
        STRUCTLOG,
        "from replicate_explain.integrations.structlog import ExplainProcessor",
        "\n    ExplainProcessor(),",
    ),
    "loguru": (
        LOGURU,
        "from replicate_explain.integrations.loguru import ExplainPatcher",
        "logger.configure(patcher=ExplainPatcher())",
    ),
    "opentelemetry": (
        OPENTELEMETRY,
        "from replicate_explain.integrations.opentelemetry import ExplainSpanProcessor",
        "provider.add_span_processor(ExplainSpanProcessor())",
    ),
}


def program(library: str, mode: str) -> str:
    """The program for ``library``: with ``import replicate_explain`` and nothing configured
    (automatic), or with the explicit configuration only (run with ``REPLICATE_EXPLAIN=0``)."""
    code, explicit_import, explicit_option = PROGRAMS[library]
    if mode == "automatic":
        return "import replicate_explain\n" + code.format(explicit_import="", explicit_option="", call=CALL)
    return code.format(explicit_import=explicit_import, explicit_option=explicit_option, call=CALL)


def attached(library: str, stdout: str, stderr: str) -> list[Any]:
    """What the library would send for the failure and for the unrelated error, in order: the
    explanation dictionary attached to each (``None`` when nothing is attached)."""
    if library == "sentry":
        events = json.loads(stdout)["events"]
        return [event.get("contexts", {}).get("replicate_explain") for event in events]
    if library == "structlog":
        return [json.loads(line).get("replicate_explain") for line in stdout.splitlines()]
    if library == "loguru":
        return [json.loads(line)["record"]["extra"].get("replicate_explain") for line in stdout.splitlines()]
    spans = json.loads(stdout)
    found = []
    for span in spans:
        (event,) = span["events"]
        text = event["attributes"].get("replicate_explain")
        found.append(None if text is None else json.loads(text))
        assert span["attributes"].get("replicate_explain.rule_id") == (
            None if text is None else json.loads(text)["rule_id"]
        )
    return found


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["automatic", "explicit"])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("library", list(PROGRAMS))
def test_a_real_failure_is_explained_once_and_the_token_never_sent(
    api: LoopbackAPI, library: str, version: str, mode: str
) -> None:
    """A real client's failure and an unrelated KeyError, through the real library: the failure
    carries the explanation (the same dictionary as everywhere, for the installed client), the
    KeyError nothing, and the canary is nowhere in what the library sent or printed."""
    extra = {"REPLICATE_EXPLAIN": "0"} if mode == "explicit" else {}
    result = run_program(program(library, mode), version, api, TOKEN, extra)
    assert result.returncode == 0, result.stderr
    failure_dict, unrelated_dict = attached(library, result.stdout, result.stderr)
    assert unrelated_dict is None
    assert list(failure_dict) == JSON_KEYS
    assert (failure_dict["rule_id"], failure_dict["client_version"]) == ("token-whitespace", version)
    assert leaks(result.stdout + result.stderr, CANARY) == []
    if library == "loguru":  # the plain text under loguru's traceback, once
        assert result.stderr.count("replicate-explain: token-whitespace: ") == 1
        assert "lookup failed" in result.stderr and "KeyError: 'missing'" in result.stderr
    if library == "sentry":
        (tagged,) = [e for e in json.loads(result.stdout)["events"] if "replicate_explain.rule" in e.get("tags", {})]
        assert tagged["tags"]["replicate_explain.rule"] == "token-whitespace"


@pytest.mark.e2e
def test_without_the_integrations_every_library_sends_the_token(api: LoopbackAPI) -> None:
    """The same programs with replicate-explain off and nothing configured: each library sends
    or prints the token (what the integrations are for) and attaches nothing."""
    for library, (code, _, _) in PROGRAMS.items():
        plain = code.format(explicit_import="", explicit_option="", call=CALL)
        result = run_program(plain, "1.0.7", api, TOKEN, {"REPLICATE_EXPLAIN": "0"})
        assert result.returncode == 0, result.stderr
        assert (library, leaks(result.stdout + result.stderr, CANARY)) == (library, [CANARY])
        assert (library, attached(library, result.stdout, result.stderr)) == (library, [None, None])


UNCONFIGURED = (
    "import replicate_explain\nimport structlog\nfrom loguru import logger\nlog = structlog.get_logger()\n"
    + CALL
    + """
for work in (call, lookup):
    try:
        work()
    except Exception:
        log.exception(work.__name__ + " failed")
        logger.exception(work.__name__ + " failed")
"""
)


@pytest.mark.e2e
@pytest.mark.parametrize("colour", [{}, {"NO_COLOR": "", "FORCE_COLOR": "1"}], ids=["plain", "colour"])
@pytest.mark.parametrize("version", VERSIONS)
def test_unconfigured_structlog_and_loguru_never_print_the_token(
    api: LoopbackAPI, version: str, colour: dict[str, str]
) -> None:
    """structlog's default chain (ConsoleRenderer, rich tracebacks with local variables) and
    loguru's default sink (``diagnose=True``), both logging the same failure and an unrelated
    error, with only ``import replicate_explain``: the explanation once (the first log that
    showed the failure), both tracebacks, no canary."""
    result = run_program(UNCONFIGURED, version, api, TOKEN, colour)
    assert result.returncode == 0, result.stderr
    output = ANSI.sub("", result.stdout + result.stderr)
    assert output.count("replicate-explain: token-whitespace: ") == 1
    assert output.count("KeyError: 'missing'") == 2
    assert leaks(output, CANARY) == []
