"""Step two: match a :class:`Snapshot` against the rules and build an :class:`Explanation`."""

from __future__ import annotations

from ._common import version_in
from ._evidence import (
    account_refusal_evidence,
    keyword_evidence,
    sent_evidence,
    text_evidence,
    token_evidence,
    wrapper_evidence,
)
from ._explanation import CodeFix, Explanation
from ._facts import FactValue
from ._rules import Case, ExceptionPattern, Match, Rule, RuleSet
from ._snapshot import ExceptionInfo, Snapshot, snapshot_from_data


def _same(actual: FactValue, expected: FactValue) -> bool:
    return type(actual) is type(expected) and actual == expected


def pattern_hit(pattern: ExceptionPattern, info: ExceptionInfo) -> bool:
    if pattern.type not in info.types:
        return False
    if not pattern.search(info.message):
        return False
    return all(info.attributes.get(name) == value for name, value in pattern.attributes.items())


def _match_hit(match: Match, snapshot: Snapshot) -> ExceptionInfo | None:
    for name, allowed in match.facts.items():
        if not any(_same(snapshot.facts.get(name), value) for value in allowed):
            return None
    if not version_in(match.client, snapshot.client_version):
        return None
    if not version_in(match.python, snapshot.python_version):
        return None
    for info in snapshot.exceptions:
        if any(pattern_hit(pattern, info) for pattern in match.exceptions):
            return info
    return None


def matched(rule: Rule, snapshot: Snapshot) -> tuple[int, ExceptionInfo] | None:
    """The specificity of the rule's most specific matching alternative and its exception."""
    best: tuple[int, ExceptionInfo] | None = None
    for match in rule.matches:
        info = _match_hit(match, snapshot)
        score = match.specificity + rule.priority
        if info is not None and (best is None or score > best[0]):
            best = (score, info)
    return best


def matching_rules(snapshot: Snapshot, rules: RuleSet) -> list[tuple[Rule, ExceptionInfo]]:
    """Every rule that matches, most specific first (ties broken by id, so the order is stable).

    A rule whose ``match`` is a list counts with the specificity of the alternative that matched.
    """
    hits = []
    for rule in rules.rules:
        hit = matched(rule, snapshot)
        if hit is not None:
            hits.append((hit[0], rule, hit[1]))
    hits.sort(key=lambda hit: (-hit[0], hit[1].id))
    return [(rule, info) for _, rule, info in hits]


def _evidence(snapshot: Snapshot, info: ExceptionInfo) -> tuple[str, ...]:
    # The credential the failure used comes first (it names where it was seen), then the variable.
    observed = snapshot.facts.get("env.observed") is not False
    lines = wrapper_evidence(snapshot.facts) + sent_evidence(snapshot.facts) + keyword_evidence(snapshot.facts)
    lines += token_evidence(snapshot.facts) if observed else []
    refusal = account_refusal_evidence(info)
    if refusal is not None:
        lines.append(refusal)
    if snapshot.pasted and (snapshot.text_generation or not snapshot.client_version or not observed):
        # What the text shows; with --here, what this shell has too (never "not installed" alone).
        lines.extend(text_evidence(snapshot.facts, info, snapshot.text_generation, observed, snapshot.client_version))
    elif snapshot.client_version:
        lines.append(f"replicate {snapshot.client_version} is installed (Python {snapshot.python_version})")
    else:
        lines.append(f"the replicate package is not installed (Python {snapshot.python_version})")
    headline = " ".join(info.headline().split())  # one line, even for 1.x multi-line messages
    if len(headline) > 300:
        headline = headline[:297] + "..."
    lines.append(f"the error raised: {headline}")
    return tuple(lines)


def choose_example(rule: Rule, version: str | None) -> CodeFix | None:
    """The first example whose client range holds ``version``.

    ``None`` when the installed version is known and no example is for it (code for another
    generation would mislead); the first example when the version is unknown.
    """
    for example in rule.examples:
        if version_in(example.client, version) if example.client else True:
            return CodeFix(example.broken, example.fixed, example.client)
    if not rule.examples or version is not None:
        return None
    first = rule.examples[0]
    return CodeFix(first.broken, first.fixed, first.client)


#: Releases that stand for a generation a pasted text shows: an example is for that generation
#: when its client range holds one of them (only 0.15.3 when the frames show 0.14.0-0.15.3).
GENERATION_RELEASES = {"0.x": ("0.34.2", "0.15.8", "0.11.0"), "1.x": ("1.0.7",), "2.x": ("2.0.0",)}
IMPORT_ERA_RELEASES = ("0.15.3",)
UNKNOWN_GENERATION = "the text does not show which replicate release failed"


def choose_code(rule: Rule, snapshot: Snapshot) -> tuple[CodeFix | None, str | None]:
    """The code to show and, when it is left out for want of a release, the sentence saying so.

    A live failure: the installed client's example (:func:`choose_example`). Pasted text: the
    generation the text shows chooses (the label says so); with none shown, the client of
    ``--here``/``--client`` if any, else an example written for every release, else no code
    (code for the other generation would mislead) and a sentence that says why.
    """
    if not snapshot.pasted:
        return choose_example(rule, snapshot.client_version), None
    generation = snapshot.text_generation
    if generation in GENERATION_RELEASES:
        era = generation == "0.x" and snapshot.facts.get("client.reads_token_at_import") is True
        releases = IMPORT_ERA_RELEASES if era else GENERATION_RELEASES[generation]
        for example in rule.examples:
            if any(version_in(example.client, release) for release in releases):
                return CodeFix(
                    example.broken, example.fixed, example.client, f"the text shows replicate {generation}"
                ), None
        return None, None
    if snapshot.client_version:
        return choose_example(rule, snapshot.client_version), None
    for example in rule.examples:
        if not example.client:
            return CodeFix(example.broken, example.fixed, example.client, UNKNOWN_GENERATION), None
    if not rule.examples:
        return None, None
    return None, (
        f"{UNKNOWN_GENERATION} and the code differs between releases, so none is shown: "
        f"`replicate-explain explain --rule {rule.id}` shows each"
    )


def build_explanation(rule: Rule, info: ExceptionInfo, snapshot: Snapshot, also: tuple[str, ...]) -> Explanation:
    """Assemble the :class:`Explanation` of ``rule`` for ``snapshot``."""
    code, left_out = choose_code(rule, snapshot)
    evidence = _evidence(snapshot, info)
    if left_out is not None:
        evidence = (*evidence[:-1], left_out, evidence[-1])
    return Explanation(
        rule_id=rule.id,
        title=rule.title,
        severity=rule.severity,
        summary=rule.summary,
        evidence=evidence,
        why=rule.why,
        fix=rule.fix,
        code=code,
        workaround=rule.workaround,
        prevention=rule.prevention,
        references=rule.references,
        also=also,
        exception=info.headline(),
        client_version=snapshot.client_version,
        call_site=snapshot.call_site,
    )


def shows_replicate(snapshot: Snapshot) -> bool:
    """The gate every rule passes through: the failure shows Replicate (issue 19).

    A frame or class of the client, its names or messages, its API's URL or answers, an
    ``r8_`` credential, or a wrapper of it (``_marks.REPLICATE_WRAPPERS``): what
    ``Snapshot.replicate_marks`` lists, read by ``_snapshot`` (live) and ``_textfacts`` (pasted
    text). A generic HTTP-stack failure with nothing else (an empty ``Bearer `` header, a
    non-ASCII header value, a ``TypeError`` about an ``api_key`` keyword) is what any program
    gets: it is explained by no rule, whatever the environment holds.
    """
    return bool(snapshot.replicate_marks)


def explain_snapshot(snapshot: Snapshot, rules: RuleSet) -> Explanation | None:
    """The explanation of the most specific matching rule, or ``None`` (always ``None`` for a
    failure that does not show Replicate: :func:`shows_replicate`)."""
    if not snapshot.relevant or not shows_replicate(snapshot):
        return None
    hits = matching_rules(snapshot, rules)
    if not hits:
        return None
    rule, info = hits[0]
    return build_explanation(rule, info, snapshot, tuple(other.id for other, _ in hits[1:]))


def case_snapshot(case: Case) -> Snapshot:
    """The snapshot a rule case describes."""
    infos = [
        ExceptionInfo(
            types=(exc.type, *exc.bases),
            message=exc.message,
            attributes=exc.attributes,
            in_replicate=exc.in_replicate,
        )
        for exc in case.exceptions
    ]
    return snapshot_from_data(
        infos,
        case.environ,
        case.client,
        python=case.python,
        sent=case.sent,
        dotenv=case.dotenv,
        extra_facts=case.facts,
        wrapper=case.wrapper,
        wrapper_observed=case.wrapper_observed,
    )
