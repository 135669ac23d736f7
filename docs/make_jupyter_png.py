"""Draw docs/jupyter.png, the README's picture of the panel in Jupyter, from a real kernel.

A notebook runs in a real ipykernel (the checkout's venv, replicate 1.0.7 from the venv) against
the loopback API, with REPLICATE_API_TOKEN ending in a newline. The failing cell's source, the
last lines of IPython's own traceback and the HTML panel the kernel sent are laid out as a
notebook shows them, drawn by headless Chromium and cropped. Run from the repository root:

    python docs/make_jupyter_png.py

Needs Chromium (Debian: apt-get install -y chromium) and the test extra (nbclient, pillow).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PNG = ROOT / "docs" / "jupyter.png"
CELLS = [
    "%load_ext replicate_explain",
    "import replicate\n\nreplicate.run(SDXL, input={'prompt': 'an astronaut'})",
]
SDXL = "stability-ai/sdxl:39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"


def notebook_outputs() -> tuple[str, list[str], str]:
    """The failing cell's source, IPython's traceback lines (no colour) and the panel's HTML."""
    sys.path.insert(0, str(ROOT / "tests"))
    from outputs import ANSI
    from test_ipython import VALID_TOKEN, _kernel_env, run_notebook

    from replicate_explain._loopback import LoopbackAPI

    with LoopbackAPI(tokens={VALID_TOKEN}) as api, tempfile.TemporaryDirectory() as home:
        cells = [CELLS[0], f"SDXL = {SDXL!r}", CELLS[1]]
        notebook = run_notebook(cells, _kernel_env(api, Path(home), VALID_TOKEN + "\n"), Path(home))
    cell = notebook.cells[2]
    error = next(o for o in cell.outputs if o.output_type == "error")
    panel = next(o for o in cell.outputs if o.output_type == "display_data")
    lines = [ANSI.sub("", line) for line in "\n".join(error.traceback).splitlines()]
    return cell.source, lines, str(panel.data["text/html"])


def page(source: str, traceback: list[str], panel: str) -> str:
    """A notebook-like page: the input cell, the traceback's frame of the cell and its last line
    (the frames inside the installed packages are left out), the panel."""
    start = next(i for i, line in enumerate(traceback) if line.startswith("Cell In["))
    end = next(i for i in range(start, len(traceback)) if not traceback[i].strip())
    shown = [traceback[0], *traceback[start:end], "...", traceback[-1]]
    return (
        '<!doctype html><html><head><meta charset="utf-8"></head>'
        '<body style="background:#fff;color:#000;margin:12px;font-family:sans-serif;font-size:14px;width:760px">'
        '<div style="display:flex;gap:8px"><code style="color:#303f9f">[3]:</code>'
        '<pre style="flex:1;margin:0;padding:6px;background:#f5f5f5;border:1px solid #e0e0e0">'
        f"{html.escape(source)}</pre></div>"
        '<pre style="margin:8px 0 0 0;padding:6px;background:#fdd;font-size:12px;white-space:pre-wrap">'
        f"{html.escape(chr(10).join(shown))}</pre>"
        f"{panel}</body></html>"
    )


def main() -> int:
    chromium = next(
        (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None
    )
    if chromium is None:
        print("Chromium is not installed (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 1
    from PIL import Image

    source, traceback, panel = notebook_outputs()
    with tempfile.TemporaryDirectory() as work:
        html_file, shot = Path(work) / "page.html", Path(work) / "shot.png"
        html_file.write_text(page(source, traceback, panel), encoding="utf-8")
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={Path(work) / 'profile'}", f"--screenshot={shot}", "--window-size=800,1400",
             html_file.as_uri()],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        image = Image.open(shot).convert("RGB")
        width, height = image.size
        pixels = image.load()
        assert pixels is not None
        rows = [y for y in range(height) if any(pixels[x, y] != (255, 255, 255) for x in range(0, width, 2))]
        image.crop((0, 0, width, min(height, rows[-1] + 12))).save(PNG, optimize=True)
    print(f"wrote {PNG.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
