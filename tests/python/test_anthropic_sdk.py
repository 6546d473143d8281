"""The official `anthropic` Python SDK, unmodified, against the gateway's /v1/messages.

The gateway translates Anthropic Messages requests to its internal (OpenAI) format and
routes them to whatever provider serves the model — here an OpenAI-compatible upstream —
then translates answers, streams and errors back to Anthropic's wire format.
"""

import os

import anthropic
import pytest

BASE = os.environ["DATAMIND_GATEWAY_URL"].rstrip("/")
KEY = os.environ["DATAMIND_API_KEY"]
MODEL = os.environ.get("DATAMIND_CHAT_MODEL", "gpt-4o-mini")


@pytest.fixture()
def client():
    return anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0, timeout=15)


def test_messages_non_streaming(client):
    msg = client.messages.create(
        model=MODEL,
        max_tokens=64,
        system="You are terse.",
        messages=[{"role": "user", "content": "hello"}],
    )
    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.model == MODEL
    assert msg.content and msg.content[0].type == "text" and msg.content[0].text
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens > 0


def test_messages_streaming(client):
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_messages_with_tools_accepted(client):
    msg = client.messages.create(
        model=MODEL,
        max_tokens=64,
        tools=[
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            }
        ],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert msg.type == "message"


def test_count_tokens(client):
    r = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "hello world"}]
    )
    assert r.input_tokens > 0


def test_bad_key_is_authentication_error():
    bad = anthropic.Anthropic(base_url=BASE, api_key="sk-wrong", max_retries=0, timeout=15)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])


def test_unknown_model_is_not_found(client):
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )


def test_invalid_request_is_bad_request(client):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=MODEL, max_tokens=8, messages="not a list")
