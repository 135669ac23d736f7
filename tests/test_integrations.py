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


@contextlib.contextmanager
def sentry_payloads(**options: Any) -> Iterator[dict[str, list[Any]]]:
    """The real SDK with our integration and an in-memory transport, logs and streamed spans on (2.x needs
    ``enable_logs`` and ``trace_lifecycle="stream"``, 3.x has both by default); on exit the dict
    holds, by item type (``event``, ``log``, ``span``), the payloads it would have sent (each log
    and span item unpacked), and ``before_send``, ``before_send_log`` and ``before_send_span``
    what each hook saw, as ``str()`` (a program copying it to a file, a queue or a print).
    Every serialized envelope, headers included, is checked for the canary."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    found: dict[str, list[Any]] = {}
    raw: list[bytes] = []

    class Capture(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            raw.append(envelope.serialize())
            for item in envelope.items:
                payload = json.loads(item.payload.get_bytes())
                kind = item.headers.get("type")
                found.setdefault(kind, []).extend(payload["items"] if kind in ("log", "span") else [payload])

    from replicate_explain.integrations.sentry import ReplicateExplainIntegration

    def hook(name: str) -> Any:
        def keep(payload: Any, hint: Any) -> Any:
            found.setdefault(name, []).append(str(payload))
            return payload

        return keep

    if int(sentry_sdk.VERSION.split(".")[0]) < 3:
        options = {"enable_logs": True, "trace_lifecycle": "stream", **options}
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=Capture(),
        default_integrations=False,
        integrations=[ReplicateExplainIntegration()],  # (automatic: tests/test_secrets.py)
        traces_sample_rate=1.0,
        before_send=hook("before_send"),
        before_send_log=hook("before_send_log"),
        before_send_span=hook("before_send_span"),
        **options,
    )
    try:
        yield found
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
    assert leaks(b"\n".join(raw).decode(), CANARY) == []


def test_sentry_before_send_sees_masked_events_thread_stacks_included() -> None:
    """A ``before_send`` that copies ``str(event)`` sees no token, for an exception's event and
    for ``capture_message`` with ``attach_stacktrace`` (the thread's stack, whose frame holds the
    token in a local variable, ``header``): the frame variable is masked in what is sent. A
    context dict the program set is sent masked and keeps its values."""
    import sentry_sdk

    def report(token: str) -> None:
        header = f"Bearer {token}"
        sentry_sdk.capture_message(f"calling with {header}")

    upstream = {"headers": {"Authorization": f"Bearer {CANARY}"}}
    with sentry_payloads(attach_stacktrace=True) as sent:
        sentry_sdk.set_context("upstream", upstream)
        sentry_sdk.capture_exception(failure())
        report(TOKEN)
    assert len(sent["before_send"]) == 2
    assert [leaks(text, CANARY) for text in sent["before_send"]] == [[], []]
    errored, message = sent["event"]
    assert errored["contexts"]["upstream"] == {"headers": {"Authorization": "Bearer [REDACTED]"}}
    assert upstream == {"headers": {"Authorization": f"Bearer {CANARY}"}}  # the program's dict
    assert errored["exception"]["values"][-1]["value"] == "Illegal header value b'Bearer [REDACTED]\\n'"
    assert message["message"] == "calling with Bearer [REDACTED]\n"
    (frame,) = [f for f in message["threads"]["values"][0]["stacktrace"]["frames"] if f["function"] == "report"]
    assert frame["vars"]["header"] == "'Bearer [REDACTED]\\n'"


def test_sentry_logs_are_masked_before_before_send_log() -> None:
    """Sentry Logs (``sentry_sdk.logger.*``, a separate envelope item): the body, the template's
    parameters, attribute values and attribute keys are masked before ``before_send_log`` sees
    the log, and in what is sent."""
    import sentry_sdk.logger

    attributes = {f"key {CANARY}": f"Bearer {CANARY}"}
    with sentry_payloads() as sent:
        sentry_sdk.logger.warning("retrying with {token}", token=TOKEN, attributes=attributes)
    assert attributes == {f"key {CANARY}": f"Bearer {CANARY}"}  # the program's dict
    (seen,) = sent["before_send_log"]
    assert leaks(seen, CANARY) == []
    (log,) = sent["log"]
    assert log["body"] == "retrying with [REDACTED]\n"
    ours = {key: value for key, value in log["attributes"].items() if not key.startswith(("sentry.", "process."))}
    assert ours == {
        "key [REDACTED]": {"value": "Bearer [REDACTED]", "type": "string"},
        "server.address": log["attributes"]["server.address"],
    }
    assert log["attributes"]["sentry.message.parameter.token"] == {"value": "[REDACTED]\n", "type": "string"}
    assert log["attributes"]["sentry.message.template"] == {"value": "retrying with {token}", "type": "string"}


def test_sentry_streamed_spans_are_masked_before_before_send_span() -> None:
    """Streamed spans (3.x ``sentry_sdk.traces``; 2.x with ``trace_lifecycle="stream"``): the
    span name, an attribute set after the start and its key are masked before
    ``before_send_span`` sees the span and in what is sent (the envelope's trace header names
    the segment too)."""
    import sentry_sdk.traces

    with sentry_payloads() as sent, sentry_sdk.traces.start_span(name=f"call {CANARY}") as span:
        span.set_attribute("http.request.header.authorization", f"Bearer {CANARY}")
        span.set_attribute(f"seen {CANARY}", 1)
    (seen,) = sent["before_send_span"]
    assert leaks(seen, CANARY) == []
    (shipped,) = sent["span"]
    assert shipped["name"] == "call [REDACTED]"
    attributes = shipped["attributes"]
    assert attributes["http.request.header.authorization"] == {"value": "Bearer [REDACTED]", "type": "string"}
    assert attributes["seen [REDACTED]"] == {"value": 1, "type": "integer"}
    assert attributes["sentry.segment.name"] == {"value": "call [REDACTED]", "type": "string"}


def test_sentry_events_prepared_concurrently_keep_their_own_masking_strength() -> None:
    """Two events prepared at once in two threads (an unrelated KeyError's, and a Replicate
    failure's started while the first is being prepared and still running when the first is
    serialized): each is masked by the rule of its own exception, so the unrelated event keeps
    another service's ``Bearer`` credential as the SDK sends it, and the failure's is masked."""
    import threading

    import sentry_sdk

    other_service = "Bearer sk-live-0123456789abcdefABCDEF"
    first_serialized, second_preparing = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []

    def second() -> None:
        def wait(event: Any, hint: Any) -> Any:
            second_preparing.set()
            first_serialized.wait(10)
            return event

        with sentry_sdk.new_scope() as scope:
            scope.add_event_processor(wait)
            sentry_sdk.capture_exception(failure())

    def start_second(event: Any, hint: Any) -> Any:
        threads.append(threading.Thread(target=second))
        threads[0].start()
        assert second_preparing.wait(10)
        return event

    with sentry_payloads() as sent:
        sentry_sdk.get_client().options["before_send"] = lambda event, hint: (first_serialized.set(), event)[1]
        with sentry_sdk.new_scope() as scope:
            scope.add_event_processor(start_second)
            scope.set_context("upstream", {"authorization": other_service})
            sentry_sdk.capture_exception(unrelated())
        threads[0].join(10)
    first, second_event = sent["event"]
    assert first["contexts"]["upstream"] == {"authorization": other_service}
    assert second_event["exception"]["values"][-1]["value"] == "Illegal header value b'Bearer [REDACTED]\\n'"


def test_sentry_wraps_missing_in_a_release_degrade_to_the_event_processor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Should every SDK internal we wrap be missing (each wrap raising ``AttributeError``),
    registering still succeeds, raises nothing, registers the event processor, and that
    processor masks the event itself; with ``REPLICATE_EXPLAIN_DEBUG=1`` each failed wrap is
    reported on stderr."""
    from replicate_explain.integrations import sentry

    def missing() -> None:
        raise AttributeError("not in this release")

    replicate_explain.install()  # the automatic activation; another test in this worker may have uninstalled
    registered: list[Any] = []
    monkeypatch.setattr(_state, "integrations", {})
    monkeypatch.setattr(sentry, "add_global_event_processor", registered.append)
    monkeypatch.setattr(sentry, "_wrap_apply_to_event", missing)
    monkeypatch.setattr(sentry, "_wrap_prepare_event", missing)
    monkeypatch.setattr(sentry, "_TELEMETRY_WRAPS", tuple((missing, what) for _, what in sentry._TELEMETRY_WRAPS))
    monkeypatch.setenv("REPLICATE_EXPLAIN_DEBUG", "1")
    sentry._register()
    assert registered == [sentry.process_event]
    event = {"message": f"calling with Bearer {CANARY}", "extra": {"header": f"Bearer {CANARY}"}}
    assert sentry.process_event(event, {}) == {
        "message": "calling with Bearer [REDACTED]",
        "extra": {"header": "Bearer [REDACTED]"},
    }
    assert event["message"] == f"calling with Bearer {CANARY}"  # the caller's dict is not modified
    assert capsys.readouterr().err.count("replicate-explain: internal error in ") == 5


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

    # plain_traceback: structlog before 25 warns "Remove `format_exc_info`..." when a pretty
    # formatter (rich is installed here) gets a formatted ``exception`` (docs/INTEGRATIONS.md)
    console = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    exc = failure()
    text = structlog_output(console, exc)
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
        processors=[ExplainProcessor(), console],
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


def test_structlog_wrap_logger_chain_gets_the_processor_and_underscore_keys_are_masked() -> None:
    """``structlog.wrap_logger(logger, processors=[...])`` with a chain of the program's own (no
    ``configure``) gets the automatic processor: the failure is explained and its traceback
    masked; values under keys starting with ``_`` and keys themselves are masked too; a dict the
    program passed keeps its token (a masked copy is rendered); the chain list is not modified."""
    import structlog

    replicate_explain.install()  # another test in this worker may have uninstalled
    exc = failure()
    headers = {"Authorization": f"Bearer {CANARY}"}
    chain = [
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]
    log = structlog.wrap_logger(structlog.PrintLogger(out := io.StringIO()), processors=chain)
    log.error("call failed", exc_info=exc, _token=TOKEN, _headers=headers, **{f"seen {CANARY}": 1})
    event = json.loads(out.getvalue())
    assert leaks(out.getvalue(), CANARY) == []
    assert event["replicate_explain"] == explanation_of(exc).to_dict()
    assert {key: event[key] for key in ("_token", "_headers", "seen [REDACTED]")} == {
        "_token": "[REDACTED]\n",
        "_headers": {"Authorization": "Bearer [REDACTED]"},
        "seen [REDACTED]": 1,
    }
    assert headers == {"Authorization": f"Bearer {CANARY}"}
    assert len(chain) == 3


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


def lookup_with(headers: dict[str, str]) -> BaseException:
    """An unrelated KeyError raised on a line that reads local variables holding the token (what
    ``diagnose=True`` prints under that line)."""
    auth = headers["Authorization"]
    try:
        return {"auth": auth, "headers": headers}["missing"]  # type: ignore[return-value]
    except KeyError as exc:
        return exc


def test_loguru_diagnose_masks_frame_variables_of_any_exception(loguru_logger: Any) -> None:
    """The automatic patcher (no configuration), ``diagnose=True``: the values loguru prints
    under the failing line (a string and a dict holding the token) are masked for an unrelated
    KeyError too, in a stream sink and in ``serialize=True``'s text; ``bind`` values are masked
    in the record, and the dict the program bound keeps its token."""
    replicate_explain.install()  # another test in this worker may have uninstalled
    text, data = io.StringIO(), io.StringIO()
    loguru_logger.add(text, diagnose=True, backtrace=False, colorize=False, format="{message}")
    loguru_logger.add(data, serialize=True, diagnose=True)
    headers = {"Authorization": f"Bearer {CANARY}"}
    loguru_logger.bind(headers=headers).opt(exception=lookup_with(headers)).error("lookup failed")
    printed = text.getvalue()
    assert "-> 'Bearer [REDACTED]'" in printed
    assert "-> {'Authorization': 'Bearer [REDACTED]'}" in printed
    assert printed.endswith("KeyError: 'missing'\n")
    shipped = json.loads(data.getvalue())
    assert "-> 'Bearer [REDACTED]'" in shipped["text"]
    assert shipped["record"]["extra"] == {"headers": {"Authorization": "Bearer [REDACTED]"}}
    assert leaks(printed + data.getvalue(), CANARY) == []
    assert headers == {"Authorization": f"Bearer {CANARY}"}


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


def spans_of_work(explicit: bool = True) -> Any:
    """The spans exported after a program named a span, set attributes at its start and after,
    added an event and a link, and renamed a child span, all holding the canary (the attributes
    it passed are returned too, to check they were not modified)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link

    from replicate_explain.integrations.opentelemetry import ExplainSpanProcessor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    if explicit:
        provider.add_span_processor(ExplainSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    given = {"http.request.header.authorization": [f"Bearer {CANARY}"], "retries": 0}
    later = {"note": f"token was {TOKEN}", f"seen {CANARY}": True}
    with tracer.start_as_current_span(f"POST {CANARY}", attributes=given) as parent:
        parent.set_attribute("http.url", f"https://api.example/?token={CANARY}")
        parent.set_attributes(later)
        parent.add_event(f"retry {CANARY}", {"authorization": f"Bearer {CANARY}", "attempt": 2})
        with tracer.start_as_current_span("child", links=[Link(parent.get_span_context(), {"why": CANARY})]) as child:
            child.update_name(f"renamed {CANARY}")
    return exporter.get_finished_spans(), (given, later)


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "automatic"])
def test_opentelemetry_names_attributes_events_and_links_are_masked_whenever_set(explicit: bool) -> None:
    """Span names (at the start and renamed), attributes given at the start (where HTTP
    instrumentations put captured request headers) and set after it, attribute keys, event
    names and attributes, link attributes: every string is masked in the exported span; the
    dicts the program passed are left as they were."""
    replicate_explain.install()  # the automatic case; another test in this worker may have uninstalled
    (child, parent), (given, later) = spans_of_work(explicit)
    assert parent.name == "POST [REDACTED]"
    assert dict(parent.attributes) == {
        "http.request.header.authorization": ("Bearer [REDACTED]",),
        "retries": 0,
        "http.url": "https://api.example/?token=[REDACTED]",
        "note": "token was [REDACTED]\n",
        "seen [REDACTED]": True,
    }
    (event,) = parent.events
    assert (event.name, dict(event.attributes)) == (
        "retry [REDACTED]",
        {"authorization": "Bearer [REDACTED]", "attempt": 2},
    )
    assert child.name == "renamed [REDACTED]"
    assert [dict(link.attributes) for link in child.links] == [{"why": "[REDACTED]"}]
    assert [leaks(span.to_json(), CANARY) for span in (parent, child)] == [[], []]
    assert given == {"http.request.header.authorization": [f"Bearer {CANARY}"], "retries": 0}
    assert later == {"note": f"token was {TOKEN}", f"seen {CANARY}": True}


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


OTEL_HTTPX = """
import json
{explicit_import}
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
{explicit_option}
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
HTTPXClientInstrumentor().instrument()
{call}
try:
    call()
except Exception as error:
    print(type(error).__name__, file=__import__("sys").stderr)
print(json.dumps([json.loads(span.to_json()) for span in exporter.get_finished_spans()]))
"""

#: The OpenTelemetry httpx instrumentation, pinned to the SDK of the test extra (1.45.2).
OTEL_HTTPX_REQUIREMENT = "opentelemetry-instrumentation-httpx==0.66b2"


def run_instrumented(api: LoopbackAPI, token: str, mode: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run the real 1.0.7 client under ``opentelemetry-instrumentation-httpx`` capturing the
    ``Authorization`` request header: with ``import replicate_explain`` (automatic), with our
    processor only (explicit), or with neither (off); return the result and the exported spans."""
    from clients import client_path, extra_path

    _, explicit_import, explicit_option = PROGRAMS["opentelemetry"]
    if mode == "automatic":
        code = "import replicate_explain\n" + OTEL_HTTPX.format(explicit_import="", explicit_option="", call=CALL)
    elif mode == "explicit":
        code = OTEL_HTTPX.format(explicit_import=explicit_import, explicit_option=explicit_option, call=CALL)
    else:
        code = OTEL_HTTPX.format(explicit_import="", explicit_option="", call=CALL)
    path = os.pathsep.join(map(str, [client_path("1.0.7"), extra_path(OTEL_HTTPX_REQUIREMENT), REPO_ROOT]))
    extra = {
        "PYTHONPATH": path,
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "authorization",
        "REPLICATE_EXPLAIN": "0" if mode != "automatic" else "1",
    }
    result = run_program(code, "1.0.7", api, token, extra)
    assert result.returncode == 0, result.stderr
    return result, json.loads(result.stdout)


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["automatic", "explicit"])
@pytest.mark.parametrize("token", [CANARY, TOKEN], ids=["refused", "newline"])
def test_opentelemetry_httpx_instrumentation_exports_no_token(api: LoopbackAPI, token: str, mode: str) -> None:
    """The real ``opentelemetry-instrumentation-httpx`` capturing the ``Authorization`` header,
    the real 1.0.7 client against the loopback API (a refused token; a token with a newline,
    which httpx refuses to send): the exported client span has the header attribute, masked,
    and nothing exported or printed has the canary."""
    result, spans = run_instrumented(api, token, mode)
    (span,) = [span for span in spans if span["kind"] == "SpanKind.CLIENT"]
    assert span["attributes"]["http.request.header.authorization"] == ["Bearer [REDACTED]"]
    assert leaks(result.stdout + result.stderr, CANARY) == []


@pytest.mark.e2e
def test_opentelemetry_httpx_instrumentation_exports_the_token_without_us(api: LoopbackAPI) -> None:
    """The same program with replicate-explain off and no processor exports the header in
    clear (what the test above guards against)."""
    _, spans = run_instrumented(api, CANARY, "off")
    (span,) = [span for span in spans if span["kind"] == "SpanKind.CLIENT"]
    assert span["attributes"]["http.request.header.authorization"] == [f"Bearer {CANARY}"]


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
