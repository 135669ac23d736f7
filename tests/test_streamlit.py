"""Streamlit: an uncaught Replicate failure's red box masked, the explanation drawn under it.

Each app runs in a subprocess with a pinned streamlit (``extra_path``) and the real replicate
client 1.0.7 against the loopback API, with the canary token plus a newline (httpx then raises
``Illegal header value b'Bearer r8_...\\n'``, the token in the message). Streamlit's own test
runner (``streamlit.testing.v1.AppTest``) runs the app and the driver prints the element tree of
the page; one test serves the app with ``streamlit run`` and looks at it in headless Chromium.

Versions: 1.67.0 (the newest; the ``on_script_error`` extension point, from 1.58) and 1.57.0
(the last without it: the integration wraps the function that draws the box).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from clients import CANARY, MODEL_REF, client_env, extra_path
from outputs import CHROMIUM_HEADLESS

from replicate_explain._loopback import LoopbackAPI
from replicate_explain._render import diff_lines

pytestmark = pytest.mark.e2e

STREAMLIT_VERSIONS = ("1.67.0", "1.57.0")
NEWEST = STREAMLIT_VERSIONS[0]
RULE = "token-whitespace"

FAILING_APP = f"""\
import replicate_explain
import streamlit as st
import replicate

st.title("Image maker")
replicate.run({MODEL_REF!r}, input={{}})
"""

UNRELATED_APP = """\
import replicate_explain
import streamlit as st

st.title("Image maker")
raise ValueError("no such model: demo (r8_ prefix expected)")
"""

#: What ``st.App("main.py", on_script_error=on_script_error)`` sets for each script run.
EXPLICIT_APP = f"""\
import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from replicate_explain.integrations.streamlit import on_script_error

get_script_run_ctx().on_script_error = on_script_error
import replicate

st.title("Image maker")
replicate.run({MODEL_REF!r}, input={{}})
"""

DRIVER = """\
import json, sys
from streamlit.testing.v1 import AppTest

def dump(node):
    out = {"kind": type(node).__name__}
    for attr in ("message", "value", "label", "language"):
        try:
            value = getattr(node, attr)
        except Exception:
            continue
        if isinstance(value, (str, bool, int)) or value is None:
            out[attr] = value
    if out["kind"] == "Exception":
        out["stack_trace"] = list(node.stack_trace)
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        out["children"] = [dump(child) for _, child in sorted(children.items())]
    return out

at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
print("PAGE " + json.dumps(dump(at.main)))
"""


def _env(api: LoopbackAPI, version: str, extra: dict[str, str] | None = None, client: str = "1.0.7") -> dict[str, str]:
    env = client_env(client, api, CANARY + "\n", extra)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(extra_path(f"streamlit=={version}"))])
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    return env


def _run_app(
    api: LoopbackAPI,
    tmp_path: Path,
    version: str,
    app: str,
    extra: dict[str, str] | None = None,
    client: str = "1.0.7",
) -> tuple[dict[str, Any], str]:
    """Run ``app`` in AppTest; return the page's element tree and everything printed."""
    (tmp_path / "app.py").write_text(app, encoding="utf-8")
    (tmp_path / "driver.py").write_text(DRIVER, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "driver.py", "app.py"],
        env=_env(api, version, extra, client),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    pages = [line[5:] for line in done.stdout.splitlines() if line.startswith("PAGE ")]
    assert done.returncode == 0 and len(pages) == 1, done.stdout + done.stderr
    return json.loads(pages[0]), done.stdout.replace(pages[0], "") + done.stderr


def _expected_explanation(client: str = "1.0.7") -> dict[str, Any]:
    """The explanation block the rule's data gives for ``client`` (kinds, title, code)."""
    from replicate_explain._api import rules
    from replicate_explain._matcher import choose_example
    from replicate_explain._render_markdown import escape

    rule = rules().get(RULE)
    assert rule is not None
    code = choose_example(rule, client)
    assert code is not None
    diff = "\n".join(f"{mark} {line}".rstrip() for mark, line in diff_lines(code.broken, code.fixed))
    return {
        "kinds": ["Caption", "Subheader", "Markdown", "Markdown", "Code", "Expander"],
        "title": escape(rule.title),
        "code": (diff, "diff"),
        "header starts": f"**replicate-explain** · `{RULE}`  \nat **app\\.py\\:",
    }


def _explanation_seen(block: dict[str, Any]) -> dict[str, Any]:
    children = block["children"]
    return {
        "kinds": [child["kind"] for child in children],
        "title": children[1]["value"],
        "code": (children[4]["value"], children[4]["language"]),
        "header starts": children[0]["value"][: len(f"**replicate-explain** · `{RULE}`  \nat **app\\.py\\:")],
    }


@pytest.mark.parametrize("version", STREAMLIT_VERSIONS)
def test_a_replicate_failure_gets_a_masked_box_and_the_explanation_under_it(
    api: LoopbackAPI, tmp_path: Path, version: str
) -> None:
    """After ``import replicate_explain``, the app's uncaught failure shows Streamlit's box with
    the token masked (message and chained causes), then the explanation in a bordered block
    under it: the rule, the title, evidence and fix, the rule's code as a diff, a fold. The
    console Streamlit logs the exception to shows no token either."""
    page, printed = _run_app(api, tmp_path, version, FAILING_APP)
    kinds = [child["kind"] for child in page["children"]]
    box = page["children"][1]
    assert {
        "page kinds": kinds,
        "box message": box["message"],
        "canary on the page": CANARY in json.dumps(page),
        "canary printed": CANARY in printed,
        "explanation": _explanation_seen(page["children"][2]),
    } == {
        "page kinds": ["Title", "Exception", "Block"],
        "box message": "Illegal header value b'Bearer [REDACTED]\\n'",
        "canary on the page": False,
        "canary printed": False,
        "explanation": _expected_explanation(),
    }


@pytest.mark.parametrize("client", ["2.0.0b4"])
def test_the_other_client_generation_gets_its_own_code(api: LoopbackAPI, tmp_path: Path, client: str) -> None:
    """The 2.x client (the Stainless rewrite) fails the same way: the box is masked and the
    explanation shows the rule's code for 2.x."""
    page, printed = _run_app(api, tmp_path, NEWEST, FAILING_APP, client=client)
    assert {
        "page kinds": [child["kind"] for child in page["children"]],
        "canary anywhere": CANARY in json.dumps(page) or CANARY in printed,
        "explanation": _explanation_seen(page["children"][2]),
    } == {
        "page kinds": ["Title", "Exception", "Block"],
        "canary anywhere": False,
        "explanation": _expected_explanation(client),
    }


@pytest.mark.parametrize("version", STREAMLIT_VERSIONS)
def test_an_unrelated_exception_gets_streamlits_box_unchanged(api: LoopbackAPI, tmp_path: Path, version: str) -> None:
    """An error that is not Replicate's: the page is exactly the page without replicate-explain
    (``REPLICATE_EXPLAIN=0``): one box, its message as raised, no explanation."""
    with_us, _ = _run_app(api, tmp_path, version, UNRELATED_APP)
    without, _ = _run_app(api, tmp_path, version, UNRELATED_APP, {"REPLICATE_EXPLAIN": "0"})
    assert ([child["kind"] for child in with_us["children"]], with_us["children"][1]["message"]) == (
        ["Title", "Exception"],
        "no such model: demo (r8_ prefix expected)",
    )
    assert with_us == without


def test_the_console_without_rich_is_masked_and_explained(api: LoopbackAPI, tmp_path: Path) -> None:
    """``logger.enableRich=false``: Streamlit logs the failure through :mod:`logging`, where
    the logging integration masks it and appends the plain-text explanation; the page is the
    same as with rich."""
    app = FAILING_APP.replace("import replicate\n", 'import replicate\nst.set_option("logger.enableRich", False)\n')
    page, printed = _run_app(api, tmp_path, NEWEST, app)
    assert {
        "page kinds": [child["kind"] for child in page["children"]],
        "canary printed": CANARY in printed,
        "explained in the log": f"replicate-explain: {RULE}: " in printed,
        "masked in the log": "Illegal header value b'Bearer [REDACTED]\\n'" in printed,
    } == {
        "page kinds": ["Title", "Exception", "Block"],
        "canary printed": False,
        "explained in the log": True,
        "masked in the log": True,
    }


def test_the_explicit_on_script_error_handler_draws_the_same(api: LoopbackAPI, tmp_path: Path) -> None:
    """``st.App(on_script_error=on_script_error)``'s handler, with the automatic activation off
    (``REPLICATE_EXPLAIN=0``), called by Streamlit's own dispatch: the same masked box and
    explanation under it."""
    page, _ = _run_app(api, tmp_path, NEWEST, EXPLICIT_APP, {"REPLICATE_EXPLAIN": "0"})
    assert {
        "page kinds": [child["kind"] for child in page["children"]],
        "box message": page["children"][1]["message"],
        "canary on the page": CANARY in json.dumps(page),
        "explanation": _explanation_seen(page["children"][2]),
    } == {
        "page kinds": ["Title", "Exception", "Block"],
        "box message": "Illegal header value b'Bearer [REDACTED]\\n'",
        "canary on the page": False,
        "explanation": _expected_explanation(),
    }


def test_an_app_that_hides_error_details_gets_no_explanation(api: LoopbackAPI, tmp_path: Path) -> None:
    """``client.showErrorDetails = "type"``: Streamlit hides the message from visitors, and the
    page gets no explanation either (the owner chose to show nothing about the error)."""
    app = FAILING_APP.replace(
        "import replicate\n", 'import replicate\nst.set_option("client.showErrorDetails", "type")\n'
    )
    page, printed = _run_app(api, tmp_path, NEWEST, app)
    assert ([child["kind"] for child in page["children"]], CANARY in printed) == (["Title", "Exception"], False)


# ---------------------------------------------------------------------------------------------
# A real ``streamlit run``, in a real browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("streamlit did not answer in time")


#: The page's full height (Streamlit scrolls inside its main area, not the document).
_HEIGHT = "Math.max(...Array.from(document.querySelectorAll('*')).map((e) => e.scrollHeight))"
#: The rectangle of the block (a bordered container) around the first text with WANTED.
_RECT = """(() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let it = null;
  while (walker.nextNode()) {
    if (walker.currentNode.nodeValue.includes(WANTED)) { it = walker.currentNode.parentElement; break; }
  }
  if (!it) return null;
  const box = it.closest('[data-testid="stLayoutWrapper"]') || it.closest('[data-testid="stVerticalBlock"]') || it;
  const r = box.getBoundingClientRect();
  return [r.left, r.top, r.width, r.height];
})()"""


class _Browser:
    """Headless Chromium driven over the DevTools protocol (tornado's websocket client): a
    Streamlit page is drawn by script over a websocket after the page has loaded, so the test
    waits, in real time, until the page shows what it waits for."""

    def __init__(self, chromium: str, profile: Path) -> None:
        self.process = subprocess.Popen(
            [
                chromium,
                *CHROMIUM_HEADLESS,
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={profile}",
                "--window-size=1200,1800",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if "DevTools listening on " in line:
                port = line.split("ws://", 1)[1].split("/", 1)[0]
                break
        else:
            raise AssertionError("Chromium did not start its DevTools server")
        with urllib.request.urlopen(f"http://{port}/json/list", timeout=10) as answer:
            pages = [target for target in json.load(answer) if target.get("type") == "page"]
        self.target = pages[0]["webSocketDebuggerUrl"]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def visit(self, url: str, wait_for: str, show: str, timeout: float = 90) -> tuple[str, str, bytes]:
        """Open ``url``; once the page's text has ``wait_for`` (or at ``timeout``): the page's
        text, its DOM and a PNG screenshot of the bordered block holding the text ``show``
        with the end of what is above it (the whole page if there is no such text)."""
        import asyncio
        import base64

        from tornado.websocket import websocket_connect

        async def session() -> tuple[str, str, bytes]:
            socket_ = await websocket_connect(self.target, max_message_size=64 * 2**20)
            counter = 0

            async def call(method: str, **params: Any) -> Any:
                nonlocal counter
                counter += 1
                socket_.write_message(json.dumps({"id": counter, "method": method, "params": params}))
                while True:
                    message = await socket_.read_message()
                    assert message is not None, "DevTools closed the connection"
                    data = json.loads(message)
                    if data.get("id") == counter:
                        return data.get("result", {})

            async def evaluate(expression: str) -> Any:
                result = await call("Runtime.evaluate", expression=expression, returnByValue=True)
                return result.get("result", {}).get("value")

            await call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                text = await evaluate("document.body ? document.body.innerText : ''") or ""
                if wait_for in text:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1)  # the last deltas' layout
            height = int(await evaluate(_HEIGHT) or 1800) + 200
            metrics = {"width": 1200, "height": min(height, 16000), "deviceScaleFactor": 1, "mobile": False}
            await call("Emulation.setDeviceMetricsOverride", **metrics)
            await asyncio.sleep(1)
            text = await evaluate("document.body.innerText") or ""
            dom = await evaluate("document.documentElement.outerHTML") or ""
            rect = await evaluate(_RECT.replace("WANTED", json.dumps(show)))
            clip = None
            if rect:
                left, top, width, tall = rect
                clip = {
                    "x": max(0, left - 20),
                    "y": max(0, top - 160),
                    "width": width + 40,
                    "height": tall + 180,
                    "scale": 1,
                }
            shot = await call("Page.captureScreenshot", format="png", **({"clip": clip} if clip else {}))
            socket_.close()
            return text, dom, base64.b64decode(shot["data"])

        return asyncio.run(session())


def test_streamlit_run_in_a_real_browser(api: LoopbackAPI, tmp_path: Path) -> None:
    """``streamlit run`` on 127.0.0.1 opened in headless Chromium: the page's DOM has the
    explanation's title and no token anywhere; the server's console shows no token; a
    screenshot is written (``streamlit.png`` in the test's directory) for a person to look at."""
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if chromium is None:
        pytest.skip("Chromium is not installed here (Debian: apt-get install -y chromium); .ci/run installs it")
    (tmp_path / "app.py").write_text(FAILING_APP, encoding="utf-8")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w+", encoding="utf-8")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--global.developmentMode=false",
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
        ],
        env=_env(api, NEWEST),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    browser = None
    try:
        _wait_healthy(url, server, time.monotonic() + 120)
        browser = _Browser(chromium, tmp_path / "profile")
        text, dom, png = browser.visit(url, wait_for="What happened, why", show="replicate-explain")
    finally:
        if browser is not None:
            browser.close()
        server.terminate()
        server.wait(timeout=30)
    (tmp_path / "streamlit.png").write_bytes(png)
    log.seek(0)
    console = log.read()
    log.close()
    from replicate_explain._api import rules

    rule = rules().get(RULE)
    assert rule is not None
    assert {
        "title in the page": rule.title in text,
        "masked message in the page": "Illegal header value b'Bearer [REDACTED]" in text,
        "canary in the page": CANARY in dom or CANARY in text,
        "canary in the console": CANARY in console,
        "screenshot": png.startswith(b"\x89PNG") and len(png) > 10_000,
    } == {
        "title in the page": True,
        "masked message in the page": True,
        "canary in the page": False,
        "canary in the console": False,
        "screenshot": True,
    }
