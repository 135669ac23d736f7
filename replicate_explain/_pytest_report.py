"""The pytest plugin's work on one report: masking, the explanation section, the annotation.

Every text of the report is masked; an explained failure gets its ``replicate-explain`` section
and, on GitHub Actions, its ``::error`` workflow command.

Imported by ``_pytest_plugin`` at the first report that has text (a failure, captured output),
never at start-up. Nothing here raises: an internal failure leaves the report as pytest built it
(and, with ``REPLICATE_EXPLAIN_DEBUG=1``, prints the internal error).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from . import _state

#: The title of the section under the traceback (and what the annotation looks for).
SECTION = "replicate-explain"
#: The line above the explanation where pytest has no sections (a collection error's text).
RULE_LINE = f"{'-' * 20} {SECTION} {'-' * 20}"
#: GitHub shows at most 10 error annotations per step.
MAX_ANNOTATIONS = 10

Redact = Callable[[str], str]


def process_report(report: Any, exc: BaseException | None, tbstyle: str = "auto") -> None:
    """Mask ``report`` (a ``TestReport`` or ``CollectReport``); for a failure caused by ``exc``,
    a Replicate authentication or account failure, add the explanation section (with
    ``--tb=line``, only its headline and where to read more)."""
    try:
        from .integrations._common import redactor_with, relevant

        related = exc is not None and relevant(exc)
        redact = redactor_with(heuristics=related)
        if related and report.failed and exc is not None:
            _add_explanation(report, exc, brief=tbstyle == "line")
        mask_report(report, redact)
    except Exception:
        _state.report_internal_error("masking a pytest report")


def _add_explanation(report: Any, exc: BaseException, *, brief: bool) -> None:
    from ._render import render_plain
    from .integrations._common import explain, mark_explained

    explanation = explain(exc)
    if explanation is None:
        return
    text = render_plain(explanation).rstrip("\n")
    if brief:
        lines = text.splitlines()
        text = f"{lines[0]}\n{lines[-1]}" if len(lines) > 1 else text
    longrepr = report.longrepr
    if callable(getattr(longrepr, "addsection", None)) and isinstance(getattr(longrepr, "sections", None), list):
        longrepr.addsection(SECTION, text)
    elif isinstance(getattr(longrepr, "longrepr", None), str):  # a collection error's text
        longrepr.longrepr = f"{longrepr.longrepr.rstrip()}\n\n{RULE_LINE}\n{text}"
    else:  # a plugin's own repr_failure (a string): a report section prints under it
        report.sections.append((SECTION, text))
    mark_explained(exc)


# ---------------------------------------------------------------------------------------------
# Masking: every string a report holds, in pytest's own representation objects.


def mask_report(report: Any, redact: Redact) -> None:
    """Mask every text field of ``report`` in place: the longrepr (a string, a skip tuple or
    pytest's representation objects: traceback lines, ``E`` lines, ``--showlocals``, the crash
    message the ``-r`` summary prints, sections), the captured output sections and the user
    properties. Only text is replaced; the exception and the test's objects are untouched."""
    longrepr = report.longrepr
    if longrepr is not None:
        report.longrepr = _masked(longrepr, redact, set(), 0)
    if report.sections:
        report.sections = [(_text(title, redact), _text(content, redact)) for title, content in report.sections]
    properties = getattr(report, "user_properties", None)
    if properties:
        report.user_properties = [_masked(item, redact, set(), 0) for item in properties]


def _text(value: Any, redact: Redact) -> Any:
    return redact(value) if isinstance(value, str) else value


def _masked(value: Any, redact: Redact, seen: set[int], depth: int) -> Any:
    """``value`` with its strings masked: strings, lists, tuples and pytest's representation
    objects (masked in place, each once); any other object is left alone."""
    if isinstance(value, str):
        return redact(value)
    if depth > 12:
        return value
    if isinstance(value, list):
        return [_masked(item, redact, seen, depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(_masked(item, redact, seen, depth + 1) for item in value)
    if type(value).__module__.startswith("_pytest.") and hasattr(value, "__dict__"):
        if id(value) in seen:
            return value
        seen.add(id(value))
        for name, item in list(vars(value).items()):
            new = _masked(item, redact, seen, depth + 1)
            if new is not item:
                object.__setattr__(value, name, new)
    return value


# ---------------------------------------------------------------------------------------------
# GitHub Actions: one workflow command per explained failure, at the test's own line.


def section_text(report: Any) -> str | None:
    """The explanation section of ``report`` (also after xdist sent it over), or ``None``."""
    for name, content, *_ in getattr(report.longrepr, "sections", None) or ():
        if name == SECTION:
            return str(content)
    for name, content in report.sections:
        if name == SECTION:
            return str(content)
    return None


def escape_data(text: str) -> str:
    """A workflow command's message (actions/toolkit ``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (actions/toolkit ``escapeProperty``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(report: Any, config: Any) -> str | None:
    """The ``::error file=...,line=...,title=...::message`` line for an explained failure, or
    ``None``. The file is the test's, relative to ``GITHUB_WORKSPACE`` (else the root); the line
    is that of the deepest traceback entry in the test's file, else the test's definition."""
    try:
        text = section_text(report)
        if text is None:
            return None
        root = str(config.rootpath)
        test_file = os.path.normpath(os.path.join(root, report.location[0]))
        line = _deepest_line(report.longrepr, test_file, str(config.invocation_params.dir))
        if line is None:
            line = (report.location[1] or 0) + 1
        workspace = os.environ.get("GITHUB_WORKSPACE") or root
        path = os.path.relpath(test_file, workspace)
        if path.startswith(".."):
            path = os.path.relpath(test_file, root)
        title = text.split("\n", 1)[0]
        props = f"file={escape_property(path.replace(os.sep, '/'))},line={int(line)},title={escape_property(title)}"
        return f"::error {props}::{escape_data(text)}"
    except Exception:
        _state.report_internal_error("building a GitHub annotation")
        return None


def _deepest_line(longrepr: Any, test_file: str, invocation_dir: str) -> int | None:
    chain = getattr(longrepr, "chain", None)
    tracebacks = [element[0] for element in chain] if chain else [getattr(longrepr, "reprtraceback", None)]
    for reprtraceback in reversed(tracebacks):
        for entry in reversed(getattr(reprtraceback, "reprentries", None) or ()):
            location = getattr(entry, "reprfileloc", None)
            if location is None or not isinstance(getattr(location, "lineno", None), int):
                continue
            path = os.path.normpath(os.path.join(invocation_dir, str(location.path)))
            if path == test_file:
                return int(location.lineno)
    return None
