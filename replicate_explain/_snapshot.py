"""Step one of the pipeline: turn an exception and an environment into a plain, redacted Snapshot.

A :class:`Snapshot` holds what the matcher needs and nothing secret: the exception chain as
dotted class names, redacted messages and a few attributes (extracted here); facts about the
token and the environment (its state, length and shape, never its value: ``_facts``); the
installed client version (read from package metadata, without importing ``replicate``).
Standard library only.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field
from types import MappingProxyType

from . import _credential, _marks, _wrappers
from ._callsite import CallSite, find_call_site
from ._common import CLIENT_DISTRIBUTIONS, python_version, replicate_dirs
from ._facts import TOKEN_VARIABLE, FactValue, add_extra_facts, ci_facts, find_dotenv, token_facts
from ._frozen import frozen
from ._inclient import in_replicate as _in_replicate
from ._mask import Redactor
from ._shape import masked_facts, masked_value

#: Attributes of client exceptions worth matching on (0.x/1.x ReplicateError, 2.x APIStatusError).
ATTRIBUTES = ("status", "status_code", "title", "detail", "code")
#: Top-level packages whose exceptions can carry a Replicate authentication failure.
RELEVANT_PACKAGES = ("replicate", "httpx", "httpcore", "h11", "requests", "urllib3")
MAX_CHAIN = 32
MAX_MESSAGE = 4000
_SCAN_LIMIT = 20000


@frozen
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


@frozen
class Snapshot:
    """Everything the matcher may look at, with no secret in it."""

    exceptions: tuple[ExceptionInfo, ...]
    facts: Mapping[str, FactValue]
    client_version: str | None
    python_version: str
    call_site: CallSite | None = None
    """The user's line that made the failing call (see :mod:`._callsite`), if known."""
    replicate_marks: tuple[str, ...] = ()
    """What in the failure shows Replicate (:mod:`._marks`); empty: nothing does, and the
    matcher explains nothing (``_matcher.shows_replicate``)."""
    pasted: bool = False
    """Read from pasted text (``_pasted``): the code shown is for the generation the text shows."""
    text_generation: str | None = None
    """The client generation the pasted text shows (``0.x``, ``1.x``, ``2.x``), or ``None``."""

    @property
    def relevant(self) -> bool:
        """Whether the failure touches replicate or its HTTP stack at all (a cheap pre-filter).

        Not when another library's client raised it: an HTTP-stack error under, say,
        ``openai.APIConnectionError`` and nothing of replicate's is that library's failure.
        A wrapper's Replicate failure (``wrapper.name``, :mod:`._wrappers`) is relevant.
        """
        if self.facts.get("wrapper.name") is not None:
            return True
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
    if _wrappers.live_wrapper(iter_chain(exc)) is not None:
        return True
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


def client_version() -> str | None:
    """The ``replicate`` version: the loaded client's (0.x and 1.x keep the release their
    metadata said at import in ``replicate.__about__``: right even after an upgrade on disk, and
    free), else the installed one's from package metadata (``replicate`` is not imported)."""
    loaded = getattr(sys.modules.get("replicate.__about__"), "__version__", None)
    if isinstance(loaded, str) and loaded:
        return loaded
    from importlib import metadata

    for dist in CLIENT_DISTRIBUTIONS:
        try:
            return metadata.version(dist)
        except Exception:
            continue
    return None


def client_facts(version: str | None) -> dict[str, FactValue]:
    """``client.generation`` and ``client.reads_token_at_import`` of an installed release."""
    if version is None:
        return {"client.generation": None, "client.reads_token_at_import": False}
    from ._common import version_in

    major = version.split(".", 1)[0]
    return {
        "client.generation": f"{major}.x" if major in ("0", "1", "2") else None,
        "client.reads_token_at_import": version_in(">=0.14.0,<=0.15.3", version),
    }


def take_snapshot(
    exc: BaseException,
    environ: Mapping[str, str] | None = None,
    *,
    cwd: str | None = None,
    version: str | None = "detect",
    extra_facts: Mapping[str, FactValue] | None = None,
) -> Snapshot:
    """Build the :class:`Snapshot` of ``exc`` in ``environ`` (default: ``os.environ``).

    ``extra_facts`` holds the :data:`~replicate_explain._facts.ADAPTER_FACTS` an adapter observed (``ValueError`` for
    any other name).
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    redactor = Redactor.from_environ(env)
    chain = list(iter_chain(exc))
    infos = tuple(exception_info(item, redactor) for item in chain)
    facts = token_facts(env)
    facts["token.sent"] = _credential.token_sent_fact(chain, env.get(TOKEN_VARIABLE))
    facts.update(_credential.variable_facts(env))
    try:
        facts.update(_credential.sent_facts(chain, env))
    except Exception:  # never let a strange frame or object break the explanation
        facts.update(_credential.describe(None, None, env))
    wrapper = _wrappers.live_wrapper(chain)
    if wrapper is not None and wrapper.exception_package is not None:
        # A wrapper that makes its own HTTP call (LiteLLM) masks the request its error carries:
        # the header read there is not what was sent.
        facts.update(_credential.describe(None, None, env))
    passed: FactValue = "unknown"
    ignored: FactValue = "unknown"
    if wrapper is not None:
        passed = _wrappers.token_passed(wrapper, chain)
        try:
            sent, source, _, _ = _credential.observe(chain)
            if source in ("header", "client") and not isinstance(sent, tuple):  # a tuple: facts only
                ignored = _wrappers.token_ignored(wrapper, chain, sent)
        except Exception:
            pass
    facts.update(_wrappers.wrapper_facts(wrapper, env, observed=True, passed=passed, ignored=ignored))
    try:
        dotenv = find_dotenv(cwd if cwd is not None else os.getcwd())
    except OSError:
        dotenv = None
    facts["dotenv.defines_token"] = dotenv is not None
    facts["dotenv.path"] = dotenv
    resolved = client_version() if version == "detect" else version
    facts["client.installed"] = resolved is not None
    facts.update(client_facts(resolved))
    facts["env.observed"] = True
    facts.update(ci_facts(env))
    python = python_version()
    facts["python.version"] = python
    add_extra_facts(facts, extra_facts)
    call_site = find_call_site(exc, redactor, cwd=cwd, replicate_dirs=replicate_dirs())
    marks = _info_marks(infos, facts) + _live_marks(chain)
    return Snapshot(infos, MappingProxyType(facts), resolved, python, call_site, _marks.unique(marks))


def _info_marks(infos: Iterable[ExceptionInfo], facts: Mapping[str, FactValue]) -> list[str]:
    marks = [m for info in infos for m in _marks.exception_marks(info.types, info.message, info.in_replicate)]
    # Only a credential seen in the failure (its header, message, client): not REPLICATE_API_TOKEN.
    seen = facts.get("sent.source") not in (None, "variable")
    return marks + ([_marks.CREDENTIAL] if seen and facts.get("sent.r8_prefix") is True else [])


def _live_marks(chain: list[BaseException]) -> list[str]:
    """Marks only a live failure shows: the modules of its frames, the host of its request."""
    marks: list[str] = []
    for exc in chain:
        tb, steps = exc.__traceback__, 0
        while tb is not None and steps < 200:
            marks += _marks.module_marks([str(tb.tb_frame.f_globals.get("__name__", ""))])
            tb, steps = tb.tb_next, steps + 1
        try:
            url = str(getattr(getattr(exc, "request", None), "url", "") or "")
        except Exception:  # httpx raises RuntimeError from ``.request`` when unset
            url = ""
        marks += [_marks.API] if re.match(r"[a-z]+://(?:[\w.-]+\.)?replicate\.com(?:[:/]|$)", url) else []
    return marks


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
    variable_known: bool = True,
    wrapper: str | None = None,
    wrapper_observed: Mapping[str, FactValue] | None = None,
) -> Snapshot:
    """Build a :class:`Snapshot` from described exceptions (rule ``cases`` and tests).

    ``dotenv`` names a .env file that defines the token (instead of looking from ``cwd``).
    ``variable_known=False``: ``environ`` is not an observed environment (pasted text read on
    its own), so ``env.observed`` is false and a credential shown is not presumed to come from code.
    ``wrapper`` names the wrapper library the frames show (:data:`._wrappers.BY_NAME`); without it,
    the wrapper an exception's name and message show, if any. ``wrapper_observed``: the
    ``wrapper.token_passed`` / ``wrapper.token_ignored`` a live failure would have observed.
    """
    facts = token_facts(environ)
    facts["token.sent"] = sent
    facts.update(_credential.variable_facts(environ))
    shown = next(
        (c for c in map(_credential.message_credential, (i.message for i in exceptions)) if c is not None), None
    )
    masked = masked_value(shown) if shown is not None else None
    if masked is not None:  # a token masked before the text was posted: no shape to read
        facts.update(masked_facts(shown or "", masked), **{"call.token_keyword": None})
    elif shown is not None:
        facts.update(_credential.describe(shown, "message", environ, variable_known=variable_known))
    else:
        facts.update(_credential.describe(None, "header" if sent == "absent" else None, environ))
    if dotenv is None and cwd is not None:
        dotenv = find_dotenv(cwd)
    facts["dotenv.defines_token"] = dotenv is not None
    facts["dotenv.path"] = dotenv
    facts["client.installed"] = client is not None
    facts.update(client_facts(client))
    facts["env.observed"] = variable_known
    facts.update(ci_facts(environ))
    found = _wrappers.BY_NAME.get(wrapper) if wrapper is not None else None
    if found is None:
        found = next(
            (w for w in (_wrappers.described_wrapper(i.types, i.message) for i in exceptions) if w is not None), None
        )
    seen = wrapper_observed or {}
    facts.update(
        _wrappers.wrapper_facts(
            found,
            environ,
            observed=variable_known,
            passed=seen.get("wrapper.token_passed", "unknown"),
            ignored=seen.get("wrapper.token_ignored", "unknown"),
        )
    )
    resolved_python = python or python_version()
    facts["python.version"] = resolved_python
    add_extra_facts(facts, extra_facts)
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
    marks = _marks.unique(_info_marks(exceptions, facts))
    return Snapshot(cleaned, MappingProxyType(facts), client, resolved_python, replicate_marks=marks)
