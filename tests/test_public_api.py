"""The public surface is small, typed, sorted and lazy."""

from __future__ import annotations

import subprocess
import sys

import replicate_explain
from replicate_explain import Explanation, explain


def test_all_is_sorted_and_every_name_resolves() -> None:
    """__all__ lists the public names in order, and each one exists."""
    assert replicate_explain.__all__ == sorted(replicate_explain.__all__)
    for name in replicate_explain.__all__:
        assert getattr(replicate_explain, name) is not None


def test_explain_is_pure_and_returns_none_for_unrelated_errors() -> None:
    """explain() returns None for an error outside the family, an Explanation for one inside."""
    assert explain(ValueError("nothing to do with replicate"), {}) is None


def test_explain_recognises_a_real_client_error() -> None:
    """A real replicate 1.x ReplicateError for a missing token explains as token-unset."""
    from replicate.exceptions import ReplicateError

    error = ReplicateError(status=401, title="Unauthenticated", detail="You did not pass an authentication token")
    result = explain(error, {})
    assert isinstance(result, Explanation)
    assert (result.rule_id, result.also) == ("token-unset", ())
    assert result.evidence[0] == "REPLICATE_API_TOKEN is not set in this process"


def test_python_m_replicate_explain_runs_the_cli() -> None:
    """``python -m replicate_explain --help`` prints usage and exits 0."""
    out = subprocess.run([sys.executable, "-m", "replicate_explain", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("usage: replicate-explain")
