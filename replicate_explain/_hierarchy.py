"""The class hierarchy of exceptions as tracebacks print them: a printed name gives its MRO names.

Text is not an exception: the class hierarchy is gone and only printed names remain.
:data:`KNOWN_BASES` is a table of the exception classes of every replicate client generation and
its HTTP stack, measured from the real packages (``tests/test_textmatch.py`` checks it against the
installed releases); builtins (``ValueError``) are resolved from this interpreter.
:func:`types_for` gives the names the matcher compares rule patterns with.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._snapshot import public_names

#: The direct bases of exception classes as tracebacks print them (``module.QualName``), measured
#: with the real releases 0.11.0, 0.15.3, 0.15.8, 1.0.7 and 2.0.0b4 and the httpx, httpcore,
#: h11 and requests they install; builtin bases are written without ``builtins.``; an indented
#: line continues the bases of the line above. The full MRO follows by C3 linearisation.
_BASES_TABLE = """
replicate.exceptions.ReplicateException: Exception
replicate.exceptions.ReplicateError: replicate.exceptions.ReplicateException
replicate.exceptions.ModelError: replicate.exceptions.ReplicateException
replicate.ReplicateError: Exception
replicate.APIError: replicate.ReplicateError
replicate.APIConnectionError: replicate.APIError
replicate.APITimeoutError: replicate.APIConnectionError
replicate.APIResponseValidationError: replicate.APIError
replicate.APIStatusError: replicate.APIError
replicate.AuthenticationError: replicate.APIStatusError
replicate.BadRequestError: replicate.APIStatusError
replicate.ConflictError: replicate.APIStatusError
replicate.InternalServerError: replicate.APIStatusError
replicate.NotFoundError: replicate.APIStatusError
replicate.PermissionDeniedError: replicate.APIStatusError
replicate.RateLimitError: replicate.APIStatusError
replicate.UnprocessableEntityError: replicate.APIStatusError
replicate._exceptions.ModelError: replicate.ReplicateError
httpx.HTTPError: Exception
httpx.RequestError: httpx.HTTPError
httpx.TransportError: httpx.RequestError
httpx.ProtocolError: httpx.TransportError
httpx.LocalProtocolError: httpx.ProtocolError
httpx.RemoteProtocolError: httpx.ProtocolError
httpx.NetworkError: httpx.TransportError
httpx.ConnectError: httpx.NetworkError
httpx.ReadError: httpx.NetworkError
httpx.WriteError: httpx.NetworkError
httpx.CloseError: httpx.NetworkError
httpx.TimeoutException: httpx.TransportError
httpx.ConnectTimeout: httpx.TimeoutException
httpx.ReadTimeout: httpx.TimeoutException
httpx.WriteTimeout: httpx.TimeoutException
httpx.PoolTimeout: httpx.TimeoutException
httpx.ProxyError: httpx.TransportError
httpx.UnsupportedProtocol: httpx.TransportError
httpx.DecodingError: httpx.RequestError
httpx.TooManyRedirects: httpx.RequestError
httpx.HTTPStatusError: httpx.HTTPError
httpx.InvalidURL: Exception
httpx.CookieConflict: Exception
httpx.StreamError: RuntimeError
httpcore.ProtocolError: Exception
httpcore.LocalProtocolError: httpcore.ProtocolError
httpcore.RemoteProtocolError: httpcore.ProtocolError
httpcore.NetworkError: Exception
httpcore.ConnectError: httpcore.NetworkError
httpcore.ReadError: httpcore.NetworkError
httpcore.WriteError: httpcore.NetworkError
httpcore.TimeoutException: Exception
httpcore.ConnectTimeout: httpcore.TimeoutException
httpcore.ReadTimeout: httpcore.TimeoutException
httpcore.WriteTimeout: httpcore.TimeoutException
httpcore.PoolTimeout: httpcore.TimeoutException
httpcore.UnsupportedProtocol: Exception
httpcore.ProxyError: Exception
h11._util.ProtocolError: Exception
h11._util.LocalProtocolError: h11._util.ProtocolError
h11._util.RemoteProtocolError: h11._util.ProtocolError
requests.exceptions.RequestException: OSError
requests.exceptions.InvalidHeader: requests.exceptions.RequestException ValueError
requests.exceptions.HTTPError: requests.exceptions.RequestException
requests.exceptions.ConnectionError: requests.exceptions.RequestException
requests.exceptions.ProxyError: requests.exceptions.ConnectionError
requests.exceptions.SSLError: requests.exceptions.ConnectionError
requests.exceptions.Timeout: requests.exceptions.RequestException
requests.exceptions.ConnectTimeout: requests.exceptions.ConnectionError requests.exceptions.Timeout
requests.exceptions.ReadTimeout: requests.exceptions.Timeout
requests.exceptions.InvalidURL: requests.exceptions.RequestException ValueError
requests.exceptions.MissingSchema: requests.exceptions.RequestException ValueError
requests.exceptions.InvalidSchema: requests.exceptions.RequestException ValueError
requests.exceptions.InvalidJSONError: requests.exceptions.RequestException
requests.exceptions.JSONDecodeError: requests.exceptions.InvalidJSONError
    json.decoder.JSONDecodeError
requests.exceptions.TooManyRedirects: requests.exceptions.RequestException
requests.exceptions.RetryError: requests.exceptions.RequestException
json.decoder.JSONDecodeError: ValueError
"""


def _parse_table(text: str) -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    last = ""
    for line in text.strip("\n").splitlines():
        if line[:1].isspace():
            table[last].extend(line.split())
            continue
        name, _, bases = line.partition(":")
        last = name.strip()
        table[last] = bases.split()
    return {name: tuple(bases) for name, bases in table.items()}


def _linearise(name: str, direct: Mapping[str, tuple[str, ...]], memo: dict[str, list[str]]) -> list[str]:
    """The C3 MRO of ``name`` (dotted names, ``builtins.object`` last)."""
    if name in memo:
        return memo[name]
    if name not in direct:
        import builtins

        cls = getattr(builtins, name.rpartition(".")[2], None)
        if "." in name.removeprefix("builtins.") or not isinstance(cls, type):
            raise ValueError(f"unknown base class {name!r} in the table of exception classes")
        result = [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__]
    else:
        bases = [base if "." in base else f"builtins.{base}" for base in direct[name]]
        sequences = [list(_linearise(base, direct, memo)) for base in bases] + [bases]
        result = [name]
        while any(sequences):
            for sequence in sequences:
                if sequence and not any(sequence[0] in other[1:] for other in sequences):
                    head = sequence[0]
                    break
            else:
                raise ValueError(f"inconsistent bases for {name!r} in the table of exception classes")
            result.append(head)
            sequences = [[item for item in seq if item != head] for seq in sequences]
    memo[name] = result
    return result


def _known_bases(text: str) -> Mapping[str, tuple[str, ...]]:
    direct = _parse_table(text)
    memo: dict[str, list[str]] = {}
    return MappingProxyType(
        {name: tuple(b for b in _linearise(name, direct, memo)[1:] if b != "builtins.object") for name in direct}
    )


KNOWN_BASES: Mapping[str, tuple[str, ...]] = _known_bases(_BASES_TABLE)
"""Printed dotted name -> dotted names of its bases along the MRO (``object`` left out)."""

#: Other spellings of a known class, as users and wrappers print them.
CLIENT_2X_ERRORS = (
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIResponseValidationError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
)
"""The 2.x client's exception classes, printed as ``replicate.<name>``."""

ALIASES: Mapping[str, str] = MappingProxyType(
    {
        # h11 defines its exceptions in h11._util and re-exports them from h11.
        "h11.LocalProtocolError": "h11._util.LocalProtocolError",
        "h11.RemoteProtocolError": "h11._util.RemoteProtocolError",
        "h11.ProtocolError": "h11._util.ProtocolError",
        # 2.x re-exports its exceptions from replicate.exceptions and replicate._exceptions.
        **{
            f"replicate.{module}.{name}": f"replicate.{name}"
            for module in ("exceptions", "_exceptions")
            for name in CLIENT_2X_ERRORS
        },
    }
)


def types_for(name: str) -> tuple[str, ...]:
    """The dotted MRO names for a printed exception name (the name itself first)."""
    dotted = name
    if "." not in name:
        import builtins

        candidate = getattr(builtins, name, None)
        if isinstance(candidate, type) and issubclass(candidate, BaseException):
            return tuple(f"{c.__module__}.{c.__qualname__}" for c in candidate.__mro__ if c is not object)
        dotted = f"__main__.{name}"
    canonical = ALIASES.get(dotted, dotted)
    bases = KNOWN_BASES.get(canonical)
    if bases is None:
        return (dotted,)
    names = [dotted] if canonical == dotted else [canonical]
    return tuple(alias for each in (*names, *bases) for alias in public_names(each))
