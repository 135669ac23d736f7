"""``replicate-explain install | uninstall | status``, in fresh virtual environments.

The wheel is built once per test session (per xdist worker) and really pip-installed into a
template venv; each test gets a fresh ``python -m venv`` holding a copy of exactly what pip put
there (the console script pointed at the new venv), so ``pip uninstall`` works in it too. The
dependencies (rich, PyYAML, packaging, replicate 1.0.7 and theirs) come from this interpreter
through a path line in a ``.pth`` file. The venv's console script runs the commands, and plain
``python -c`` programs in it show what start-up really does.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clients import CANARY, MODEL_REF, base_url_env
from hypothesis import assume, example, given
from hypothesis import strategies as st
from outputs import explanations, leaks, masked

from replicate_explain import _startup
from replicate_explain._loopback import LoopbackAPI

CLIENT = "1.0.7"  # the replicate release installed in this interpreter (pyproject's test env)
PLAIN_PROGRAM = f"import replicate\nreplicate.run({MODEL_REF!r}, input={{'text': 'hi'}})\n"
STATE = "import sys\nprint('replicate_explain' in sys.modules, getattr(sys.excepthook, '__module__', None))\n"
DEPS_PTH = "_replicate_explain_test_deps.pth"


# ---------------------------------------------------------------------------------------------
# Fresh venvs


RUNTIME_REQUIREMENTS = ("rich", "packaging", "PyYAML", "replicate")


@pytest.fixture(scope="session")
def deps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of symlinks to the installed distributions the project needs at run time
    (the closure of its requirements, with their .dist-info), and nothing else: this
    interpreter's site-packages may hold an editable install of the project itself."""
    from importlib.metadata import Distribution, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    farm = tmp_path_factory.mktemp("deps")
    seen: dict[str, Distribution] = {}
    todo = list(RUNTIME_REQUIREMENTS)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen[name] = found = distribution(name)
        for text in found.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    for found in seen.values():
        for top in {file.parts[0] for file in found.files or []} - {"..", "__pycache__"}:
            link = farm / top
            if not link.exists():
                link.symlink_to(Path(str(found.locate_file(top))))
    assert not (farm / "replicate_explain").exists()
    return farm


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without REPLICATE_* or PYTHONPATH, with ``home`` as the user base."""
    drop = {"PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONNOUSERSITE", "VIRTUAL_ENV"}
    drop |= {"PYTHONDONTWRITEBYTECODE", "PYTHONSAFEPATH", "PYTHONVERBOSE"}
    env = {key: value for key, value in os.environ.items() if not key.startswith("REPLICATE_") and key not in drop}
    env.update(PYTHONUSERBASE=str(home), NO_COLOR="1", PYTHONIOENCODING="utf-8", COLUMNS="100")
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Venv:
    """A fresh venv with replicate-explain pip-installed, and the environment to run it in."""

    root: Path
    site: Path
    home: Path  # PYTHONUSERBASE, so nothing reads or writes the real user site

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return clean_env(self.home, extra)

    def run(
        self, *args: str, extra: Mapping[str, str] | None = None, prefix: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, *args], env=self.env(extra), cwd=self.home, capture_output=True,
            encoding="utf-8", errors="replace", timeout=120, check=False,
        )  # fmt: skip

    def cli(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run the venv's ``replicate-explain`` console script."""
        return self.run(str(self.root / "bin" / "replicate-explain"), *args, **kwargs)

    def py(self, code: str, *flags: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``python [flags] -c code`` in the venv."""
        return self.run(str(self.python), *flags, "-c", code, **kwargs)

    def status(self, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        result = self.cli("status", "--format", "json", **kwargs)
        return result.returncode, json.loads(result.stdout)

    def pip_uninstall(self) -> None:
        _pip("--python", str(self.python), "uninstall", "--yes", "replicate-explain")


def _new_venv(root: Path) -> Path:
    """``python -m venv --without-pip root``; return its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(
        subprocess.run(
            [str(root / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True
        ).stdout.strip()
    )


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, wheel: Path, deps: Path) -> Venv:
    """A venv with the wheel really pip-installed, made once per session and only copied."""
    where = tmp_path_factory.mktemp("template")
    site = _new_venv(where / "venv")
    _pip("--python", str(where / "venv" / "bin" / "python"), "install", "--no-deps", "--no-index",
         str(wheel))  # fmt: skip
    (site / DEPS_PTH).write_text(f"{deps}\n", encoding="utf-8")
    return Venv(where / "venv", site, where)


@pytest.fixture
def venv(tmp_path: Path, template: Venv) -> Venv:
    """A fresh venv holding exactly what pip installed into the template (its RECORD lists
    paths relative to site-packages, so pip uninstalls it), nothing activated."""
    root = tmp_path / "venv"
    site = _new_venv(root)
    for entry in template.site.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, site / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, site / entry.name)
    script = template.root / "bin" / "replicate-explain"
    _, body = script.read_text(encoding="utf-8").split("\n", 1)
    copy = root / "bin" / "replicate-explain"
    copy.write_text(f"#!{root / 'bin' / 'python'}\n{body}", encoding="utf-8")
    copy.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    return Venv(root, site, home)


def run_plain_program(venv: Venv, api: LoopbackAPI, **extra: str) -> subprocess.CompletedProcess[str]:
    """A program that never imports replicate_explain, failing on a token with a line break."""
    env = {**base_url_env(CLIENT, api), "REPLICATE_API_TOKEN": CANARY + "\n"}
    env.update(REPLICATE_EXPLAIN_FORMAT="json", **extra)
    return venv.py(PLAIN_PROGRAM, extra=env)


def checked_message(venv: Venv, *, user: bool = False) -> str:
    return (
        f"Checked: a new interpreter of this environment ({venv.python}) now explains "
        "Replicate authentication failures under the traceback.\n"
        "Check any time with `replicate-explain status`; undo with `replicate-explain "
        f"uninstall{' --user' if user else ''}`. REPLICATE_EXPLAIN=0 turns it off for one run.\n"
    )


# ---------------------------------------------------------------------------------------------
# The default method


@pytest.mark.e2e
def test_install_makes_a_plain_program_explain_its_failure(venv: Venv, api: LoopbackAPI) -> None:
    """Before install nothing is active and status says why; after install, a program that
    never imports replicate_explain prints plain Python's traceback (token masked) followed by
    exactly one explanation, and status reports the install and our excepthook."""
    before_code, before = venv.status()
    assert (before_code, before) == (
        1,
        {
            "active": False,
            "python": str(venv.python),
            "environment": str(venv.root),
            "installed": [],
            "reasons": [
                "Nothing is installed: run `replicate-explain install` "
                "(or `replicate-explain install --user` for your user site)."
            ],
            "excepthook": "sys.excepthook",
            "startup_output": "",
        },
    )

    installed = venv.cli("install")
    target = venv.site / "sitecustomize.py"
    assert (installed.returncode, installed.stderr) == (0, "")
    assert installed.stdout == (f"Created {target} with the replicate-explain block.\n" + checked_message(venv))
    assert target.read_bytes() == _startup.sitecustomize_block(created=True)

    hooked = run_plain_program(venv, api)
    plain = run_plain_program(venv, api, REPLICATE_EXPLAIN="0")
    assert hooked.returncode == plain.returncode == 1
    assert [e["rule_id"] for e in explanations(hooked.stderr)] == ["token-whitespace"]
    traceback_part = hooked.stderr[: hooked.stderr.index('{"rule_id"')]
    assert traceback_part == masked(plain.stderr, CANARY)
    assert leaks(hooked.stderr + hooked.stdout, CANARY) == []

    after_code, after = venv.status()
    assert (after_code, after) == (
        0,
        {
            "active": True,
            "python": str(venv.python),
            "environment": str(venv.root),
            "installed": [{"method": "sitecustomize", "scope": "environment", "paths": [str(target)]}],
            "reasons": [],
            "excepthook": "replicate_explain._hook.excepthook",
            "startup_output": "",
        },
    )


ORIGINALS = {
    "ends with a newline": b"import os\nos.environ['SITE_MARK'] = 'ran'\n",
    "no final newline": b"import os\nos.environ['SITE_MARK'] = 'ran'",
    "empty file": b"",
    "latin-1 with CRLF": (b"# -*- coding: latin-1 -*-\r\nimport os\r\nos.environ['SITE_MARK'] = 'r\xe9n'\r\n"),
    "utf-8 BOM": b"\xef\xbb\xbfimport os\nos.environ['SITE_MARK'] = 'ran'\n",
}


@pytest.mark.e2e
@pytest.mark.parametrize("original", list(ORIGINALS.values()), ids=list(ORIGINALS))
def test_an_existing_sitecustomize_is_kept_and_restored_byte_for_byte(venv: Venv, original: bytes) -> None:
    """install appends after the existing bytes (which keep running), a second install changes
    nothing, and uninstall gives back exactly the original bytes."""
    target = venv.site / "sitecustomize.py"
    target.write_bytes(original)

    first = venv.cli("install")
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout.splitlines()[0] == (
        f"Appended the replicate-explain block to {target} (its {len(original)} existing bytes are unchanged)."
    )
    data = target.read_bytes()
    separator = b"" if original == b"" else b"\n"
    assert data == original + separator + _startup.sitecustomize_block(created=False)
    mark = venv.py("import os, sys; print(os.environ.get('SITE_MARK'), sys.excepthook.__module__)")
    expected_mark = "None" if original == b"" else ("rén" if b"\xe9" in original else "ran")
    assert mark.stdout == f"{expected_mark} replicate_explain._hook\n"

    second = venv.cli("install")
    assert second.stdout.splitlines()[0] == (f"The replicate-explain block in {target} is up to date: nothing changed.")
    assert target.read_bytes() == data

    removed = venv.cli("uninstall")
    assert (removed.returncode, removed.stderr) == (0, "")
    assert removed.stdout == (
        f"Removed the replicate-explain block from {target} "
        f"(restored its previous {len(original)} bytes).\n"
        "A new interpreter of this environment no longer starts the hook.\n"
    )
    assert target.read_bytes() == original


@pytest.mark.e2e
def test_uninstall_deletes_the_sitecustomize_it_created(venv: Venv) -> None:
    """A sitecustomize.py that install created is deleted with its cached bytecode; uninstalling
    again finds nothing to do."""
    target = venv.site / "sitecustomize.py"
    assert venv.cli("install").returncode == 0
    assert venv.py("pass").returncode == 0  # caches the bytecode of sitecustomize.py
    assert list((venv.site / "__pycache__").glob("sitecustomize.*.pyc")) != []

    removed = venv.cli("uninstall")
    assert removed.stdout == (
        f"Deleted {target}: replicate-explain had created it and nothing else is in it.\n"
        "A new interpreter of this environment no longer starts the hook.\n"
    )
    assert not target.exists()
    assert list((venv.site / "__pycache__").glob("sitecustomize.*.pyc")) == []
    assert venv.py(STATE).stdout == "False sys\n"

    again = venv.cli("uninstall")
    assert (again.returncode, again.stdout) == (
        0,
        f"Nothing to remove: no replicate-explain block in {target} or "
        f"{_startup.PTH_NAME} in {venv.site}.\n"
        "A new interpreter of this environment no longer starts the hook.\n",
    )


# ---------------------------------------------------------------------------------------------
# Start-up never breaks


@pytest.mark.e2e
def test_python_dash_S_and_the_off_switch_leave_startup_alone(venv: Venv) -> None:
    """With the hook installed, ``python -S`` never runs it, ``REPLICATE_EXPLAIN=0`` skips even
    the import, and status says which variable turned it off."""
    assert venv.cli("install").returncode == 0
    on = venv.py(STATE)
    no_site = venv.py(STATE, "-S")
    off = venv.py(STATE, extra={"REPLICATE_EXPLAIN": "0"})
    assert [(r.returncode, r.stdout, r.stderr) for r in (on, no_site, off)] == [
        (0, "True replicate_explain._hook\n", ""),
        (0, "False sys\n", ""),
        (0, "False sys\n", ""),
    ]
    code, status = venv.status(extra={"REPLICATE_EXPLAIN": "0"})
    assert (code, status["active"], status["reasons"]) == (
        1,
        False,
        ["REPLICATE_EXPLAIN=0 is set in this environment: it turns the hook off (unset it to turn it back on)."],
    )


@pytest.mark.e2e
def test_pip_uninstall_with_the_hooks_left_behind_keeps_python_silent(venv: Venv) -> None:
    """Both methods installed, then ``pip uninstall replicate-explain``: python starts with no
    output and exit 0; with REPLICATE_EXPLAIN_DEBUG=1 each method says once why it is off
    (the .pth line, which Python runs twice in a venv, starts the hook once)."""
    assert venv.cli("install").returncode == 0
    assert venv.cli("install", "--method", "pth").returncode == 0
    venv.pip_uninstall()

    quiet = venv.py("pass")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert venv.py(STATE).stdout == "False sys\n"
    debug = venv.py("pass", extra={"REPLICATE_EXPLAIN_DEBUG": "1"})
    header = "replicate-explain: the start-up hook could not import replicate_explain (it stays off):"
    assert debug.returncode == 0
    assert [line for line in debug.stderr.splitlines() if "replicate-explain" in line] == [header] * 2
    assert debug.stderr.count("ModuleNotFoundError: No module named 'replicate_explain'") == 2


@pytest.mark.e2e
def test_a_package_that_fails_to_import_does_not_break_startup(venv: Venv) -> None:
    """If replicate_explain itself raises on import, start-up stays silent and the program
    runs; the debug switch shows the error."""
    assert venv.cli("install").returncode == 0
    init = venv.site / "replicate_explain" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + "\nraise RuntimeError('broken on purpose')\n")

    quiet = venv.py("print('program ran')")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "program ran\n", "")
    debug = venv.py("pass", extra={"REPLICATE_EXPLAIN_DEBUG": "1"})
    assert debug.returncode == 0
    assert debug.stderr.splitlines()[-1] == "RuntimeError: broken on purpose"


# ---------------------------------------------------------------------------------------------
# Shadowing


@pytest.mark.e2e
def test_a_sitecustomize_earlier_on_sys_path_is_detected(venv: Venv, tmp_path: Path) -> None:
    """Another sitecustomize first on sys.path (here from PYTHONPATH, as Debian's is from the
    standard library directory): install refuses, names both files and offers --method pth,
    which then works; status explains a block that a later shadow stops."""
    shadow_dir = tmp_path / "shadow"
    shadow_dir.mkdir()
    shadow = shadow_dir / "sitecustomize.py"
    shadow.write_text("SHADOW = True\n", encoding="utf-8")
    with_shadow = {"PYTHONPATH": str(shadow_dir)}
    target = venv.site / "sitecustomize.py"

    refused = venv.cli("install", extra=with_shadow)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        "replicate-explain install: another sitecustomize.py comes first on sys.path and would "
        "shadow ours:\n"
        f"    {shadow}    (runs at start-up)\n"
        f"    {target}    (where the block would go: never run)\n"
        "Python imports only the first one it finds on sys.path (Debian and Ubuntu system "
        "Pythons ship their own sitecustomize.py). Nothing was written. Use the .pth method "
        "instead, which does not depend on it:\n"
        "    replicate-explain install --method pth\n"
    )
    assert not target.exists()

    pth = venv.cli("install", "--method", "pth", extra=with_shadow)
    assert (pth.returncode, pth.stderr) == (0, "")
    assert venv.py(STATE, extra=with_shadow).stdout == "True replicate_explain._hook\n"
    assert venv.cli("uninstall").returncode == 0

    assert venv.cli("install").returncode == 0  # no shadow in this environment
    code, status = venv.status(extra=with_shadow)
    assert (code, status["reasons"]) == (
        1,
        [
            f"Another sitecustomize comes first on sys.path: {shadow}. Python imports only the "
            f"first one, so the block in {target} never runs. Use `replicate-explain install "
            "--method pth` instead (and `replicate-explain uninstall --method sitecustomize`)."
        ],
    )


@pytest.mark.e2e
def test_a_sitecustomize_later_on_sys_path_is_not_hidden(venv: Venv, tmp_path: Path) -> None:
    """A sitecustomize that Python runs today from a directory after site-packages would be
    hidden by a new one in site-packages: install refuses rather than disable it."""
    later = tmp_path / "later"
    later.mkdir()
    (later / "sitecustomize.py").write_text("LATER = True\n", encoding="utf-8")
    (venv.site / "zz_later.pth").write_text(f"{later}\n", encoding="utf-8")

    refused = venv.cli("install")
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"replicate-explain install: creating {venv.site / 'sitecustomize.py'} would hide "
        f"{later / 'sitecustomize.py'}, which Python runs at start-up today"
    )
    assert refused.stderr.endswith("    replicate-explain install --method pth\n")
    assert not (venv.site / "sitecustomize.py").exists()


# ---------------------------------------------------------------------------------------------
# The pth method


@pytest.mark.e2e
def test_the_pth_method_writes_three_files_and_removes_them(venv: Venv, api: LoopbackAPI) -> None:
    """--method pth writes the .pth import line, the PEP 829 .start entry point and the module
    both name; a plain program is explained; uninstall deletes exactly those files."""
    installed = venv.cli("install", "--method", "pth")
    files = _startup.pth_files()
    assert (installed.returncode, installed.stderr) == (0, "")
    assert installed.stdout == ("".join(f"Wrote {venv.site / name}.\n" for name in files) + checked_message(venv))
    assert {name: (venv.site / name).read_bytes() for name in files} == files

    hooked = run_plain_program(venv, api)
    assert hooked.returncode == 1
    assert [e["rule_id"] for e in explanations(hooked.stderr)] == ["token-whitespace"]

    removed = venv.cli("uninstall", "--method", "pth")
    assert removed.stdout == (
        "".join(f"Deleted {venv.site / name}.\n" for name in reversed(list(files)))
        + "A new interpreter of this environment no longer starts the hook.\n"
    )
    assert [name for name in files if (venv.site / name).exists()] == []
    assert list((venv.site / "__pycache__").glob(f"{_startup.STARTUP_MODULE}.*")) == []
    assert venv.py(STATE).stdout == "False sys\n"


@pytest.mark.e2e
def test_the_start_file_is_a_valid_pep_829_entry_point(venv: Venv, deps: Path) -> None:
    """As Python 3.15's site does: the .start file's non-comment lines are pkg.mod:callable
    entry points resolved with pkgutil.resolve_name and called with no arguments, after the
    site directory is on sys.path. Calling it (twice) activates the hook once; the .start and
    .pth share their stem, which makes 3.15+ skip the .pth import line."""
    assert venv.cli("install", "--method", "pth").returncode == 0
    lines = (venv.site / _startup.START_NAME).read_text(encoding="utf-8-sig").splitlines()
    entries = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert entries == ["_replicate_explain_startup:activate"]
    assert Path(_startup.START_NAME).stem == Path(_startup.PTH_NAME).stem

    emulate = (
        "import pkgutil, sys\n"
        f"sys.path.append({str(venv.site)!r})\n"
        f"sys.path.append({str(deps)!r})\n"
        f"for entry in {entries!r} * 2:\n"
        "    pkgutil.resolve_name(entry)()\n"
        "import replicate_explain\n"
        "print(replicate_explain.is_installed(), sys.excepthook.__module__)\n"
    )
    result = venv.py(emulate, "-S")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "True replicate_explain._hook\n",
        "",
    )


# ---------------------------------------------------------------------------------------------
# Permissions and the user site


def _read_only_prefix(directory: Path) -> tuple[str, ...] | None:
    """A command prefix that runs a program with ``directory`` read-only, if this machine can."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
        probe = subprocess.run([unshare, "-m", "sh", "-c", script, str(directory), "true"], capture_output=True)
        if probe.returncode == 0:
            return (unshare, "-m", "sh", "-c", script, str(directory))
    return None


@pytest.mark.e2e
def test_a_read_only_site_packages_gives_a_clear_error(venv: Venv) -> None:
    """Site-packages read-only (a mount namespace as root, permissions otherwise): install exits
    1 naming the file and suggesting --user or sudo, and nothing is written."""
    target = venv.site / "sitecustomize.py"
    prefix = _read_only_prefix(venv.site)
    if prefix is None and os.geteuid() == 0:
        pytest.skip("root without mount namespaces: no way to make a directory read-only")
    if prefix is None:
        venv.site.chmod(0o555)
    try:
        result = venv.cli("install", prefix=prefix or ())
    finally:
        venv.site.chmod(0o755)
    reason = "Read-only file system" if prefix else "Permission denied"
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"replicate-explain install: cannot write {target} ({reason}). Install for your user "
        "only with `--user`, or run the command as the owner of this environment (for a system "
        "Python: with sudo).\n"
    )
    assert not target.exists()


@pytest.mark.e2e
def test_user_install_is_refused_inside_a_venv(venv: Venv) -> None:
    """--user in a venv would write where the venv's python never looks: a clear refusal."""
    result = venv.cli("install", "--user")
    user_site = venv.py("import site; print(site.getusersitepackages())").stdout.strip()
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"replicate-explain install: the user site ({user_site}) is disabled for this "
        "interpreter (it runs in a virtual environment): nothing there would run at start-up. "
        "Install into the environment instead: replicate-explain install\n"
    )


@pytest.mark.e2e
def test_user_install_uses_usercustomize_in_the_user_site(tmp_path: Path, wheel: Path, deps: Path) -> None:
    """With a Python outside any venv, --user installs into the user site (PYTHONUSERBASE
    here) as usercustomize.py, which Debian's own sitecustomize cannot shadow; uninstall --user
    removes it."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    if sys.prefix != sys.base_prefix and Path(base).parent == Path(sys.executable).parent:
        pytest.skip("cannot tell the interpreter this venv was made from")
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", base, "install", "--user", "--no-deps",
         "--no-index", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    user_site = Path(
        subprocess.run(
            [base, "-c", "import site; print(site.getusersitepackages())"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    (user_site / DEPS_PTH).write_text(f"{deps}\n", encoding="utf-8")
    script = str(home / "bin" / "replicate-explain")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=env, cwd=home, capture_output=True, text=True, timeout=120, check=False)

    installed = run(script, "install", "--user")
    target = user_site / "usercustomize.py"
    assert (installed.returncode, installed.stderr) == (0, "")
    assert installed.stdout.splitlines()[0] == f"Created {target} with the replicate-explain block."
    assert run(base, "-c", STATE).stdout == "True replicate_explain._hook\n"

    removed = run(script, "uninstall", "--user")
    assert removed.stdout.splitlines()[0] == (
        f"Deleted {target}: replicate-explain had created it and nothing else is in it."
    )
    assert not target.exists()
    assert run(base, "-c", STATE).stdout == "False sys\n"


# ---------------------------------------------------------------------------------------------
# Pure functions


@given(st.binary())
@example(b"# >>> replicate-explain >>>")  # a stray begin marker (found by hypothesis)
@example(b"x = 1\n# <<< replicate-explain <<<\n")
@example(b"x = 1\r")
def test_removing_the_block_gives_back_any_original_bytes(original: bytes) -> None:
    """For any existing file content without a whole block of ours (a stray marker line is
    fine): add then remove is the identity, and adding twice is adding once."""
    assume(_startup.find_block(original) is None)
    added = _startup.add_block(original)
    assert _startup.remove_block(added) == original
    assert _startup.add_block(added) == added


def test_the_block_of_a_created_file_is_removed_with_the_file() -> None:
    """A file that install created holds only the block, and removing it deletes the file;
    text a user added before or after the block stays."""
    created = _startup.add_block(None)
    assert created == _startup.sitecustomize_block(created=True)
    assert _startup.remove_block(created) is None
    assert _startup.remove_block(b"x = 1\n" + created + b"y = 2\n") == b"x = 1\ny = 2\n"


@pytest.mark.parametrize("created", [True, False])
def test_the_written_code_is_ascii_python_3_9(created: bool) -> None:
    """The block and the three pth files are ASCII (any source encoding of the host file
    accepts them) and the code parses with the Python 3.9 grammar."""
    block = _startup.sitecustomize_block(created)
    files = _startup.pth_files()
    assert [text.isascii() for text in (block, *files.values())] == [True] * 4
    ast.parse(block, feature_version=(3, 9))
    ast.parse(files[_startup.STARTUP_FILE], feature_version=(3, 9))
