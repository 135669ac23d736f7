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
