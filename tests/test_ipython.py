"""The IPython and Jupyter integration, in real kernels and a real terminal IPython.

Notebooks are built with nbformat and executed by nbclient in an ipykernel started from this
virtual environment, with the real replicate client failing against the loopback API. What is
checked is what a user would save: the cell outputs of the executed notebook.
"""

from __future__ import annotations

import dataclasses
import html.parser
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import (
    CANARY,
    CLIENT_VERSIONS,
    MODEL_REF,
    REPO_ROOT,
    VALID_TOKEN,
    base_url_env,
    client_env,
)
from outputs import ANSI, leaks
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from replicate_explain._callsite import CallSite
from replicate_explain._explanation import CodeFix, Explanation
from replicate_explain._loopback import LoopbackAPI
from replicate_explain._notebook import session_facts, shell_export
from replicate_explain._render_html import explanation_html
from replicate_explain._rules import Example, load_rules

RULE_ID = "notebook-shell-export"
RUN = f"replicate.run({MODEL_REF!r}, input={{}})"
NEW_CLIENT_RUN = f"replicate.Client().run({MODEL_REF!r}, input={{}})"
#: The venv's own ``replicate`` (1.0.7); the kernels use it unless a test names a release.
VENV_CLIENT = "1.0.7"

# ---------------------------------------------------------------------------------------------
# Facts from the session's history (pure)

SUBSHELL_CASES = [
    # (what the session ran, the kernel's token, the fact)
    ("!export REPLICATE_API_TOKEN=r8_x", None, "subshell"),
    ("!set REPLICATE_API_TOKEN=r8_x", None, "subshell"),
    ('!set "REPLICATE_API_TOKEN=r8_x"', None, "subshell"),
    ("!setx REPLICATE_API_TOKEN r8_x", None, "subshell"),
    ("  !!export REPLICATE_API_TOKEN='r8_x'", None, "subshell"),
    ("out = !export REPLICATE_API_TOKEN=r8_x", None, "subshell"),
    ("!REPLICATE_API_TOKEN=r8_x python run.py", None, "subshell"),
    ("!fish -c 'set -gx REPLICATE_API_TOKEN r8_x'", None, "subshell"),
    ("%%bash\nexport REPLICATE_API_TOKEN=r8_x\necho done", None, "subshell"),
    ("%%script zsh\nexport REPLICATE_API_TOKEN=r8_x", None, "subshell"),
    ("%%powershell\n$env:REPLICATE_API_TOKEN = 'r8_x'", None, "subshell"),
    ("import os\nos.system('export REPLICATE_API_TOKEN=r8_x')", None, "subshell"),
    ('subprocess.run("export REPLICATE_API_TOKEN=r8_x", shell=True)', None, "subshell"),
    ("!export REPLICATE_API_TOKEN=r8_x", "", "subshell"),
    ("!export REPLICATE_API_TOKEN=r8_new", "r8_old", "subshell"),
    # The kernel has the very value the shell set: not this cause.
    ("!export REPLICATE_API_TOKEN=r8_x", "r8_x", None),
    ('!export REPLICATE_API_TOKEN="r8_x"', "r8_x", None),
    # An expansion cannot be compared with what the kernel has.
    ("!export REPLICATE_API_TOKEN=$(cat token.txt)", "r8_x", None),
    # Reading the variable, or setting it in the kernel itself, is fine.
    ("!echo $REPLICATE_API_TOKEN", None, None),
    ("!env | grep REPLICATE_API_TOKEN", None, None),
    ("%env REPLICATE_API_TOKEN=r8_x", None, None),
    ("import os\nos.environ['REPLICATE_API_TOKEN'] = 'r8_x'", None, None),
    ("# !export REPLICATE_API_TOKEN=r8_x was wrong", None, None),
    ("print('export REPLICATE_API_TOKEN=r8_x')", None, None),
    ("", None, None),
]


@pytest.mark.parametrize(("cell", "token", "fact"), SUBSHELL_CASES, ids=[c[0] for c in SUBSHELL_CASES])
def test_shell_commands_that_set_the_token_are_found_in_the_history(
    tmp_path: Path, cell: str, token: str | None, fact: str | None
) -> None:
    """A cell whose shell part sets REPLICATE_API_TOKEN gives ``subshell`` when the kernel lacks
    that value; reading the variable, `%env`, `os.environ` and comments give nothing."""
    environ = {} if token is None else {"REPLICATE_API_TOKEN": token}
    assert shell_export(["", "import replicate", cell], environ, str(tmp_path)) == fact


PROFILE_CASES = [
    # (profile file, its text, the kernel's token, the fact)
    (".bashrc", "alias ll='ls -l'\nexport REPLICATE_API_TOKEN=r8_x\n", None, "profile"),
    (".zshrc", "export REPLICATE_API_TOKEN=r8_x\n", "", "profile"),
    (".config/fish/config.fish", "set -gx REPLICATE_API_TOKEN r8_x\n", None, "profile"),
    (".bashrc", "export REPLICATE_API_TOKEN=r8_x\n", "r8_x", None),
    (".bashrc", "# export REPLICATE_API_TOKEN=r8_x\n", None, None),
    (".bashrc", 'echo "$REPLICATE_API_TOKEN"\n', None, None),
    ("notes.txt", "export REPLICATE_API_TOKEN=r8_x\n", None, None),
]


@pytest.mark.parametrize(("name", "text", "token", "fact"), PROFILE_CASES)
def test_a_shell_profile_the_kernel_never_read_is_found(
    tmp_path: Path, name: str, text: str, token: str | None, fact: str | None
) -> None:
    """A kernel without a token whose user's shell profile exports one gives ``profile``."""
    profile = tmp_path / name
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text(text, encoding="utf-8")
    environ = {} if token is None else {"REPLICATE_API_TOKEN": token}
    assert shell_export(["", RUN], environ, str(tmp_path)) == fact


def test_the_session_history_becomes_a_fact_without_the_token(tmp_path: Path) -> None:
    """``session_facts`` reads the shell's raw input history and returns only the fact."""

    class History:
        def __init__(self) -> None:
            self.input_hist_raw = ["", f"!export REPLICATE_API_TOKEN={CANARY}", RUN]

    class Shell:
        history_manager = History()

    facts = session_facts(Shell(), {"HOME": str(tmp_path)})
    assert facts == {"notebook.shell_export": "subshell"}


# ---------------------------------------------------------------------------------------------
# The HTML panel (pure)


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.details: list[bool] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.pieces.append(data.strip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a":
            self.links.append((values.get("href") or "", values.get("style") or ""))
        if tag == "details":
            self.details.append("open" in values)


class _Copied(html.parser.HTMLParser):
    """The text a browser copies from a selection of the whole markup: every element with
    ``user-select:none`` left out, every ``display:block`` element a line."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.stack: list[tuple[bool, bool]] = []  # (unselectable, block) per open element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = dict(attrs).get("style") or ""
        self.stack.append(("user-select:none" in style, "display:block" in style))

    def handle_endtag(self, tag: str) -> None:
        hidden, block = self.stack.pop()
        if block and not hidden and not any(h for h, _ in self.stack):
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        if not any(hidden for hidden, _ in self.stack):
            self.text.append(data)


def _html_explanation() -> Explanation:
    """An explanation whose every text is markup or a link that must not be one."""
    return Explanation(
        rule_id="x-[bold]",
        title="<script>alert(1)</script>",
        severity="error",
        summary="Use `%env` & not <b>!export</b>.",
        evidence=("REPLICATE_API_TOKEN is not set in this process",),
        why="Because.",
        fix=("Run `%env REPLICATE_API_TOKEN=r8_...`.",),
        code=CodeFix("import replicate\nbroken()  # <no>\n", "import replicate\nfixed()\n", "<2"),
        workaround="Restart.",
        prevention="",
        references=("https://example.com/a?b=1&c=2", "javascript:alert(1)"),
        also=("token-unset",),
        exception="replicate.exceptions.ReplicateError: ...",
        client_version="1.0.7",
        call_site=CallSite("app.py", 3, "replicate.run(<model>)"),
    )


@pytest.mark.parametrize("detail", ["short", "full"])
def test_the_html_panel_follows_the_terminal_panel_and_escapes_all_data(detail: str) -> None:
    """Text from the explanation is escaped (never markup), backticks become code, only web
    links are linked (in the text's own colour, underlined: readable on a dark theme too).
    The sections come in the order of the terminal panel: title, call site, evidence, fix, the
    code as a diff under the terminal's label, then the long sections in a ``<details>``
    element, open only with ``REPLICATE_EXPLAIN_DETAIL=full``."""
    text = explanation_html(_html_explanation(), detail=detail)
    parsed = _Text()
    parsed.feed(text)
    assert parsed.pieces == [
        "replicate-explain",
        "·",
        "x-[bold]",
        "<script>alert(1)</script>",
        "at",
        "app.py:3",
        "replicate.run(<model>)",
        "Evidence",
        "REPLICATE_API_TOKEN is not set in this process",
        "Fix",
        "Run",
        "%env REPLICATE_API_TOKEN=r8_...",
        ".",
        "Code",
        "for replicate <2 (installed: 1.0.7), - broken, + fixed",
        "import replicate",
        "-",
        "broken()  # <no>",
        "+",
        "fixed()",
        "Also possible:",
        "token-unset",
        "What happened, why, and what else to do",
        "What happened",
        "Use",
        "%env",
        "& not <b>!export</b>.",
        "Why",
        "Because.",
        "Workaround",
        "Restart.",
        "Learn more",
        "https://example.com/a?b=1&c=2",
        "javascript:alert(1)",
    ]
    assert parsed.links == [("https://example.com/a?b=1&c=2", "color:inherit;text-decoration:underline")]
    assert parsed.details == [detail == "full"]
    assert "<script>" not in text


def test_the_html_panel_shows_three_fix_steps_and_folds_the_rest() -> None:
    """As in the terminal, the first three fix steps show; the others continue the numbering
    inside the fold (``<ol start="4">``), and the full view shows them all in one list."""
    explanation = dataclasses.replace(_html_explanation(), fix=("One.", "Two.", "Three.", "Four."))
    short = explanation_html(explanation, detail="short")
    full = explanation_html(explanation, detail="full")
    lists = re.compile(r"<ol([^>]*)>(.*?)</ol>", flags=re.S)
    assert [(attrs, re.findall(r"<li>(.*?)</li>", items)) for attrs, items in lists.findall(short)] == [
        (' style="margin:0"', ["One.", "Two.", "Three."]),
        (' start="4" style="margin:0"', ["Four."]),
    ]
    assert short.index('<ol start="4"') > short.index("<details")
    assert [re.findall(r"<li>(.*?)</li>", items) for _, items in lists.findall(full)] == [
        ["One.", "Two.", "Three.", "Four."]
    ]


def test_the_html_code_is_one_diff_block_whose_copy_is_the_fixed_code() -> None:
    """The code is one ``<pre>`` (scrolling sideways, never wrapping or clipping a line), with
    the label of the terminal panel; the marks and the removed lines are not selectable, so a
    copy of the block is the fixed program."""
    from replicate_explain._render import code_label

    explanation = _html_explanation()
    text = explanation_html(explanation, detail="short")
    (pre,) = re.findall(r"<pre [^>]*>.*?</pre>", text, flags=re.S)
    copied = _Copied()
    copied.feed(pre)
    assert "".join(copied.text) == "import replicate\nfixed()\n"
    assert "overflow-x:auto;white-space:pre" in pre
    assert code_label(explanation) == "Code for replicate <2 (installed: 1.0.7)"


# ---------------------------------------------------------------------------------------------
# Real kernels


def _kernel_env(api: LoopbackAPI, home: Path, token: str | None, version: str | None = None) -> dict[str, str]:
    """The environment of a kernel: the venv's replicate (or ``version`` from the test cache),
    the loopback API, a private HOME and IPYTHONDIR, and the token (``None``: unset)."""
    if version is not None:
        env = client_env(version, api, token)
    else:
        env = {key: value for key, value in os.environ.items() if not key.startswith("REPLICATE_")}
        env["PYTHONPATH"] = str(REPO_ROOT)
        env.update(base_url_env(VENV_CLIENT, api))
        if token is not None:
            env["REPLICATE_API_TOKEN"] = token
        for name in ("NO_PROXY", "no_proxy"):
            env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    env["HOME"] = str(home)
    env["IPYTHONDIR"] = str(home / ".ipython")
    for name in ("FORCE_COLOR", "REPLICATE_EXPLAIN_FORMAT", "REPLICATE_EXPLAIN", "PYTHONSTARTUP"):
        env.pop(name, None)
    return env


def run_notebook(cells: list[str], env: dict[str, str], cwd: Path) -> Any:
    """Execute a notebook of ``cells`` in a fresh python3 kernel; return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(env=env)
    return notebook


_HTML_RULE = re.compile(r'data-rule-id="([^"]+)"')
_PLAIN_RULE = re.compile(r"^replicate-explain: ([a-z0-9-]+): ")


def summary(cell: Any) -> list[tuple[str, ...]]:
    """A cell's outputs in order: ("error", ename), ("panel", rule id in the HTML, rule id in
    the plain text), ("stdout" | "stderr", text)."""
    out: list[tuple[str, ...]] = []
    for output in cell.outputs:
        if output.output_type == "error":
            out.append(("error", output.ename))
        elif output.output_type == "display_data":
            found_html = _HTML_RULE.search(output.data.get("text/html", ""))
            found_plain = _PLAIN_RULE.search(output.data.get("text/plain", ""))
            out.append(
                (
                    "panel",
                    found_html.group(1) if found_html else "?",
                    found_plain.group(1) if found_plain else "?",
                )
            )
        elif output.output_type == "stream":
            out.append((output.name, output.text))
        else:
            out.append((output.output_type,))
    return out


def _plain_traceback(output: Any) -> list[str]:
    return [ANSI.sub("", line) for line in output.traceback]


STATE = textwrap.dedent(
    """
    import json
    ip = get_ipython()
    OURS = ("_showtraceback", "showtraceback", "_replicate_explain_integration")
    def state():
        return {
            "instance attributes": {k: id(vars(ip)[k]) for k in OURS if k in vars(ip)},
            "post_run_cell": [getattr(cb, "__qualname__", repr(cb))
                              for cb in ip.events.callbacks["post_run_cell"]],
            "custom handler": getattr(ip.CustomTB, "__func__", ip.CustomTB).__qualname__,
            "custom exceptions": [e.__name__ for e in ip.custom_exceptions],
            "extension loaded": "replicate_explain" in ip.extension_manager.loaded,
        }
    """
)

OTHER_HANDLER = textwrap.dedent(
    """
    def other_handler(shell, etype, value, tb, tb_offset=None):
        print("other handler saw", etype.__name__)
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    """
)

#: A token only the exception group below carries (written in two halves in the cell).
GROUP_SECRET = "r8_GroupSecret0000000000000000000000000"
EXCEPTION_GROUP = (
    f'secret = "{GROUP_SECRET[:8]}" + "{GROUP_SECRET[8:]}"\n'
    'raise ExceptionGroup("calls failed",\n'
    '                     [ValueError("Illegal header value b\'Bearer " + secret + "\'")])'
)

LOAD_EXT_CELLS = [
    STATE + "before = state()",  # 0
    "%load_ext replicate_explain",  # 1
    "import replicate\n" + RUN,  # 2: the CANARY with a trailing newline
    "%xmode Minimal",  # 3
    RUN,  # 4
    "%xmode Context",  # 5
    "1/0",  # 6
    "import os\ndel os.environ['REPLICATE_API_TOKEN']",  # 7
    f"!export REPLICATE_API_TOKEN={VALID_TOKEN}",  # 8
    NEW_CLIENT_RUN,  # 9
    "%tb",  # 10
    EXCEPTION_GROUP,  # 11
    OTHER_HANDLER + "ip.set_custom_exc((Exception,), other_handler)",  # 12: another extension, after us
    NEW_CLIENT_RUN,  # 13
    "%unload_ext replicate_explain",  # 14
    "after = state()\n"
    "print(json.dumps({'unchanged': sorted(k for k in before if before[k] == after[k]),\n"
    "                  'custom': [after['custom handler'], after['custom exceptions']]}))",  # 15
    NEW_CLIENT_RUN,  # 16
]


def shared_notebook(tmp_path_factory: pytest.TempPathFactory, name: str, produce: Any) -> Any:
    """``produce()`` once per test run, even when several pytest-xdist workers need it.

    The first worker to create the lock directory runs the kernel and saves the notebook; the
    others read what it saved (or produce their own if it failed).
    """
    import nbformat

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        return produce()
    root = tmp_path_factory.getbasetemp().parent
    saved, failed = root / f"{name}-{run}.ipynb", root / f"{name}-{run}.failed"
    try:
        (root / f"{name}-{run}.lock").mkdir()
    except FileExistsError:
        for _ in range(6000):  # at most ten minutes, then run the kernel here
            if saved.exists():
                return nbformat.read(saved, as_version=4)
            if failed.exists():
                break
            time.sleep(0.1)
        return produce()
    try:
        notebook = produce()
    except BaseException:
        failed.touch()
        raise
    partial = root / f"{name}-{run}.partial"
    nbformat.write(notebook, partial)
    partial.rename(saved)
    return notebook


@pytest.fixture(scope="module")
def load_ext_notebook(api: LoopbackAPI, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The %load_ext notebook, run once per test run with the CANARY plus a newline as token."""
    home = tmp_path_factory.mktemp("home")
    return shared_notebook(
        tmp_path_factory,
        "load-ext",
        lambda: run_notebook(LOAD_EXT_CELLS, _kernel_env(api, home, CANARY + "\n"), home),
    )


@pytest.mark.e2e
def test_each_cell_shows_its_traceback_first_and_a_panel_only_for_token_failures(
    load_ext_notebook: Any,
) -> None:
    """In a real kernel: the error output comes first, the explanation follows it as rich
    output (HTML and plain text naming the same rule); unrelated errors, %tb and cells after
    %unload_ext get no panel; another extension's handler set after ours keeps running."""
    got = [summary(cell) for cell in load_ext_notebook.cells]
    whitespace = ("panel", "token-whitespace", "token-whitespace")
    shell_export_panel = ("panel", RULE_ID, RULE_ID)
    assert got[:11] + got[12:15] + got[16:] == [
        [],
        [],
        [("error", "LocalProtocolError"), whitespace],
        [("stdout", "Exception reporting mode: Minimal\n")],
        [("error", "LocalProtocolError"), whitespace],
        [("stdout", "Exception reporting mode: Context\n")],
        [("error", "ZeroDivisionError")],
        [],
        [],
        [("error", "ReplicateError"), shell_export_panel],
        [("error", "ReplicateError")],
        [],
        [
            ("stdout", "other handler saw ReplicateError\n"),
            ("error", "ReplicateError"),
            shell_export_panel,
        ],
        [],
        [("stdout", "other handler saw ReplicateError\n"), ("error", "ReplicateError")],
    ]
    assert [kind for kind, *_ in got[11]] == ["stderr"]  # the exception group: IPython's fallback


@pytest.mark.e2e
def test_the_call_site_in_a_kernel_is_named_as_ipython_names_the_cell(load_ext_notebook: Any) -> None:
    """In Jupyter the panel's call site reads ``Cell In[3], line 2``, as IPython's own traceback
    above it does, not the temporary file ipykernel compiled the cell as
    (``/tmp/ipykernel_31977/519153418.py:2``): in the HTML and in the plain text."""
    cell = load_ext_notebook.cells[2]
    error, panel = cell.outputs
    html_site = re.search(r"<span[^>]*>at</span> <b>([^<]*)</b>", panel.data["text/html"])
    (plain_site,) = [line for line in panel.data["text/plain"].splitlines() if line.startswith("at ")]
    assert (cell.execution_count, html_site and html_site.group(1)) == (3, "Cell In[3], line 2")
    assert plain_site.startswith("at Cell In[3], line 2  replicate.run(")
    assert "Cell In[3], line 2" in ANSI.sub("", "\n".join(error.traceback))


@pytest.mark.e2e
def test_the_token_appears_nowhere_in_the_saved_notebook(load_ext_notebook: Any) -> None:
    """Tracebacks, error values and panels are masked: the saved notebook has no CANARY, not
    even the one an exception group prints through IPython's fallback; the token typed into
    the !export cell stays only in that cell's source."""
    import nbformat

    saved = nbformat.writes(load_ext_notebook)
    # VALID_TOKEN, typed into the !export cell, shares a 12-character piece with the CANARY.
    assert leaks(saved.replace(VALID_TOKEN, "<typed token>"), CANARY) == []
    outputs = json.dumps([cell.outputs for cell in load_ext_notebook.cells])
    assert leaks(outputs, VALID_TOKEN, GROUP_SECRET) == []
    first = load_ext_notebook.cells[2].outputs[0]
    assert (first.evalue, _plain_traceback(first)[-1]) == (
        "Illegal header value b'Bearer [REDACTED]\\n'",
        "LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'",
    )
    group = "".join(output.get("text", "") for output in load_ext_notebook.cells[11].outputs)
    assert "ValueError: Illegal header value b'Bearer [REDACTED]'" in group


@pytest.mark.e2e
def test_xmode_still_decides_the_traceback_layout(load_ext_notebook: Any) -> None:
    """With %xmode Minimal the traceback is IPython's one-line form, masked."""
    assert _plain_traceback(load_ext_notebook.cells[4].outputs[0]) == [
        "LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'\n"
    ]


@pytest.mark.e2e
def test_unloading_restores_what_was_there_and_keeps_the_other_handler(
    load_ext_notebook: Any,
) -> None:
    """After %unload_ext no wrapper or callback of ours is left, and the handler another
    extension set after ours is still the one in place."""
    assert json.loads(load_ext_notebook.cells[15].outputs[0].text) == {
        "unchanged": ["extension loaded", "instance attributes", "post_run_cell"],
        "custom": ["InteractiveShell.set_custom_exc.<locals>.wrapped", ["Exception"]],
    }


IMPORT_CELLS = [
    STATE + OTHER_HANDLER + "ip.set_custom_exc((ZeroDivisionError,), other_handler)\nbefore = state()",  # 0
    "import replicate_explain\nprint(state()['extension loaded'])",  # 1
    "import replicate\n" + RUN,  # 2
    "1/0",  # 3
    "%unload_ext replicate_explain",  # 4
    "print(state() == before)",  # 5
    NEW_CLIENT_RUN,  # 6
    "%load_ext replicate_explain",  # 7
    NEW_CLIENT_RUN,  # 8
]


@pytest.mark.e2e
def test_import_inside_a_kernel_activates_and_coexists_with_an_earlier_handler(
    api: LoopbackAPI, tmp_path: Path
) -> None:
    """`import replicate_explain` in a cell loads the extension; a custom handler set before it
    keeps handling its exceptions; %unload_ext restores exactly the state before the import;
    %load_ext brings it back."""
    notebook = run_notebook(IMPORT_CELLS, _kernel_env(api, tmp_path, None), tmp_path)
    unset = ("panel", "token-unset", "token-unset")
    assert [summary(cell) for cell in notebook.cells] == [
        [],
        [("stdout", "True\n")],
        [("error", "ReplicateError"), unset],
        [("stdout", "other handler saw ZeroDivisionError\n"), ("error", "ZeroDivisionError")],
        [],
        [("stdout", "True\n")],
        [("error", "ReplicateError")],
        [],
        [("error", "ReplicateError"), unset],
    ]


def _kernel_examples() -> list[Any]:
    rule = load_rules().get(RULE_ID)
    assert rule is not None
    params = []
    for index, example in enumerate(rule.examples):
        spec = SpecifierSet(example.client)
        for version in CLIENT_VERSIONS:
            if spec.contains(Version(version), prereleases=True):
                params.append(pytest.param(example, version, id=f"{RULE_ID}[{index}]-{version}"))
    return params


@pytest.mark.e2e
@pytest.mark.parametrize(("example", "version"), _kernel_examples())
def test_the_rule_examples_fail_and_run_in_a_kernel(
    api: LoopbackAPI, tmp_path: Path, example: Example, version: str
) -> None:
    """The rule's broken example fails in a kernel with this rule's panel; once the kernel itself
    gets the token (`os.environ`, the fix's first step), the fixed example runs without error or
    panel."""
    environ = {name: value.replace("{token}", VALID_TOKEN) for name, value in example.environ.items()}
    fixed = {name: value.replace("{token}", VALID_TOKEN) for name, value in example.fixed_environ.items()}
    env = _kernel_env(api, tmp_path, environ.get("REPLICATE_API_TOKEN"), version)
    cells = [
        "import replicate_explain",
        example.broken,
        "import os\n" + "\n".join(f"os.environ[{name!r}] = {value!r}" for name, value in fixed.items()),
        example.fixed,
    ]
    notebook = run_notebook(cells, env, tmp_path)
    got = [[item[0] if item[0] != "panel" else item for item in summary(cell)] for cell in notebook.cells]
    assert got[1] == ["error", ("panel", RULE_ID, RULE_ID)]
    assert got[3] == []
    assert leaks(json.dumps([cell.outputs for cell in notebook.cells]), VALID_TOKEN) == []


# ---------------------------------------------------------------------------------------------
# Terminal IPython


def _terminal(
    api: LoopbackAPI,
    home: Path,
    extra: dict[str, str],
    env: dict[str, str] | None = None,
    source: str = f"%load_ext replicate_explain\nimport replicate\n{RUN}\n1/0\n",
) -> subprocess.CompletedProcess[str]:
    """Terminal IPython reading ``source`` from a pipe (``env``: the CANARY token by default)."""
    if env is None:
        env = _kernel_env(api, home, CANARY + "\n")
        env.update({"COLUMNS": "100", "NO_COLOR": "", **extra})
    command = [
        sys.executable,
        "-m",
        "IPython",
        "--simple-prompt",
        "--no-banner",
        "--colors=nocolor",
        "--HistoryManager.enabled=False",
    ]
    return subprocess.run(
        command,
        input=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=str(home),
    )


@pytest.fixture
def terminal_run(api: LoopbackAPI, tmp_path: Path) -> Iterator[Any]:
    """Runs terminal IPython with piped input and the CANARY token."""
    yield lambda extra: _terminal(api, tmp_path, extra)


def _after_traceback(stdout: str) -> tuple[str, str]:
    marker = "LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'\n"
    before, found, after = stdout.rpartition(marker)
    assert found, stdout
    return before, after


@pytest.mark.e2e
def test_terminal_ipython_prints_the_masked_traceback_then_the_ansi_panel(
    terminal_run: Any,
) -> None:
    """In terminal IPython (colour forced) the traceback comes first, masked, then the ANSI
    panel; the unrelated ZeroDivisionError after it gets no panel."""
    result = terminal_run({"FORCE_COLOR": "1"})
    _, after = _after_traceback(result.stdout)
    panel, _, rest = after.partition("ZeroDivisionError")
    assert (result.returncode, leaks(result.stdout + result.stderr, CANARY)) == (0, [])
    assert "\x1b[" in panel
    assert ANSI.sub("", panel).splitlines()[0].startswith("╭─ replicate-explain · token-whitespace ")
    assert "replicate-explain" not in rest


@pytest.mark.e2e
def test_terminal_ipython_prints_plain_text_when_colour_is_off(terminal_run: Any) -> None:
    """With NO_COLOR (and output to a pipe) the panel is the plain-text form: the title, then
    the input line that made the call, named as IPython's own traceback names it (``Cell In[3],
    line 1``) and cut to COLUMNS (100)."""
    result = terminal_run({"NO_COLOR": "1"})
    _, after = _after_traceback(result.stdout)
    assert "\x1b[" not in after
    lines = after.splitlines()
    title = "REPLICATE_API_TOKEN has whitespace or a line break around it"
    assert lines[:3] == [
        f"replicate-explain: token-whitespace: {title}",
        f"at Cell In[3], line 1  {RUN}"[:97] + "...",
        "",
    ]
    assert "Cell In[3], line 1" in _after_traceback(result.stdout)[0]  # IPython's own words
    assert leaks(result.stdout + result.stderr, CANARY) == []


# ---------------------------------------------------------------------------------------------
# Started with the interpreter (`replicate-explain install`): no %load_ext, no import in a cell


def _startup_env(
    api: LoopbackAPI, home: Path, token: str | None, sitecustomize: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """A kernel environment whose interpreter runs ``sitecustomize`` at start-up (Python's site
    imports it from a directory put first on PYTHONPATH), before IPython exists."""
    site_dir = home / "startup-site"
    site_dir.mkdir(exist_ok=True)
    (site_dir / "sitecustomize.py").write_text(sitecustomize, encoding="utf-8")
    env = _kernel_env(api, home, token)
    env["PYTHONPATH"] = os.pathsep.join([str(site_dir), env["PYTHONPATH"]])
    env.update(extra or {})
    return env


def _install_block() -> str:
    """What `replicate-explain install` writes into a new sitecustomize.py."""
    from replicate_explain._startup import add_block

    return add_block(None).decode("utf-8")


ALREADY_LOADED = (
    "The replicate_explain extension is already loaded. To reload it, use:\n  %reload_ext replicate_explain\n"
)
STARTUP_STATE = textwrap.dedent(
    """
    import json, sys
    import IPython.core.interactiveshell as interactiveshell
    ip = get_ipython()
    print(json.dumps({
        "constructor": interactiveshell.InteractiveShell.__init__.__module__,
        "imported": "replicate_explain" in sys.modules,
        "extension loaded": "replicate_explain" in ip.extension_manager.loaded,
        "integration": type(vars(ip).get("_replicate_explain_integration")).__name__,
        "traceback display": ip._showtraceback.__qualname__,
        "explaining callbacks": [getattr(cb, "__qualname__", "") for cb in ip.events.callbacks["post_run_cell"]
                                 ].count("Integration.post_run_cell"),
    }))
    """
)
STARTUP_CELLS = [
    STARTUP_STATE,  # 0
    "import replicate\n" + RUN,  # 1: the CANARY with a trailing newline
    "1/0",  # 2
    "%load_ext replicate_explain",  # 3
    "import replicate_explain\n" + RUN,  # 4
    "%unload_ext replicate_explain\nimport os\ndel os.environ['REPLICATE_API_TOKEN']",  # 5
    NEW_CLIENT_RUN,  # 6
    "%load_ext replicate_explain",  # 7
    NEW_CLIENT_RUN,  # 8
]


@pytest.fixture(scope="module")
def startup_notebook(api: LoopbackAPI, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A notebook run in a kernel whose interpreter ran the install block at start-up."""
    home = tmp_path_factory.mktemp("startup-home")
    return shared_notebook(
        tmp_path_factory,
        "startup",
        lambda: run_notebook(STARTUP_CELLS, _startup_env(api, home, CANARY + "\n", _install_block()), home),
    )


@pytest.mark.e2e
def test_a_kernel_started_with_the_install_explains_cell_errors_without_load_ext(startup_notebook: Any) -> None:
    """The kernel's shell has the integration from its start, as a loaded extension: a token
    failure shows its traceback then the panel, once even after %load_ext (which IPython answers
    with "already loaded") and `import replicate_explain`; %unload_ext and %load_ext work."""
    got = [summary(cell) for cell in startup_notebook.cells]
    whitespace = ("panel", "token-whitespace", "token-whitespace")
    error = ("error", "LocalProtocolError")
    assert got[1:] == [
        [error, whitespace],
        [("error", "ZeroDivisionError")],
        [("stdout", ALREADY_LOADED)],
        [error, whitespace],
        [],
        [("error", "ReplicateError")],
        [],
        [("error", "ReplicateError"), ("panel", "token-unset", "token-unset")],
    ]
    assert json.loads(startup_notebook.cells[0].outputs[0].text) == {
        "constructor": "replicate_explain._ipython",
        "imported": True,
        "extension loaded": True,
        "integration": "Integration",
        "traceback display": "_wrap_show.<locals>._showtraceback",
        "explaining callbacks": 1,
    }


@pytest.mark.e2e
def test_a_kernel_started_with_the_install_masks_the_token_in_the_saved_notebook(startup_notebook: Any) -> None:
    """Without any %load_ext the error outputs are masked: the saved notebook has no CANARY."""
    import nbformat

    assert leaks(nbformat.writes(startup_notebook), CANARY) == []
    first = startup_notebook.cells[1].outputs[0]
    assert (first.evalue, _plain_traceback(first)[-1]) == (
        "Illegal header value b'Bearer [REDACTED]\\n'",
        "LocalProtocolError: Illegal header value b'Bearer [REDACTED]\\n'",
    )


@pytest.mark.e2e
def test_replicate_explain_0_leaves_a_kernel_started_with_the_import_alone(api: LoopbackAPI, tmp_path: Path) -> None:
    """REPLICATE_EXPLAIN=0 with a sitecustomize that imports the package at start-up: IPython's
    class is not wrapped, the shell has no integration, a token failure gets no panel."""
    env = _startup_env(api, tmp_path, None, "import replicate_explain\n", {"REPLICATE_EXPLAIN": "0"})
    notebook = run_notebook([STARTUP_STATE, "import replicate\n" + RUN], env, tmp_path)
    assert json.loads(notebook.cells[0].outputs[0].text) == {
        "constructor": "IPython.core.interactiveshell",
        "imported": True,
        "extension loaded": False,
        "integration": "NoneType",
        "traceback display": "ZMQInteractiveShell._showtraceback",
        "explaining callbacks": 0,
    }
    assert summary(notebook.cells[1]) == [("error", "ReplicateError")]


@pytest.mark.e2e
def test_terminal_ipython_started_with_the_install_explains_without_load_ext(api: LoopbackAPI, tmp_path: Path) -> None:
    """Terminal IPython in an interpreter that ran the install block: the masked traceback, then
    the plain panel, its call site named as IPython names the input (``Cell In[2], line 1``); the
    unrelated error after it gets none."""
    env = _startup_env(api, tmp_path, CANARY + "\n", _install_block(), {"NO_COLOR": "1", "COLUMNS": "100"})
    result = _terminal(api, tmp_path, {}, env=env, source=f"import replicate\n{RUN}\n1/0\n")
    _, after = _after_traceback(result.stdout)
    panel, _, rest = after.partition("ZeroDivisionError")
    title = "REPLICATE_API_TOKEN has whitespace or a line break around it"
    lines = panel.splitlines()
    assert lines[:3] == [
        f"replicate-explain: token-whitespace: {title}",
        f"at Cell In[2], line 1  {RUN}"[:97] + "...",  # the second input
        "",
    ]
    assert "Cell In[2], line 1" in _after_traceback(result.stdout)[0]  # IPython's own words
    assert "replicate-explain" not in rest
    assert (result.returncode, leaks(result.stdout + result.stderr, CANARY)) == (0, [])


# ---------------------------------------------------------------------------------------------
# The class-level wrapper of InteractiveShell.__init__ (real IPython shells, in a subprocess)

SHELL_LIFECYCLE = textwrap.dedent(
    """
    import json, os, sys
    import replicate_explain
    from replicate_explain import _ipython
    from IPython.core.interactiveshell import InteractiveShell

    def new_shell():
        shell = InteractiveShell()
        ours = [cb for cb in shell.events.callbacks["post_run_cell"]
                if getattr(cb, "__qualname__", "") == "Integration.post_run_cell"]
        return [_ipython.is_loaded(shell), sorted(shell.extension_manager.loaded), len(ours)]

    def constructor():
        init = vars(InteractiveShell)["__init__"]
        return init.__module__ + "." + init.__qualname__

    import IPython.core.interactiveshell as module
    loader = [type(module.__loader__).__name__, module.__spec__.loader is module.__loader__]
    steps = {"imported first": [constructor(), new_shell(), loader]}
    shell = InteractiveShell()
    shell.run_cell("import replicate_explain", store_history=False)
    shell.run_cell("%load_ext replicate_explain", store_history=False)
    steps["import and %load_ext again"] = len([cb for cb in shell.events.callbacks["post_run_cell"]
                                               if getattr(cb, "__qualname__", "") == "Integration.post_run_cell"])
    replicate_explain.uninstall()
    steps["uninstalled"] = [constructor(), new_shell(), _ipython.is_loaded(shell)]
    replicate_explain.install()
    steps["installed again"] = [constructor(), new_shell()]

    ours = vars(InteractiveShell)["__init__"]
    calls = []
    def theirs(self, *args, **kwargs):
        calls.append(1)
        ours(self, *args, **kwargs)
    InteractiveShell.__init__ = theirs
    replicate_explain.uninstall()
    steps["wrapped over, uninstalled"] = [constructor(), new_shell()]
    replicate_explain.install()
    steps["wrapped over, installed again"] = [constructor(), new_shell(), len(calls)]

    def broken(shell):
        raise RuntimeError("activation bug")
    _ipython.load_ipython_extension = broken
    steps["activation fails"] = new_shell()
    print(json.dumps(steps))
    """
)


@pytest.mark.e2e
def test_shells_created_after_the_import_get_the_integration_once_and_uninstall_restores_the_class(
    tmp_path: Path,
) -> None:
    """`import replicate_explain` before IPython: every new shell is integrated once (a later
    import or %load_ext adds nothing); uninstall() restores IPython's constructor and new shells
    are left alone (a shell already integrated keeps it until %unload_ext), install() brings it
    back; a wrapper set over ours stays in place and ours passes through; a failing activation
    still gives a working shell and reports with REPLICATE_EXPLAIN_DEBUG=1. IPython's module
    keeps its real loader."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("REPLICATE_")}
    env.update({"PYTHONPATH": str(REPO_ROOT), "REPLICATE_EXPLAIN_DEBUG": "1", "IPYTHONDIR": str(tmp_path / ".ipython")})
    result = subprocess.run(
        [sys.executable, "-c", SHELL_LIFECYCLE], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    wrapper, original = (
        "replicate_explain._ipython._shell_init",
        "IPython.core.interactiveshell.InteractiveShell.__init__",
    )
    integrated, plain = [True, ["replicate_explain"], 1], [False, [], 0]
    *printed, steps = result.stdout.splitlines(keepends=True)
    assert "".join(printed) == ALREADY_LOADED  # the %load_ext after the import
    assert json.loads(steps) == {
        "imported first": [wrapper, integrated, ["SourceFileLoader", True]],
        "import and %load_ext again": 1,
        "uninstalled": [original, plain, True],
        "installed again": [wrapper, integrated],
        "wrapped over, uninstalled": ["__main__.theirs", plain],
        "wrapped over, installed again": ["__main__.theirs", integrated, 2],
        "activation fails": plain,
    }
    assert "replicate-explain: internal error in activating the IPython integration in a new shell" in result.stderr
    assert "RuntimeError: activation bug" in result.stderr
