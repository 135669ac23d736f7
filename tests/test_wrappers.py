"""The wrappers many Python users meet Replicate through: LiteLLM, LangChain, LlamaIndex.

Live: each wrapper release (``clients.WRAPPER_VERSIONS``, installed from PyPI into
``.cache/extras``) runs a program against the loopback API in a subprocess with
``REPLICATE_EXPLAIN_FORMAT=json``; the test reads the one explanation (or none) from stderr.
LiteLLM calls the HTTP API itself with a hard-coded URL; ``tests/wrapper_site/sitecustomize.py``
sends it to the loopback. Pasted: the tracebacks those runs printed (``tests/data/wrappers/``,
written by ``python tests/test_wrappers.py --record``) are explained from the text alone.
The canary token never appears in any output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from clients import (
    CANARY,
    MODEL_REF,
    REPO_ROOT,
    VALID_TOKEN,
    WRAPPER_SITE,
    WRAPPER_VERSIONS,
    client_env,
    client_path,
    extra_path,
    wrapper_env,
)
from outputs import explanations, leaks, rule_shown

from replicate_explain._loopback import LoopbackAPI
from replicate_explain._pasted import explain_text
from replicate_explain._rules import load_rules
from replicate_explain._snapshot import snapshot_from_data
from replicate_explain._wrappers import BY_NAME, described_wrapper, text_wrapper, wrapper_facts

DATA = Path(__file__).parent / "data" / "wrappers"
CLIENT = "1.0.7"
"""The replicate release beside LangChain and LlamaIndex: the newest stable one (pip skips 2.0 betas)."""

LITELLM = """
import litellm

response = litellm.completion(
    model="replicate/acme/hello-world",
    messages=[{"role": "user", "content": "Hello"}],{keyword}
)
print(response.choices[0].message.content)
"""

LITELLM_OPENAI = """
import os
import litellm

response = litellm.completion(
    model="openai/gpt-4o-mini",
    messages=[{"role": "user", "content": "Hello"}],
    api_key="sk-proj-NotARealKey000000000000000000000000",
    api_base=os.environ["OPENAI_LOOPBACK"] + "/v1",
)
print(response.choices[0].message.content)
"""

LANGCHAIN = f"""
import os
from langchain_community.llms import Replicate

llm = Replicate(model={MODEL_REF!r}{{keyword}})
print(llm.invoke("Hello"))
"""

LLAMA_INDEX = f"""
import os
from llama_index.llms.replicate import Replicate

llm = Replicate(model={MODEL_REF!r}{{keyword}})
print(llm.complete("Hello"))
"""


OLDER = "langchain-community==0.2.19"
"""LangChain on pydantic 1 (``langchain_core.pydantic_v1``, 2024): its ValidationError is
``pydantic.v1.error_wrappers.ValidationError``. (LiteLLM 1.14.4, the oldest release the index
offers before 1.53, downloads tiktoken's encoding at import and cannot run offline.)"""


def _program(template: str, keyword: str = "") -> str:
    return template.replace("{keyword}", keyword)


def run_wrapper(
    wrapper: str,
    code: str,
    api: LoopbackAPI,
    environ: dict[str, str],
    *,
    explain: bool = True,
    with_client: bool = True,
    requirement: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the wrapper's release (``requirement``, default the newest) and
    replicate 1.0.7 unless ``with_client`` is false."""
    requirement = requirement or WRAPPER_VERSIONS[wrapper]
    env = client_env(CLIENT, api, None, {"REPLICATE_EXPLAIN_FORMAT": "json"})
    env.update(wrapper_env((requirement,), api, CLIENT))
    if not with_client:  # LiteLLM needs no replicate client: run it without one, as most users do
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in env["PYTHONPATH"].split(os.pathsep) if not p.startswith(str(REPO_ROOT / ".cache" / "clients"))
        )
    env.update(environ)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="replicate-explain-wrapper-") as workdir:
        script = Path(workdir) / "program.py"
        script.write_text(("import replicate_explain\n" if explain else "") + code, encoding="utf-8")
        return subprocess.run(
            [sys.executable, str(script)],
            env=env,
            cwd=workdir,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=300,
            check=False,
        )


LIVE: list[Any] = [
    # LiteLLM: no key anywhere -> it sends "Token None".
    pytest.param("litellm", _program(LITELLM), {}, "litellm-key-missing", id="litellm-no-key"),
    pytest.param(
        "litellm",
        _program(LITELLM),
        {"REPLICATE_API_TOKEN": CANARY},
        "litellm-key-rejected",
        id="litellm-refused-token",
    ),
    # REPLICATE_API_KEY is a name LiteLLM reads: a refused token there is no look-alike mistake.
    pytest.param(
        "litellm",
        _program(LITELLM),
        {"REPLICATE_API_KEY": CANARY},
        "litellm-key-rejected",
        id="litellm-api-key-refused",
    ),
    pytest.param(
        "litellm",
        _program(LITELLM),
        {"REPLICATE_API_KEY": CANARY, "REPLICATE_API_TOKEN": VALID_TOKEN},
        "litellm-api-key-shadows-token",
        id="litellm-stale-api-key",
    ),
    pytest.param(
        "litellm",
        _program(LITELLM, f"\n    api_key={CANARY!r},"),
        {},
        "litellm-key-rejected",
        id="litellm-api-key-passed-and-refused",
    ),
    # LangChain: no token -> pydantic refuses to build the model.
    pytest.param("langchain", _program(LANGCHAIN), {}, "langchain-token-missing", id="langchain-no-token"),
    pytest.param(
        "langchain",
        _program(LANGCHAIN, ', replicate_api_token=os.environ["MY_TOKEN"]'),
        {"MY_TOKEN": VALID_TOKEN},
        "langchain-token-argument-ignored",
        id="langchain-keyword-ignored",
    ),
    pytest.param(
        "langchain", _program(LANGCHAIN), {"REPLICATE_API_TOKEN": CANARY}, "token-rejected", id="langchain-refused"
    ),
    # langchain-ai/langchain#27861: the variable holds another token, sent instead of the keyword's.
    pytest.param(
        "langchain",
        _program(LANGCHAIN, ', replicate_api_token=os.environ["MY_TOKEN"]'),
        {"MY_TOKEN": VALID_TOKEN, "REPLICATE_API_TOKEN": CANARY},
        "langchain-token-argument-ignored",
        id="langchain-keyword-ignored-variable-sent",
    ),
    pytest.param(OLDER, _program(LANGCHAIN), {}, "langchain-token-missing", id=f"{OLDER}-no-token"),
    pytest.param(
        OLDER,
        _program(LANGCHAIN, ', replicate_api_token=os.environ["MY_TOKEN"]'),
        {"MY_TOKEN": VALID_TOKEN},
        "langchain-token-argument-ignored",
        id=f"{OLDER}-keyword-ignored",
    ),
    # LlamaIndex: no token argument; the replicate client reads the variable.
    pytest.param("llama_index", _program(LLAMA_INDEX), {}, "llama-index-token-unset", id="llama-index-no-token"),
    pytest.param(
        "llama_index",
        _program(LLAMA_INDEX, ', api_key=os.environ["MY_TOKEN"]'),
        {"MY_TOKEN": VALID_TOKEN},
        "llama-index-token-unset",
        id="llama-index-api-key-dropped",
    ),
    pytest.param(
        "llama_index",
        _program(LLAMA_INDEX),
        {"REPLICATE_API_TOKEN": CANARY},
        "token-rejected",
        id="llama-index-refused",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("wrapper", "code", "environ", "expect"), LIVE)
# wrapper: a key of WRAPPER_VERSIONS (its newest release), or OLDER (LangChain on pydantic 1)
def test_each_wrapper_failure_is_explained_live(
    api: LoopbackAPI, wrapper: str, code: str, environ: dict[str, str], expect: str
) -> None:
    """A wrapper's Replicate failure, raised live against the loopback, gets its own rule; the
    traceback prints first and whole, and the canary is nowhere in the output."""
    wrapper, older = ("langchain", OLDER) if wrapper == OLDER else (wrapper, None)
    result = run_wrapper(wrapper, code, api, environ, with_client=wrapper != "litellm", requirement=older)
    assert result.returncode == 1, result.stderr
    assert rule_shown(result.stderr) == expect, result.stderr
    assert result.stderr.index("Traceback (most recent call last):") < result.stderr.index('{"rule_id"')
    assert leaks(result.stdout + result.stderr, CANARY) == []


@pytest.mark.e2e
def test_litellm_panel_names_the_variable_it_read_and_no_value(api: LoopbackAPI) -> None:
    """The evidence says which variable LiteLLM took its key from and that api_key= was not
    passed; it never shows either token."""
    result = run_wrapper(
        "litellm",
        _program(LITELLM),
        api=api,
        environ={"REPLICATE_API_KEY": CANARY, "REPLICATE_API_TOKEN": VALID_TOKEN},
        with_client=False,
    )
    (shown,) = explanations(result.stderr)
    assert shown["evidence"][:3] == [
        "the failure came through LiteLLM, which took its token from REPLICATE_API_KEY",
        "it holds another value than REPLICATE_API_TOKEN (compared by digest)",
        "the code passed no api_key= to LiteLLM",
    ]
    assert leaks(result.stdout + result.stderr, CANARY, VALID_TOKEN) == []


@pytest.mark.e2e
def test_langchain_panel_says_the_keyword_token_was_not_sent(api: LoopbackAPI) -> None:
    """langchain#27861 live: the evidence says the token given to LangChain's model is not the
    one the request carried (by digest), and shows neither token."""
    result = run_wrapper(
        "langchain",
        _program(LANGCHAIN, ', replicate_api_token=os.environ["MY_TOKEN"]'),
        api,
        {"MY_TOKEN": VALID_TOKEN, "REPLICATE_API_TOKEN": CANARY},
    )
    (shown,) = explanations(result.stderr)
    assert shown["evidence"][:2] == [
        "the failure came through LangChain, which took its token from REPLICATE_API_TOKEN",
        "the token LangChain was given (replicate_api_token=) is not the one the request carried (compared by digest)",
    ]
    assert leaks(result.stdout + result.stderr, CANARY, VALID_TOKEN) == []


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("wrapper", "code", "environ"),
    [
        pytest.param("litellm", _program(LITELLM), {"REPLICATE_API_KEY": VALID_TOKEN}, id="litellm-REPLICATE_API_KEY"),
        pytest.param("langchain", _program(LANGCHAIN), {"REPLICATE_API_TOKEN": VALID_TOKEN}, id="langchain"),
        pytest.param("llama_index", _program(LLAMA_INDEX), {"REPLICATE_API_TOKEN": VALID_TOKEN}, id="llama-index"),
    ],
)
def test_a_working_token_runs_through_the_wrapper(
    api: LoopbackAPI, wrapper: str, code: str, environ: dict[str, str]
) -> None:
    """With a token where the wrapper reads it (REPLICATE_API_KEY is right for LiteLLM), the
    program runs against the loopback and nothing is explained."""
    result = run_wrapper(wrapper, code, api, environ, with_client=wrapper != "litellm")
    assert (result.returncode, rule_shown(result.stderr), result.stdout.strip().splitlines()[-1]) == (
        0,
        None,
        "hello",
    ), result.stderr


@pytest.mark.e2e
def test_litellm_failure_for_another_provider_is_not_explained(api: LoopbackAPI) -> None:
    """LiteLLM's 401 from OpenAI (here the loopback standing in for it) is not Replicate's:
    plain Python's traceback and no explanation, even with a Replicate token set."""
    result = run_wrapper(
        "litellm",
        LITELLM_OPENAI,
        api,
        {"OPENAI_LOOPBACK": api.url, "REPLICATE_API_TOKEN": CANARY},
        with_client=False,
    )
    assert result.returncode == 1, result.stderr
    assert "OpenAIException" in result.stderr
    assert explanations(result.stderr) == []


# The texts the live runs printed (without replicate_explain), as users paste them.
PASTED = [
    ("litellm-key-missing.txt", "litellm-key-rejected"),
    ("litellm-refused.txt", "litellm-key-rejected"),
    ("litellm-openai-401.txt", None),
    ("langchain-token-missing.txt", "langchain-token-missing"),
    ("langchain-0.2-token-missing.txt", "langchain-token-missing"),
    ("langchain-keyword-ignored.txt", "langchain-token-argument-ignored"),
    ("langchain-refused.txt", "token-rejected"),
    ("llama-index-no-token.txt", "llama-index-token-unset"),
]


def test_older_litellm_text_is_explained_from_the_text() -> None:
    """LiteLLM 1.14.4 (requests, 2023) worded the same 401 "Failed to start prediction {...}"
    (``litellm/llms/replicate.py``, ``start_prediction``; mapped in ``litellm/utils.py``). The
    lines are written from that source, as the release cannot run offline."""
    text = (
        "Traceback (most recent call last):\n"
        '  File "/home/user/app/main.py", line 3, in <module>\n'
        '    response = litellm.completion(model="replicate/meta/llama-2-70b-chat:02e509c7", messages=messages)\n'
        '  File "/home/user/.venv/lib/python3.11/site-packages/litellm/utils.py", line 2197, in wrapper\n'
        "    raise e\n"
        "litellm.exceptions.AuthenticationError: ReplicateException - Failed to start prediction "
        '{"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401}\n'
    )
    shown = [r.explanation.rule_id for r in explain_text(text, load_rules()) if r.explanation is not None]
    assert shown == ["litellm-key-rejected"]


@pytest.mark.parametrize(("name", "expect"), PASTED)
def test_pasted_wrapper_text_is_explained_from_the_text(name: str, expect: str | None) -> None:
    """A traceback a wrapper printed, pasted on its own, is explained by the rule its text
    shows (no environment read: LiteLLM's missing key and refused key look the same in text);
    LiteLLM's OpenAI failure gets nothing."""
    text = (DATA / name).read_text(encoding="utf-8")
    results = explain_text(text, load_rules())
    shown = [r.explanation.rule_id for r in results if r.explanation is not None]
    assert shown == ([expect] if expect else [])


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        (
            'ERROR:root:litellm.AuthenticationError: ReplicateException - {"title": "Unauthenticated", '
            '"detail": "You did not pass a valid authentication token", "status": 401}',
            ["litellm-key-rejected"],
        ),
        ("ERROR:root:litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect API key", []),
    ],
)
def test_a_logged_litellm_line_is_read_only_for_replicate(line: str, expect: list[str]) -> None:
    """``logger.error(e)`` of LiteLLM's exception (one line, no traceback) is read when it is
    Replicate's failure, and left alone for another provider."""
    shown = [r.explanation.rule_id for r in explain_text(line, load_rules()) if r.explanation is not None]
    assert shown == expect


def test_the_recorded_texts_hold_no_token() -> None:
    """The recorded texts keep no token: the canary and the loopback's working token are absent."""
    for path in sorted(DATA.glob("*.txt")):
        assert leaks(path.read_text(encoding="utf-8"), CANARY, VALID_TOKEN) == [], path.name


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ('litellm.AuthenticationError: ReplicateException - {"title": "Unauthenticated"}', "litellm"),
        ("litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect API key", None),
        (
            '  File "/x/site-packages/langchain_community/llms/replicate.py", line 207, in _create_prediction',
            "langchain",
        ),
        ("Value error, Did not find replicate_api_token, please add an environment variable", "langchain"),
        ('  File "/x/site-packages/llama_index/llms/replicate/base.py", line 146, in stream_complete', "llama_index"),
        ("Value error, Did not find openai_api_key, please add an environment variable", None),
    ],
)
def test_text_markers_name_the_wrapper(text: str, expect: str | None) -> None:
    """Each wrapper is recognised in text by its own frames or messages, and only for Replicate."""
    found = text_wrapper(text)
    assert (found.name if found else None) == expect


@pytest.mark.parametrize(
    ("environ", "passed", "expect"),
    [
        ({}, False, ("unset", None, False)),
        ({"REPLICATE_API_TOKEN": "r8_a"}, False, ("set", "REPLICATE_API_TOKEN", False)),
        ({"REPLICATE_API_KEY": "r8_b", "REPLICATE_API_TOKEN": "r8_a"}, False, ("set", "REPLICATE_API_KEY", True)),
        ({"REPLICATE_API_KEY": "r8_a", "REPLICATE_API_TOKEN": "r8_a"}, False, ("set", "REPLICATE_API_KEY", False)),
        ({"REPLICATE_API_KEY": "", "REPLICATE_API_TOKEN": "r8_a"}, True, ("set", "REPLICATE_API_TOKEN", False)),
    ],
)
def test_litellm_variables_are_read_in_litellm_order(
    environ: dict[str, str], passed: bool, expect: tuple[Any, ...]
) -> None:
    """LiteLLM reads REPLICATE_API_KEY, then REPLICATE_API_TOKEN (an empty value falls through,
    as with its ``or`` chain); a different REPLICATE_API_KEY shadows the token."""
    facts = wrapper_facts(BY_NAME["litellm"], environ, observed=True, passed=passed)
    assert facts == {
        "wrapper.name": "litellm",
        "wrapper.token_state": expect[0],
        "wrapper.token_variable": expect[1],
        "wrapper.variable_shadowed": expect[2],
        "wrapper.token_passed": passed,
        "wrapper.token_ignored": "unknown",
    }


def test_an_unobserved_environment_gives_unknown_wrapper_facts() -> None:
    """Pasted text read on its own: the wrapper is named, what it read is unknown."""
    assert wrapper_facts(BY_NAME["langchain"], {}, observed=False) == {
        "wrapper.name": "langchain",
        "wrapper.token_state": "unknown",
        "wrapper.token_variable": None,
        "wrapper.variable_shadowed": False,
        "wrapper.token_passed": "unknown",
        "wrapper.token_ignored": "unknown",
    }


def test_a_described_litellm_failure_for_another_provider_shows_no_wrapper() -> None:
    """Only LiteLLM's ReplicateException makes a LiteLLM exception Replicate's."""
    assert described_wrapper(["litellm.exceptions.AuthenticationError"], "OpenAIException - bad key") is None
    snapshot = snapshot_from_data([], {}, None, variable_known=False)
    assert (snapshot.facts["wrapper.name"], snapshot.relevant) == (None, False)


# Recording the pasted texts: python tests/test_wrappers.py --record
RECORDINGS = [
    ("litellm-key-missing.txt", "litellm", _program(LITELLM), {}),
    ("litellm-refused.txt", "litellm", _program(LITELLM), {"REPLICATE_API_TOKEN": CANARY}),
    ("litellm-openai-401.txt", "litellm", LITELLM_OPENAI, {"OPENAI_LOOPBACK": "{url}"}),
    ("langchain-token-missing.txt", "langchain", _program(LANGCHAIN), {}),
    ("langchain-0.2-token-missing.txt", OLDER, _program(LANGCHAIN), {}),
    (
        "langchain-keyword-ignored.txt",
        "langchain",
        _program(LANGCHAIN, ', replicate_api_token=os.environ["MY_TOKEN"]'),
        {"MY_TOKEN": VALID_TOKEN},
    ),
    ("langchain-refused.txt", "langchain", _program(LANGCHAIN), {"REPLICATE_API_TOKEN": CANARY}),
    ("llama-index-no-token.txt", "llama_index", _program(LLAMA_INDEX), {}),
]


def _as_user_sees_it(text: str, api: LoopbackAPI) -> str:
    """The printed text with this machine's paths replaced by a user's usual ones."""
    site = "/home/user/app/.venv/lib/python3.11/site-packages"
    for path in sorted(
        {str(extra_path(req)) for req in (*WRAPPER_VERSIONS.values(), OLDER)} | {str(client_path(CLIENT))},
        key=len,
        reverse=True,
    ):
        text = text.replace(path, site)
    text = text.replace(str(WRAPPER_SITE), site)
    return text.replace(api.url, "https://api.replicate.com")


def record() -> None:
    """Run each recording's program without replicate_explain and save what it printed."""
    DATA.mkdir(parents=True, exist_ok=True)
    with LoopbackAPI(tokens={VALID_TOKEN}) as api:
        for name, wrapper, code, environ in RECORDINGS:
            filled = {key: value.replace("{url}", api.url) for key, value in environ.items()}
            wrapper, older = ("langchain", OLDER) if wrapper == OLDER else (wrapper, None)
            result = run_wrapper(
                wrapper, code, api, filled, explain=False, with_client=wrapper != "litellm", requirement=older
            )
            start = result.stderr.find("Traceback (most recent call last):")
            text = _as_user_sees_it(result.stderr[start:], api)
            text = re.sub(r"/tmp/replicate-explain-wrapper-[^/]+/", "/home/user/app/", text)
            assert not leaks(text, CANARY, VALID_TOKEN), name
            (DATA / name).write_text(text, encoding="utf-8")
            print(name, len(text.splitlines()), "lines")


if __name__ == "__main__" and "--record" in sys.argv:
    record()


def test_the_loopback_streams_a_prediction_as_server_sent_events() -> None:
    """``urls.stream`` of a prediction answers ``text/event-stream``: one ``output`` event with
    the output, then ``done`` (what ``replicate.stream`` and LlamaIndex read); without a token,
    the usual 401 problem."""
    import http.client
    import json

    with LoopbackAPI(tokens={VALID_TOKEN}) as api:
        host, port = api.url.removeprefix("http://").split(":")

        def get(path: str, method: str = "GET", body: bytes = b"", token: bool = True) -> tuple[int, str, bytes]:
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            headers = {"Content-Length": str(len(body)), "Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {VALID_TOKEN}"
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answer = (response.status, response.getheader("Content-Type", ""), response.read())
            connection.close()
            return answer

        _, _, created = get("/v1/models/acme/hello-world/predictions", "POST", b'{"input": {}, "stream": true}')
        stream = json.loads(created)["urls"]["stream"].removeprefix(api.url)
        assert get(stream) == (
            200,
            "text/event-stream",
            b"event: output\nid: 1\ndata: hello\n\nevent: done\nid: 2\ndata: {}\n\n",
        )
        assert get(stream, token=False)[:2] == (401, "application/problem+json")


def test_token_ignored_compares_the_model_objects_token_by_digest() -> None:
    """LangChain's model object (``self`` in its frames) holds the token it was given: the fact
    is true when the request carried another one or none, false when it carried that one."""
    from replicate_explain._wrappers import token_ignored

    namespace: dict[str, Any] = {"__name__": "langchain_community.llms.replicate"}
    exec(
        "class Replicate:\n"
        "    replicate_api_token = 'r8_given'\n"
        "    def _call(self):\n"
        "        raise RuntimeError('401 Unauthorized')\n",
        namespace,
    )
    try:
        namespace["Replicate"]()._call()
    except RuntimeError as error:
        chain = [error]
    langchain = BY_NAME["langchain"]
    assert [token_ignored(langchain, chain, sent) for sent in ("r8_given", "yo", None)] == [False, True, True]
    assert token_ignored(BY_NAME["llama_index"], chain, None) == "unknown"
