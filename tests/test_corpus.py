"""The corpus of real user reports (``tests/corpus``): its format, its secrets, and its score.

Every item is text a user posted about a failure. It goes through the pasted-text path
(``explain_text``) with no environment (as `explain` without --here), no client version and no working directory,
so every fact has to come from the text. Negatives (not a Replicate authentication failure) must
never be explained, now or later; positives are scored, and the score may only go up.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clients import CANARY
from corpus.score import (
    CORPUS_DIR,
    PENDING_RULES,
    CorpusError,
    Item,
    Score,
    bundled_rules,
    load_item,
    load_items,
    score,
)

#: Positives explained with the expected rule (2026-12: none when the corpus was built; 4 once
#: the text parser read the posted shapes and the facts they show). It only goes up.
MIN_CORRECT = 4

RULE_IDS = [rule.id for rule in bundled_rules().rules]

_GOOD = """\
source: https://github.com/replicate/replicate-python/issues/1
cause: The token was not set.
expect: token-unset
client: 1.x
shape: last-line
text: |
  replicate.exceptions.ReplicateError: You did not pass an authentication token
"""


@pytest.fixture(scope="module")
def scored() -> Score:
    return score()


def test_corpus_items_load_and_balance() -> None:
    """Every corpus file loads under the strict format; at least 25 items, a third of them negatives."""
    items = load_items()
    files = sorted(path.stem for path in CORPUS_DIR.glob("*.yaml"))
    negatives = [item for item in items if item.expect is None]
    assert [item.slug for item in items] == files
    assert len(items) >= 25
    assert 3 * len(negatives) >= len(items)


def test_corpus_items_cite_public_threads() -> None:
    """Each item names the public thread its text was posted in (a GitHub issue or pull request URL)."""
    thread = re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+$")
    assert [item.slug for item in load_items() if not thread.match(item.source)] == []


def test_corpus_holds_no_token() -> None:
    """No item keeps a real-looking Replicate token: only the canary may appear in r8_ + 37 shape."""
    token = re.compile(r"r8_[A-Za-z0-9]{37}")
    found = {item.slug: token.findall(item.text) for item in load_items()}
    assert {slug: hits for slug, hits in found.items() if set(hits) - {CANARY}} == {}


def test_pending_rule_ids_are_marked_as_pending() -> None:
    """An expected rule not (yet) in the catalogue is one of the ids issue 10 adds, never a typo."""
    expected = {item.expect for item in load_items() if item.expect is not None}
    assert expected - set(RULE_IDS) <= set(PENDING_RULES)


def test_loader_reads_a_well_formed_item(tmp_path: Path) -> None:
    """A well-formed file becomes an Item with its fields as written and its stem as slug."""
    path = tmp_path / "good-item.yaml"
    path.write_text(_GOOD, encoding="utf-8")
    assert load_item(path, RULE_IDS) == Item(
        slug="good-item",
        source="https://github.com/replicate/replicate-python/issues/1",
        cause="The token was not set.",
        expect="token-unset",
        client="1.x",
        shape="last-line",
        text="replicate.exceptions.ReplicateError: You did not pass an authentication token\n",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("client: 1.x\n", "client: 1.x\nseen: 2024\n"),
            "bad.yaml: unknown key(s) seen; expected source, cause, expect, client, shape, text",
        ),
        (("cause: The token was not set.\n", ""), "bad.yaml: missing key(s) cause"),
        (("shape: last-line", "shape: screenshot"), "bad.yaml: shape: 'screenshot' is not one of"),
        (("client: 1.x", "client: 3.x"), "bad.yaml: client: '3.x' is not one of 0.x, 1.x, 2.x or null"),
        (("expect: token-unset", "expect: token-unsett"), "bad.yaml: expect: 'token-unsett' is not a rule id"),
        (("source: https://", "source: http://"), "bad.yaml: source: expected an https:// URL"),
        (("text: |\n  replicate", "text: ''\nx: |\n  replicate"), "bad.yaml: unknown key(s) x"),
    ],
)
def test_loader_rejects_malformed_items(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    """Unknown keys, missing keys and out-of-range values are errors that name the file."""
    path = tmp_path / "bad.yaml"
    old, new = change
    assert old in _GOOD
    path.write_text(_GOOD.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        load_item(path, RULE_IDS)
    assert str(caught.value).startswith(message)


def test_scoring_path_explains_a_canonical_traceback() -> None:
    """The scoring path itself works: a plain CPython traceback of 1.x's unset-token 401 scores as correct."""
    text = (
        "Traceback (most recent call last):\n"
        '  File "/app/main.py", line 3, in <module>\n'
        '    replicate.run("owner/model:abc", input={})\n'
        '  File "/venv/lib/python3.11/site-packages/replicate/client.py", line 73, in _request\n'
        '    raise ReplicateError(resp.json()["detail"])\n'
        "replicate.exceptions.ReplicateError: You did not pass an authentication token\n"
    )
    item = Item("control", "https://github.com/x/y/issues/1", "unset", "token-unset", None, "cpython-traceback", text)
    result = score([item])
    assert [(o.rules, o.correct) for o in result.outcomes] == [(("token-unset",), True)]


def test_no_negative_is_explained(scored: Score) -> None:
    """Model errors, 404/422s, timeouts and other libraries' 401s get no explanation, with no environment."""
    assert [(o.item.slug, o.rules) for o in scored.false_positives] == []


def test_no_negative_gets_a_looks_like_hint(scored: Score) -> None:
    """Nor do they get the "looks like a Replicate authentication failure" hint naming our rules."""
    assert [(o.item.slug, o.candidates) for o in scored.hinted_negatives] == []


def test_positive_score_is_at_least_the_floor(scored: Score) -> None:
    """Every item is scored, and at least MIN_CORRECT positives get their expected rule (run
    ``python tests/corpus/score.py -v`` to see which)."""
    assert len(scored.outcomes) == len(load_items())
    assert len(scored.correct) >= MIN_CORRECT, scored.summary()


def test_corpus_error_names_unreadable_yaml(tmp_path: Path) -> None:
    """A file that is not YAML is reported with its name, not as a bare parser traceback."""
    path = tmp_path / "broken.yaml"
    path.write_text("source: [unclosed\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"^broken\.yaml: cannot be read as YAML"):
        load_item(path, RULE_IDS)
