"""Regenerate docs/panel.svg, the README's picture of the panel, from a real failure.

A real replicate client (1.0.7, installed by tests/clients.py into .cache/clients) runs
``app.py`` against the loopback API with REPLICATE_API_TOKEN ending in a newline, as a token
read from a file does. The explanation its excepthook printed (JSON) is drawn as the default
panel at 80 columns with rich and saved as SVG. Run from the repository root:

    python docs/make_panel_svg.py          # writes docs/panel.svg
    python docs/make_panel_svg.py --check  # exit status 1 if docs/panel.svg is out of date

tests/test_readme_picture.py runs the check.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "docs" / "panel.svg"
CLIENT = "1.0.7"
WIDTH = 80
APP = """\
import replicate

SDXL = ("stability-ai/sdxl:"
    "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b")
output = replicate.run(SDXL, input={"prompt": "an astronaut"})
"""
_PYTHON = re.compile(r"\(Python (\d+\.\d+\.\d+)\)")


def real_explanation() -> object:
    """The Explanation of a real 1.0.7 failure (a token with a trailing newline)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from clients import VALID_TOKEN, client_env

    from replicate_explain._callsite import CallSite
    from replicate_explain._explanation import CodeFix, Explanation
    from replicate_explain._loopback import LoopbackAPI

    with LoopbackAPI(tokens={VALID_TOKEN}) as api, tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "app.py").write_text("import replicate_explain\n" + APP, encoding="utf-8")
        env = client_env(CLIENT, api, VALID_TOKEN + "\n", {"REPLICATE_EXPLAIN_FORMAT": "json"})
        done = subprocess.run(
            [sys.executable, "app.py"], env=env, cwd=workdir, capture_output=True, text=True, timeout=120, check=False
        )
    lines = [line for line in done.stderr.splitlines() if line.startswith('{"rule_id"')]
    if done.returncode == 0 or not lines:
        raise SystemExit(f"the program did not fail with an explanation:\n{done.stderr}")
    data = json.loads(lines[-1])
    code = data.pop("code")
    site = data.pop("call_site")
    return Explanation(
        **{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()},
        code=None if code is None else CodeFix(**code),
        call_site=None if site is None else CallSite(**site),
    )


def make_svg(python_version: str | None = None) -> str:
    """The SVG text. ``python_version`` replaces the interpreter's version in the evidence
    (only so the check can reproduce a picture made with another Python)."""
    from rich.console import Console

    from replicate_explain._render import panel

    explanation = real_explanation()
    if python_version is not None:
        evidence = tuple(_PYTHON.sub(f"(Python {python_version})", line) for line in explanation.evidence)  # type: ignore[attr-defined]
        explanation = dataclasses.replace(explanation, evidence=evidence)  # type: ignore[type-var]
    console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor", file=io.StringIO())
    console.print(panel(explanation, WIDTH, detail="short"), crop=False)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as out:
        target = Path(out) / "panel.svg"
        console.save_svg(str(target), title="python app.py")
        return target.read_text(encoding="utf-8")


def recorded_python(svg: str) -> str | None:
    """The Python version the picture was made with."""
    found = re.search(r"Python&#160;(\d+\.\d+\.\d+)\)", svg)
    return found.group(1) if found else None


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        current = SVG.read_text(encoding="utf-8") if SVG.exists() else ""
        fresh = make_svg(recorded_python(current))
        if fresh != current:
            print(f"{SVG} is out of date: run python docs/make_panel_svg.py", file=sys.stderr)
            return 1
        return 0
    SVG.write_text(make_svg(), encoding="utf-8")
    print(f"wrote {SVG}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
