"""The pytest plugin (entry point ``pytest11``): explained, masked test reports and ``replicate_api``.

pytest loads it in every run of an environment where replicate-explain is installed, so
importing it costs what ``import replicate_explain`` costs (``__init__``, ``_hook``, ``_state``):
the report work lives in ``_pytest_report``, imported when a report has something to mask.
Off with ``-p no:replicate_explain`` (never imported) or ``REPLICATE_EXPLAIN=0`` (imported,
does nothing but offer the fixture).

* Every test and collection report is masked in ``pytest_runtest_makereport`` /
  ``pytest_make_collect_report`` (outermost wrappers, on the process that ran the test, before
  any reporter, xdist or JUnit XML sees it).
* A failure in setup, call or teardown that is a Replicate authentication or account failure
  gets a ``replicate-explain`` section under its traceback (``longrepr.addsection``: the terminal,
  ``--junitxml`` and xdist all carry it; ``--tb=line``/``no`` leave sections out, as pytest does).
* On GitHub Actions, one ``::error`` workflow command per explained failure, at the test's line.
"""

from __future__ import annotations

import os

import pytest

from ._hook import enabled_by_environment

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Generator, Iterator
    from typing import Any

    from .testing import FakeReplicateAPI

#: The name the per-session report plugin registers under (``pytest --trace-config`` shows it).
PLUGIN_NAME = "replicate-explain-reports"


def activate_masking() -> None:
    """Turn replicate-explain on in the test process: the one call site of the plugin.

    Today that is :func:`replicate_explain.install` (the hooks, the logging integration, the
    post-import hooks); switch this call when masking moves elsewhere.
    """
    from . import install

    install()


def pytest_configure(config: pytest.Config) -> None:
    """Activate the report plugin unless ``REPLICATE_EXPLAIN`` turns replicate-explain off."""
    if not enabled_by_environment() or config.pluginmanager.has_plugin(PLUGIN_NAME):
        return
    activate_masking()
    config.pluginmanager.register(_Reports(config), PLUGIN_NAME)


class _Reports:
    """The hooks of one session (a pytest process: the controller or an xdist worker)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.worker = hasattr(config, "workerinput")
        self.github = os.environ.get("GITHUB_ACTIONS") == "true" and not self.worker
        self.annotations: list[str] = []

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result() if outcome.excinfo is None else None
        if report is None or (report.longrepr is None and not report.sections):
            return
        from ._pytest_report import process_report

        exc = call.excinfo.value if call.excinfo is not None else None
        process_report(report, exc, str(item.config.getoption("tbstyle", "auto")))

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result() if outcome.excinfo is None else None
        if report is None or (report.longrepr is None and not report.sections):
            return
        from ._pytest_report import process_report

        call = getattr(report, "call", None)  # pytest keeps the collection's CallInfo there
        excinfo = getattr(call, "excinfo", None)
        process_report(report, getattr(excinfo, "value", None), str(collector.config.getoption("tbstyle", "auto")))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.github or not report.failed:
            return
        from ._pytest_report import MAX_ANNOTATIONS, annotation

        if len(self.annotations) < MAX_ANNOTATIONS:
            line = annotation(report, self.config)
            if line is not None:
                self.annotations.append(line)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line in self.annotations:
            terminalreporter.write_line(line)


# ---------------------------------------------------------------------------------------------
# The fake Replicate API for the users' own tests (replicate_explain.testing).


@pytest.fixture(scope="session")
def replicate_api_server() -> Iterator[FakeReplicateAPI]:
    """One :class:`~replicate_explain.testing.FakeReplicateAPI` per session (per xdist worker),
    on 127.0.0.1 and a free port; ``replicate_api`` resets it for each test."""
    from .testing import FakeReplicateAPI

    with FakeReplicateAPI() as server:
        yield server


@pytest.fixture
def replicate_api(
    replicate_api_server: FakeReplicateAPI, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeReplicateAPI]:
    """The fake Replicate API, reset, with this test's environment pointed at it.

    ``REPLICATE_API_TOKEN`` is its accepted token and the base-URL variables are those the
    installed client reads (:meth:`~replicate_explain.testing.FakeReplicateAPI.env`); both are
    restored after the test. ``replicate_api.fail_next(401)`` (or 402, 429) makes the next request
    fail. An error inside the server fails the test at teardown.
    """
    server = replicate_api_server
    server.reset()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    yield server
    server.check()
