"""Step one of the pipeline: turn an exception and an environment into plain, redacted facts.

A :class:`Snapshot` holds what the matcher needs and nothing secret: the exception chain as
dotted class names, redacted messages and a few attributes; facts about the token (its state,
length and shape, never its value); the installed client version (read from package metadata,
without importing ``replicate``). Standard library only.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType, MappingProxyType, ModuleType, TracebackType
from typing import Union

from . import _credential
from ._common import CLIENT_DISTRIBUTIONS, python_version, same_secret, split_credential
from ._redact import SECRET_VARIABLES, Redactor

FactValue = Union[str, int, bool, None]

TOKEN_VARIABLE = "REPLICATE_API_TOKEN"
#: Variables users set instead of REPLICATE_API_TOKEN (field notes, section 6).
LOOKALIKE_VARIABLES = tuple(name for name in SECRET_VARIABLES if name != TOKEN_VARIABLE)
#: Attributes of client exceptions worth matching on (0.x/1.x ReplicateError, 2.x APIStatusError).
ATTRIBUTES = ("status", "status_code", "title", "detail", "code")
#: Top-level packages whose exceptions can carry a Replicate authentication failure.
RELEVANT_PACKAGES = ("replicate", "httpx", "httpcore", "h11", "requests", "urllib3")
MAX_CHAIN = 32
MAX_MESSAGE = 4000
_SCAN_LIMIT = 20000

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
        "python.version": "the running Python version",
        "notebook.shell_export": (
            "where this IPython session set REPLICATE_API_TOKEN outside the kernel: subshell "
            "(!export, !set, %%bash, os.system...) or profile (a shell profile the kernel never "
            "read); null otherwise or outside IPython"
        ),
        # The credential the failure actually used (replicate_explain/_credential.py).
        **_credential.FACTS,
    }
)

#: Facts only an adapter can observe (the IPython extension reads the session's history).
#: They are null unless the adapter passes them as ``extra_facts``; they never hold a secret.
ADAPTER_FACTS = ("notebook.shell_export",)


def _add_extra_facts(facts: dict[str, FactValue], extra: Mapping[str, FactValue] | None) -> None:
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


@dataclass(frozen=True)
class ExceptionInfo:
    """One exception of the chain, reduced to matchable, redacted facts."""

    types: tuple[str, ...]
    """Dotted class names along the MRO, most derived first (``module.QualName``)."""
    message: str
    """``str(exc)``, redacted and truncated."""
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Selected attributes (``status``, ``status_code``, ...) as redacted strings."""
    in_replicate: bool = False
    """Whether its traceback runs through the ``replicate`` package."""

    @property
    def name(self) -> str:
        """The dotted name of the exception's own class."""
        return self.types[0] if self.types else "builtins.BaseException"

    def headline(self) -> str:
        """The last line of a traceback for this exception, redacted."""
        return f"{self.name}: {self.message}" if self.message else self.name


@dataclass(frozen=True)
class Snapshot:
    """Everything the matcher may look at, with no secret in it."""

    exceptions: tuple[ExceptionInfo, ...]
    facts: Mapping[str, FactValue]
    client_version: str | None
    python_version: str

    @property
    def relevant(self) -> bool:
        """Whether the failure touches replicate or its HTTP stack at all (a cheap pre-filter).

        Not when another library's client raised it: an HTTP-stack error under, say,
        ``openai.APIConnectionError`` and nothing of replicate's is that library's failure.
        """
        if not any(
            info.in_replicate or "replicate" in {t.split(".", 1)[0] for t in info.types} for info in self.exceptions
        ) and any(_foreign(info.types) for info in self.exceptions):
            return False
        for info in self.exceptions:
            if info.in_replicate:
                return True
            for dotted in info.types:
                if dotted.split(".", 1)[0] in RELEVANT_PACKAGES:
                    return True
        return False


#: Python 3.9 has no ``sys.stdlib_module_names``: the standard modules an HTTP failure shows.
_STDLIB_39 = frozenset(
    [
        "asyncio",
        "codecs",
        "concurrent",
        "email",
        "encodings",
        "errno",
        "http",
        "io",
        "json",
        "os",
        "socket",
        "ssl",
        "urllib",
        "zlib",
    ]
)


def _foreign(types: tuple[str, ...]) -> bool:
    """Whether a class of this MRO comes from a third-party package outside replicate's stack."""
    stdlib = getattr(sys, "stdlib_module_names", _STDLIB_39)
    for dotted in types:
        top = dotted.split(".", 1)[0]
        if top not in RELEVANT_PACKAGES and top not in stdlib and top not in ("builtins", "__main__", "pydantic"):
            return True
    return False


def is_relevant(exc: BaseException) -> bool:
    """Whether ``exc`` or its chain touches replicate or its HTTP stack (the cheap pre-filter).

    The same test as :attr:`Snapshot.relevant`, without reading the environment, ``.env`` files
    or package metadata: adapters call it first, so unrelated exceptions stay cheap.
    """
    for item in iter_chain(exc):
        for cls in type(item).__mro__:
            if str(getattr(cls, "__module__", "")).split(".", 1)[0] in RELEVANT_PACKAGES:
                return True
        if _in_replicate(item.__traceback__, item):
            return True
    return False


def _dotted(cls: type) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls.__name__)}"


def public_names(dotted: str) -> tuple[str, ...]:
    """The dotted names a rule may use for a class: where it is defined, and its public alias.

    A class defined in a private module is known by the name its package exports it under:
    ``h11._util.LocalProtocolError`` is documented, and written in rules, as
    ``h11.LocalProtocolError``. Decided from the name alone, so a class read from a pasted
    traceback gets the same names as a live one.
    """
    module, _, name = dotted.rpartition(".")
    parts = module.split(".")
    if len(parts) > 1 and not parts[0].startswith("_") and any(part.startswith("_") for part in parts[1:]):
        return (dotted, f"{parts[0]}.{name}")
    return (dotted,)


def iter_chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable through ``__cause__``, ``__context__`` and exception groups.

    Outermost first, each once, at most ``MAX_CHAIN``; cycles are cut.
    """
    seen: set[int] = set()
    stack = [exc]
    count = 0
    while stack and count < MAX_CHAIN:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        count += 1
        yield current
        nested = getattr(current, "exceptions", None)
        if isinstance(nested, tuple) and any(_dotted(c).endswith("ExceptionGroup") for c in type(current).__mro__):
            stack.extend(e for e in nested if isinstance(e, BaseException))
        for link in (current.__cause__, current.__context__):
            if isinstance(link, BaseException):
                stack.append(link)


def _safe_str(value: object) -> str:
    try:
        text = str(value)
    except Exception:
        return f"<unprintable {type(value).__name__} object>"
    return text if isinstance(text, str) else ""


def _clip(text: str, redactor: Redactor) -> str:
    text = redactor(text[:_SCAN_LIMIT])
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + f"... [{len(text) - MAX_MESSAGE} more characters]"
    return text


def replicate_dirs() -> tuple[str, ...]:
    """The directories of the installed ``replicate`` package, each ending with a separator.

    Read from the imported package, or located without importing it (``find_spec`` on a
    top-level name runs no code). A user's own folder named ``replicate`` is not among them.
    """
    module = sys.modules.get("replicate")
    paths: list[str] = list(getattr(module, "__path__", None) or [])
    if not paths:
        try:
            from importlib.util import find_spec

            spec = find_spec("replicate")
            paths = list(spec.submodule_search_locations or []) if spec is not None else []
        except Exception:
            paths = []
    return tuple(os.path.join(os.path.abspath(path), "") for path in paths)


def in_replicate_package(filename: str, dirs: tuple[str, ...]) -> bool:
    """Whether ``filename`` is a file of the installed replicate package."""
    return bool(filename) and os.path.abspath(filename).startswith(dirs) if dirs else False


def _in_replicate(tb: TracebackType | None, exc: BaseException) -> bool:
    dirs = replicate_dirs()
    steps = 0
    last = None
    while tb is not None and steps < 200:
        if in_replicate_package(tb.tb_frame.f_code.co_filename, dirs):
            return True
        last = tb
        tb = tb.tb_next
        steps += 1
    source = getattr(exc, "filename", None)  # SyntaxError raised while importing replicate
    if isinstance(source, str) and in_replicate_package(source, dirs):
        return True
    return last is not None and _calls_replicate_class(last, exc)


_UNEXPECTED_KEYWORD = re.compile(r"^(?:(?P<cls>\w+)\.)?__init__\(\) got an unexpected keyword argument")
_CALL = re.compile(r"(?:\b(?P<owner>[A-Za-z_]\w*)\s*\.\s*)?\b(?P<name>[A-Za-z_]\w*)\s*\(")
_CLIENT_CLASSES = ("Client", "Replicate", "AsyncReplicate", "AsyncClient")


def _from_replicate(value: object) -> bool:
    return str(getattr(value, "__module__", "")).split(".", 1)[0] == "replicate"


def _calls_replicate_class(tb: TracebackType, exc: BaseException) -> bool:
    """Whether ``exc`` is the TypeError of building a replicate client with a wrong keyword.

    That TypeError is raised in the caller's frame before the client's ``__init__`` runs, so
    no traceback frame is inside replicate. We resolve what the failing line calls in that
    frame's scope (module attributes are read from ``vars()``, never through ``__getattr__``)
    and check the class is replicate's and has the name the message gives (Python 3.9 gives
    none). Without the source line, every class of that name the frame can see must be
    replicate's, so that ``httpx.Client(bearer_token=...)`` or another SDK's ``Client`` next to
    ``import replicate`` is not mistaken for it.
    """
    if not isinstance(exc, TypeError):
        return False
    found = _UNEXPECTED_KEYWORD.match(_safe_str(exc))
    if found is None:
        return False
    names = (found.group("cls"),) if found.group("cls") else _CLIENT_CLASSES
    frame = tb.tb_frame
    try:
        scopes = (frame.f_locals, frame.f_globals)

        def lookup(name: str) -> object:
            for scope in scopes:
                if name in scope:
                    return scope[name]
            return None

        def member(owner: object, name: str) -> object:
            return vars(owner).get(name) if isinstance(owner, ModuleType) else None

        import linecache

        line = linecache.getline(frame.f_code.co_filename, tb.tb_lineno)
        called = []
        for call in _CALL.finditer(line):
            owner = call.group("owner")
            name = call.group("name")
            target = member(lookup(owner), name) if owner else lookup(name)
            if isinstance(target, type) and target.__name__ in names:
                called.append(target)
        if called:
            return any(_from_replicate(target) for target in called)
        visible = []
        for scope in scopes:
            for value in list(scope.values())[:5000]:
                if isinstance(value, type) and value.__name__ in names:
                    visible.append(value)
                elif isinstance(value, ModuleType):
                    visible.extend(
                        item
                        for item in (member(value, n) for n in _CLIENT_CLASSES)
                        if isinstance(item, type) and item.__name__ in names
                    )
        return bool(visible) and all(_from_replicate(value) for value in visible)
    except Exception:
        return False


def _request_headers(holder: object) -> object:
    """``holder.request.headers`` (httpx and requests objects alike), or ``None``."""
    try:
        request = getattr(holder, "request", None)
        return getattr(request, "headers", None)
    except Exception:  # httpx raises RuntimeError from ``.request`` when unset
        return None


def _response_headers(tb: TracebackType | None) -> object:
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
            headers = _request_headers(candidate) if candidate is not None else None
            if headers is not None:
                return headers
    return None


def _sent_credential(exc: BaseException) -> str | None:
    """The credential in the Authorization header of the request behind ``exc``, if known.

    ``""`` when the request is known and carried no Authorization header. 2.x and httpx
    exceptions have ``.request``; 0.x and 1.x keep the response in the raising frame.
    """
    headers = _request_headers(exc)
    if headers is None:
        headers = _response_headers(exc.__traceback__)
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


def exception_info(exc: BaseException, redactor: Redactor) -> ExceptionInfo:
    """Reduce one exception to an :class:`ExceptionInfo`."""
    types = tuple(name for cls in type(exc).__mro__ if cls is not object for name in public_names(_dotted(cls)))
    attributes: dict[str, str] = {}
    for name in ATTRIBUTES:
        try:
            value = getattr(exc, name, None)
        except Exception:
            continue
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            attributes[name] = _clip(str(value), redactor)
    return ExceptionInfo(
        types=types,
        message=_clip(_safe_str(exc), redactor),
        attributes=MappingProxyType(attributes),
        in_replicate=_in_replicate(exc.__traceback__, exc),
    )


def _sent_fact(chain: list[BaseException], raw: str | None) -> str:
    sent = None
    for exc in chain:
        sent = _sent_credential(exc)
        if sent is not None:
            break
    if sent is None:
        return "unknown"
    if sent in ("", "None"):
        return "absent"
    if raw is None:
        return "differs"
    return "matches" if same_secret(sent, raw) else "differs"


def _dotenv_value(value: str) -> bool:
    """Whether the right-hand side of a .env assignment holds something (not blank, not ``""``)."""
    value = value.strip()
    if value[:1] in ("'", '"'):
        return bool(value[1:].split(value[0], 1)[0].strip())
    return bool(value.split(" #", 1)[0].strip()) and not value.startswith("#")


def find_dotenv(start: str) -> str | None:
    """The nearest ``.env`` in ``start`` or a parent directory that gives the token a value."""
    directory = os.path.abspath(start)
    for _ in range(64):
        candidate = os.path.join(directory, ".env")
        try:
            with open(candidate, encoding="utf-8", errors="replace") as handle:
                head = handle.read(65536)
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


def _trailing_kind(raw: str) -> str | None:
    if raw.endswith("\r\n"):
        return "crlf"
    last = raw[-1:]
    return {"\n": "newline", "\r": "carriage return", " ": "space", "\t": "tab"}.get(
        last, "whitespace" if last.isspace() else None
    )


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
        facts["token.trailing"] = _trailing_kind(raw) if stripped else None
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


def client_version() -> str | None:
    """The installed ``replicate`` version, from package metadata (``replicate`` is not imported)."""
    from importlib import metadata

    for dist in CLIENT_DISTRIBUTIONS:
        try:
            return metadata.version(dist)
        except Exception:
            continue
    return None


def take_snapshot(
    exc: BaseException,
    environ: Mapping[str, str] | None = None,
    *,
    cwd: str | None = None,
    version: str | None = "detect",
    extra_facts: Mapping[str, FactValue] | None = None,
) -> Snapshot:
    """Build the :class:`Snapshot` of ``exc`` in ``environ`` (default: ``os.environ``).

    ``extra_facts`` holds the :data:`ADAPTER_FACTS` an adapter observed (``ValueError`` for
    any other name).
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    redactor = Redactor.from_environ(env)
    chain = list(iter_chain(exc))
    infos = tuple(exception_info(item, redactor) for item in chain)
    facts = token_facts(env)
    facts["token.sent"] = _sent_fact(chain, env.get(TOKEN_VARIABLE))
    facts.update(_credential.variable_facts(env))
    try:
        facts.update(_credential.sent_facts(chain, env))
    except Exception:  # never let a strange frame or object break the explanation
        facts.update(_credential.describe(None, None, env))
    try:
        dotenv = find_dotenv(cwd if cwd is not None else os.getcwd())
    except OSError:
        dotenv = None
    facts["dotenv.defines_token"] = dotenv is not None
    facts["dotenv.path"] = dotenv
    resolved = client_version() if version == "detect" else version
    facts["client.installed"] = resolved is not None
    python = python_version()
    facts["python.version"] = python
    _add_extra_facts(facts, extra_facts)
    return Snapshot(infos, MappingProxyType(facts), resolved, python)


def snapshot_from_data(
    exceptions: list[ExceptionInfo],
    environ: Mapping[str, str],
    client: str | None,
    *,
    cwd: str | None = None,
    python: str | None = None,
    sent: str = "unknown",
    dotenv: str | None = None,
    extra_facts: Mapping[str, FactValue] | None = None,
) -> Snapshot:
    """Build a :class:`Snapshot` from described exceptions (rule ``cases`` and tests).

    ``dotenv`` names a .env file that defines the token (instead of looking from ``cwd``).
    """
    facts = token_facts(environ)
    facts["token.sent"] = sent
    facts.update(_credential.variable_facts(environ))
    shown = next(
        (c for c in map(_credential.message_credential, (i.message for i in exceptions)) if c is not None), None
    )
    if shown is not None:
        facts.update(_credential.describe(shown, "message", environ))
    else:
        facts.update(_credential.describe(None, "header" if sent == "absent" else None, environ))
    if dotenv is None and cwd is not None:
        dotenv = find_dotenv(cwd)
    facts["dotenv.defines_token"] = dotenv is not None
    facts["dotenv.path"] = dotenv
    facts["client.installed"] = client is not None
    resolved_python = python or python_version()
    facts["python.version"] = resolved_python
    _add_extra_facts(facts, extra_facts)
    redactor = Redactor.from_environ(environ)
    cleaned = tuple(
        ExceptionInfo(
            info.types,
            _clip(info.message, redactor),
            MappingProxyType({k: _clip(v, redactor) for k, v in info.attributes.items()}),
            info.in_replicate,
        )
        for info in exceptions
    )
    return Snapshot(cleaned, MappingProxyType(facts), client, resolved_python)
