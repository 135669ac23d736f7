"""The panel as people see it: the README picture, colour into a file, Jupyter's HTML in a browser.

- docs/panel.svg is regenerated from a real failure by docs/make_panel_svg.py and compared.
- ``FORCE_COLOR=1 replicate-explain demo > file`` draws with colour, as a program's hook does.
- A notebook whose cell fails with a real authentication error is executed in a real kernel;
  the HTML its output carries is written into a page, opened in headless Chromium under a light
  and a dark page background, and the screenshot is checked: the panel's red border is there on
  both sides (nothing clipped at the right edge) and its text stands out from the background.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from clients import MODEL_REF, REPO_ROOT, client_path
from outputs import ANSI, CHROMIUM_HEADLESS

from replicate_explain._loopback import LoopbackAPI

pytestmark = pytest.mark.e2e

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: (page background, page text colour): Jupyter's light theme and a dark theme.
THEMES = {"light": ("#ffffff", "#000000"), "dark": ("#111111", "#d4d4d4")}
BORDER = (0xD3, 0x3C, 0x3C)
WINDOW = (1000, 1600)


def test_the_readme_picture_is_up_to_date() -> None:
    """docs/panel.svg is what docs/make_panel_svg.py draws from a real failure today."""
    client_path("1.0.7")  # installs the pinned client into .cache/clients if needed
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "docs" / "make_panel_svg.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_force_color_draws_the_demo_in_colour_into_a_file(tmp_path: Path) -> None:
    """FORCE_COLOR=1 gives colour into a file for the demo's panels too; NO_COLOR gives none."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("REPLICATE_")}
    env.pop("NO_COLOR", None)
    results = {}
    for name, extra in (("force", {"FORCE_COLOR": "1"}), ("none", {"NO_COLOR": "1"})):
        out = tmp_path / f"{name}.txt"
        with out.open("w", encoding="utf-8") as handle:
            done = subprocess.run(
                [sys.executable, "-m", "replicate_explain", "demo", "--scenario", "token-unset", "--format", "rich"],
                env={**env, **extra},
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        text = out.read_text(encoding="utf-8")
        results[name] = (
            done.returncode,
            "replicate-explain · token-unset" in ANSI.sub("", text),
            bool(ANSI.search(text)),
        )
    assert results == {"force": (0, True, True), "none": (0, True, False)}


# ---------------------------------------------------------------------------------------------
# Jupyter's HTML panel in a real browser


def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _failed_cell_html(api: LoopbackAPI, tmp_path: Path) -> str:
    """The text/html the panel output of a real failing cell carries (token unset: a 401)."""
    from test_ipython import _kernel_env, run_notebook

    home = tmp_path / "home"
    home.mkdir()
    cells = ["%load_ext replicate_explain", f"import replicate\nreplicate.run({MODEL_REF!r}, input={{}})"]
    notebook = run_notebook(cells, _kernel_env(api, home, None), tmp_path)
    pages = [
        output.data["text/html"]
        for output in notebook.cells[1].outputs
        if output.output_type == "display_data" and "text/html" in output.data
    ]
    assert len(pages) == 1, notebook.cells[1].outputs
    return str(pages[0])


def _screenshot(chromium: str, page: Path, png: Path, profile: Path) -> None:
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_HEADLESS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert png.exists(), done.stderr


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour))


def _luminance(pixel: tuple[int, ...]) -> float:
    red, green, blue = pixel[:3]
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _inspect(png: Path, background: str) -> dict[str, Any]:
    """What the screenshot shows: where the red border is, and how much text stands out."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    bg = tuple(int(background[i : i + 2], 16) for i in (1, 3, 5))
    border_columns = sorted(
        {x for x in range(width) for y in range(0, height, 4) if _near(pixels[x, y], BORDER)}  # type: ignore[arg-type]
    )
    border_rows = sorted({y for y in range(height) for x in range(0, width, 4) if _near(pixels[x, y], BORDER)})  # type: ignore[arg-type]
    assert border_columns and border_rows, "no panel border in the screenshot"
    left, right, top, bottom = border_columns[0], border_columns[-1], border_rows[0], border_rows[-1]
    contrast = sum(
        1
        for x in range(left + 8, right - 2, 2)
        for y in range(top + 2, bottom - 2, 2)
        if abs(_luminance(pixels[x, y]) - _luminance(bg)) > 100  # type: ignore[arg-type]
    )
    return {
        "left border": left < 40,
        "right border inside the window": right < width - 8,
        "panel wider than half the window": right - left > width // 2,
        "panel taller than 300 px": bottom - top > 300,
        "text pixels standing out": contrast > 2000,
    }


@pytest.mark.parametrize("theme", sorted(THEMES))
def test_the_jupyter_panel_is_visible_and_unclipped_in_a_real_browser(
    api: LoopbackAPI, tmp_path: Path, theme: str
) -> None:
    """Chromium draws the notebook's HTML panel whole, readable on a light and a dark page."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed here (Debian: apt-get install -y chromium); .ci/run installs it")
    background, foreground = THEMES[theme]
    body = _failed_cell_html(api, tmp_path)
    page = tmp_path / f"{theme}.html"
    page.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"></head>'
        f'<body style="background:{background};color:{foreground};margin:16px;'
        f'font-family:sans-serif;font-size:14px">{body}</body></html>',
        encoding="utf-8",
    )
    png = tmp_path / f"{theme}.png"
    _screenshot(chromium, page, png, tmp_path / "profile")
    assert _inspect(png, background) == {
        "left border": True,
        "right border inside the window": True,
        "panel wider than half the window": True,
        "panel taller than 300 px": True,
        "text pixels standing out": True,
    }
