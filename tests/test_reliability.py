"""Reliability: the hooks under arbitrary exceptions and environments, faults, and concurrency.

The property tests call ``_hook.excepthook`` and ``_hook.threading_excepthook`` in this process
with ``sys.stderr`` swapped for a ``StringIO`` and the interpreter's own hooks behind ours, and
compare what they print with what those hooks alone print for the same exception (each write
masked as ``_report.RedactingStream`` masks it). ``REPLICATE_EXPLAIN_DEBUG=1`` is set throughout, so an
internal error of the explainer (which the hook swallows) shows up in the output and fails the
test. The other tests run real interpreters: exit statuses, broken rule files, rich missing,
stderr closed or broken or ASCII-only, a read-only site-packages, many threads failing at once.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from clients import CANARY, REPO_ROOT, client_env, run_program
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from outputs import leaks, masked, same_place

import replicate_explain
from replicate_explain import _hook, _state
from replicate_explain._loopback import LoopbackAPI
from replicate_explain._mask import Redactor

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

#: Variables the tests set; everything else in the environment is left alone.
MANAGED = (
    "REPLICATE_API_TOKEN",
    "REPLICATE_API_KEY",
    "REPLICATE_TOKEN",
    "REPLICATE_EXPLAIN",
    "REPLICATE_EXPLAIN_FORMAT",
    "REPLICATE_EXPLAIN_RULES",
    "REPLICATE_EXPLAIN_DEBUG",
    "NO_COLOR",
    "FORCE_COLOR",
    "TERM",
    "COLUMNS",
    "LINES",
)

#: How an explanation printed after the traceback starts, in each format.
EXPLANATION_STARTS = ("replicate-explain: ", '{"rule_id"', "╭", "\x1b[")


# ---------------------------------------------------------------------------------------------
# Exception classes shaped like the real clients' (module and MRO are what the rules match).


def _exception_class(module: str, name: str, *bases: type[BaseException]) -> type[BaseException]:
    return type(name, bases or (Exception,), {"__module__": module})


ReplicateException = _exception_class("replicate.exceptions", "ReplicateException")
ReplicateError = _exception_class("replicate.exceptions", "ReplicateError", ReplicateException)
V2ReplicateError = _exception_class("replicate", "ReplicateError")
V2APIStatusError = _exception_class("replicate", "APIStatusError", V2ReplicateError)
V2AuthenticationError = _exception_class("replicate", "AuthenticationError", V2APIStatusError)
V2APIConnectionError = _exception_class("replicate", "APIConnectionError", V2ReplicateError)


class StrRaises(ReplicateError):  # type: ignore[misc,valid-type]
    """A client exception whose ``__str__`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")


class ReprAndStrRaise(Exception):
    """An exception that cannot be printed at all."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ failed")


class StrNotAString(V2APIStatusError):  # type: ignore[misc,valid-type]
    """``__str__`` returns something that is not a string (``str()`` raises TypeError)."""

    def __str__(self) -> Any:
        return 401


class Unprintable:
    """An attribute value whose ``str()`` and ``repr()`` raise."""

    def __str__(self) -> str:
        raise RuntimeError("attribute __str__ failed")

    __repr__ = __str__


class AttributesRaise(ReplicateError):  # type: ignore[misc,valid-type]
    """``status``, ``request`` and ``detail`` raise when read, as httpx's ``.request`` does."""

    @property
    def status(self) -> int:
        raise RuntimeError("status failed")

    @property
    def request(self) -> Any:
        raise RuntimeError("The request instance has not been set on this exception.")

    @property
    def detail(self) -> Any:
        return Unprintable()


class RefusesAttributes(V2AuthenticationError):  # type: ignore[misc,valid-type]
    """Refuses new attributes, so ``mark_explained`` must remember it another way."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__replicate"):
            raise AttributeError(name)
        super().__setattr__(name, value)


CLASSES: list[type[BaseException]] = [
    ValueError,
    RuntimeError,
    KeyError,
    OSError,
    ReplicateError,
    V2ReplicateError,
    V2AuthenticationError,
    V2APIConnectionError,
    httpx.LocalProtocolError,
    StrRaises,
    ReprAndStrRaise,
    StrNotAString,
    AttributesRaise,
    RefusesAttributes,
    _exception_class("replicate.exceptions", "ModelError", ReplicateException),
    _exception_class(None, "NoModule"),  # type: ignore[arg-type]
]

SPECIAL_TEXT = [
    "\udcff",
    "\ud800",
    "\x00",
    "\x1b[2J",
    "\r",
    "\n",
    "\t",
    "[bold red]markup[/]",
    "%s %d {0}",
    CANARY,
    CANARY + "\n",
    f"Bearer {CANARY}",
    f"Illegal header value b'Bearer {CANARY}\\n'",
    f"{{'authorization': 'Token {CANARY}'}}",
    "You did not pass an authentication token",
    "You did not pass a valid authentication token",
    "ReplicateError Details:\ntitle: Unauthenticated\nstatus: 401\n",
    "The bearer_token client option must be set",
    "Error code: 401 - {'detail': 'Unauthenticated'}",
]

#: Up to about a megabyte: one unit repeated (a token among them).
HUGE_TEXT = st.tuples(
    st.sampled_from(["x", "é", "\udcff", "\n", CANARY, CANARY + " ", "r8_" + "a" * 37 + "\n"]),
    st.integers(min_value=1_000, max_value=25_000),
)
#: A message: pieces of text, special strings and (unit, count) runs of up to about a megabyte.
TEXT = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(SPECIAL_TEXT), HUGE_TEXT), max_size=4)


def _text(pieces: Any) -> Any:
    """Build drawn text (see :data:`TEXT`); anything else is returned as it is."""
    if not isinstance(pieces, list):
        return pieces
    return "".join(piece if isinstance(piece, str) else piece[0] * piece[1] for piece in pieces)


ARGS = st.one_of(
    st.tuples(TEXT),
    st.tuples(st.binary(max_size=40)),
    st.just(()),
    st.tuples(TEXT, st.integers()),
)
UNPRINTABLE = "<an attribute value whose str() and repr() raise>"
ATTRIBUTE_VALUES = st.one_of(st.sampled_from([401, "401", 403, None, "Unauthenticated", CANARY, UNPRINTABLE]), TEXT)

#: A plan of an exception tree, drawn as plain data (so hypothesis can print it) and built in
#: the test: ("leaf", class, args, attributes) or ("group", message, [children]).
LEAF = st.tuples(
    st.just("leaf"),
    st.sampled_from(CLASSES),
    ARGS,
    st.dictionaries(
        st.sampled_from(["status", "status_code", "title", "detail", "code", "body"]), ATTRIBUTE_VALUES, max_size=3
    ),
)
if sys.version_info >= (3, 11):
    TREE = st.recursive(
        LEAF,
        lambda children: st.tuples(st.just("group"), st.text(max_size=20), st.lists(children, min_size=1, max_size=3)),
        max_leaves=6,
    )
else:  # pragma: no cover - exception groups are 3.11+
    TREE = LEAF

LINKS = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 20), st.sampled_from(["__cause__", "__context__"])), max_size=6
)
CHAINS = st.fixed_dictionaries(
    {
        "top": TREE,
        "others": st.lists(TREE, max_size=3),
        "tracebacks": st.lists(st.sampled_from(["none", "here", "replicate"]), min_size=1, max_size=20),
        "links": LINKS,
        "suppress": st.lists(st.booleans(), max_size=20),
    }
)


def _build(plan: tuple[Any, ...], members: list[BaseException]) -> BaseException:
    if plan[0] == "group":
        children = [_build(child, members) for child in plan[2]]
        exc: BaseException = BaseExceptionGroup(plan[1], children)  # noqa: F821 (3.11+)
    else:
        _, cls, args, attributes = plan
        args = tuple(_text(arg) for arg in args)
        try:
            exc = cls(*args)
        except Exception:  # a constructor that wants other arguments: skip it, as pickle does
            exc = cls.__new__(cls, *args)
        for name, value in attributes.items():
            with contextlib.suppress(Exception):
                object.__setattr__(exc, name, Unprintable() if value == UNPRINTABLE else _text(value))
    members.append(exc)
    return exc


REPLICATE_FILE = os.path.join(os.sep, "venv", "site-packages", "replicate", "client.py")


def _raise_in(exc: BaseException, filename: str) -> None:
    """Give ``exc`` a real traceback whose innermost frame is in ``filename``."""
    code = compile("raise exc\n", filename, "exec")
    try:
        exec(code, {"exc": exc})
    except BaseException:
        pass


def build_chain(plan: dict[str, Any]) -> BaseException:
    """The exception a :data:`CHAINS` plan describes: arbitrary links between all its members
    (cycles in ``__context__``/``__cause__`` included), tracebacks present or missing."""
    members: list[BaseException] = []
    top = _build(plan["top"], members)
    for other in plan["others"]:
        _build(other, members)
    for number, exc in enumerate(members):
        kind = plan["tracebacks"][number % len(plan["tracebacks"])]
        if kind != "none":
            _raise_in(exc, __file__ if kind == "here" else REPLICATE_FILE)
    for source, target, link in plan["links"]:
        object.__setattr__(members[source % len(members)], link, members[target % len(members)])
    for exc, suppress in zip(members, plan["suppress"]):
        exc.__suppress_context__ = suppress
    return top


# ---------------------------------------------------------------------------------------------
# The hook in this process


class Recorder:
    """A text stream that keeps each ``write`` separately."""

    def __init__(self) -> None:
        self.chunks: list[str] = []

    def write(self, text: str) -> int:
        self.chunks.append(text)
        return len(text)

    def flush(self) -> None:
        """Nothing to flush."""


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with the managed variables set to ``values`` (or unset), restored after."""
    saved = os.environ.copy()
    try:
        for name in MANAGED:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def our_hooks_over_the_interpreters() -> Iterator[None]:
    """Our hooks installed over the interpreter's own ``sys.__excepthook__`` and
    ``threading.__excepthook__``; whatever was installed before is put back afterwards."""
    was_installed = replicate_explain.is_installed()
    saved = (sys.excepthook, threading.excepthook)
    replicate_explain.uninstall()
    sys.excepthook, threading.excepthook = sys.__excepthook__, threading.__excepthook__
    replicate_explain.install()
    try:
        yield
    finally:
        replicate_explain.uninstall()
        sys.excepthook, threading.excepthook = saved
        if was_installed:
            replicate_explain.install()


def _call_with_stderr(stream: Any, function: Callable[..., None], *args: Any) -> None:
    saved = sys.stderr
    sys.stderr = stream
    try:
        function(*args)
    finally:
        sys.stderr = saved


def check_hook(exc: BaseException, which: str) -> str:
    """Run our ``which`` hook ('sys' or 'threading') on ``exc``; check the output; return it.

    The output must be, first and whole, what the interpreter's hook prints (each write masked
    as ours masks it), then nothing or one explanation; never an internal error, never the canary.
    """
    tb = exc.__traceback__
    if which == "sys":
        previous: Callable[..., None] = sys.__excepthook__
        ours: Callable[..., None] = _hook.excepthook
        args: tuple[Any, ...] = (type(exc), exc, tb)
    else:
        previous, ours = threading.__excepthook__, _hook.threading_excepthook
        args = (threading.ExceptHookArgs([type(exc), exc, tb, None]),)
    recorder = Recorder()
    _call_with_stderr(recorder, previous, *args)
    redactor = Redactor.from_environ(os.environ)
    expected = "".join(redactor(chunk) for chunk in recorder.chunks)
    stream = io.StringIO()
    _call_with_stderr(stream, ours, *args)  # must not raise
    output = stream.getvalue()
    assert output[: len(expected)] == expected, "the interpreter's traceback is not printed first and whole"
    rest = output[len(expected) :]
    assert "internal error" not in rest, rest[:3000]
    assert rest == "" or rest.startswith(EXPLANATION_STARTS), rest[:3000]
    assert leaks(output, CANARY) == []
    return output


@PROPERTY
@given(plan=CHAINS, which=st.sampled_from(["sys", "threading"]), token_in_environment=st.booleans())
@example(  # two tokens back to back, known only from their r8_ shape (found by this test)
    plan={
        "top": ("leaf", ReplicateError, ([(CANARY, 2)],), {}),
        "others": [],
        "tracebacks": ["replicate"],
        "links": [],
        "suppress": [],
    },
    which="sys",
    token_in_environment=False,
)
def test_any_exception_chain_prints_the_original_traceback_and_never_the_token(
    plan: dict[str, Any], which: str, token_in_environment: bool
) -> None:
    """Cycles in __cause__/__context__, exception groups, __str__ that raises, unprintable
    attributes, huge, surrogate and NUL-laden messages, missing tracebacks: our hook never
    raises, prints the interpreter's own traceback first and whole (token masked), then at most
    one explanation, never an internal error, and never the canary token, whether the token is
    in the environment or only in the messages (passed in code)."""
    values = {"REPLICATE_EXPLAIN_DEBUG": "1"}
    if token_in_environment:
        values["REPLICATE_API_TOKEN"] = CANARY + "\n"
    with environment(values), our_hooks_over_the_interpreters():
        check_hook(build_chain(plan), which)


ENV_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
#: A megabyte-sized value, drawn as (unit, count) so that hypothesis prints it short.
ENV_HUGE = st.tuples(st.sampled_from(["x", "9", " ", "\n", "é", "\x1b"]), st.integers(100_000, 1_000_000))
ENV_VALUE = st.one_of(
    ENV_TEXT, st.sampled_from(["", "0", "1", "json", "plain", "rich", "dumb", "-1", "99999999999"]), ENV_HUGE
)
TOKEN_VALUE = st.one_of(
    st.none(),
    ENV_VALUE,
    st.tuples(
        st.sampled_from(["", " ", '"', "'", "Bearer ", "\t"]),
        st.just(CANARY),
        st.sampled_from(["", "\n", "\r\n", " ", '"', "\x0b"]),
    ),
)


def _value(drawn: Any) -> str:
    """An environment value from its drawn form: a string, (unit, count) or (before, token, after)."""
    if isinstance(drawn, tuple) and len(drawn) == 2:
        return str(drawn[0] * drawn[1])
    if isinstance(drawn, tuple):
        return "".join(drawn)
    return str(drawn)


def _relevant_exception(kind: str) -> BaseException:
    """A fresh exception of one of the shapes the rules know (raised in a replicate file)."""
    if kind == "401":
        exc: BaseException = ReplicateError(
            "ReplicateError Details:\ntitle: Unauthenticated\nstatus: 401\n"
            "detail: You did not pass an authentication token"
        )
        object.__setattr__(exc, "status", 401)
    elif kind == "header":
        exc = httpx.LocalProtocolError(f"Illegal header value b'Bearer {CANARY}\\n'")
    elif kind == "2.x connection":
        exc = V2APIConnectionError("Connection error.")
        cause = httpx.LocalProtocolError(f"Illegal header value b'Bearer {CANARY}\\n'")
        _raise_in(cause, REPLICATE_FILE)
        exc.__cause__ = cause
    else:
        exc = ValueError(f"unrelated {CANARY}")
    _raise_in(exc, REPLICATE_FILE)
    return exc


@PROPERTY
@given(
    token=TOKEN_VALUE,
    others=st.dictionaries(
        st.sampled_from([n for n in MANAGED if n not in ("REPLICATE_API_TOKEN", "REPLICATE_EXPLAIN_DEBUG")]),
        ENV_VALUE,
        max_size=6,
    ),
    kind=st.sampled_from(["401", "header", "2.x connection", "unrelated"]),
    which=st.sampled_from(["sys", "threading"]),
)
def test_any_environment_leaves_the_traceback_whole_and_the_token_hidden(
    token: Any, others: dict[str, Any], kind: str, which: str
) -> None:
    """Arbitrary values (control characters, megabyte values, nonsense formats, widths and rule
    directories) for the variables we read: the hook never raises, the traceback comes first
    and whole, then at most one explanation; no internal error, no canary."""
    values = {name: _value(value) for name, value in others.items()}
    values["REPLICATE_EXPLAIN_DEBUG"] = "1"
    if token is not None:
        values["REPLICATE_API_TOKEN"] = _value(token)
    with environment(values), our_hooks_over_the_interpreters():
        _state.reset()  # the rule directories may have changed
        try:
            check_hook(_relevant_exception(kind), which)
        finally:
            _state.reset()


# ---------------------------------------------------------------------------------------------
# Real interpreters: the exit status and the output of plain Python, whatever was raised.

ODD_PROGRAMS = [
    # (name, program, whether the output must be byte for byte plain Python's)
    (
        "a cycle in __context__",
        "a = ValueError('a')\nb = KeyError('b')\na.__context__ = b\nb.__context__ = a\nraise a\n",
        True,
    ),
    (
        "__str__ that raises",
        "class E(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\nraise E()\n",
        True,
    ),
    ("an exception group", "raise ExceptionGroup('many', [ValueError('x'), KeyError('y')])\n", True),
    ("a megabyte message", "raise ValueError('x' * 1_000_000)\n", True),
    ("surrogates in the message", "raise ValueError('\\udcff\\ud800 bad')\n", True),
    ("bytes that are not UTF-8", "raise ValueError(b'\\xff\\xfe')\n", True),
    (
        "no traceback at all",
        "import sys\ne = ValueError('x')\nsys.excepthook(ValueError, e, None)\nraise SystemExit(4)\n",
        True,
    ),
    (
        "a client error whose __str__ raises",
        "class ReplicateError(Exception):\n    __module__ = 'replicate.exceptions'\n"
        "    def __str__(self):\n        raise RuntimeError('no')\nraise ReplicateError()\n",
        False,
    ),
    (
        "a client error in a cycle, with the token in its message",
        f"class ReplicateError(Exception):\n    __module__ = 'replicate.exceptions'\n"
        f"a = ReplicateError('status: 401 You did not pass a valid authentication token {CANARY}')\n"
        "b = ValueError('b')\na.__context__ = b\nb.__context__ = a\na.status = 401\nraise a\n",
        False,
    ),
    (
        "a client error in an exception group",
        "class ReplicateError(Exception):\n    __module__ = 'replicate.exceptions'\n"
        "raise ExceptionGroup('g', [ReplicateError('You did not pass an authentication token')])\n",
        False,
    ),
]


def _run_python(
    code: str, extra: dict[str, str], shell: str | None = None, **options: Any
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_")}
    env.update(PYTHONPATH=str(REPO_ROOT), REPLICATE_API_TOKEN=CANARY + "\n", NO_COLOR="1", PYTHONIOENCODING="utf-8")
    env.pop("FORCE_COLOR", None)
    env.update(extra)
    command = [sys.executable, "-c", code] if shell is None else ["sh", "-c", shell, sys.executable, code]
    return subprocess.run(command, env=env, capture_output=True, check=False, timeout=120, **options)


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "code", "identical"), ODD_PROGRAMS, ids=[p[0] for p in ODD_PROGRAMS])
def test_odd_exceptions_keep_the_exit_status_and_the_plain_output(name: str, code: str, identical: bool) -> None:
    """Raised for real at the top of a program: the exit status and stdout are plain Python's;
    stderr is plain Python's byte for byte (unrelated errors) or starts with it, token masked
    (errors shaped like the client's); the explainer never reports an internal error."""
    hooked = _run_python("import replicate_explain\n" + code, {"REPLICATE_EXPLAIN_DEBUG": "1"})
    plain = _run_python("import replicate_explain\n" + code, {"REPLICATE_EXPLAIN": "0"})
    assert (hooked.returncode, hooked.stdout) == (plain.returncode, plain.stdout)
    assert plain.returncode != 0
    hooked_err = hooked.stderr.decode("utf-8", "surrogateescape")
    plain_err = plain.stderr.decode("utf-8", "surrogateescape")
    if identical:
        assert hooked_err == plain_err
    else:
        assert hooked_err.startswith(masked(plain_err, CANARY + "\n"))
        assert "internal error" not in hooked_err
    assert leaks(hooked_err, CANARY) == []


# ---------------------------------------------------------------------------------------------
# Faults around a real client failure (replicate 1.0.7, token unset: a 401)

FAILING = """\
import atexit
import replicate_explain
import replicate

atexit.register(print, "atexit ran")
print("before", flush=True)
replicate.run({model!r}, input={{"text": "hi"}})
"""

JSON = {"REPLICATE_EXPLAIN_FORMAT": "json"}
OFF = {"REPLICATE_EXPLAIN": "0"}


def _failing(model: str) -> str:
    return FAILING.format(model=model)


@pytest.fixture(scope="module")
def failing_program() -> str:
    """A program whose real replicate 1.0.7 client fails with the API's 401."""
    from clients import MODEL_REF

    return _failing(MODEL_REF)


@pytest.mark.e2e
def test_broken_rule_files_are_named_and_the_explanation_survives(
    api: LoopbackAPI, tmp_path: Path, failing_program: str
) -> None:
    """User rule files that cannot be read (a directory named x.yaml, bytes that are not UTF-8),
    corrupt YAML, a rule directory that does not exist and one whose name is too long: the
    traceback comes first and whole, the bundled rules still explain it, then one line per
    problem says which file or directory and what is wrong with it."""
    rules = tmp_path / "rules"
    rules.mkdir()
    directory = rules / "a-directory.yaml"
    directory.mkdir()
    (rules / "not-utf8.yaml").write_bytes(b"title: \xff\xfe\n")
    (rules / "not-yaml.yaml").write_text("title: [unclosed\n  - what\n", encoding="utf-8")
    missing = tmp_path / "missing"
    too_long = tmp_path / ("x" * 300)
    extra = {
        **JSON,
        "REPLICATE_EXPLAIN_RULES": os.pathsep.join(map(str, (rules, missing, too_long))),
        "REPLICATE_EXPLAIN_DEBUG": "1",
    }
    hooked = run_program(failing_program, "1.0.7", api, None, extra)
    plain = run_program(failing_program, "1.0.7", api, None, {**extra, **OFF})
    assert (hooked.returncode, hooked.stdout) == (plain.returncode, plain.stdout) == (1, "before\natexit ran\n")
    assert same_place(hooked.stderr).startswith(same_place(plain.stderr))
    tail = hooked.stderr[len(plain.stderr) :].splitlines()
    assert [line[:11] for line in tail[:1]] == ['{"rule_id":']
    assert '"rule_id": "token-unset"' in tail[0]
    skipped = "replicate-explain: skipped a rule file: "
    check = "expected a directory of *.yaml rule files (check REPLICATE_EXPLAIN_RULES)"
    assert tail[1:] == [
        f"{skipped}{directory}: is not a regular file (a directory, a FIFO or a device); expected a YAML rule file",
        f"{skipped}{rules / 'not-utf8.yaml'}: cannot be read: "
        "'utf-8' codec can't decode byte 0xff in position 7: invalid start byte",
        f"{skipped}{rules / 'not-yaml.yaml'}:3: not valid YAML: expected ',' or ']', but got '<stream end>'",
        f"{skipped}{missing}: rule directory does not exist; {check}",
        f"{skipped}{too_long}: rule directory cannot be listed: File name too long; {check}",
    ]


NO_RICH = "import sys\nsys.modules['rich'] = None  # every import of rich now fails\n"


@pytest.mark.e2e
@pytest.mark.parametrize("colour", [{}, {"FORCE_COLOR": "1", "NO_COLOR": ""}], ids=["plain text", "FORCE_COLOR"])
def test_without_rich_the_explanation_is_plain_text(
    api: LoopbackAPI, tmp_path: Path, failing_program: str, colour: dict[str, str]
) -> None:
    """rich failing to import (a sitecustomize poisons it): the traceback is whole, the exit
    status unchanged, and the explanation is printed as plain text, even when colour is forced."""
    (tmp_path / "sitecustomize.py").write_text(NO_RICH, encoding="utf-8")
    with LoopbackAPI() as server:
        path = client_env("1.0.7", server, None)["PYTHONPATH"]
    extra = {**colour, "PYTHONPATH": os.pathsep.join([str(tmp_path), path]), "REPLICATE_EXPLAIN_DEBUG": "1"}
    hooked = run_program(failing_program, "1.0.7", api, None, extra)
    plain = run_program(failing_program, "1.0.7", api, None, {**extra, **OFF})
    assert (hooked.returncode, hooked.stdout) == (plain.returncode, plain.stdout) == (1, "before\natexit ran\n")
    assert same_place(hooked.stderr).startswith(same_place(plain.stderr))
    explanation = hooked.stderr[len(plain.stderr) :]
    assert explanation.startswith("replicate-explain: token-unset: REPLICATE_API_TOKEN is not set\n")
    assert "internal error" not in explanation and "\x1b[" not in explanation


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("how", "shell"),
    [("closed (2>&-)", 'exec "$0" -c "$1" 2>&-'), ("/dev/full", 'exec "$0" -c "$1" 2>/dev/full')],
    ids=["closed", "dev-full"],
)
def test_a_closed_or_failing_stderr_keeps_the_exit_status(
    api: LoopbackAPI, failing_program: str, how: str, shell: str
) -> None:
    """stderr closed (``2>&-``: ``sys.stderr`` is None) or failing every write (/dev/full): the
    exit status, stdout and atexit handlers are plain Python's."""
    env = client_env("1.0.7", api, CANARY + "\n")
    results = []
    for extra in ({}, OFF):
        results.append(
            subprocess.run(
                ["sh", "-c", shell, sys.executable, failing_program],
                env={**env, **extra},
                capture_output=True,
                check=False,
                timeout=120,
            )
        )
    hooked, plain = results
    assert (hooked.returncode, hooked.stdout, hooked.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert (plain.returncode, plain.stdout) == (1, b"before\natexit ran\n")


@pytest.mark.e2e
def test_a_broken_pipe_on_stderr_keeps_the_exit_status(api: LoopbackAPI, failing_program: str) -> None:
    """stderr is a pipe whose reader is gone (every write: BrokenPipeError): the exit status,
    stdout and atexit handlers are plain Python's."""
    env = client_env("1.0.7", api, CANARY + "\n")
    results = []
    for extra in ({"REPLICATE_EXPLAIN_DEBUG": "1"}, OFF):
        reader, writer = os.pipe()
        os.close(reader)
        try:
            results.append(
                subprocess.run(
                    [sys.executable, "-c", failing_program],
                    env={**env, **extra},
                    stdout=subprocess.PIPE,
                    stderr=writer,
                    check=False,
                    timeout=120,
                )
            )
        finally:
            os.close(writer)
    hooked, plain = results
    assert (hooked.returncode, hooked.stdout) == (plain.returncode, plain.stdout) == (1, b"before\natexit ran\n")


@pytest.mark.e2e
@pytest.mark.parametrize("colour", [{}, {"FORCE_COLOR": "1", "NO_COLOR": ""}], ids=["plain text", "rich panel"])
def test_an_ascii_only_stderr_gets_the_whole_traceback_and_an_ascii_explanation(
    api: LoopbackAPI, failing_program: str, colour: dict[str, str]
) -> None:
    """PYTHONIOENCODING=ascii: the traceback is plain Python's (token masked), the explanation
    follows in pure ASCII (the panel falls back to ASCII box drawing), the exit status is the same."""
    token = CANARY + "\n"
    env = client_env("1.0.7", api, token, {**colour, "PYTHONIOENCODING": "ascii"})
    results = [
        subprocess.run(
            [sys.executable, "-c", failing_program], env={**env, **extra}, capture_output=True, check=False, timeout=120
        )
        for extra in ({"REPLICATE_EXPLAIN_DEBUG": "1"}, OFF)
    ]
    hooked, plain = results
    assert (hooked.returncode, hooked.stdout) == (plain.returncode, plain.stdout) == (1, b"before\natexit ran\n")
    assert hooked.stderr.isascii()
    hooked_err, plain_err = hooked.stderr.decode("ascii"), plain.stderr.decode("ascii")
    assert hooked_err.startswith(masked(plain_err, token))
    explanation = hooked_err[len(masked(plain_err, token)) :]
    assert "token-whitespace" in explanation.splitlines()[0]
    assert "internal error" not in explanation
    assert leaks(hooked_err, CANARY) == []


# ---------------------------------------------------------------------------------------------
# Concurrency

THREADS = """\
import os, threading
import replicate_explain
import replicate

count = int(os.environ["THREADS"])
barrier = threading.Barrier(count)


def work():
    barrier.wait()
    replicate.run({model!r}, input={{"text": "hi"}})


threads = [threading.Thread(target=work, name=f"worker-{{n:02d}}") for n in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("all joined")
"""

THREAD_HEADER = re.compile(r"^Exception in thread (worker-\d\d):$", re.M)


@pytest.mark.e2e
def test_many_threads_failing_at_once_are_each_explained_once_without_interleaving(api: LoopbackAPI) -> None:
    """Eight threads hit the 401 at the same moment: stderr is exactly eight copies of what
    one failing thread prints (its traceback, then its one explanation), one per thread, each
    whole: nothing interleaved, nothing lost, nothing explained twice."""
    from clients import MODEL_REF

    code = THREADS.format(model=MODEL_REF)
    one = run_program(code, "1.0.7", api, None, {"THREADS": "1"})
    assert (one.returncode, one.stdout) == (0, "all joined\n")
    assert THREAD_HEADER.findall(one.stderr) == ["worker-00"]
    assert "replicate-explain: token-unset:" in one.stderr
    many = run_program(code, "1.0.7", api, None, {"THREADS": "8"})
    assert (many.returncode, many.stdout) == (0, "all joined\n")
    names = THREAD_HEADER.findall(many.stderr)
    assert sorted(names) == [f"worker-{n:02d}" for n in range(8)]
    template = same_place(one.stderr)
    assert same_place(many.stderr) == "".join(template.replace("worker-00", name) for name in names)


# ---------------------------------------------------------------------------------------------
# Hangs: a FIFO named .env, fork while a hook imports


LOGGED_THEN_CRASHED = """\
import logging
import replicate_explain
import replicate

logging.basicConfig()
try:
    replicate.run({model!r}, input={{"text": "hi"}})
except Exception:
    logging.getLogger("app").exception("the prediction failed")
    raise
"""


@pytest.mark.e2e
def test_a_fifo_named_dotenv_is_never_opened(api: LoopbackAPI, tmp_path: Path) -> None:
    """A FIFO named ``.env`` in a parent of the working directory (1Password mounts them; reading
    one blocks until something writes to it) is not read: ``log.exception`` and the excepthook
    of a real 401, ``doctor`` and ``explain --here`` print exactly what they print when that
    ``.env`` is an empty regular file. The subprocess timeouts guard against the hang."""
    from clients import MODEL_REF
    from commandline import cli_env, run_cli

    work = tmp_path / "project"
    work.mkdir()
    dotenv = tmp_path / ".env"
    program = LOGGED_THEN_CRASHED.format(model=MODEL_REF)
    pasted = "replicate.exceptions.ReplicateError: ReplicateError Details:\nstatus: 401\n"
    results = []
    for kind in ("fifo", "regular"):
        if kind == "fifo":
            os.mkfifo(dotenv)
        else:
            dotenv.unlink()
            dotenv.write_text("", encoding="utf-8")
        crashed = run_program(program, "1.0.7", api, None, {"REPLICATE_EXPLAIN_DEBUG": "1"}, cwd=work, timeout=60)
        doctor = run_cli("doctor", "--format", "json", cwd=work, env=cli_env(), timeout=60)
        here = run_cli("explain", "--here", "--format", "json", "-", stdin=pasted, cwd=work, env=cli_env(), timeout=60)
        results.append([(done.returncode, done.stdout, same_place(done.stderr)) for done in (crashed, doctor, here)])
    fifo, regular = results
    assert fifo == regular
    assert regular[0][0] == 1 and "token-unset" in regular[0][2]
