"""The public surface is small, typed, sorted and lazy."""

from __future__ import annotations

import subprocess
import sys

import pytest

import replicate_explain
from replicate_explain import Explanation, explain


def test_all_is_sorted_and_every_name_resolves_to_its_implementation() -> None:
    """__all__ lists exactly the public names, in order, each the object its module defines."""
    from replicate_explain import _api, _errors, _explanation, _hook, _render

    assert replicate_explain.__all__ == [
        "CodeFix",
        "Explanation",
        "RuleError",
        "__version__",
        "explain",
        "install",
        "is_installed",
        "print_explanation",
        "render",
        "uninstall",
    ]
    expected = {
        "CodeFix": _explanation.CodeFix,
        "Explanation": _explanation.Explanation,
        "RuleError": _errors.RuleError,
        "explain": _api.explain,
        "install": _hook.install,
        "is_installed": _hook.is_installed,
        "print_explanation": _render.print_explanation,
        "render": _render.render,
        "uninstall": _hook.uninstall,
    }
    assert {name: getattr(replicate_explain, name) for name in expected} == expected
    assert replicate_explain.__version__ == "0.1.0"


def test_explain_returns_none_for_errors_outside_the_family() -> None:
    """explain() is pure and returns None for an error that is not about Replicate."""
    assert explain(ValueError("nothing to do with replicate"), {}) is None
    assert explain(KeyError("REPLICATE_API_TOKEN"), {}) is None


def test_explain_recognises_a_real_client_error() -> None:
    """A real replicate 1.x ReplicateError for a missing token explains as token-unset."""
    from replicate.exceptions import ReplicateError

    error = ReplicateError(status=401, title="Unauthenticated", detail="You did not pass an authentication token")
    result = explain(error, {})
    assert isinstance(result, Explanation)
    assert (result.rule_id, result.also) == ("token-unset", ())
    assert result.evidence[0] == "REPLICATE_API_TOKEN is not set in this process"


@pytest.mark.e2e
def test_python_m_replicate_explain_runs_the_cli() -> None:
    """``python -m replicate_explain --help`` prints usage and exits 0."""
    out = subprocess.run([sys.executable, "-m", "replicate_explain", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("usage: replicate-explain")
