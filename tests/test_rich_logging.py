"""rich's logging handler: ``ReplicateExplainRichHandler`` masks rich's traceback and draws the
panel under it.

Each program runs in a subprocess with the real replicate client 1.0.7 against the loopback API
and the canary token plus a newline, and logs the failure with ``log.exception`` through two
handlers at once, each into its own console: ours and a plain ``RichHandler`` with the same
arguments (the control: what rich prints without us). rich 15 is the test environment's; 13.9.4
and 12.6.0 (``extra_path``) are the other majors whose ``RichHandler.render`` users have.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from clients import CANARY, MODEL_REF, client_env, extra_path

from replicate_explain._loopback import LoopbackAPI

RICH_VERSIONS = ("installed", "13.9.4", "12.6.0")

PROGRAM = f"""\
import io, json, logging, os, sys
import replicate_explain
from rich.console import Console
from rich.logging import RichHandler
from replicate_explain.integrations.rich_logging import ReplicateExplainRichHandler

TRACEBACKS = sys.argv[1] == "tracebacks"
consoles = {{"ours": io.StringIO(), "plain": io.StringIO()}}
log = logging.getLogger("app")
log.propagate = False
for name, cls in (("ours", ReplicateExplainRichHandler), ("plain", RichHandler)):
    console = Console(file=consoles[name], width=200, color_system=None)
    log.addHandler(cls(console=console, rich_tracebacks=TRACEBACKS, tracebacks_show_locals=True,
                       show_time=False, show_path=False))

def make_image():
    if sys.argv[2] != "unrelated":
        token = os.environ["REPLICATE_API_TOKEN"]
    if sys.argv[2].startswith("unrelated"):
        sizes = {{"width": 512}}
        return sizes["height"]
    import replicate
    client = replicate.Client(api_token=token)
    return client.run({MODEL_REF!r}, input={{}})

try:
    make_image()
except Exception:
    log.exception("could not make the image")
print(json.dumps({{name: out.getvalue() for name, out in consoles.items()}}))
"""

PANEL = "replicate-explain · token-whitespace"
PLAIN_TEXT = "replicate-explain: token-whitespace: "


def _run(
    api: LoopbackAPI, rich: str, tracebacks: bool, error: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = client_env("1.0.7", api, CANARY + "\n", extra)
    if rich != "installed":
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path(f"rich=={rich}")), env["PYTHONPATH"]])
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, "tracebacks" if tracebacks else "text", error],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    outputs: dict[str, str] = json.loads(done.stdout)
    return outputs


def _seen(text: str) -> dict[str, object]:
    return {
        "canary": CANARY in text,
        "traceback then panel": 0 <= text.find("Traceback") < text.find(PANEL),
        "panels": text.count(PANEL),
        "plain-text explanations": text.count(PLAIN_TEXT),
    }


@pytest.mark.e2e
@pytest.mark.parametrize("rich", RICH_VERSIONS)
def test_the_panel_goes_under_richs_traceback_and_the_locals_are_masked(api: LoopbackAPI, rich: str) -> None:
    """``rich_tracebacks=True`` with locals shown: our handler prints rich's traceback with the
    token masked (message and locals), then the panel; the plain handler, given the same record,
    shows no explanation, and no token either: after ``import replicate_explain`` rich's extracted
    tracebacks are masked for every handler (the floor wraps ``Traceback.extract``)."""
    outputs = _run(api, rich, tracebacks=True, error="replicate")
    assert {name: _seen(text) for name, text in outputs.items()} == {
        "ours": {"canary": False, "traceback then panel": True, "panels": 1, "plain-text explanations": 0},
        "plain": {"canary": False, "traceback then panel": False, "panels": 0, "plain-text explanations": 0},
    }


@pytest.mark.e2e
def test_the_explicit_handler_works_with_the_automatic_activation_off(api: LoopbackAPI) -> None:
    """``REPLICATE_EXPLAIN=0``: nothing masks the record beforehand, our handler alone masks
    rich's traceback and draws the panel."""
    outputs = _run(api, "installed", tracebacks=True, error="replicate", extra={"REPLICATE_EXPLAIN": "0"})
    assert _seen(outputs["ours"]) == {
        "canary": False,
        "traceback then panel": True,
        "panels": 1,
        "plain-text explanations": 0,
    }


@pytest.mark.e2e
def test_without_rich_tracebacks_the_text_explanation_is_not_repeated(api: LoopbackAPI) -> None:
    """``rich_tracebacks=False``: the traceback is the message's text, where the logging
    integration already put the plain-text explanation; our handler adds no panel, masks."""
    outputs = _run(api, "installed", tracebacks=False, error="replicate")
    assert _seen(outputs["ours"]) == {
        "canary": False,
        "traceback then panel": False,
        "panels": 0,
        "plain-text explanations": 1,
    }


@pytest.mark.e2e
@pytest.mark.parametrize("rich", RICH_VERSIONS)
def test_an_unrelated_error_prints_exactly_what_rich_prints(api: LoopbackAPI, rich: str) -> None:
    """A ``KeyError`` that is not Replicate's, with locals shown: our handler's output is the
    plain ``RichHandler``'s, byte for byte, with no panel."""
    outputs = _run(api, rich, tracebacks=True, error="unrelated")
    assert (outputs["ours"] == outputs["plain"], PANEL in outputs["ours"], "KeyError: 'height'" in outputs["ours"]) == (
        True,
        False,
        True,
    )


@pytest.mark.e2e
def test_an_unrelated_error_still_hides_the_environments_token(api: LoopbackAPI) -> None:
    """The same ``KeyError`` in a function that read the token into a local: both handlers' locals
    panels mask it (the environment's secrets and ``r8_`` tokens are masked in every error, and
    rich's extracted tracebacks are masked for every handler), and neither adds a panel."""
    outputs = _run(api, "installed", tracebacks=True, error="unrelated-token")
    assert {
        name: (CANARY in text, "token = '[REDACTED]\\n'" in text, PANEL in text) for name, text in outputs.items()
    } == {
        "ours": (False, True, False),
        "plain": (False, True, False),
    }


# ---------------------------------------------------------------------------------------------
# In-process, with the installed rich: the handler on an error that is not Replicate's


def _log_through(handler_class: type[logging.Handler], exc_info: object) -> str:
    from rich.console import Console

    out = io.StringIO()
    handler = handler_class(
        console=Console(file=out, width=160, color_system=None),
        rich_tracebacks=True,
        tracebacks_show_locals=True,
        show_time=False,
        show_path=False,
    )
    record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed: %s", ("details",), exc_info)
    handler.handle(record)
    return out.getvalue()


def _failing(secret: str) -> None:
    settings = {"api_token": secret}
    raise KeyError(f"no model configured ({len(settings)} settings)")


def test_in_process_an_unrelated_error_is_byte_for_byte_richs() -> None:
    """No secret anywhere: ``ReplicateExplainRichHandler`` prints what ``RichHandler`` prints."""
    from rich.logging import RichHandler

    from replicate_explain.integrations.rich_logging import ReplicateExplainRichHandler

    try:
        _failing("not-a-secret")
    except KeyError:
        info = sys.exc_info()
    ours, theirs = _log_through(ReplicateExplainRichHandler, info), _log_through(RichHandler, info)
    assert (ours == theirs, "KeyError" in ours) == (True, True)


def test_in_process_an_r8_token_in_the_locals_is_masked() -> None:
    """An ``r8_`` token in a frame's variables (an unrelated error): ours shows ``[REDACTED]`` in
    its place, and so does a plain ``RichHandler`` once replicate-explain is installed (rich's
    extracted tracebacks are masked for every handler)."""
    import rich.traceback
    from rich.logging import RichHandler

    import replicate_explain
    from replicate_explain import _channels, _state
    from replicate_explain.integrations.rich_logging import ReplicateExplainRichHandler

    # The state ``import replicate_explain`` leaves once rich.traceback is imported (another test
    # in this worker may have uninstalled it, or imported rich before the hook was watching).
    was = _state.installed
    replicate_explain.install()
    _channels._wrap_extract(rich.traceback.Traceback)
    try:
        try:
            _failing(CANARY)
        except KeyError:
            info = sys.exc_info()
        ours, theirs = _log_through(ReplicateExplainRichHandler, info), _log_through(RichHandler, info)
    finally:
        if not was:
            replicate_explain.uninstall()
    assert {"ours": (CANARY in ours, "'api_token': '[REDACTED]'" in ours), "plain": (CANARY in theirs,)} == {
        "ours": (False, True),
        "plain": (False,),
    }
