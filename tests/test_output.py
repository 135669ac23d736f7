"""``cli._output``: traceback ``File`` lines wider than the width lose the directory above their
library root (site-packages, dist-packages, the standard library); nothing else changes. Help
texts fit the width."""

from __future__ import annotations

import sysconfig
from typing import Any

import pytest

from replicate_explain.cli._output import (
    HelpFormatter,
    shorten_path,
    shorten_traceback_line,
    shorten_traceback_paths,
    stdlib_roots,
    visible_length,
)

STDLIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
ROOTS = [STDLIB]
VENV = "/home/me/project/.venv/lib/python3.11/site-packages"
POOL = f'  File "{VENV}/httpcore/_sync/connection_pool.py", line 256, in handle_request'
MAGENTA, RESET = "\x1b[35m", "\x1b[0m"


def test_a_site_packages_line_wider_than_the_width_is_shortened() -> None:
    assert shorten_traceback_line(POOL, 80, ROOTS) == (
        '  File "\u2026/httpcore/_sync/connection_pool.py", line 256, in handle_request'
    )


def test_a_standard_library_line_is_shortened_to_the_module_path() -> None:
    line = f'  File "{STDLIB}/contextlib.py", line 158, in __exit__'
    assert shorten_traceback_line(line, 40, ROOTS) == '  File "\u2026/contextlib.py", line 158, in __exit__'


def test_site_packages_under_the_standard_library_directory_cuts_at_the_deeper_root() -> None:
    line = f'  File "{STDLIB}/site-packages/x/y.py", line 3, in f'
    assert shorten_traceback_line(line, 40, ROOTS) == '  File "\u2026/x/y.py", line 3, in f'


def test_dist_packages_and_windows_separators_are_roots_too() -> None:
    debian = '  File "/usr/lib/python3/dist-packages/requests/api.py", line 59, in request'
    windows = '  File "C:\\Python311\\Lib\\site-packages\\replicate\\run.py", line 46, in run'
    assert shorten_traceback_line(debian, 60, []) == '  File "\u2026/requests/api.py", line 59, in request'
    assert shorten_traceback_line(windows, 60, []) == '  File "\u2026\\replicate\\run.py", line 46, in run'


def test_a_line_that_fits_is_untouched() -> None:
    assert shorten_traceback_line(POOL, len(POOL), ROOTS) == POOL


def test_a_path_under_no_root_is_untouched() -> None:
    line = '  File "/home/someone/projects/a-long-project-name/src/app/module.py", line 3, in main'
    assert shorten_traceback_line(line, 40, ROOTS) == line
    assert shorten_path("/opt/python3.11x/contextlib.py", ["/opt/python3.11"]) is None


def test_lines_that_are_not_file_lines_are_untouched_even_when_long() -> None:
    source = f'    return run(self, ref, input, "{VENV}/x.py", use_file_output=use_file_output)'
    message = f'ModuleNotFoundError: No module named "x", line 3 in {VENV}/x.py'
    assert shorten_traceback_line(source, 40, ROOTS) == source
    assert shorten_traceback_line(message, 40, ROOTS) == message


def test_an_exception_group_frame_keeps_its_bars() -> None:
    line = f'    |   File "{VENV}/anyio/_backends/_asyncio.py", line 7, in run'
    assert (
        shorten_traceback_line(line, 60, ROOTS) == '    |   File "\u2026/anyio/_backends/_asyncio.py", line 7, in run'
    )


def test_colored_file_lines_are_measured_without_escapes_and_keep_them_whole() -> None:
    """Python 3.13+ under FORCE_COLOR colours the quoted path, the line number and the function."""
    line = f'  File {MAGENTA}"{VENV}/replicate/client.py"{RESET}, line {MAGENTA}175{RESET}, in {MAGENTA}run{RESET}'
    short = f'  File {MAGENTA}"\u2026/replicate/client.py"{RESET}, line {MAGENTA}175{RESET}, in {MAGENTA}run{RESET}'
    assert visible_length(line) == len(f'  File "{VENV}/replicate/client.py", line 175, in run')
    assert shorten_traceback_line(line, 80, ROOTS) == short
    fits = f'  File {MAGENTA}"<demo>/demo.py"{RESET}, line {MAGENTA}7{RESET}, in {MAGENTA}<module>{RESET}'
    assert shorten_traceback_line(fits, 40, ROOTS) == fits


def test_a_traceback_is_shortened_line_by_line_and_says_whether_it_was() -> None:
    text = "\n".join(["Traceback (most recent call last):", POOL, "    return x", "ValueError: no"])
    expected = "\n".join(
        [
            "Traceback (most recent call last):",
            '  File "\u2026/httpcore/_sync/connection_pool.py", line 256, in handle_request',
            "    return x",
            "ValueError: no",
        ]
    )
    assert shorten_traceback_paths(text, 80, ROOTS) == (expected, True)
    assert shorten_traceback_paths(text, 200, ROOTS) == (text, False)


def test_the_default_roots_are_this_interpreters_standard_library() -> None:
    stdlib = sysconfig.get_paths()["stdlib"]
    line = f'  File "{stdlib}/contextlib.py", line 158, in __exit__'
    assert stdlib_roots()[0] == stdlib
    assert shorten_traceback_paths(line, 20) == ('  File "\u2026/contextlib.py", line 158, in __exit__', True)


def _every_parser() -> list[tuple[str, Any]]:
    """The top-level parser and every subcommand's, by command line."""
    import argparse

    from replicate_explain.cli import build_parser

    found = []
    todo = [("replicate-explain", build_parser())]
    while todo:
        name, parser = todo.pop()
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend((f"{name} {sub}", child) for sub, child in action.choices.items())
    return found


def test_every_help_fits_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--help`` of every command: descriptions and epilogs are refilled to ``COLUMNS``."""
    monkeypatch.setenv("COLUMNS", "80")
    wide = {
        name: [line for line in parser.format_help().splitlines() if len(line) > 80] for name, parser in _every_parser()
    }
    assert {name: lines for name, lines in wide.items() if lines} == {}
    assert len(wide) >= 10  # the subcommands were found


def test_help_refills_prose_and_folds_a_table_row_under_its_text() -> None:
    formatter = HelpFormatter("prog", width=40)
    text = (
        "One sentence that was wrapped\nby hand at another width.\n\n"
        "Exit status:\n  list   0 all rule files loaded, 1 some are broken\n"
        "         (listed on stderr)\n  show   0 shown"
    )
    assert formatter._fill_text(text, 38, "") == (
        "One sentence that was wrapped by hand\nat another width.\n\n"
        "Exit status:\n  list   0 all rule files loaded, 1\n"
        "         some are broken (listed on\n         stderr)\n  show   0 shown"
    )


def test_help_never_cuts_a_command_or_a_url() -> None:
    text = "so `replicate-explain doctor || exit 1` suits CI; GET https://api.replicate.com/v1/account"
    assert HelpFormatter("prog", width=24)._fill_text(text, 22, "").splitlines() == [
        "so `replicate-explain",
        "doctor || exit 1`",
        "suits CI; GET",
        "https://api.replicate.com/v1/account",
    ]
