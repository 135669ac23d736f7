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


def warn_rule_errors(ruleset: RuleSet) -> None:
    """Print each rule-file error once per process to stderr (never raises)."""
    for error in ruleset.errors:
        text = str(error)
        if text in _state.warned:
            continue
        _state.warned.add(text)
        try:
            sys.stderr.write(f"replicate-explain: skipped a rule file: {text}\n")
        except Exception:
            pass
