"""The adapters' one entry point, ``_report``, in this process, on real exception objects.

``report`` is what the excepthooks and IPython run, ``explain_once`` and ``warn_rule_errors``
what logging runs: an exception is explained once, printed under the output lock, followed by
the rule-file warnings with tokens masked, and an internal failure never raises.
"""

from __future__ import annotations

import io
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from clients import CANARY
from outputs import leaks

from replicate_explain import _state
from replicate_explain._api import explain, rules
from replicate_explain._explanation import Explanation
from replicate_explain._mask import MASK, Redactor
from replicate_explain._render import render_plain
from replicate_explain._report import explain_once, print_and_explain, report, warn_rule_errors

TOKEN = CANARY + "\n"
SKIPPED = "replicate-explain: skipped a rule file: "


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A token with a trailing newline, plain output, no user rules, an empty working
    directory; caches and the explained-exception record forgotten before and after."""
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    for name in ("REPLICATE_EXPLAIN_FORMAT", "REPLICATE_EXPLAIN_RULES", "REPLICATE_EXPLAIN_DEBUG", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    _state.reset()
    yield
    _state.reset()


def failure() -> BaseException:
    """httpx's error for that token (the 1.x client lets it through), raised and caught."""
    import httpx

    try:
        raise httpx.LocalProtocolError(f"Illegal header value b'Bearer {CANARY}\\n'")
    except httpx.LocalProtocolError as exc:
        return exc


def unrelated() -> BaseException:
    try:
        {}["key"]
    except KeyError as exc:
        return exc
    raise AssertionError("unreachable")


def expected_text(exc: BaseException) -> str:
    explanation = explain(exc)
    assert explanation is not None
    return render_plain(explanation)


def lock_is_free() -> bool:
    """Whether another thread could take the output lock right now."""
    result: list[bool] = []

    def probe() -> None:
        lock = _state.output_lock()
        got = lock.acquire(blocking=False)
        if got:
            lock.release()
        result.append(got)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return result == [True]


def broken_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user rule directory holding one file whose error message quotes the token."""
    directory = tmp_path / "rules"
    directory.mkdir()
    path = directory / "leaky.yaml"
    path.write_text(f"{CANARY}: 1\n", encoding="utf-8")
    monkeypatch.setenv("REPLICATE_EXPLAIN_RULES", str(directory))
    _state.reset()
    return path


def test_a_failure_is_printed_once_and_marked_explained() -> None:
    """The first report prints the plain-text explanation; the exception is then marked, so a
    second report (the excepthook after a log record, say) prints nothing."""
    exc = failure()
    first, second = io.StringIO(), io.StringIO()
    assert (report(exc, first), report(exc, second)) == (True, False)
    assert (first.getvalue(), second.getvalue()) == (expected_text(exc), "")
    assert _state.mark_explained(exc) is False


def test_explain_once_marks_only_when_asked() -> None:
    """``explain_once(mark=False)`` (logging, for a record no handler shows) leaves the exception
    to the next adapter; the default marks it, so the next call gets ``None``."""
    exc = failure()
    unmarked = [explain_once(exc, mark=False), explain_once(exc, mark=False)]
    assert [e.rule_id if e else None for e in unmarked] == ["token-whitespace", "token-whitespace"]
    marked = explain_once(exc)
    assert (marked.rule_id if marked else None, explain_once(exc)) == ("token-whitespace", None)


def test_unrelated_errors_and_interrupts_print_nothing_and_stay_unmarked() -> None:
    """Not a Replicate failure: nothing printed, nothing recorded."""
    stream = io.StringIO()
    errors = [unrelated(), KeyboardInterrupt(), SystemExit(1)]
    assert [report(exc, stream) for exc in errors] == [False, False, False]
    assert stream.getvalue() == ""
    assert [_state.mark_explained(exc) for exc in errors] == [True, True, True]


def test_the_explanation_is_shown_under_the_output_lock() -> None:
    """``show`` runs while this thread holds the output lock, so concurrent failures never
    interleave; the lock is free again afterwards."""
    seen: list[tuple[str, bool]] = []

    def show(explanation: Explanation) -> None:
        seen.append((explanation.rule_id, lock_is_free()))

    assert lock_is_free()
    assert report(failure(), show=show) is True
    assert (seen, lock_is_free()) == ([("token-whitespace", False)], True)


def test_extra_facts_reach_the_explanation() -> None:
    """The facts an adapter observed (IPython: a token exported in a subshell) decide the rule."""
    from replicate.exceptions import ReplicateError

    shown: list[str] = []
    exc = ReplicateError(status=401, title="Unauthenticated", detail="You did not pass an authentication token")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("REPLICATE_API_TOKEN")
        ok = report(exc, extra_facts={"notebook.shell_export": "subshell"}, show=lambda e: shown.append(e.rule_id))
    assert (ok, shown) == (True, ["notebook-shell-export"])


def test_rule_file_warnings_follow_the_explanation_masked_and_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken user rule file is named after the explanation, on stderr, with the token it
    quotes masked; the next explained failure does not repeat the warning."""
    path = broken_rules(tmp_path, monkeypatch)
    (error,) = rules().errors
    assert CANARY in str(error)
    exc, again = failure(), failure()
    assert (report(exc), report(again)) == (True, True)
    err = capsys.readouterr().err
    warning = SKIPPED + str(error).replace(CANARY, MASK) + "\n"
    assert err == expected_text(exc) + warning + expected_text(again)
    assert str(path) in warning
    assert leaks(err, CANARY) == []


def test_warn_rule_errors_alone_masks_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What logging calls after attaching an explanation: the same masked line, once."""
    broken_rules(tmp_path, monkeypatch)
    warn_rule_errors()
    warn_rule_errors()
    (error,) = rules().errors
    assert capsys.readouterr().err == SKIPPED + Redactor.from_environ({"REPLICATE_API_TOKEN": TOKEN})(str(error)) + "\n"


def test_an_internal_failure_never_raises(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A failing step (an invalid extra fact, a ``show`` that raises) returns ``False`` without
    raising, leaves the lock free, and prints the internal error only with
    ``REPLICATE_EXPLAIN_DEBUG=1``."""

    def broken(explanation: Explanation) -> None:
        raise RuntimeError("renderer bug")

    quiet = [report(failure(), extra_facts={"token.state": "set"}), report(failure(), show=broken)]
    assert (quiet, capsys.readouterr().err, lock_is_free()) == ([False, False], "", True)
    monkeypatch.setenv("REPLICATE_EXPLAIN_DEBUG", "1")
    assert report(failure(), show=broken) is False
    err = capsys.readouterr().err
    assert err.startswith("replicate-explain: internal error in explaining an exception:\nTraceback")
    assert err.endswith("RuntimeError: renderer bug\n")


def test_print_and_explain_masks_the_previous_hook_then_explains(capsys: pytest.CaptureFixture[str]) -> None:
    """The excepthooks' sequence: the previous hook's traceback with the token masked, then
    the explanation, on stderr. The exception itself is masked at the source: printed again
    afterwards, it no longer holds the token."""
    exc = failure()
    plain = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    print_and_explain(sys.__excepthook__, (type(exc), exc, exc.__traceback__), exc)
    masked = Redactor.from_environ({"REPLICATE_API_TOKEN": TOKEN})(plain)
    assert CANARY in plain
    assert capsys.readouterr().err == masked + expected_text(exc)
    assert CANARY not in "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
