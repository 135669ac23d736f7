"""No token in any output: every channel we write to, over every scenario, on real clients.

One test per client generation runs the scenarios that put the canary token where the default
traceback would show it, and collects everything our code writes: the excepthook's stderr in
each format (JSON, plain text, the rich panel with ``FORCE_COLOR``), log output (a
``StreamHandler`` and the record attributes JSON log shippers read), the command line (``explain``
fed the unmasked traceback, ``doctor``, ``demo``) and the outputs of a notebook run in a real
kernel. It fails naming every channel where the canary, or any 12-character piece of it,
appears.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clients import CANARY, CLIENT_VERSIONS, MODEL_REF, client_env, run_program
from outputs import leaks

from replicate_explain._loopback import LoopbackAPI

#: (scenario, environment variables): each puts the canary somewhere a client or a traceback
#: may show it (field notes, sections 2 and 4).
SCENARIOS: list[tuple[str, dict[str, str]]] = [
    ("trailing newline", {"REPLICATE_API_TOKEN": CANARY + "\n"}),
    ("windows line break", {"REPLICATE_API_TOKEN": CANARY + "\r\n"}),
    ("trailing space", {"REPLICATE_API_TOKEN": CANARY + " "}),
    ("leading space", {"REPLICATE_API_TOKEN": " " + CANARY}),
    ("quoted", {"REPLICATE_API_TOKEN": f'"{CANARY}"'}),
    ("scheme inside the value", {"REPLICATE_API_TOKEN": f"Bearer {CANARY}"}),
    ("well formed but rejected", {"REPLICATE_API_TOKEN": CANARY}),
    ("only under a look-alike name", {"REPLICATE_API_KEY": CANARY}),
]

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


def _cli(args: list[str], env: dict[str, str], stdin: str = "") -> str:
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
    assert result.returncode in (0, 1), f"replicate-explain {' '.join(args)}: exit {result.returncode}\n{result.stderr}"
    return result.stdout + result.stderr


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


@pytest.mark.e2e
@pytest.mark.parametrize("version", CLIENT_VERSIONS)
def test_the_canary_appears_in_no_output_channel(api: LoopbackAPI, tmp_path: Path, version: str) -> None:
    """Every scenario on this client generation, every channel: excepthook stderr (JSON,
    plain, rich), logs (handler output and the record attributes), the CLI (explain fed the
    unmasked traceback, with --echo, in every format; doctor; demo) and a notebook's saved
    outputs. No channel holds the canary or a 12-character piece of it; and the scenarios
    are real: plain Python's own traceback does show it."""
    outputs: dict[str, str] = {}
    unmasked_somewhere = []
    for scenario, variables in SCENARIOS:
        token = variables.get("REPLICATE_API_TOKEN")
        extra = {name: value for name, value in variables.items() if name != "REPLICATE_API_TOKEN"}
        plain = run_program(RUN, version, api, token, {**extra, "REPLICATE_EXPLAIN": "0"})
        if leaks(plain.stderr, CANARY):
            unmasked_somewhere.append(scenario)
        for name, settings in FORMATS.items():
            hooked = run_program(RUN, version, api, token, {**extra, **settings})
            outputs[f"{scenario} / excepthook / {name}"] = hooked.stdout + hooked.stderr
            assert hooked.returncode == plain.returncode == 1
        logged = run_program(LOGGED, version, api, token, extra)
        outputs[f"{scenario} / logging"] = logged.stdout + logged.stderr
        assert logged.returncode == 0, logged.stderr
        env = client_env(version, api, token, extra)
        for name in ("plain", "json", "rich"):
            outputs[f"{scenario} / cli explain --echo --format {name}"] = _cli(
                ["explain", "--echo", "--format", name, "-"], env, plain.stderr
            )
        for name in ("plain", "json"):
            outputs[f"{scenario} / cli doctor --format {name}"] = _cli(["doctor", "--format", name], env)
    env = client_env(version, api, CANARY + "\n")
    outputs["cli demo --all --format json"] = _cli(["demo", "--all", "--format", "json"], env)
    notebook_env = {
        **client_env(version, api, CANARY + "\n"),
        "HOME": str(tmp_path),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    notebook_env.pop("NO_COLOR", None)
    outputs["notebook"] = _notebook(NOTEBOOK_CELLS, notebook_env, tmp_path)

    assert "trailing newline" in unmasked_somewhere  # the scenarios really put the token in plain output
    explained = [name for name, text in outputs.items() if "excepthook / json" in name and '"rule_id"' in text]
    assert len(explained) >= len(SCENARIOS) // 2, explained  # and we really explained them
    assert '"output_type": "error"' in outputs["notebook"]
    assert {name: leaks(text, CANARY) for name, text in outputs.items() if leaks(text, CANARY)} == {}
