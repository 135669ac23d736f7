"""Pasted text explained from what it shows, with no environment: real clients' own tracebacks.

``tests/data/pasted/<version>-<scenario>.txt`` is what a real client of each generation printed
against the loopback API, and ``<version>-<scenario>-ipython.txt`` what IPython printed, in
colour, for the same code (captured once by ``tests/data/pasted/capture.py``, without
replicate-explain). Each goes through :func:`explain_text` as ``replicate-explain explain`` reads
it by default: no environment, no installed client, so every fact must come from the text. Each
is also wrapped in the shapes users paste: log prefixes, an IPython traceback with ANSI colours
and ``---->`` arrows, pytest's failure report (``E   `` lines, ``path:line: in f`` frames).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from clients import CANARY
from corpus.score import CORPUS_DIR, bundled_rules

from replicate_explain._pasted import Result, explain_text, find_chains

DATA = Path(__file__).resolve().parent / "data" / "pasted"
VERSIONS = ("0.11.0", "0.15.3", "1.0.7", "2.0.0b4")
RULES = bundled_rules()

#: What each scenario is, read from the text alone (the same for every generation).
EXPECTED: dict[str, str | None] = {
    # "You did not pass an authentication token" / "No API token provided" / bearer_token: none sent.
    "unset": "token-unset",
    # "...a valid authentication token": a token was sent and refused.
    "rejected": "token-rejected",
    # The header value with its "\n" is printed (requests, httpx, or 2.x's cause).
    "newline-in-code": "token-whitespace",
    # Quotes and "Bearer " inside the token are legal header characters: the API refuses the
    # token and the text never shows it, so only the refusal is known.
    "quoted-in-code": "token-rejected",
    "bearer-in-code": "token-rejected",
    # The encoder names the character (U+200B) it could not put in the header.
    "non-ascii-in-code": "token-non-ascii",
    # 402: the token was accepted; the account cannot pay.
    "billing": "billing-required",
    "no-credit": "billing-required",
    # 429: the token was accepted; the account is throttled (0.11.0: requests' RetryError).
    "throttled": "account-rate-limited",
    # Connection refused: not an authentication failure, on any generation.
    "network": None,
}


def _text(version: str, scenario: str) -> str:
    return (DATA / f"{version}-{scenario}.txt").read_text(encoding="utf-8")


def _explain(text: str) -> list[Result]:
    return explain_text(text, RULES)


def _shown(results: list[Result]) -> list[str]:
    """The rules shown, once each (a chain per exception in a pytest report shows one failure)."""
    return sorted({r.explanation.rule_id for r in results if r.explanation is not None})


# ---------------------------------------------------------------------------------------------
# The messy shapes, made from a real CPython traceback

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')
_HEADER = "Traceback (most recent call last):"


def logged(text: str) -> str:
    """Every line behind a docker compose service prefix and an application timestamp."""
    return "".join(f"worker-1  | 2024-05-01T12:00:00.123Z {line}\n" for line in text.splitlines())


def ipython(text: str) -> str:
    """The traceback as IPython prints it, in colour: a rule and the class name over each block,
    ``File path:N, in f`` frames, ``---->`` arrows on the source lines."""
    red, green, cyan, reset = "\x1b[0;31m", "\x1b[0;32m", "\x1b[0;36m", "\x1b[0m"
    lines = text.splitlines()
    out: list[str] = []
    for index, line in enumerate(lines):
        if line == _HEADER:
            name = next(
                (later.split(":", 1)[0] for later in lines[index + 1 :] if later and not later[0].isspace()),
                "Exception",
            )
            out.append(f"{red}{'-' * 75}{reset}")
            out.append(f"{red}{name.rpartition('.')[2]}{reset}{' ' * 28}Traceback (most recent call last)")
            continue
        frame = _FRAME.match(line)
        if frame is not None:
            out.append("")
            out.append(f"File {green}{frame['file']}:{frame['line']}{reset}, in {cyan}{frame['func']}{reset}")
        elif line.startswith("    "):
            out.append(f"{green}---->{reset} 1 {line.strip()}")
        else:
            out.append(line if not line or line[0].isspace() else f"{red}{line}{reset}" if ":" not in line else line)
    return "\n".join(out) + "\n"


def pytest_report(text: str) -> str:
    """The traceback as pytest's failure report: ``path:N: in f`` frames, ``>`` on the failing
    source line, the exception lines behind ``E   ``, then the short summary line."""
    out = ["    def test_prediction():", ">       main()", "", "test_app.py:5: ", "_ " * 20]
    last = ""
    for line in text.splitlines():
        frame = _FRAME.match(line)
        if line == _HEADER:
            continue
        if frame is not None:
            out.append(f"{frame['file']}:{frame['line']}: in {frame['func']}")
        elif line.startswith("    "):
            out.append(line)
        elif line.strip() and not line.startswith("The above exception") and not line.startswith("During handling"):
            out.append(f"E   {line}")
            last = last or line
        else:
            out.append(line)
    out.append("=========================== short test summary info ============================")
    out.append(f"FAILED test_app.py::test_prediction - {last}")
    return "\n".join(out) + "\n"


SHAPES = {"cpython": lambda text: text, "logged": logged, "ipython": ipython, "pytest": pytest_report}


@pytest.mark.parametrize("shape", ["cpython", "ipython-real", "logged", "ipython", "pytest"])
@pytest.mark.parametrize("scenario", list(EXPECTED))
@pytest.mark.parametrize("version", VERSIONS)
def test_real_client_text_is_explained_from_the_text_alone(version: str, scenario: str, shape: str) -> None:
    """Each real client's traceback (as Python printed it, as IPython printed it in colour, and
    wrapped in log prefixes, IPython's layout or a pytest report) gets the scenario's rule with
    no environment (or nothing at all, and no "looks like" hint, for the network failure)."""
    if shape == "ipython-real":
        text = _text(version, f"{scenario}-ipython")
    else:
        text = SHAPES[shape](_text(version, scenario))
    results = _explain(text)
    expected = EXPECTED[scenario]
    hints = sorted({c for r in results for c in r.candidates})
    assert (_shown(results), hints) == ([expected] if expected else [], [])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("scenario", ["newline-in-code", "rejected"])
def test_explanations_of_pasted_text_never_show_the_token(version: str, scenario: str) -> None:
    """The header value printed in the text is described, never repeated: no canary anywhere."""
    for shape in SHAPES.values():
        results = _explain(shape(_text(version, scenario)))
        document = json.dumps([r.explanation.to_dict() for r in results if r.explanation is not None])
        assert CANARY not in document


def test_evidence_comes_from_the_text_not_an_environment() -> None:
    """The evidence says what the text shows (the header, the generation) and that no
    environment was read; nothing about REPLICATE_API_TOKEN in this shell."""
    (result,) = _explain(_text("1.0.7", "newline-in-code"))
    assert result.explanation is not None
    assert result.explanation.evidence[:2] == (
        "the header value printed in the error: 41 characters, with a newline (\\n) at its end; "
        "the token inside starts with r8_",
        "the text does not show which replicate release failed on Python 3.11; no environment was read",
    )
    (unset,) = _explain(_text("1.0.7", "unset"))
    assert unset.explanation is not None
    assert unset.explanation.evidence[:2] == (
        "the API's answer says the request carried no token",
        "the text shows replicate 1.x; no environment was read (--here reads this shell's)",
    )


def test_here_adds_the_shells_environment() -> None:
    """With an environment (``explain --here``), its facts join what the text shows: a 401
    without a token while this shell's variable holds one is no longer an unset variable."""
    text = _text("1.0.7", "unset")
    assert _shown(explain_text(text, RULES, {})) == ["token-unset"]
    here = explain_text(text, RULES, {"REPLICATE_API_TOKEN": CANARY})
    assert "token-unset" not in _shown(here)


def _corpus_text(slug: str) -> str:
    import yaml

    return str(yaml.safe_load((CORPUS_DIR / f"{slug}.yaml").read_text(encoding="utf-8"))["text"])


@pytest.mark.parametrize(
    "slug", ["openai-401-incorrect-key-last-line", "openai-401-openui-placeholder-key", "openai-401-upsonic-change-me"]
)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_openai_401_gets_nothing(slug: str, shape: str) -> None:
    """OpenAI's 401 (the same Stainless shape as replicate 2.x), as users posted it and wrapped:
    no explanation and no hint naming our rules."""
    results = _explain(SHAPES[shape](_corpus_text(slug)))
    assert [(r.explanation, r.candidates) for r in results] == [(None, ())] * len(results)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 0.14.0-0.15.2 send "Token None" without a token: the API's valid-token 401 is no token.
        (
            "DEBUG:httpx:Authorization: Token None\n"
            "replicate.exceptions.ReplicateError: You did not pass a valid authentication token\n",
            ["token-unset"],
        ),
        # Short names resolve only when the text shows the replicate client: its own message...
        ("ReplicateError: You did not pass a valid authentication token\n", ["token-rejected"]),
        (
            '  File "/app/.venv/lib/python3.12/site-packages/replicate/run.py", line 61, in run\n'
            "ReplicateError: You did not pass a valid authentication token\n",
            ["token-rejected"],
        ),
        ("AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key provided'}}\n", []),
        # The same exception printed twice (a log line, then pytest's summary) counts once.
        (
            "replicate.exceptions.ReplicateError: You did not pass an authentication token\n"
            "FAILED t.py::t - replicate.exceptions.ReplicateError: You did not pass an authentication token\n",
            ["token-unset"],
        ),
        # ComfyUI's handler prints the 1.x details block after its own marker.
        (
            "!!! Exception during processing !!! ReplicateError Details:\ntitle: Unauthenticated\n"
            "status: 401\ndetail: You did not pass an authentication token\n",
            ["token-unset"],
        ),
        # A JavaScript client's failure is left alone: the rules' fixes are Python code.
        (
            "ApiError: Request to https://api.replicate.com/v1/predictions failed with status 401 "
            'Unauthorized: {"detail":"You did not pass an authentication token","status":401}\n',
            [],
        ),
        # The 2023 422 means a missing token only on 0.14.0-0.15.3, whose frames show it.
        (
            '  File "/v/lib/python3.11/site-packages/replicate/client.py", line 73, in _request\n'
            '    raise ReplicateError(resp.json()["detail"])\n'
            "replicate.exceptions.ReplicateError: The specified version does not exist (or perhaps "
            "you don't have permission to use it?)\n",
            ["token-unset"],
        ),
        (
            '  File "/v/lib/python3.11/site-packages/replicate/client.py", line 82, in _request\n'
            '    raise ReplicateError(resp.json()["detail"])\n'
            "replicate.exceptions.ReplicateError: The specified version does not exist (or perhaps "
            "you don't have permission to use it?)\n",
            [],
        ),
    ],
    ids=[
        "Token None",
        "short name, replicate's message",
        "short name with replicate frames",
        "short 2.x name of another SDK",
        "printed twice",
        "details block in a line",
        "javascript",
        "422 on 0.15.x",
        "422 on 0.15.8",
    ],
)
def test_shapes_read_from_text(text: str, expected: list[str]) -> None:
    """Short names, repeats, the details block, JavaScript and the 422's era, read from text alone."""
    assert _shown(_explain(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ReplicateError: Invalid model_version: . Expected format: owner/name:version\n",
        "Anthropic AuthenticationError: Error code: 401- {'type': 'authentication_error'}\n",
        "openai.AuthenticationError: Error code: 401 - {'error': {'code': 'invalid_api_key'}}\n",
    ],
    ids=["no replicate evidence", "another SDK's short name", "another SDK's dotted name"],
)
def test_short_names_without_replicate_evidence_are_not_read(text: str) -> None:
    """A short name is read as replicate's only when the text shows the replicate client."""
    assert find_chains(text) == []


# ---------------------------------------------------------------------------------------------
# The code for the generation the failure came from (issue 19, item 2)


def _example(rule_id: str, spec: str) -> tuple[str, str]:
    rule = next(rule for rule in RULES.rules if rule.id == rule_id)
    example = next(example for example in rule.examples if example.client == spec)
    return example.broken, example.fixed


@pytest.mark.parametrize(
    ("version", "generation", "spec"),
    [
        ("0.11.0", "0.x", "<2.0.0a1"),
        ("0.15.3", "0.x", "<2.0.0a1"),
        ("1.0.7", "1.x", "<2.0.0a1"),
        ("2.0.0b4", "2.x", ">=2.0.0a1"),
    ],
)
@pytest.mark.parametrize(("scenario", "rule_id"), [("rejected", "token-rejected"), ("unset", "token-unset")])
def test_the_code_is_for_the_generation_the_text_shows(
    version: str, generation: str, spec: str, scenario: str, rule_id: str
) -> None:
    """A real client's traceback gets the example of its own generation, and the label says
    the text showed it; the same with ``--here`` in a shell whose installed client is another
    generation (the text, not the shell, says which client failed)."""
    from replicate_explain._explanation import CodeFix
    from replicate_explain._render import code_label

    other = "1.0.7" if generation == "2.x" else "2.0.0b4"
    for results in (
        _explain(_text(version, scenario)),
        explain_text(_text(version, scenario), RULES, {}, client=other),
    ):
        (explanation,) = [r.explanation for r in results if r.explanation is not None]
        assert (explanation.rule_id, explanation.code, code_label(explanation)) == (
            rule_id,
            CodeFix(*_example(rule_id, spec), spec, f"the text shows replicate {generation}"),
            f"Code for replicate {spec} (the text shows replicate {generation})",
        )


def test_a_text_that_does_not_show_the_release_gets_no_generation_code() -> None:
    """1.x's newline-in-code traceback shows only httpx's frames and the header: the code of
    either generation could mislead, so none is shown and the evidence says why; with a client
    named (``--here`` finds one installed) that client's example, labelled as installed."""
    from replicate_explain._render import code_label

    text = _text("1.0.7", "newline-in-code")
    (alone,) = [r.explanation for r in _explain(text) if r.explanation is not None]
    (here,) = [r.explanation for r in explain_text(text, RULES, {}, client="1.0.7") if r.explanation is not None]
    assert (alone.rule_id, alone.code, alone.evidence[-2]) == (
        "token-whitespace",
        None,
        "the text does not show which replicate release failed and the code differs between releases, "
        "so none is shown: `replicate-explain explain --rule token-whitespace` shows each",
    )
    assert here.code is not None
    assert ((here.code.broken, here.code.fixed), code_label(here)) == (
        _example("token-whitespace", "<2.0.0a1"),
        "Code for replicate <2.0.0a1 (installed: 1.0.7)",
    )


def test_pasted_text_never_says_replicate_is_not_installed() -> None:
    """Over every real client's text in every pasted shape, no code label speaks of this
    shell's installation: it names the generation the text shows, or says it does not show one."""
    from replicate_explain._render import code_label

    labels = set()
    for path in sorted(DATA.glob("*.txt")):
        for shape in SHAPES.values():
            for result in _explain(shape(path.read_text(encoding="utf-8"))):
                if result.explanation is not None and result.explanation.code is not None:
                    labels.add(code_label(result.explanation))
    assert sorted(labels) == [
        "Code for any replicate version (the text does not show which replicate release failed)",
        "Code for any replicate version (the text shows replicate 0.x)",
        "Code for any replicate version (the text shows replicate 1.x)",
        "Code for any replicate version (the text shows replicate 2.x)",
        "Code for replicate <2.0.0a1 (the text shows replicate 0.x)",
        "Code for replicate <2.0.0a1 (the text shows replicate 1.x)",
        "Code for replicate >=2.0.0a1 (the text shows replicate 2.x)",
    ]


# ---------------------------------------------------------------------------------------------
# Masked input (issue 19, item 3)

#: Masks put in place of the token before posting, as they appear in the printed header value
#: (bytes reprs print "…" as its UTF-8 bytes), and how the evidence names each.
MASKS = {
    "redacted": ("[REDACTED]", "with [REDACTED]"),
    "asterisks": ("***", "with asterisks"),
    "placeholder": ("<redacted>", "with a placeholder such as <redacted>"),
    "xs": ("r8_xxxxxxxxxxxx", "with x's"),
    "dots": ("r8_CAN...", "cut short by an ellipsis"),
    "ellipsis": ("r8_CAN\\xe2\\x80\\xa6", "cut short by an ellipsis"),
    "ellipsis-character": ("r8_CAN\u2026", "cut short by an ellipsis"),
}


@pytest.mark.parametrize(("mask", "how"), list(MASKS.values()), ids=list(MASKS))
def test_a_masked_token_gives_no_shape_and_the_rest_still_counts(mask: str, how: str) -> None:
    """1.x's newline-in-code traceback with the token masked before posting: the evidence says
    the token is masked and reads no length, prefix or characters from it, while the newline
    the text shows after the mask still makes it token-whitespace."""
    text = _text("1.0.7", "newline-in-code").replace(CANARY, mask)
    (result,) = [r for r in _explain(text) if r.explanation is not None]
    assert result.explanation is not None
    facts = {k: result.snapshot.facts[k] for k in ("sent.length", "sent.r8_prefix", "sent.non_ascii", "sent.problem")}
    assert (result.explanation.rule_id, result.explanation.evidence[0], facts) == (
        "token-whitespace",
        f"the header value printed in the text has its token masked ({how}): its length, prefix and "
        "characters are not read; the text shows whitespace or a line break around it",
        {"sent.length": None, "sent.r8_prefix": False, "sent.non_ascii": None, "sent.problem": "whitespace"},
    )


@pytest.mark.parametrize(("mask", "how"), list(MASKS.values()), ids=list(MASKS))
def test_a_masked_token_with_nothing_else_is_not_read_as_a_bad_token(mask: str, how: str) -> None:
    """The header value this tool (or a person) masked, with no whitespace around the mask:
    not a token of N characters that "does not start with r8_": its shape is unknown, and no
    rule of a token's shape explains it."""
    text = (
        '  File "/app/.venv/lib/python3.11/site-packages/replicate/client.py", line 89, in _request\n'
        f"httpx.LocalProtocolError: Illegal header value b'Bearer {mask}'\n"
    )
    (result,) = _explain(text)
    facts = {k: result.snapshot.facts[k] for k in ("sent.state", "sent.length", "sent.r8_prefix", "sent.problem")}
    assert (result.explanation, facts) == (
        None,
        {"sent.state": "set", "sent.length": None, "sent.r8_prefix": False, "sent.problem": "unknown"},
    )


# ---------------------------------------------------------------------------------------------
# The shapes users paste (issue 19, item 4)


def _last_exception(text: str) -> list[str]:
    """The lines of the traceback's last exception: from its line to the end (1.x's details
    block goes on at column 0 after it)."""
    lines = text.rstrip("\n").splitlines()
    start = max(i for i in range(1, len(lines)) if lines[i - 1][:1].isspace() and not lines[i][:1].isspace())
    return lines[start:]


#: The forms the last exception is posted in: as printed, flattened onto one line by a web page,
#: onto two by a chat tool, and (1.x) the details block alone, flattened, without the class.
FORMS = {
    "as-printed": lambda lines: "\n".join(lines) + "\n",
    "one-line": lambda lines: " ".join(line.strip() for line in lines) + "\n",
    "two-lines": lambda lines: " ".join(lines[:2]) + "\n" + " ".join(lines[2:]) + "\n",
    "block-alone": lambda lines: " ".join(lines).partition(": ")[2] + "\n",
}

#: Scenario -> rule, for the last exception alone. 0.11.0's throttled RetryError is requests'
#: ("HTTPConnectionPool(...) too many 429 error responses"): alone it shows nothing of Replicate.
REFUSALS = {"billing": "billing-required", "no-credit": "billing-required", "throttled": "account-rate-limited"}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("scenario", [*REFUSALS, "rejected", "unset"])
@pytest.mark.parametrize("version", VERSIONS)
def test_the_last_exception_in_every_posted_form(version: str, scenario: str, form: str) -> None:
    """The last exception of each real client's 402, 429, 401 texts, pasted alone, flattened
    onto one line (``ReplicateError Details: status: 429 detail: ...``) or two, and the details
    block alone: the same rule as for the whole traceback, read from the text alone."""
    lines = _last_exception(_text(version, scenario))
    text = FORMS[form](lines)
    expected = REFUSALS.get(scenario) or EXPECTED[scenario]
    if version == "0.11.0" and scenario == "throttled":
        expected = None
    if form == "block-alone" and not lines[0].rstrip().endswith("Details:"):
        text = FORMS["one-line"](lines)  # only 1.x prints a details block
    assert _shown(_explain(text)) == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("text", "attributes"),
    [
        (
            "ReplicateError Details: status: 429 detail: Request was throttled. Your rate limit resets in ~1s.\n",
            {"status": "429", "detail": "Request was throttled. Your rate limit resets in ~1s."},
        ),
        (
            "Error: ReplicateError Details:  title: Unauthenticated  status: 401\n"
            "detail: You did not pass an authentication token\n",
            {"title": "Unauthenticated", "status": "401", "detail": "You did not pass an authentication token"},
        ),
        (
            "replicate.exceptions.ReplicateError: ReplicateError Details:\ntitle: Billing required status: 402 "
            "detail: You need to set up billing. The status: page says so.\n",
            {
                "title": "Billing required",
                "status": "402",
                "detail": "You need to set up billing. The status: page says so.",
            },
        ),
    ],
    ids=["one line, no class", "chat tool, two lines", "key word inside the detail"],
)
def test_a_flattened_details_block_gives_its_attributes(text: str, attributes: dict[str, str]) -> None:
    """The details block flattened onto one or a few lines gives the attributes the client's
    exception carries, each key once (a key word inside a value stays in the value)."""
    (result,) = _explain(text)
    assert [dict(info.attributes) for info in result.snapshot.exceptions] == [attributes]


#: How editors and shells save a text: Notepad's "UTF-8 with BOM", PowerShell's ``>`` (UTF-16 LE
#: with a BOM), UTF-16 without a BOM either way, UTF-32.
ENCODINGS = ("utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_decode_text_reads_boms_and_utf16(encoding: str) -> None:
    """The bytes of a text in each encoding decode to the same text, the BOM dropped."""
    from replicate_explain._textshapes import decode_text

    text = _text("1.0.7", "rejected") + "caf\u00e9 \u2026\n"
    assert decode_text(text.encode(encoding)) == text


@pytest.mark.e2e
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_explain_reads_a_utf16_or_bom_file_and_stdin(tmp_path: Path, encoding: str, source: str) -> None:
    """``replicate-explain explain FILE`` and ``explain -`` explain a real 1.x traceback saved
    as UTF-8 with a BOM or as UTF-16/32, as they do the UTF-8 text."""
    import subprocess

    from commandline import cli_env, script

    data = _text("1.0.7", "rejected").encode(encoding)
    path = tmp_path / "traceback.txt"
    path.write_bytes(data)
    args = [script(), "explain", str(path) if source == "file" else "-", "--format", "json"]
    done = subprocess.run(
        args, env=cli_env(), input=None if source == "file" else data, capture_output=True, timeout=120, check=False
    )
    document = json.loads(done.stdout.decode("utf-8"))
    rules = [chain["explanation"]["rule_id"] for chain in document["chains"] if chain["explanation"]]
    assert (done.returncode, document["explained"], rules) == (0, 1, ["token-rejected"])


@pytest.mark.parametrize(
    ("client", "shell"), [("2.0.0b4", "replicate 2.0.0b4 is installed here"), (None, "replicate is not installed here")]
)
def test_with_here_the_evidence_keeps_the_texts_client_apart_from_the_shells(client: str | None, shell: str) -> None:
    """``explain --here`` on a 1.x text: the evidence says which client the text shows and,
    apart, what this shell has; never a bare "the replicate package is not installed"."""
    (result,) = [r for r in explain_text(_text("1.0.7", "unset"), RULES, {}, client=client) if r.explanation]
    assert result.explanation is not None
    assert [line for line in result.explanation.evidence if "install" in line] == [
        f"the text shows replicate 1.x; this shell's environment was read too (--here): {shell}"
    ]


_LARGE_TEXT_PROGRAM = """\
import sys
from replicate_explain._textfacts import read_text
for unit in ("\\n", "\\n   \\n", "\\r\\n"):
    print(read_text(unit * ((1 << 20) // len(unit))) == read_text(""))
"""


@pytest.mark.e2e
def test_a_megabyte_of_blank_lines_is_read_in_one_pass() -> None:
    """The evidence of a megabyte of blank lines (or lines of spaces, or CRLF) is that of an
    empty text, read in one pass: the JavaScript frame pattern's ``^\\\\s*`` used to run from
    every line start over all the blank lines after it (quadratic: minutes for a megabyte).
    The subprocess timeout is the guard against the hang, no wall-clock assertion."""
    import os
    import subprocess
    import sys

    from clients import REPO_ROOT

    result = subprocess.run(
        [sys.executable, "-c", _LARGE_TEXT_PROGRAM],
        capture_output=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=300,
        check=True,
    )
    assert result.stdout == "True\nTrue\nTrue\n"
