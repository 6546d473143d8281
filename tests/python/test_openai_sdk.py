"""The official `openai` Python SDK, unmodified, against a running DataMind gateway.

Run by `tests/tests/openai_sdk.rs`, which starts a mock upstream and a gateway and sets:
DATAMIND_GATEWAY_URL (http://127.0.0.1:PORT), DATAMIND_API_KEY, and optionally
DATAMIND_CHAT_MODEL / DATAMIND_EMBED_MODEL.
"""

import os

import openai
import pytest

BASE_URL = os.environ["DATAMIND_GATEWAY_URL"].rstrip("/") + "/v1"
API_KEY = os.environ["DATAMIND_API_KEY"]
CHAT_MODEL = os.environ.get("DATAMIND_CHAT_MODEL", "gpt-4o-mini")
EMBED_MODEL = os.environ.get("DATAMIND_EMBED_MODEL", "text-embedding-3-small")


def make_client(api_key: str = API_KEY) -> openai.OpenAI:
    # No retries: a failure must show up as the first error, not be retried away.
    return openai.OpenAI(base_url=BASE_URL, api_key=api_key, max_retries=0, timeout=15.0)


@pytest.fixture(scope="module")
def client() -> openai.OpenAI:
    return make_client()


def test_chat_non_streaming(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Say hello"}],
    )
    assert resp.choices, resp
    assert resp.choices[0].message.content
    assert resp.usage is not None and resp.usage.prompt_tokens > 0


def test_chat_streaming(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Count to five"}],
        stream=True,
    )
    parts = []
    chunks = 0
    for chunk in stream:
        chunks += 1
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
    assert chunks >= 2, f"only {chunks} chunks"
    assert "".join(parts), "no streamed content"


def test_chat_streaming_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [c.usage for c in stream if c.usage is not None]
    assert usage, "asked for usage, got no usage chunk"
    assert usage[-1].completion_tokens > 0


def test_embeddings(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(model=EMBED_MODEL, input=["hello", "world"])
    assert len(resp.data) == 2
    assert all(len(d.embedding) > 0 for d in resp.data)


def test_models_list(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert CHAT_MODEL in ids, ids
    assert EMBED_MODEL in ids, ids


def test_bad_key_is_authentication_error() -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        make_client("sk-definitely-wrong").chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 401


@pytest.mark.skipif(
    "DATAMIND_REVOKED_KEY" not in os.environ,
    reason="this run did not revoke a key through the admin API",
)
def test_revoked_key_is_authentication_error() -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        make_client(os.environ["DATAMIND_REVOKED_KEY"]).chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert "revoked" in str(info.value)


def test_unknown_model_is_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 404
    assert info.value.code == "model_not_found"


def test_malformed_request_is_bad_request_error(client: openai.OpenAI) -> None:
    # The SDK's own low-level `post` sends raw bytes: a truncated JSON body.
    with pytest.raises(openai.BadRequestError) as info:
        client.post(
            "/chat/completions",
            cast_to=object,
            content=b'{"model": "' + CHAT_MODEL.encode() + b'", "messages": [',
            options={"headers": {"Content-Type": "application/json"}},
        )
    assert info.value.status_code == 400


@pytest.mark.skipif(
    os.environ.get("DATAMIND_TOOL_CALLS") != "1",
    reason="the upstream behind this run does not answer with tool calls",
)
def test_chat_tool_call(client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            },
        }
    ]
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=tools,
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls", resp
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert "Paris" in call.function.arguments
    # The same through a stream: arguments arrive in pieces and join to the same JSON.
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=tools,
        stream=True,
    )
    args, names = "", []
    for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                if tc.function and tc.function.name:
                    names.append(tc.function.name)
                if tc.function and tc.function.arguments:
                    args += tc.function.arguments
    assert names == ["get_weather"], names
    assert "Paris" in args, args
