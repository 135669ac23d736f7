"""The wheel ships the top-level rules/ inside the package, and a wheel install finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from clients import REPO_ROOT

pytestmark = pytest.mark.e2e


def test_the_wheel_contains_every_rule_and_the_typing_marker(wheel: Path) -> None:
    """Each rules/*.yaml is in the wheel as replicate_explain/rules/*.yaml, with py.typed."""
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"replicate_explain/rules/{p.name}" for p in (REPO_ROOT / "rules").glob("*.yaml")}
    assert expected <= names
    assert "replicate_explain/py.typed" in names
    assert not any(name.startswith(("tests/", "rules/")) for name in names)


def test_a_wheel_install_loads_the_bundled_rules_from_site_packages(tmp_path: Path, wheel: Path) -> None:
    """Installed from the wheel into a fresh venv, the package finds its rules inside itself."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
            "rich",
            "pyyaml",
            "packaging",
            "--no-deps",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    code = (
        "from replicate_explain._rules import bundled_rules_dir, load_rules\n"
        "rules = load_rules()\n"
        "print(bundled_rules_dir().relative_to(bundled_rules_dir().parents[1]))\n"
        "print(sorted(r.id for r in rules.rules), [str(e) for e in rules.errors])\n"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    expected_ids = sorted(p.stem for p in (REPO_ROOT / "rules").glob("*.yaml"))
    assert out.stdout == f"replicate_explain/rules\n{expected_ids} []\n"
