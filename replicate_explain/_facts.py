"""Environment facts: what the token variable, its look-alikes and .env files say, never a value.

Also the vocabulary of fact names rules may use (``FACTS``, ``ADAPTER_FACTS``).

Part of step one of the pipeline (``_snapshot`` adds the exception chain and the client
version). Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

from . import _credential, _wrappers
from ._common import read_regular_file, split_credential
from ._mask import SECRET_VARIABLES
from ._shape import FactValue as FactValue
from ._shape import trailing_kind

TOKEN_VARIABLE = "REPLICATE_API_TOKEN"
#: Variables users set instead of REPLICATE_API_TOKEN (field notes, section 6).
LOOKALIKE_VARIABLES = tuple(name for name in SECRET_VARIABLES if name != TOKEN_VARIABLE)

#: Every fact name a snapshot carries, with what it means; rules may only name these.
FACTS: Mapping[str, str] = MappingProxyType(
    {
        "token.state": "unset, empty, blank (only whitespace) or set",
        "token.length": "number of characters in the value (null when unset)",
        "token.whitespace": "where the set value has stray whitespace: none, leading, trailing, both",
        "token.trailing": "what the value ends with when that is a problem: newline, crlf, space, tab",
        "token.line_break": "the value contains a line break",
        "token.quoted": "the value is wrapped in (or starts or ends with) quotes",
        "token.scheme_prefixed": "the value starts with 'Bearer ' or 'Token '",
        "token.r8_prefix": "the value, trimmed, starts with r8_",
        "token.well_formed": "the value is exactly r8_ and 37 letters and digits",
        "token.lookalike": "name of a look-alike variable that is set (null if none)",
        "token.lookalike_set": "a look-alike variable is set (token.lookalike names it)",
        "token.sent": "what the failed request sent: absent, matches, differs or unknown",
        "dotenv.defines_token": "a .env file here or in a parent directory defines the token",
        "dotenv.path": "that .env file (null if none)",
        "client.installed": "the replicate package is installed",
        "client.generation": (
            "the client generation of the failure: 0.x, 1.x or 2.x (the installed release; for pasted "
            "text, what the text shows: frame paths, message shapes), null when unknown"
        ),
        "client.reads_token_at_import": (
            "the client is one of 0.14.0-0.15.3, which read REPLICATE_API_TOKEN once at import (for "
            "pasted text: its frames show that release line)"
        ),
        "env.observed": (
            "the token.* and dotenv.* facts describe a real environment: the failing process's, or "
            "this shell's with `explain --here`; false for pasted text read on its own (they then "
            "describe an empty environment and the evidence leaves them out)"
        ),
        "python.version": "the running Python version",
        "notebook.shell_export": (
            "where this IPython session set REPLICATE_API_TOKEN outside the kernel: subshell "
            "(!export, !set, %%bash, os.system...) or profile (a shell profile the kernel never "
            "read); null otherwise or outside IPython"
        ),
        "ci.fork_pull_request": (
            "GitHub Actions runs this for a pull request from a fork (GITHUB_EVENT_NAME=pull_request "
            "and the event's head repository is not its base repository), which GitHub gives no "
            "repository secrets"
        ),
        # The credential the failure actually used (replicate_explain/_credential.py).
        **_credential.FACTS,
        # The wrapper library the failure came through (replicate_explain/_wrappers.py).
        **_wrappers.FACTS,
    }
)

#: Facts only an adapter can observe (the IPython extension reads the session's history).
#: They are null unless the adapter passes them as ``extra_facts``; they never hold a secret.
ADAPTER_FACTS = ("notebook.shell_export",)


def add_extra_facts(facts: dict[str, FactValue], extra: Mapping[str, FactValue] | None) -> None:
    """Set the adapter facts: null by default, else the values in ``extra`` (validated)."""
    for name in ADAPTER_FACTS:
        facts[name] = None
    for name, value in (extra or {}).items():
        if name not in ADAPTER_FACTS:
            raise ValueError(
                f"unknown extra fact {name!r}; expected one of: {', '.join(ADAPTER_FACTS)} "
                "(the other facts are computed from the exception and the environment)"
            )
        if value is not None and not isinstance(value, (str, int, bool)):
            raise ValueError(
                f"extra fact {name!r} has a {type(value).__name__} value; expected a string, "
                "a number, a boolean or None"
            )
        facts[name] = value


def _dotenv_value(value: str) -> bool:
    """Whether the right-hand side of a .env assignment holds something (not blank, not ``""``)."""
    value = value.strip()
    if value[:1] in ("'", '"'):
        return bool(value[1:].split(value[0], 1)[0].strip())
    return bool(value.split(" #", 1)[0].strip()) and not value.startswith("#")


#: How much of a ``.env`` file is read: the head of a huge file is enough to find the token.
DOTENV_READ_LIMIT = 65536


def find_dotenv(start: str) -> str | None:
    """The nearest ``.env`` in ``start`` or a parent directory that gives the token a value."""
    directory = os.path.abspath(start)
    for _ in range(64):
        candidate = os.path.join(directory, ".env")
        try:  # a regular file only: a FIFO (1Password mounts .env as one) would block for ever
            head = read_regular_file(candidate, DOTENV_READ_LIMIT)[:DOTENV_READ_LIMIT].decode("utf-8", "replace")
        except OSError:
            head = ""
        for line in head.splitlines():
            stripped = line.strip()
            if stripped.startswith("export "):
                stripped = stripped[len("export ") :].lstrip()
            name, sep, value = stripped.partition("=")
            if sep and name.strip() == TOKEN_VARIABLE and _dotenv_value(value):
                return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return None


def token_facts(environ: Mapping[str, str]) -> dict[str, FactValue]:
    """Facts about REPLICATE_API_TOKEN in ``environ``: its shape, never its value."""
    raw = environ.get(TOKEN_VARIABLE)
    facts: dict[str, FactValue] = {
        name: False for name in FACTS if name.startswith("token.") and name not in _credential.FACTS
    }
    facts["token.lookalike"] = None
    facts["token.whitespace"] = "none"
    facts["token.trailing"] = None
    facts["token.sent"] = "unknown"
    if raw is None:
        facts["token.state"] = "unset"
        facts["token.length"] = None
    else:
        facts["token.length"] = len(raw)
        facts["token.state"] = "empty" if raw == "" else "blank" if not raw.strip() else "set"
        stripped = raw.strip()
        leading = bool(stripped) and raw[0].isspace()
        trailing = bool(stripped) and raw[-1].isspace()
        facts["token.whitespace"] = (
            "both" if leading and trailing else "leading" if leading else "trailing" if trailing else "none"
        )
        facts["token.line_break"] = "\n" in raw or "\r" in raw
        facts["token.trailing"] = (
            (trailing_kind(raw) or ("whitespace" if raw[-1:].isspace() else None)) if stripped else None
        )
        facts["token.quoted"] = bool(stripped) and (stripped[0] in "'\"" or stripped[-1] in "'\"")
        scheme, core = split_credential(raw)
        facts["token.scheme_prefixed"] = scheme is not None
        facts["token.r8_prefix"] = core.startswith("r8_")
        facts["token.well_formed"] = (
            len(raw) == 40 and raw.startswith("r8_") and raw[3:].isalnum() and raw[3:].isascii()
        )
    if facts["token.state"] in ("unset", "empty", "blank"):
        for name in LOOKALIKE_VARIABLES:
            if environ.get(name, "").strip():
                facts["token.lookalike"] = name
                facts["token.lookalike_set"] = True
                break
        else:
            for name in sorted(environ):
                if name != TOKEN_VARIABLE and name.upper().strip() == TOKEN_VARIABLE and environ[name].strip():
                    facts["token.lookalike"] = name
                    facts["token.lookalike_set"] = True
                    break
    return facts


def ci_facts(environ: Mapping[str, str]) -> dict[str, FactValue]:
    """Facts about the CI run: whether GitHub Actions runs a fork's pull request.

    Read from ``GITHUB_EVENT_NAME`` and the event payload GitHub writes to ``GITHUB_EVENT_PATH``
    (``pull_request.head.repo`` against ``pull_request.base.repo``; a deleted fork has no head
    repository). ``pull_request_target`` runs in the base repository, with its secrets: no fork.
    """
    fork = False
    path = environ.get("GITHUB_EVENT_PATH")
    if environ.get("GITHUB_ACTIONS") == "true" and environ.get("GITHUB_EVENT_NAME") == "pull_request" and path:
        try:
            import json

            with open(path, encoding="utf-8") as handle:
                pull = json.load(handle).get("pull_request") or {}
            head = (pull.get("head") or {}).get("repo")
            base = (pull.get("base") or {}).get("repo") or {}
            fork = head is None or head.get("full_name") != base.get("full_name")
        except (OSError, ValueError, AttributeError, TypeError):
            fork = False
    return {"ci.fork_pull_request": fork}
