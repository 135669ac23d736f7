"""Every rule's code examples are proven on real clients, like ``rustc --explain`` examples.

For each example and each client release in its range, the broken snippet must fail with that
rule's explanation, and the fixed snippet must run to completion with no explanation, both
against the loopback API with the example's environment (``{token}`` is a working token).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from clients import CLIENT_VERSIONS, VALID_TOKEN, run_program, wrapper_env
from outputs import leaks, rule_shown
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from replicate_explain._loopback import LoopbackAPI
from replicate_explain._rules import Example, Rule, load_rules

RULES = load_rules()
#: Rules whose cause only exists inside IPython; their examples are proven in a real kernel
#: by tests/test_ipython.py.
KERNEL_ONLY_FACT_PREFIX = "notebook."
#: The wrapper libraries' distributions (``_wrappers.WRAPPERS``) an example may require.
WRAPPER_PACKAGES = ("litellm", "langchain-community", "llama-index-llms-replicate")


def _in_range(example: Example, version: str) -> bool:
    return not example.client or SpecifierSet(example.client).contains(Version(version), prereleases=True)


def _proofs() -> list[Any]:
    params = []
    for rule in RULES.rules:
        if any(name.startswith(KERNEL_ONLY_FACT_PREFIX) for match in rule.matches for name in match.facts):
            continue
        for index, example in enumerate(rule.examples):
            versions = [v for v in CLIENT_VERSIONS if _in_range(example, v)]
            if any(req.split("==")[0] in WRAPPER_PACKAGES for req in example.requires):
                # A wrapper's example shows the wrapper's behaviour, proven on one client release
                # (the newest stable in its range; LiteLLM never calls the client at all): each
                # run imports the wrapper, seconds apiece, and five releases added minutes to CI.
                stable = [v for v in versions if not Version(v).is_prerelease]
                versions = stable[-1:] or versions[-1:]
            for version in versions or [None]:
                params.append(pytest.param(rule, example, version, id=f"{rule.id}[{index}]-{version}"))
    return params


def _environ(values: Any) -> dict[str, str]:
    return {name: value.replace("{token}", VALID_TOKEN) for name, value in values.items()}


def test_the_bundled_rules_load_without_errors() -> None:
    """Every bundled rule file is valid (the proofs below would silently shrink otherwise)."""
    assert [str(error) for error in RULES.errors] == []


@pytest.mark.e2e
@pytest.mark.parametrize(("rule", "example", "version"), _proofs())
def test_broken_fails_with_this_rule_and_fixed_runs(
    api: LoopbackAPI, rule: Rule, example: Example, version: Any, tmp_path: Path
) -> None:
    """The broken snippet raises a failure that this rule explains; the fixed one succeeds."""
    assert version is not None, (
        f"{rule.path}: no release of tests/clients.py CLIENT_VERSIONS is in the range "
        f"{example.client!r}; add one so the example is proven"
    )
    environ = {"REPLICATE_EXPLAIN_FORMAT": "json", **_environ(example.environ)}
    for name, text in _environ(example.files).items():  # e.g. a .env the snippets find
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    if example.requires:  # e.g. python-dotenv for load_dotenv(), a wrapper such as litellm
        environ.update(wrapper_env(example.requires, api, version))
    # A wrapper such as litellm takes seconds to import: more than the default minute on a busy machine.
    timeout = 300 if example.requires else 60
    broken = run_program(
        "import replicate_explain\n" + example.broken, version, api, None, environ, cwd=tmp_path, timeout=timeout
    )
    assert broken.returncode != 0, broken.stdout + broken.stderr
    assert rule_shown(broken.stderr) == rule.id, broken.stderr
    fixed_environ = {**environ, **_environ(example.fixed_environ)}
    fixed_code = "import replicate_explain\n" + example.fixed
    fixed = run_program(fixed_code, version, api, None, fixed_environ, cwd=tmp_path, timeout=timeout)
    assert (fixed.returncode, rule_shown(fixed.stderr)) == (0, None), fixed.stderr
    assert leaks(broken.stdout + broken.stderr + fixed.stdout + fixed.stderr, VALID_TOKEN) == []
