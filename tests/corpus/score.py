"""Score the corpus of real user reports through the pasted-text path, with no environment.

Each ``tests/corpus/*.yaml`` item holds text a user posted about a failure, the cause its thread
established and the rule that should explain it (``expect``; ``null``: nothing should). The text
goes through :func:`replicate_explain._pasted.explain_text` as ``replicate-explain explain``
would read it, but with no environment (as `explain` without --here), no client version and no working directory,
so nothing of the machine that runs the score counts: every fact must come from the text.

Run ``python tests/corpus/score.py`` (``--verbose``: one line per item) to print the score that
the README quotes. ``tests/test_corpus.py`` loads the same items and holds the score to a floor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from replicate_explain._rules import RuleSet

CORPUS_DIR = Path(__file__).resolve().parent
KEYS = ("source", "cause", "expect", "client", "shape", "text")
SHAPES = (
    "cpython-traceback",
    "last-line",
    "ipython",
    "pytest",
    "log-prefixed",
    "details-block",
    "stainless-status-line",
    "other",
)
CLIENTS = ("0.x", "1.x", "2.x")
#: Rule ids the corpus may expect before they are in the catalogue (issue 10 adds them); an item
#: that expects one counts as missed until the rule exists.
PENDING_RULES = frozenset({"token-non-ascii", "billing-required"})


class CorpusError(ValueError):
    """A corpus file that does not follow the format (the message names the file)."""


@dataclass(frozen=True)
class Item:
    """One posted text, what caused it, and the rule that should explain it."""

    slug: str
    source: str
    cause: str
    expect: str | None
    client: str | None
    shape: str
    text: str


@dataclass(frozen=True)
class Outcome:
    """What the pasted-text path made of one item."""

    item: Item
    rules: tuple[str, ...]
    """Rule ids shown for the chains found in the text, in order (empty: nothing explained)."""
    candidates: tuple[str, ...]
    """Rules whose exception shapes matched a chain that got no explanation (the "looks like" hint)."""
    chains: int
    """Exception chains the parser found in the text."""

    @property
    def correct(self) -> bool:
        return self.item.expect is not None and self.item.expect in self.rules

    @property
    def wrong(self) -> bool:
        """Explained, but not (only) by the expected rule: a negative explained, or another rule."""
        return bool(self.rules) and not self.correct


@dataclass(frozen=True)
class Score:
    """The corpus scored: positives explained correctly, missed, explained wrongly; negatives explained."""

    outcomes: tuple[Outcome, ...]

    @property
    def positives(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.item.expect is not None)

    @property
    def negatives(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.item.expect is None)

    @property
    def correct(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.positives if o.correct)

    @property
    def missed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.positives if not o.rules)

    @property
    def misexplained(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.positives if o.wrong)

    @property
    def false_positives(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.negatives if o.rules)

    @property
    def hinted_negatives(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.negatives if o.candidates)

    def summary(self) -> str:
        return (
            f"{len(self.correct)} of {len(self.positives)} positives explained with the expected rule "
            f"({len(self.missed)} not explained, {len(self.misexplained)} explained with another rule); "
            f"{len(self.false_positives)} of {len(self.negatives)} negatives explained"
        )


def _fail(path: Path, problem: str) -> CorpusError:
    return CorpusError(f"{path.name}: {problem}")


def load_item(path: Path, known_rules: Iterable[str]) -> Item:
    """Read and check one corpus file; unknown or missing keys and bad values raise :class:`CorpusError`."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise _fail(path, f"cannot be read as YAML: {error}") from None
    if not isinstance(data, dict):
        raise _fail(path, f"expected a mapping with keys {', '.join(KEYS)}")
    unknown = sorted(set(data) - set(KEYS), key=str)
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(map(str, unknown))}; expected {', '.join(KEYS)}")
    missing = [key for key in KEYS if key not in data]
    if missing:
        raise _fail(path, f"missing key(s) {', '.join(missing)}")
    for key in ("source", "cause", "shape", "text"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise _fail(path, f"{key}: expected a non-empty string")
    if not data["source"].startswith("https://"):
        raise _fail(path, f"source: expected an https:// URL, got {data['source']!r}")
    if data["shape"] not in SHAPES:
        raise _fail(path, f"shape: {data['shape']!r} is not one of {', '.join(SHAPES)}")
    if data["client"] is not None and data["client"] not in CLIENTS:
        raise _fail(path, f"client: {data['client']!r} is not one of {', '.join(CLIENTS)} or null")
    expect = data["expect"]
    allowed = set(known_rules) | PENDING_RULES
    if expect is not None and expect not in allowed:
        raise _fail(path, f"expect: {expect!r} is not a rule id (known: {', '.join(sorted(allowed))}) or null")
    return Item(path.stem, data["source"], data["cause"], expect, data["client"], data["shape"], data["text"])


def load_items(directory: Path = CORPUS_DIR, known_rules: Iterable[str] | None = None) -> tuple[Item, ...]:
    """Every ``*.yaml`` item of ``directory``, sorted by slug."""
    if known_rules is None:
        known_rules = [rule.id for rule in bundled_rules().rules]
    ids = list(known_rules)
    return tuple(load_item(path, ids) for path in sorted(directory.glob("*.yaml")))


def bundled_rules() -> RuleSet:
    """The bundled rules only: user rule directories of the running shell do not count."""
    from replicate_explain._rules import bundled_rules_dir, load_rules

    return load_rules([bundled_rules_dir()])


def run_item(item: Item, rules: RuleSet, cwd: str) -> Outcome:
    """Explain ``item.text`` as pasted text with no environment, no client version, an empty cwd."""
    from replicate_explain._pasted import explain_text

    results = explain_text(item.text, rules, None, client=None, cwd=cwd)
    shown = tuple(r.explanation.rule_id for r in results if r.explanation is not None)
    candidates = tuple(sorted({c for r in results for c in r.candidates}))
    return Outcome(item, shown, candidates, len(results))


def score(items: Sequence[Item] | None = None) -> Score:
    """Run every item through the pasted-text path and tally the outcomes."""
    rules = bundled_rules()
    if items is None:
        items = load_items(known_rules=[rule.id for rule in rules.rules])
    with tempfile.TemporaryDirectory(prefix="replicate-explain-corpus-") as empty:
        return Score(tuple(run_item(item, rules, empty) for item in items))


def _line(outcome: Outcome) -> str:
    item = outcome.item
    if item.expect is None:
        verdict = "WRONG" if outcome.rules else "ok"
    else:
        verdict = "ok" if outcome.correct else ("WRONG" if outcome.rules else "missed")
    got = ", ".join(outcome.rules) or "-"
    hint = f"  (looks like: {', '.join(outcome.candidates)})" if outcome.candidates else ""
    where = f"[{item.shape}, {outcome.chains} chain(s)]"
    return f"{verdict:6} {item.slug:52} expect={item.expect or 'null':22} got={got}  {where}{hint}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score the corpus of real user reports (tests/corpus).")
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per item")
    args = parser.parse_args(argv)
    result = score()
    if args.verbose:
        for outcome in result.outcomes:
            print(_line(outcome))
        print()
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
