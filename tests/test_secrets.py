"""No token in any output: every channel we write to, over every scenario, on real clients.

Each scenario puts the canary token where the default traceback would show it. For one scenario
on one client generation, :func:`captured` starts every interpreter once and keeps the text of
each channel: the excepthook's stderr in each format (JSON, plain text, the rich panel with
``FORCE_COLOR``), log output (what a ``StreamHandler`` prints, and the record attributes a JSON
log shipper reads), the command line (``explain --echo`` fed the unmasked traceback, in every
format; ``doctor`` in each format) and, for the trailing-newline scenario, ``demo --all`` and the
outputs of a notebook run in a real kernel. The tests then read the captured text: one test per
scenario, client and channel (``test_no_canary[newline-1.0.7-excepthook-rich]``), so a leak
names its channel. Tests of one client share one pytest-xdist worker (``xdist_group``, with
``--dist loadgroup`` in pyproject), so each interpreter runs once per session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clients import CANARY, CLIENT_VERSIONS, MODEL_REF, client_env, run_program
from outputs import leaks

from replicate_explain._loopback import LoopbackAPI

pytestmark = pytest.mark.e2e

#: (scenario id, environment variables): each puts the canary somewhere a client or a traceback
#: may show it (field notes, sections 2 and 4).
SCENARIOS: dict[str, dict[str, str]] = {
    "newline": {"REPLICATE_API_TOKEN": CANARY + "\n"},
    "crlf": {"REPLICATE_API_TOKEN": CANARY + "\r\n"},
    "trailing-space": {"REPLICATE_API_TOKEN": CANARY + " "},
    "leading-space": {"REPLICATE_API_TOKEN": " " + CANARY},
    "quoted": {"REPLICATE_API_TOKEN": f'"{CANARY}"'},
    "bearer-in-value": {"REPLICATE_API_TOKEN": f"Bearer {CANARY}"},
    "rejected": {"REPLICATE_API_TOKEN": CANARY},
    "lookalike-name": {"REPLICATE_API_KEY": CANARY},
}

#: The scenario whose token also goes to ``demo`` and a notebook (once per client).
NOTEBOOK_SCENARIO = "newline"

RUN = f"""\
import replicate_explain
import replicate

print(replicate.run({MODEL_REF!r}, input={{"text": "hi"}}))
"""

LOGGED = f"""\
import json, logging, os, sys
import replicate_explain
import replicate

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("app")


class Shipper(logging.Handler):
    \"\"\"What a JSON log shipper sends: the message, the formatted traceback, our attributes.\"\"\"

    def emit(self, record):
        self.format(record)
        fields = {{
            "message": record.getMessage(),
            "exc_text": record.exc_text,
            "stack_info": record.stack_info,
            "replicate_explain": getattr(record, "replicate_explain", None),
            "replicate_explain_text": getattr(record, "replicate_explain_text", None),
        }}
        sys.stdout.write(json.dumps(fields) + "\\n")


log.addHandler(Shipper())
log.info("using token %s", os.environ.get("REPLICATE_API_TOKEN") or os.environ.get("REPLICATE_API_KEY"))
try:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
except Exception:
    log.exception("prediction failed")
"""

#: The program's own ``except`` prints the exception itself, each way in its own section of
#: stdout (``=== channel`` lines): what birth masking covers without any hook of ours running.
OWN_EXCEPT = f"""\
import logging, sys, traceback
import replicate_explain
import replicate

logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
try:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
except Exception as e:
    print("=== own-print")
    print(e)
    print(f"{{e!r}} {{e.args}}")
    print("=== own-print-exc")
    traceback.print_exc(file=sys.stdout)
    print("=== own-logger-error")
    logging.getLogger("app").error(e)
"""

#: ``importlib.reload(logging)`` (the notebook fix for ``basicConfig``), then the usual ways of
#: logging a caught exception.
RELOADED = f"""\
import importlib, logging, os, sys
import replicate_explain
import replicate

importlib.reload(logging)
logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
log = logging.getLogger("app")
log.info("using token %s", os.environ.get("REPLICATE_API_TOKEN") or os.environ.get("REPLICATE_API_KEY"))
try:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
except Exception as e:
    log.exception("prediction failed")
    log.error(e)
"""

NOTEBOOK_CELLS = [
    "%load_ext replicate_explain",
    "import replicate",
    f"replicate.run({MODEL_REF!r}, input={{'text': 'hi'}})",
    "%tb",
    (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, force=True)\n"
        "try:\n"
        f"    replicate.run({MODEL_REF!r}, input={{'text': 'hi'}})\n"
        "except Exception as error:\n"
        "    logging.getLogger('nb').exception('failed')\n"
        "    import replicate_explain\n"
        "    print(replicate_explain.explain(error).to_dict())"
    ),
]

FORMATS = {
    "json": {"REPLICATE_EXPLAIN_FORMAT": "json"},
    "plain": {},
    "rich": {"FORCE_COLOR": "1", "NO_COLOR": "", "COLUMNS": "120"},
}

#: Every channel of every scenario, and the exit statuses its interpreter may end with.
CHANNELS: dict[str, tuple[int, ...]] = {
    "excepthook-json": (1,),
    "excepthook-plain": (1,),
    "excepthook-rich": (1,),
    "logging-handler": (0,),  # the StreamHandler's output (stderr)
    "logging-record": (0,),  # what the JSON shipper reads from the record (stdout)
    "own-print": (0,),  # print(e), repr, args in the program's own except (OWN_EXCEPT)
    "own-print-exc": (0,),  # traceback.print_exc() there
    "own-logger-error": (0,),  # logging.getLogger(...).error(e) there
    "reloaded-logging": (0,),  # a reloaded logging module (RELOADED), stdout and stderr
    "explain-plain": (0, 1),
    "explain-json": (0, 1),
    "explain-rich": (0, 1),
    "doctor-plain": (0, 1),
    "doctor-json": (0, 1),
}
#: Channels only the notebook scenario has.
ONCE_PER_CLIENT: dict[str, tuple[int, ...]] = {"demo": (0, 1), "notebook": (0,)}


@dataclass
class Captured:
    """What one scenario on one client printed: channel -> text, channel -> exit status."""

    plain_python: str  # stderr of the same program with REPLICATE_EXPLAIN=0
    plain_status: int
    texts: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)

    def add(self, channel: str, text: str, status: int) -> None:
        self.texts[channel] = text
        self.statuses[channel] = status


_CAPTURED: dict[tuple[str, str], Captured] = {}


def _cli(args: list[str], env: dict[str, str], stdin: str = "") -> tuple[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "replicate_explain", *args],
        input=stdin,
        env=env,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
        check=False,
    )
    return result.stdout + result.stderr, result.returncode


def _notebook(cells: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run ``cells`` in a fresh ipykernel; return the saved notebook (all outputs) as JSON."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=120, allow_errors=True, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=env)
    return str(nbformat.writes(notebook))


def _sections(text: str) -> dict[str, str]:
    """The ``=== name`` sections of ``text``: name -> the lines under it."""
    found: dict[str, str] = {}
    name = None
    for line in text.splitlines(keepends=True):
        if line.startswith("=== "):
            name = line[4:].strip()
            found[name] = ""
        elif name is not None:
            found[name] += line
    return found


def _run(scenario: str, version: str, api: LoopbackAPI, workdir: Path) -> Captured:
    """Start every interpreter of ``scenario`` on client ``version`` once; capture each channel."""
    variables = SCENARIOS[scenario]
    token = variables.get("REPLICATE_API_TOKEN")
    extra = {name: value for name, value in variables.items() if name != "REPLICATE_API_TOKEN"}
    plain = run_program(RUN, version, api, token, {**extra, "REPLICATE_EXPLAIN": "0"})
    found = Captured(plain.stderr, plain.returncode)
    for name, settings in FORMATS.items():
        hooked = run_program(RUN, version, api, token, {**extra, **settings})
        found.add(f"excepthook-{name}", hooked.stdout + hooked.stderr, hooked.returncode)
    logged = run_program(LOGGED, version, api, token, extra)
    found.add("logging-handler", logged.stderr, logged.returncode)
    found.add("logging-record", logged.stdout, logged.returncode)
    own = run_program(OWN_EXCEPT, version, api, token, extra)
    sections = _sections(own.stdout)
    for name in ("own-print", "own-print-exc", "own-logger-error"):
        found.add(name, sections.get(name, "") + own.stderr, own.returncode if name in sections else -1)
    reloaded = run_program(RELOADED, version, api, token, extra)
    found.add("reloaded-logging", reloaded.stdout + reloaded.stderr, reloaded.returncode)
    env = client_env(version, api, token, extra)
    for name in ("plain", "json", "rich"):
        found.add(f"explain-{name}", *_cli(["explain", "--echo", "--format", name, "-"], env, plain.stderr))
    for name in ("plain", "json"):
        found.add(f"doctor-{name}", *_cli(["doctor", "--format", name], env))
    if scenario == NOTEBOOK_SCENARIO:
        found.add("demo", *_cli(["demo", "--all", "--format", "json"], env))
        notebook_env = {**env, "HOME": str(workdir), "IPYTHONDIR": str(workdir / "ipython")}
        notebook_env.pop("NO_COLOR", None)
        found.add("notebook", _notebook(NOTEBOOK_CELLS, notebook_env, workdir), 0)
    return found


def _capture(scenario: str, version: str, api: LoopbackAPI, tmp_path_factory: pytest.TempPathFactory) -> Captured:
    """The channels of ``scenario`` on client ``version``, run once per session (per worker)."""
    key = (scenario, version)
    if key not in _CAPTURED:
        _CAPTURED[key] = _run(scenario, version, api, tmp_path_factory.mktemp(f"secrets-{scenario}-{version}"))
    return _CAPTURED[key]


@pytest.fixture
def captured(api: LoopbackAPI, tmp_path_factory: pytest.TempPathFactory, scenario: str, version: str) -> Captured:
    """The channels of ``scenario`` on client ``version`` (see :func:`_capture`)."""
    return _capture(scenario, version, api, tmp_path_factory)


def _group(version: str) -> pytest.MarkDecorator:
    return pytest.mark.xdist_group(f"secrets-{version}")


def _channel_params() -> list[object]:
    params = []
    for version in CLIENT_VERSIONS:
        for scenario in SCENARIOS:
            channels = [*CHANNELS, *(ONCE_PER_CLIENT if scenario == NOTEBOOK_SCENARIO else ())]
            for channel in channels:
                name = f"{scenario}-{version}-{channel}"
                params.append(pytest.param(scenario, version, channel, id=name, marks=_group(version)))
    return params


def _scenario_params() -> list[object]:
    return [
        pytest.param(scenario, version, id=f"{scenario}-{version}", marks=_group(version))
        for version in CLIENT_VERSIONS
        for scenario in SCENARIOS
    ]


def _version_params() -> list[object]:
    return [pytest.param(version, id=version, marks=_group(version)) for version in CLIENT_VERSIONS]


@pytest.mark.parametrize(("scenario", "version", "channel"), _channel_params())
def test_no_canary(captured: Captured, channel: str) -> None:
    """This channel's output holds neither the canary nor any 12-character piece of it."""
    assert leaks(captured.texts[channel], CANARY) == [], f"{channel} shows the token:\n{captured.texts[channel]}"


@pytest.mark.parametrize(("scenario", "version"), _scenario_params())
def test_every_channel_ran_to_its_usual_end(captured: Captured) -> None:
    """Plain Python and the hooked program both exit 1 (the hook never changes the status), the
    logging program exits 0, the command line exits 0 or 1 (never a usage error or a crash): so
    each channel's text is the output of a real run."""
    expected = {**CHANNELS, **ONCE_PER_CLIENT}
    unexpected = {
        channel: (status, captured.texts[channel][-2000:])
        for channel, status in captured.statuses.items()
        if status not in expected[channel]
    }
    assert (captured.plain_status, unexpected) == (1, {})


@pytest.mark.parametrize("version", _version_params())
@pytest.mark.parametrize("scenario", [NOTEBOOK_SCENARIO])
def test_the_scenarios_are_real(
    api: LoopbackAPI, tmp_path_factory: pytest.TempPathFactory, captured: Captured, version: str
) -> None:
    """The scenarios would leak without us: plain Python's own traceback shows the canary for a
    token with a trailing newline. And the channels carry explanations, so "no canary" is not
    vacuous: at least half of the scenarios are explained in the excepthook's JSON, the
    notebook holds the cell's error output, and the program's own ``except`` and the reloaded
    logging show the masked failure."""
    explained = [
        scenario
        for scenario in SCENARIOS
        if '"rule_id"' in _capture(scenario, version, api, tmp_path_factory).texts["excepthook-json"]
    ]
    assert leaks(captured.plain_python, CANARY) == [CANARY]
    assert len(explained) >= len(SCENARIOS) // 2, explained
    assert '"output_type": "error"' in captured.texts["notebook"]
    # The program's own except and the reloaded logging printed the masked failure.
    shown = {name: "[REDACTED]" in captured.texts[name] for name in ("own-print-exc", "reloaded-logging")}
    assert shown == {"own-print-exc": True, "reloaded-logging": True}


# ---------------------------------------------------------------------------------------------
# The integrations' channels: what Sentry (2.x and 3.x), OpenTelemetry with the httpx
# instrumentation, structlog and loguru ship for a real failure, with only `import replicate_explain`.

#: Scenarios of the integrations' sweep: the token in the exception's text (newline) and the
#: token only in headers and variables (rejected), on the 1.x and 2.x clients.
INTEGRATION_SCENARIOS = ("newline", "rejected")
INTEGRATION_VERSIONS = ("1.0.7", "2.0.0b4")

_INTEGRATION_PRELUDE = f"""\
import json, os, sys
import replicate_explain
import replicate
replicate.max_retries = 0
TOKEN = os.environ["REPLICATE_API_TOKEN"]


def call():
    header = "Bearer " + TOKEN
    replicate.run({MODEL_REF!r}, input={{"text": header[:0] + "hi"}})
"""

_SENTRY_PROGRAM = (
    _INTEGRATION_PRELUDE
    + """
import logging
import sentry_sdk, sentry_sdk.logger, sentry_sdk.traces
from sentry_sdk.transport import Transport
sent, seen = [], []


class Capture(Transport):
    def capture_envelope(self, envelope):
        sent.append(envelope.serialize().decode("utf-8", "replace"))


def keep(payload, hint):
    seen.append(str(payload))
    return payload


options = {"enable_logs": True, "trace_lifecycle": "stream"} if sentry_sdk.VERSION.startswith("2.") else {}
sentry_sdk.init(
    dsn="https://public@sentry.invalid/1", transport=Capture(), traces_sample_rate=1.0, attach_stacktrace=True,
    before_send=keep, before_send_log=keep, before_send_span=keep, **options,
)
try:
    with sentry_sdk.traces.start_span(name="call " + TOKEN) as span:
        span.set_attribute("http.request.header.authorization", "Bearer " + TOKEN)
        call()
except Exception as error:
    sentry_sdk.capture_exception(error)
    sentry_sdk.logger.error("call failed: {error}", error=error)
    sentry_sdk.capture_message("call failed: " + str(error))
    logging.getLogger("app").error("call failed: %s (%s)", error, TOKEN)  # an event and a log
sentry_sdk.flush()
print(json.dumps({"version": sentry_sdk.VERSION, "sent": sent, "seen": seen}))
"""
)

_OPENTELEMETRY_PROGRAM = (
    _INTEGRATION_PRELUDE
    + """
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
HTTPXClientInstrumentor().instrument()
tracer = provider.get_tracer("program")
try:
    with tracer.start_as_current_span("run " + TOKEN) as span:
        span.set_attribute("token.used", TOKEN)
        span.add_event("calling", {"authorization": "Bearer " + TOKEN})
        call()
except Exception:
    pass
print(json.dumps([json.loads(span.to_json()) for span in exporter.get_finished_spans()]))
"""
)

_STRUCTLOG_PROGRAM = (
    _INTEGRATION_PRELUDE
    + """
import structlog

shipped = structlog.wrap_logger(
    structlog.PrintLogger(sys.stdout),
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.dict_tracebacks,
        structlog.processors.JSONRenderer(),
    ],
)
console = structlog.wrap_logger(
    structlog.PrintLogger(sys.stderr), processors=[structlog.dev.ConsoleRenderer(colors=False)]
)
try:
    call()
except Exception:
    shipped.exception("call failed", _token=TOKEN, header="Bearer " + TOKEN)
    console.exception("call failed", _token=TOKEN)
"""
)

_LOGURU_PROGRAM = (
    _INTEGRATION_PRELUDE
    + """
from loguru import logger

logger.add(sys.stdout, serialize=True, diagnose=True, backtrace=True)
try:
    call()
except Exception as error:
    logger.bind(token=TOKEN).exception("call failed")
    logger.error(error)
"""
)

#: What a Sentry program ships: a streamed span, a log, an event with the thread's stack, a stdlib log record.
_SENTRY_SHIPS = ("is_segment", "sentry.message.template", "threads", "call failed: %s (%s)")

#: Channel -> (program, extra requirement on PYTHONPATH or None, texts a real run ships).
INTEGRATION_CHANNELS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "sentry-3": (_SENTRY_PROGRAM, None, (*_SENTRY_SHIPS, '"version": "3.')),
    "sentry-2": (_SENTRY_PROGRAM, "sentry-sdk==2.75.0", (*_SENTRY_SHIPS, '"version": "2.75.0"')),
    "opentelemetry-httpx": (
        _OPENTELEMETRY_PROGRAM,
        "opentelemetry-instrumentation-httpx==0.66b2",
        ("SpanKind.CLIENT", "http.request.header.authorization"),
    ),
    "structlog-wrap_logger": (_STRUCTLOG_PROGRAM, None, ('"event": "call failed"', "_token")),
    "loguru-diagnose": (_LOGURU_PROGRAM, None, ("call failed", '"token"')),
}


def _run_integration(channel: str, scenario: str, version: str, api: LoopbackAPI, off: bool = False) -> str:
    """Run ``channel``'s program (with replicate-explain off: ``off``); return stdout + stderr,
    after checking it exited 0 and shipped what a real run ships."""
    from clients import REPO_ROOT, client_path, extra_path

    code, requirement, shipped = INTEGRATION_CHANNELS[channel]
    paths = [client_path(version), *([extra_path(requirement)] if requirement else []), REPO_ROOT]
    extra = {
        "PYTHONPATH": os.pathsep.join(map(str, paths)),
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "authorization",
        **({"REPLICATE_EXPLAIN": "0"} if off else {}),
    }
    result = run_program(code, version, api, SCENARIOS[scenario]["REPLICATE_API_TOKEN"], extra, timeout=120)
    output = result.stdout + result.stderr
    assert (result.returncode, [text for text in shipped if text not in output]) == (0, []), output[-3000:]
    return output


@pytest.mark.parametrize("channel", list(INTEGRATION_CHANNELS))
@pytest.mark.parametrize("version", INTEGRATION_VERSIONS)
@pytest.mark.parametrize("scenario", INTEGRATION_SCENARIOS)
def test_no_canary_in_integrations(api: LoopbackAPI, scenario: str, version: str, channel: str) -> None:
    """What the library ships or prints for a real failure, with only ``import replicate_explain``
    (the automatic activation), holds no piece of the canary: Sentry 2.x and 3.x (events and
    what ``before_send`` saw, thread stacks, Sentry Logs, streamed spans and
    ``before_send_log``/``before_send_span``), OpenTelemetry (the httpx instrumentation capturing
    ``Authorization``, span names, attributes, events), structlog ``wrap_logger`` chains (keys
    starting with ``_``, ``dict_tracebacks``, ConsoleRenderer), loguru (``diagnose=True``,
    ``serialize=True``, ``logger.error(e)``)."""
    output = _run_integration(channel, scenario, version, api)
    assert leaks(output, CANARY) == [], f"{channel} ships the token:\n{output[-3000:]}"


@pytest.mark.parametrize("channel", list(INTEGRATION_CHANNELS))
def test_integration_channels_are_real(api: LoopbackAPI, channel: str) -> None:
    """Without replicate-explain (``REPLICATE_EXPLAIN=0``) each of those programs ships the
    canary: so "no canary" above is not vacuous."""
    assert leaks(_run_integration(channel, "newline", "1.0.7", api, off=True), CANARY) == [CANARY]
