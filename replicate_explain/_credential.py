"""Facts about the credential a failure actually sent (or was about to send), never its value.

The variable is only one place a token comes from: code passes ``Client(api_token=...)`` or
``Replicate(bearer_token=...)``, libraries read their own settings. The failure itself tells
which credential was used: the request carried by the exception chain (its ``Authorization``
header), the header value printed in ``Illegal header value b'...'`` / ``Invalid header value``
messages or held by a ``UnicodeEncodeError``, and the replicate client objects in the
traceback's frames. :func:`sent_facts` reads them, innermost evidence first, and describes the
credential with the same vocabulary as the variable (``sent.*``); when the failure shows
nothing, the credential is presumed to be REPLICATE_API_TOKEN's (``sent.source: variable``).

:func:`value_facts` and :func:`message_credential` take plain values, so the pasted-text path
can set the same facts from what a traceback shows. Values are read, described and dropped;
comparisons go through :func:`_common.same_secret` (digests). Standard library only.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from types import FrameType, TracebackType

from ._common import AUTH_SCHEMES, in_replicate_package, replicate_dirs, same_secret
from ._shape import FactValue, find_non_ascii, value_facts

TOKEN_VARIABLE = "REPLICATE_API_TOKEN"

#: Keywords that carry a token in some client (ours or another SDK's).
TOKEN_KEYWORDS = ("api_token", "bearer_token", "api_key", "apikey", "token", "auth_token", "access_token", "key")

#: The facts this module sets, with what they mean (merged into ``_snapshot.FACTS``).
FACTS: Mapping[str, str] = {
    "token.non_ascii": "REPLICATE_API_TOKEN holds a non-ASCII character: its class, e.g. 'zero-width space (U+200B)'",
    "token.non_ascii_at": "where that character is: leading, trailing, both ends or inside (null if none)",
    "sent.source": (
        "where the credential used by the failed call was observed: header (the request's "
        "Authorization header), message (the header value printed in the error), client (a replicate "
        "client in the traceback's frames), text (pasted text that says what was sent without showing "
        "it: 'You did not pass an authentication token', 'Token None', a character the encoder refused) "
        "or variable (nothing observed: REPLICATE_API_TOKEN)"
    ),
    "sent.where": "that credential, named for a person (e.g. 'the token your code passed to Client(api_token=...)')",
    "sent.origin": "where that credential came from: variable (REPLICATE_API_TOKEN), code (passed in code), unknown",
    "sent.state": "unset (no token), empty, blank (only whitespace), set, or unknown (pasted text that does not say)",
    "sent.length": "number of characters of the credential (without the client's scheme; null when unset)",
    "sent.whitespace": "stray ASCII whitespace: none, leading, trailing, both",
    "sent.trailing": "what it ends with when that is a problem: newline, crlf, space, tab",
    "sent.line_break": "it contains a line break",
    "sent.quoted": "it is wrapped in (or starts or ends with) quotes",
    "sent.scheme_prefixed": "it starts with 'Bearer ' or 'Token ' (the client adds its own)",
    "sent.r8_prefix": "trimmed, it starts with r8_",
    "sent.well_formed": "it is exactly r8_ and 37 letters and digits",
    "sent.non_ascii": "the class of its first non-ASCII character (null if none)",
    "sent.non_ascii_at": "where that character is: leading, trailing, both ends or inside (null if none)",
    "sent.problem": (
        "its first problem, in the order the client meets them: unset, empty, blank, non_ascii, "
        "whitespace, quoted, scheme, none, or unknown (pasted text that does not show the token)"
    ),
    "call.token_keyword": (
        "a token keyword (api_token, bearer_token, api_key...) passed to a replicate call that takes "
        "none, such as replicate.run(..., api_token=...): its name (null if none)"
    ),
}


def header_credential(header: str | None) -> str | None:
    """The credential inside an ``Authorization`` header value (the client's scheme removed).

    ``None`` for no header. Only the client's own scheme is removed, so ``Bearer Bearer r8_...``
    gives ``Bearer r8_...`` (a scheme-prefixed token).
    """
    if header is None:
        return None
    for scheme in AUTH_SCHEMES:
        if header[: len(scheme) + 1].lower() == scheme.lower() + " ":
            return header[len(scheme) + 1 :]
        if header.lower() == scheme.lower():
            return ""
    return header


# Illegal header value b'Bearer ...' (httpx, h11); Invalid header value b'...' (old requests,
# http.client); requests' InvalidHeader: "... in header value: 'Token ...'".
_HEADER_LITERAL = re.compile(
    r"(?:Illegal header value|Invalid header value|in header value:?)\s*"
    r"(?P<literal>b?'(?:[^'\\]|\\.)*'|b?\"(?:[^\"\\]|\\.)*\")",
    re.DOTALL,
)


def message_credential(message: str) -> str | None:
    """The credential in a header value an error message prints, or ``None`` if it shows none.

    Only the matched literal is evaluated (``ast.literal_eval`` of a string or bytes literal);
    bytes are read as latin-1, as HTTP sends them. The value must start with an auth scheme.
    """
    found = _HEADER_LITERAL.search(message)
    if found is None:
        return None
    literal = found.group("literal")
    if literal.startswith("b") and not literal.isascii():  # edited by a person ("r8_abc…"): read as text
        literal = literal[1:]
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    if not any(value[: len(s)].lower() == s.lower() for s in AUTH_SCHEMES):
        return None
    return header_credential(value)


def _headers_value(holder: object) -> tuple[bool, str | None]:
    """(found, Authorization value) of ``holder.request.headers``; found is False if unknown."""
    try:
        request = getattr(holder, "request", None)
    except Exception:  # httpx raises RuntimeError from ``.request`` when unset
        return False, None
    return _authorization(getattr(request, "headers", None))


def _authorization(headers: object) -> tuple[bool, str | None]:
    """(found, Authorization value) of a headers mapping; found is False if unknown."""
    if headers is None:
        return False, None
    try:
        value = headers.get("authorization") or headers.get("Authorization")  # type: ignore[attr-defined]
    except Exception:
        return False, None
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    return (True, value) if value is None or isinstance(value, str) else (False, None)


def _frames(tb: TracebackType | None) -> list[FrameType]:
    frames: list[FrameType] = []
    while tb is not None and len(frames) < 200:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _from_replicate(value: object) -> bool:
    return str(getattr(type(value), "__module__", "")).split(".", 1)[0] == "replicate"


def _client_token(value: object) -> tuple[bool, str | None, str] | None:
    """(explicit, token, keyword) of a replicate client object, read from its ``__dict__``.

    0.4-0.13 keep ``api_token``, 0.14-1.x ``_api_token`` (``None``: read from the variable at
    the request), 2.x ``bearer_token`` (always set; from the variable when not passed).
    """
    if not _from_replicate(value):
        return None
    try:
        attributes = vars(value)
    except TypeError:
        return None
    if "bearer_token" in attributes:
        token = attributes["bearer_token"]
        name = type(value).__name__.lstrip("_").replace("ModuleClient", "Replicate")
        return (True, token, f"{name}(bearer_token=...)") if isinstance(token, str) else None
    for key in ("_api_token", "api_token"):
        if key in attributes:
            token = attributes[key]
            if token is None:
                return (False, None, "Client(api_token=...)")
            return (True, token, "Client(api_token=...)") if isinstance(token, str) else None
    inner = attributes.get("_client")
    return _client_token(inner) if inner is not None and inner is not value else None


def _frame_scan(chain: Iterable[BaseException]) -> tuple[tuple[bool, str | None, str] | None, str | None]:
    """The innermost replicate client in the chain's frames, and a token keyword in kwargs."""
    client = None
    keyword = None
    for exc in chain:
        for frame in reversed(_frames(exc.__traceback__)):
            try:
                local = dict(frame.f_locals)
            except Exception:
                continue
            is_replicate = str(frame.f_globals.get("__name__", "")).split(".", 1)[0] == "replicate"
            for name, value in list(local.items())[:200]:
                if client is None and (name == "self" or _from_replicate(value)):
                    client = _client_token(value)
                if keyword is None and is_replicate and name in ("kwargs", "params") and isinstance(value, dict):
                    keyword = next((k for k in TOKEN_KEYWORDS if k in value), None)
        if client is not None and keyword is not None:
            break
    return client, keyword


#: What an error message showed of a credential, kept (as ``SEEN``) before the message was masked
#: at birth: the environment key, its ``value_facts``, whether it was the variable's (by digest).
Seen = tuple[object, ...]  # (environ key, facts as pairs, same as the variable); never the value
SEEN = "__replicate_explain_seen__"


def _seen(exc: BaseException) -> Seen | None:
    seen = getattr(exc, "__dict__", {}).get(SEEN)
    return seen if type(seen) is tuple and len(seen) == 3 else None


def note_message_credentials(chain: Iterable[BaseException], environ: Mapping[str, str]) -> None:
    """Before the messages of ``chain`` are masked: keep, on each exception whose message shows a
    credential, the facts of that credential (``SEEN``). Never raises."""
    for exc in chain:
        try:
            value = message_credential(str(exc)[:20000]) if _seen(exc) is None else None
            if value is not None:
                variable = environ.get(TOKEN_VARIABLE)
                same = variable is not None and same_secret(value, variable)
                setattr(exc, SEEN, (_environ_key(environ), tuple(value_facts(value).items()), same))
        except Exception:
            continue


def observe(chain: Iterable[BaseException]) -> tuple[str | Seen | None, str | None, str | None, str | None]:
    """(credential, source, client keyword, token keyword in a call) seen in the failure.

    ``credential`` is ``None`` with a source when the failure shows that no token was sent,
    ``(None, None, ...)`` when it shows nothing. The values never leave :func:`sent_facts`.
    """
    chain = list(chain)
    found: tuple[str | Seen | None, str] | None = None
    for exc in chain:
        ok, header = _headers_value(exc)
        if ok:
            found = (header_credential(header), "header")
            break
        if (
            isinstance(exc, UnicodeEncodeError)
            and isinstance(exc.object, str)
            and message_credential(f"Invalid header value {exc.object!r}") is not None
        ):
            found = (header_credential(exc.object), "header")
            break
    if found is None:
        for exc in chain:
            headers = response_headers(exc.__traceback__)
            if headers is not None:
                ok, header = _authorization(headers)
                if ok:
                    found = (header_credential(header), "header")
                    break
    if found is None:
        for exc in chain:
            seen = _seen(exc)
            if seen is not None:  # the message showed it before it was masked at birth
                found = (seen, "message")
                break
            try:
                text = str(exc)
            except Exception:
                continue
            value = message_credential(text[:20000])
            if value is not None:
                found = (value, "message")
                break
    client, keyword = _frame_scan(chain)
    label = client[2] if client is not None else None
    if client is not None and client[0] and (found is None or (found[0] is None and client[1] == "")):
        # A token of the client's own; or "" that 0.14-1.x drop, sending no header at all.
        found = (client[1], "client")
    if found is None:
        return None, None, label if client is not None and client[0] else None, keyword
    return found[0], found[1], label if client is not None and client[0] else None, keyword


#: Where :func:`remember` keeps, on an exception, the facts observed before it was masked.
REMEMBERED = "__replicate_explain_sent_facts__"


def sent_facts(chain: Iterable[BaseException], environ: Mapping[str, str]) -> dict[str, FactValue]:
    """The ``sent.*`` and ``call.token_keyword`` facts of a failure (see :data:`FACTS`).

    When the exception was masked at the source (``_birth.mask_exception``) in this environment, the facts
    :func:`remember` observed before that are used: the masked messages no longer show the
    credential's shape (``b'Bearer [REDACTED]\\n'``)."""
    chain = list(chain)
    remembered = getattr(chain[0], REMEMBERED, None) if chain else None
    if isinstance(remembered, tuple) and len(remembered) == 2 and remembered[0] == _environ_key(environ):
        return dict(remembered[1])
    credential, source, label, keyword = observe(chain)
    return describe(credential, source, environ, client_label=label, token_keyword=keyword)


def remember(chain: list[BaseException], environ: Mapping[str, str]) -> None:
    """Before ``chain`` is masked in place: keep its ``sent.*`` facts on its first exception
    (facts only, never the credential). Never raises."""
    try:
        if chain and getattr(chain[0], REMEMBERED, None) is None:
            facts = sent_facts(chain, environ)
            setattr(chain[0], REMEMBERED, (_environ_key(environ), tuple(facts.items())))
    except Exception:
        pass


def _environ_key(environ: Mapping[str, str]) -> tuple[int, bool]:
    """What the remembered facts depend on in the environment: the variable (by digest)."""
    variable = environ.get(TOKEN_VARIABLE)
    import hashlib

    digest = hashlib.sha256(variable.encode("utf-8", "surrogatepass")).digest() if variable is not None else b""
    return (hash(digest), variable is not None)


def describe(
    credential: str | Seen | None,
    source: str | None,
    environ: Mapping[str, str],
    *,
    client_label: str | None = None,
    token_keyword: str | None = None,
    variable_known: bool = True,
) -> dict[str, FactValue]:
    """Facts for a credential observed at ``source`` (``None``: nothing observed, so the variable).

    The pasted-text path calls this with what the text shows (e.g. ``message_credential``);
    ``variable_known=False`` when no environment is observed (the credential's origin is then
    unknown, not "code").
    """
    variable = environ.get(TOKEN_VARIABLE)
    if source is None:
        facts = value_facts(variable)
        facts["sent.source"] = "variable"
        facts["sent.origin"] = "variable"
        facts["sent.where"] = TOKEN_VARIABLE
    else:
        if isinstance(credential, tuple):  # Seen
            facts = dict(credential[1])  # type: ignore[call-overload]
            same = bool(credential[2]) and credential[0] == _environ_key(environ)
        else:
            facts = value_facts(credential)
            same = credential is not None and variable is not None and same_secret(credential, variable)
        facts["sent.source"] = source
        if same:
            origin = "variable"
        elif credential is not None and (client_label is not None or (variable is None and variable_known)):
            origin = "code"  # with the variable unset, a token sent can only come from code
        else:
            origin = "unknown"
        facts["sent.origin"] = origin
        if origin == "variable":
            facts["sent.where"] = TOKEN_VARIABLE
        elif origin == "code" and client_label is not None:
            facts["sent.where"] = f"the token your code passed to {client_label}"
        elif origin == "code":
            seen = "the error message" if source == "message" else "the Authorization header"
            facts["sent.where"] = f"the token your code passed to the client (seen in {seen})"
        elif source == "message":
            facts["sent.where"] = "the header value printed in the error"
        else:
            facts["sent.where"] = "the Authorization header sent"
    facts["call.token_keyword"] = token_keyword
    return facts


def variable_facts(environ: Mapping[str, str]) -> dict[str, FactValue]:
    """``token.non_ascii`` and ``token.non_ascii_at`` of REPLICATE_API_TOKEN."""
    variable = environ.get(TOKEN_VARIABLE)
    kind, where = find_non_ascii(variable) if variable is not None else (None, None)
    return {"token.non_ascii": kind, "token.non_ascii_at": where}


def request_headers(holder: object) -> object:
    """``holder.request.headers`` (httpx and requests objects alike), or ``None``."""
    try:
        request = getattr(holder, "request", None)
        return getattr(request, "headers", None)
    except Exception:  # httpx raises RuntimeError from ``.request`` when unset
        return None


def response_headers(tb: TracebackType | None) -> object:
    """The request headers of the HTTP response a 0.x/1.x client raised about, if any.

    Those clients raise ``ReplicateError`` next to the response (a local ``resp`` or
    ``response`` in a frame inside the replicate package), and the response keeps the
    request as it was sent. The innermost such frame wins.
    """
    frames: list[FrameType] = []
    while tb is not None and len(frames) < 200:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    dirs = replicate_dirs()
    for frame in reversed(frames):
        if not in_replicate_package(frame.f_code.co_filename, dirs):
            continue
        try:
            local = frame.f_locals
            candidates = [local.get(name) for name in ("resp", "response")]
        except Exception:
            continue
        for candidate in candidates:
            headers = request_headers(candidate) if candidate is not None else None
            if headers is not None:
                return headers
    return None


def sent_credential(exc: BaseException) -> str | None:
    """The credential in the Authorization header of the request behind ``exc``, if known.

    ``""`` when the request is known and carried no Authorization header. 2.x and httpx
    exceptions have ``.request``; 0.x and 1.x keep the response in the raising frame.
    """
    headers = request_headers(exc)
    if headers is None:
        headers = response_headers(exc.__traceback__)
    if headers is None:
        return None
    try:
        value = headers.get("authorization") or headers.get("Authorization")  # type: ignore[attr-defined]
    except Exception:
        return None
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    if not isinstance(value, str):
        return None
    scheme, _, credential = value.partition(" ")
    return credential if scheme.lower() in ("bearer", "token") else value


def token_sent_fact(chain: list[BaseException], raw: str | None) -> str:
    """The ``token.sent`` fact: whether the failed request sent no token, the variable's value
    (compared by digest) or another one; ``unknown`` when no request is in sight."""
    sent = None
    for exc in chain:
        sent = sent_credential(exc)
        if sent is not None:
            break
    if sent is None:
        return "unknown"
    if sent in ("", "None"):
        return "absent"
    if raw is None:
        return "differs"
    return "matches" if same_secret(sent, raw) else "differs"
