"""The pure entry point: ``explain(exc)`` runs the pipeline, with the rule set cached in ``_state``."""

from __future__ import annotations

from collections.abc import Mapping

from . import _state
from ._explanation import Explanation
from ._facts import FactValue
from ._rules import RuleSet, load_rules
from ._snapshot import take_snapshot


def rules() -> RuleSet:
    """The rule set in force (loaded once per process; ``_state.reset()`` forgets it). The
    bundled rules come from their validated cache (``_rulecache``); user rules are parsed."""
    cached = _state.rules_cache
    if isinstance(cached, RuleSet):
        return cached
    from ._rulecache import bundled_rules

    try:
        bundled = bundled_rules()
    except Exception:  # a bug in the cache must not cost the explanation: parse the files
        bundled = None
    loaded = load_rules(bundled=bundled)
    _state.rules_cache = loaded
    return loaded


def explain(
    exc: BaseException,
    environ: Mapping[str, str] | None = None,
    *,
    extra_facts: Mapping[str, FactValue] | None = None,
) -> Explanation | None:
    """Explain ``exc`` if it is a Replicate authentication failure; ``None`` otherwise.

    Pure: reads ``environ`` (default ``os.environ``) and package metadata, prints nothing, and
    the result contains no secret. ``extra_facts``: facts only an adapter observes
    (``_facts.ADAPTER_FACTS``, e.g. the IPython session's ``notebook.shell_export``);
    ``ValueError`` for any other name. Raises only on a bug, which the adapters guard against.
    """
    from ._matcher import explain_snapshot

    snapshot = take_snapshot(exc, environ, extra_facts=extra_facts)
    if not snapshot.relevant:
        return None
    return explain_snapshot(snapshot, rules())
