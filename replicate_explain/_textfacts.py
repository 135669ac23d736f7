"""Read the facts a pasted text shows: the replicate client, its release, Python, the token sent.

A traceback pasted from another machine carries its own evidence, and the shell that explains
it knows nothing of that machine. :func:`read_text` reads, from the whole text:

* whether it shows the replicate Python client at all (its frames, its dotted names, its own
  message shapes): only then are short names such as ``ReplicateError`` read as replicate's;
* whether it is a JavaScript client's failure (``ApiError: Request to ...``, ``.js`` frames):
  the rules' fixes are Python code, so those texts are left alone;
* the client generation (frame paths, the ``ReplicateError Details:`` block of 1.x, the
  ``Error code: 401 - {`` line of 2.x) and the 0.14.0-0.15.3 releases that read the token at
  import (the frame of ``client.py``'s ``_request`` raising ``ReplicateError(resp.json()["detail"])``);
* the Python version of the frame paths (``python3.11/``, ``Python312\\``);
* the wrapper library it shows calling Replicate (LiteLLM, LangChain, LlamaIndex: ``_wrappers``).

:func:`sent_from_text` gives the ``sent.*`` facts from what the messages say about the token
(``You did not pass an authentication token``: nothing was sent; ``...a valid authentication
token``: a token was sent and refused; ``Token None``; a non-ASCII character the encoder
refused), when no header value is printed; :func:`text_snapshot` puts what the text shows into a
snapshot, over any environment's facts. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from ._marks import text_marks, unique
from ._shape import FactValue, char_class
from ._snapshot import Snapshot
from ._wrappers import text_wrapper

_REPLICATE = re.compile(
    r"[\\/]replicate[\\/]|(?<![\w.])replicate\.(?:exceptions|client|run|Client|Replicate|[A-Z]\w*Error)\b"
    r"|api\.replicate\.com|REPLICATE_API_TOKEN|ReplicateError Details:|\bimport replicate\b"
    r"|You did not pass (?:a valid|an) authentication token|bearer_token client option must be set"
)
_JAVASCRIPT = re.compile(
    # [ \t]*, not \s*: from each line start, \s* ran over every blank line that followed
    # (quadratic in a text of blank lines: 20,000 of them took seconds).
    r"ApiError: Request to |^[ \t]*at .*\.(?:js|ts|cjs|mjs):\d+|node_modules[\\/]|\bnode:internal\b",
    re.MULTILINE,
)
_OTHER_SDK_URL = re.compile(r"platform\.openai\.com|api\.openai\.com|anthropic\.com|huggingface\.co")
_TWO_X = re.compile(
    r"[\\/]replicate[\\/](?:_base_client|_client|_exceptions|_models|lib[\\/])"
    r"|(?<![\w.])replicate\.(?:APIStatusError|APIConnectionError|AuthenticationError|APIError|ReplicateError)\b"
    r"|bearer_token client option must be set"
)
_ONE_X = re.compile(r"ReplicateError Details:|ReplicateError\.from_response")
# 0.14.0-0.15.3: client.py's _request raises ReplicateError(resp.json()["detail"]) at line 72-75.
_IMPORT_ERA = re.compile(
    r"[\\/]replicate[\\/]client\.py\"?,? (?:line )?7[2-5]\b[^\n]*_request"
    r"|[\\/]replicate[\\/]client\.py:7[2-5], in (?:Client\.)?_request"
)
_TOKEN_NONE = re.compile(r"(?<![\w'\"])Token None\b")
_ZERO_X = re.compile(r"No API token provided|raise ReplicateError\(resp\.json\(\)\[\"detail\"\]\)")
_PYTHON = re.compile(r"[\\/]python(3\.\d{1,2})[\\/]|[\\/]Python3(\d{1,2})[\\/]", re.IGNORECASE)

#: What the API's answer says about the token the request carried.
_NONE_SENT = re.compile(r"You did not pass an authentication token|No API token provided|bearer_token client option")
_REFUSED = re.compile(r"You did not pass a valid authentication token")
_ENCODE = re.compile(r"codec can't encode character '(?P<char>\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|.)' in position")


@dataclass(frozen=True)
class TextEvidence:
    """What the whole pasted text shows, before any exception is read."""

    replicate: bool
    """It shows the replicate Python client (its frames, dotted names or own messages)."""
    javascript: bool
    """It is a JavaScript client's failure."""
    other_sdk: bool
    """It names another SDK's service (OpenAI, Anthropic, HuggingFace)."""
    generation: str | None
    """0.x, 1.x or 2.x, or ``None`` when the text does not show it."""
    import_era: bool
    """Its frames are those of 0.14.0-0.15.3, which read REPLICATE_API_TOKEN at import."""
    token_none: bool
    """It shows the header ``Token None`` that 0.14.0-0.15.2 send without a token."""
    python: str | None
    """The Python version of its frame paths (``3.11``), or ``None``."""
    shown_by: str
    """How the generation shows, for the evidence (``its frame paths``...); empty if unknown."""
    marks: tuple[str, ...] = ()
    """What in the whole text shows Replicate (:mod:`._marks`); empty: nothing does."""
    wrapper: str | None = None
    """The wrapper library it shows calling Replicate (``_wrappers``: frame paths, messages)."""


def read_text(text: str) -> TextEvidence:
    """The evidence of the whole text (ANSI codes and prefixes already removed)."""
    import_era = bool(_IMPORT_ERA.search(text))
    token_none = bool(_TOKEN_NONE.search(text))
    generation: str | None = None
    shown_by = ""
    if _TWO_X.search(text):
        generation, shown_by = "2.x", "its frames and exception names"
    elif _ONE_X.search(text):
        generation, shown_by = "1.x", "its `ReplicateError Details:` block"
    elif import_era or token_none:
        generation, shown_by = "0.x", "its frames (0.14.0-0.15.3)" if import_era else "its `Token None` header"
    elif _ZERO_X.search(text):
        generation, shown_by = "0.x", "its message"
    python = None
    found = _PYTHON.search(text)
    if found:
        python = found.group(1) or f"3.{found.group(2)}"
    return TextEvidence(
        replicate=bool(_REPLICATE.search(text)),
        javascript=bool(_JAVASCRIPT.search(text)),
        other_sdk=bool(_OTHER_SDK_URL.search(text)),
        generation=generation,
        import_era=import_era,
        token_none=token_none,
        python=python,
        shown_by=shown_by,
        marks=unique(text_marks(text)),
        wrapper=getattr(text_wrapper(text), "name", None),
    )


def _decode_char(raw: str) -> str:
    if raw.startswith(("\\u", "\\x")):
        return chr(int(raw[2:], 16))
    return raw


def sent_from_text(messages: Iterable[str], evidence: TextEvidence) -> dict[str, FactValue] | None:
    """The ``sent.*`` facts the messages establish without showing a header value, or ``None``.

    ``sent.source`` is ``text`` and ``sent.where`` is the sentence the evidence prints.
    """
    joined = "\n".join(messages)
    facts = dict(_UNKNOWN_SENT)  # each answer below sets where, state and problem
    encode = _ENCODE.search(joined)
    if encode is not None and (evidence.replicate or "header" in joined.lower()):
        kind = char_class(_decode_char(encode["char"]))
        facts.update(
            {
                "sent.state": "set",
                "sent.problem": "non_ascii",
                "sent.non_ascii": kind,
                "sent.where": (
                    f"the token sent holds a {kind}, which the HTTP library cannot encode in a header "
                    "(the error names the character; the text does not show the token)"
                ),
            }
        )
        return facts
    if evidence.token_none or _NONE_SENT.search(joined):
        before = "No API token provided" in joined or "bearer_token client option" in joined
        where = (
            "the error says the client found no token, before any request"
            if before
            else "the text shows the header `Token None`: the client had no token"
            if evidence.token_none
            else "the API's answer says the request carried no token"
        )
        facts.update({"sent.state": "unset", "sent.problem": "unset", "sent.where": where})
        return facts
    if _REFUSED.search(joined):
        facts.update(
            {
                "sent.state": "set",
                "sent.problem": "unknown",
                "sent.where": (
                    "the API's answer says the request carried a token and refused it (the text does "
                    "not show the token, so its shape is unknown)"
                ),
            }
        )
        return facts
    return None


_UNKNOWN_SENT: Mapping[str, FactValue] = MappingProxyType(
    {
        "sent.source": "text",
        "sent.where": "",
        "sent.origin": "unknown",
        "sent.state": "unknown",
        "sent.problem": "unknown",
        "sent.length": None,
        "sent.whitespace": "none",
        "sent.trailing": None,
        "sent.line_break": False,
        "sent.quoted": False,
        "sent.scheme_prefixed": False,
        "sent.r8_prefix": False,
        "sent.well_formed": False,
        "sent.non_ascii": None,
        "sent.non_ascii_at": None,
    }
)


def text_snapshot(snapshot: Snapshot, evidence: TextEvidence, here: bool) -> Snapshot:
    """``snapshot`` with the facts the text shows, which take precedence over any environment's."""
    facts = dict(snapshot.facts)
    if evidence.generation is not None:
        facts["client.generation"] = evidence.generation
    if evidence.import_era or evidence.token_none:
        facts["client.reads_token_at_import"] = True
    if evidence.python is not None:
        facts["python.version"] = evidence.python
    elif not here:
        facts["python.version"] = None
    if facts.get("sent.source") not in ("message", "text"):  # no header value (masked or not) in the text
        sent = sent_from_text((info.message for info in snapshot.exceptions), evidence)
        if sent is not None and here and sent["sent.problem"] == "unknown" and facts.get("token.state") != "unset":
            # A token was sent and refused, the text does not show it, and this shell's variable
            # holds one: presume it is the one sent, as for a live failure that shows nothing.
            sent = None
        if sent is not None:
            facts.update(sent)
            if sent["sent.state"] == "unset" and "answer" in str(sent["sent.where"]):
                facts["token.sent"] = "absent"
        elif not here:
            facts.update(_UNKNOWN_SENT)
    python = evidence.python or snapshot.python_version
    marks = unique(snapshot.replicate_marks + evidence.marks)
    return replace(
        snapshot,
        facts=MappingProxyType(facts),
        python_version=python,
        replicate_marks=marks,
        pasted=True,
        text_generation=evidence.generation,
    )
