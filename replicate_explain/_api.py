"""The pure entry point: ``explain(exc)``, with the rule set cached in ``_state``."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from . import _state
from ._explanation import Explanation
from ._rules import RuleSet, load_rules
from ._snapshot import take_snapshot


def rules() -> RuleSet:
    """The rule set in force (loaded once per process; ``_state.reset()`` forgets it)."""
    cached = _state.rules_cache
    if isinstance(cached, RuleSet):
        return cached
    loaded = load_rules()
    _state.rules_cache = loaded
    return loaded


def explain(exc: BaseException, environ: Mapping[str, str] | None = None) -> Explanation | None:
    """Explain ``exc`` if it is a Replicate authentication failure; ``None`` otherwise.

    Pure: reads ``environ`` (default ``os.environ``) and package metadata, prints nothing, and
    the result contains no secret. Raises only on a bug, which the adapters guard against.
    """
    from ._matcher import explain_snapshot

    snapshot = take_snapshot(exc, environ)
    if not snapshot.relevant:
        return None
    return explain_snapshot(snapshot, rules())


#: Rule-file warnings printed at most per process; one line counts the rest.
MAX_WARNINGS = 5


def warn_rule_errors(ruleset: RuleSet) -> None:
    """Print each rule-file error once per process to stderr, tokens masked, at most
    :data:`MAX_WARNINGS` of them and then one line for the rest (never raises)."""
    import os

    from ._redact import Redactor

    pending = [str(error) for error in ruleset.errors if str(error) not in _state.warned]
    if not pending:
        return
    mask = Redactor.from_environ(os.environ)
    printed = sum(1 for text in _state.warned if not text.startswith("\0"))
    for text in pending:
        _state.warned.add(text)
        if printed >= MAX_WARNINGS:
            continue
        printed += 1
        try:
            sys.stderr.write(f"replicate-explain: skipped a rule file: {mask(text)}\n")
        except Exception:
            pass
    rest = len(ruleset.errors) - MAX_WARNINGS
    if printed >= MAX_WARNINGS and rest > 0 and "\0rest" not in _state.warned:
        _state.warned.add("\0rest")
        try:
            sys.stderr.write(
                f"replicate-explain: {rest} more rule-file problems not shown; "
                "run `replicate-explain rules check` to see them all\n"
            )
        except Exception:
            pass
