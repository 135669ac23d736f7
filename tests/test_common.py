"""``_common.version_in``: the version specifiers of rules, decided without packaging when it
can, exactly as packaging decides them."""

from __future__ import annotations

import itertools

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from replicate_explain._common import _simple_version_in, version_in

VERSIONS = [
    "0", "0.0", "1", "1.0", "1.0.0", "1.0.7", "1.0.10", "1.10", "0.14.0", "0.15.3", "0.15.3rc1",
    "0.15.4", "1.1", "1.1.0a1", "1.1.0b1", "1.1.0b3", "1.1.0b4", "1.1.0rc2", "1.1.0", "2.0",
    "2.0.0", "2.0.0a1", "2.0.0a19", "2.0.0b4", "3.9.18", "3.11.7", "3.12", "3.12.0rc1", "10.0",
]  # fmt: skip
OPERATORS = [">=", "<=", ">", "<", "==", "!="]


def _specifiers() -> list[str]:
    single = [op + version for op, version in itertools.product(OPERATORS, VERSIONS)]
    return single + [f"{spec},<2.0.0a5" for spec in single] + [f">=0.15, {spec}" for spec in single]


def test_version_in_agrees_with_packaging_on_every_pair() -> None:
    """Every operator with plain and pre-release versions, alone and combined, against every
    version (with packaging's pre-release rules: ``<2.0`` excludes ``2.0.0a1``)."""
    specs = _specifiers()
    ours = {(spec, v): version_in(spec, v) for spec in specs for v in VERSIONS}
    packaging = {
        (spec, v): SpecifierSet(spec).contains(Version(v), prereleases=True) for spec in specs for v in VERSIONS
    }
    assert ours == packaging
    assert all(_simple_version_in(spec, v) is not None for spec, v in ours)  # none needed packaging


def test_other_forms_are_left_to_packaging() -> None:
    """Wildcards, ``~=``, post, dev and local versions, epochs and invalid versions are decided
    by packaging (an invalid version is in no range)."""
    cases = {
        ("==1.0.*", "1.0.7"): True,
        ("~=1.0", "1.4"): True,
        (">=1.0", "1.0.post1"): True,
        ("<1.0", "1.0.dev1"): False,  # packaging: "<V" excludes V's own dev releases
        ("==1.0", "1.0+local"): True,
        (">=1!0.1", "2.0"): False,
        (">=1.0", "not a version"): False,
        ("", "anything"): True,
        (">=1.0", None): False,
    }
    assert {key: version_in(*key) for key in cases} == cases
    assert [_simple_version_in(spec, v or "") for spec, v in list(cases)[:7]] == [None] * 7
