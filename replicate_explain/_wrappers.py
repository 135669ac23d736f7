"""What the wrapper libraries that call Replicate show of a failure, and the variables they read.

Many Python users meet Replicate through a wrapper (LiteLLM, LangChain, LlamaIndex) rather
than the ``replicate`` client: LiteLLM calls the HTTP API itself and raises its own
``litellm.AuthenticationError`` with no replicate frame; LangChain refuses to build its
``Replicate`` LLM without a token (a pydantic ``ValidationError``); both LangChain and
LlamaIndex then call the replicate client's module-level functions, which read
``REPLICATE_API_TOKEN`` and nothing else. :data:`WRAPPERS` is that knowledge as data
(measured with litellm 1.110.2, langchain-community 0.4.2, llama-index-llms-replicate 0.7.0;
``docs/WRAPPERS.md`` has the sources): the modules of each, the text a failure prints, the
variables it reads in order. :data:`MARKERS` is every text marker, for a "shows Replicate" gate.

:func:`live_wrapper` finds the wrapper of a live exception chain, :func:`text_wrapper` that of a
pasted text, :func:`wrapper_facts` the ``wrapper.*`` facts (:data:`FACTS`). Values are read,
compared by digest and dropped. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import TracebackType

from ._common import same_secret
from ._frozen import frozen
from ._shape import FactValue

TOKEN_VARIABLE = "REPLICATE_API_TOKEN"


@frozen
class Wrapper:
    """One wrapper library: how its Replicate failures show, and where it finds the token."""

    name: str
    """The value of the ``wrapper.name`` fact (``litellm``)."""
    title: str
    """Its name for a person (``LiteLLM``)."""
    frame_modules: tuple[str, ...]
    """Modules (``__name__``) whose frames in a live traceback show the wrapper calling Replicate."""
    exception_package: str | None
    """The top-level package of the exceptions it raises itself, if it raises its own."""
    markers: tuple[str, ...]
    """Text that, in a message of its own exception, says the failure is Replicate's."""
    text: re.Pattern[str]
    """What shows the wrapper calling Replicate in a pasted text (frame paths, messages)."""
    variables: tuple[str, ...]
    """The environment variables it takes the token from, in the order it reads them."""
    keyword: str | None
    """The keyword that takes a token in code (``api_key``), if the wrapper has one."""
    keyword_frames: tuple[tuple[str, str], ...] = ()
    """(module, function) of the frames whose ``keyword`` local holds what the code passed."""
    instance_token: str | None = None
    """The attribute of the wrapper's object (``self`` in its frames) holding the token it was given."""
    uses_client: bool = True
    """Whether it calls Replicate through the ``replicate`` client (LiteLLM calls the HTTP API)."""


WRAPPERS: tuple[Wrapper, ...] = (
    # litellm/main.py _complete_replicate: api_key or litellm.replicate_key or litellm.api_key or
    # REPLICATE_API_KEY or REPLICATE_API_TOKEN; errors mapped in
    # litellm/litellm_core_utils/exception_mapping_utils.py (_map_replicate_exception).
    Wrapper(
        name="litellm",
        title="LiteLLM",
        frame_modules=("litellm.llms.replicate.",),
        exception_package="litellm",
        markers=("ReplicateException",),
        text=re.compile(r"\blitellm\b[^\n]*\bReplicateException\b|ReplicateException - [^\n]*\blitellm\b", re.I),
        variables=("REPLICATE_API_KEY", TOKEN_VARIABLE),
        keyword="api_key",
        # completion() takes api_key= in every release; 1.110 hands it to _complete_replicate.
        keyword_frames=(("litellm.main", "_complete_replicate"), ("litellm.main", "completion")),
        uses_client=False,
    ),
    # langchain_community/llms/replicate.py: validate_environment reads replicate_api_token= or
    # REPLICATE_API_TOKEN, then _create_prediction calls replicate.models.get(...) and
    # replicate.predictions.create(...) of the default client, which read REPLICATE_API_TOKEN.
    Wrapper(
        name="langchain",
        title="LangChain",
        frame_modules=("langchain_community.llms.replicate",),
        exception_package=None,
        markers=("Did not find replicate_api_token",),
        text=re.compile(
            r"langchain_community[\\/]llms[\\/]replicate\.py|Did not find replicate_api_token"
            r"|langchain_community\.llms(?:\.replicate)? import Replicate"
        ),
        variables=(TOKEN_VARIABLE,),
        keyword="replicate_api_token",
        instance_token="replicate_api_token",
    ),
    # llama_index/llms/replicate/base.py: no token field (an api_key= is dropped by pydantic);
    # stream_complete calls replicate.stream(...) of the default client.
    Wrapper(
        name="llama_index",
        title="LlamaIndex",
        frame_modules=("llama_index.llms.replicate",),
        exception_package=None,
        markers=(),
        text=re.compile(r"llama_index[\\/]llms[\\/]replicate[\\/]|llama_index\.llms\.replicate import Replicate"),
        variables=(TOKEN_VARIABLE,),
        keyword=None,
    ),
)

BY_NAME: Mapping[str, Wrapper] = {wrapper.name: wrapper for wrapper in WRAPPERS}

#: Every text marker of a wrapper's Replicate failure (for a "shows Replicate" gate over text).
MARKERS: tuple[str, ...] = tuple(marker for wrapper in WRAPPERS for marker in wrapper.markers)

#: The facts this module sets, with what they mean (merged into ``_facts.FACTS``).
FACTS: Mapping[str, str] = {
    "wrapper.name": (
        "the wrapper library the failure came through: litellm, langchain, llama_index (its frames, "
        "its exception, its message), null when none"
    ),
    "wrapper.token_state": (
        "whether one of the variables that wrapper reads holds a token: set, unset (none does), "
        "unknown (no wrapper, or the environment was not observed)"
    ),
    "wrapper.token_variable": "the variable the wrapper took its token from (the first it reads that is set), or null",
    "wrapper.variable_shadowed": (
        "a variable the wrapper reads before REPLICATE_API_TOKEN holds another value than "
        "REPLICATE_API_TOKEN (LiteLLM: REPLICATE_API_KEY), so the wrapper sent that one"
    ),
    "wrapper.token_passed": (
        "the code passed a token to the wrapper's keyword (LiteLLM: api_key=): true, false, or unknown (not observed)"
    ),
    "wrapper.token_ignored": (
        "the token the wrapper was given (LangChain: replicate_api_token= or the variable when it was "
        "built) is not what the request carried, compared by digest: true, false, or unknown"
    ),
}


def _module_of(tb: TracebackType) -> str:
    name = tb.tb_frame.f_globals.get("__name__")
    return name if isinstance(name, str) else ""


def _tracebacks(chain: Iterable[BaseException]) -> Iterable[TracebackType]:
    for exc in chain:
        tb = exc.__traceback__
        steps = 0
        while tb is not None and steps < 200:
            yield tb
            tb = tb.tb_next
            steps += 1


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)[:20000]
    except Exception:
        return ""


def exception_shows(wrapper: Wrapper, exc: BaseException) -> bool:
    """Whether ``exc`` is the wrapper's own exception about a Replicate failure."""
    if wrapper.exception_package is not None:
        own = any(
            str(getattr(cls, "__module__", "")).split(".", 1)[0] == wrapper.exception_package
            for cls in type(exc).__mro__
        )
        if own and (getattr(exc, "llm_provider", None) == "replicate" or _marked(wrapper, _safe_str(exc))):
            return True
    return bool(wrapper.markers) and isinstance(exc, ValueError) and _marked(wrapper, _safe_str(exc))


def _marked(wrapper: Wrapper, message: str) -> bool:
    return any(marker in message for marker in wrapper.markers)


def live_wrapper(chain: Iterable[BaseException]) -> Wrapper | None:
    """The wrapper a live exception chain came through, or ``None``."""
    items = list(chain)
    for exc in items:
        for wrapper in WRAPPERS:
            if exception_shows(wrapper, exc):
                return wrapper
    for tb in _tracebacks(items):
        module = _module_of(tb)
        for wrapper in WRAPPERS:
            if any(module == m.rstrip(".") or module.startswith(m.rstrip(".") + ".") for m in wrapper.frame_modules):
                return wrapper
    return None


def described_wrapper(types: Iterable[str], message: str) -> Wrapper | None:
    """The wrapper an exception described by name and message shows (cases, pasted lines)."""
    names = list(types)
    for wrapper in WRAPPERS:
        package = wrapper.exception_package
        if package is not None and any(name.split(".", 1)[0] == package for name in names):
            if _marked(wrapper, message):
                return wrapper
        elif wrapper.markers and _marked(wrapper, message):
            return wrapper
    return None


def text_wrapper(text: str) -> Wrapper | None:
    """The wrapper a pasted text shows calling Replicate, or ``None``."""
    for wrapper in WRAPPERS:
        if wrapper.text.search(text):
            return wrapper
    return None


def token_passed(wrapper: Wrapper, chain: Iterable[BaseException]) -> FactValue:
    """Whether the code passed a token to the wrapper's keyword (read from its frame), or ``unknown``.

    Only the truth of the local is read; the value is never kept.
    """
    if wrapper.keyword is None or not wrapper.keyword_frames:
        return "unknown"
    for tb in _tracebacks(chain):
        frame = tb.tb_frame
        if (_module_of(tb), frame.f_code.co_name) in wrapper.keyword_frames:
            try:
                value = frame.f_locals.get(wrapper.keyword)
            except Exception:
                return "unknown"
            return bool(value)
    return "unknown"


def token_ignored(wrapper: Wrapper, chain: Iterable[BaseException], sent: str | None) -> FactValue:
    """Whether the token the wrapper's object holds is not ``sent`` (the credential the request
    carried, ``None``: none), compared by digest; ``unknown`` when the object is not in the frames.

    Values are compared and dropped, never kept.
    """
    if wrapper.instance_token is None:
        return "unknown"
    for tb in _tracebacks(chain):
        if not any(_module_of(tb).startswith(m.rstrip(".")) for m in wrapper.frame_modules):
            continue
        try:
            value: object = getattr(tb.tb_frame.f_locals.get("self"), wrapper.instance_token, None)
            secret = getattr(value, "get_secret_value", None)  # a pydantic SecretStr
            if callable(secret):
                value = secret()
        except Exception:
            continue
        if isinstance(value, str) and value.strip():
            return sent is None or not same_secret(value, sent)
    return "unknown"


def wrapper_facts(
    wrapper: Wrapper | None,
    environ: Mapping[str, str],
    *,
    observed: bool,
    passed: FactValue = "unknown",
    ignored: FactValue = "unknown",
) -> dict[str, FactValue]:
    """The ``wrapper.*`` facts for ``wrapper`` in ``environ`` (see :data:`FACTS`)."""
    facts: dict[str, FactValue] = {
        "wrapper.name": wrapper.name if wrapper is not None else None,
        "wrapper.token_state": "unknown",
        "wrapper.token_variable": None,
        "wrapper.variable_shadowed": False,
        "wrapper.token_passed": passed if wrapper is not None else "unknown",
        "wrapper.token_ignored": ignored if wrapper is not None else "unknown",
    }
    if wrapper is None or not observed:
        return facts
    found = next((name for name in wrapper.variables if environ.get(name)), None)
    facts["wrapper.token_state"] = "set" if found is not None else "unset"
    facts["wrapper.token_variable"] = found
    token = environ.get(TOKEN_VARIABLE)
    facts["wrapper.variable_shadowed"] = (
        found is not None and found != TOKEN_VARIABLE and bool(token) and not same_secret(environ[found], token or "")
    )
    return facts
