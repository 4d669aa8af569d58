"""FakeOllama's OpenAI-compatible endpoints against docs/reference/ollama-protocol.md,
"OpenAI-compatible endpoints"."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from persona_ollama.testing import FakeOllama, count_tokens


def complete(fake: FakeOllama, **body: Any) -> requests.Response:
    body.setdefault("model", "llama3.2:3b")
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    return requests.post(fake.url + "/v1/chat/completions", json=body, timeout=5)


def events(response: requests.Response) -> list[Any]:
    """The SSE data payloads, checking the framing on the way."""
    assert response.text.endswith("\n\n")
    payloads = []
    for event in response.text.split("\n\n")[:-1]:
        assert event.startswith("data: ")
        data = event[len("data: ") :]
        payloads.append(data if data == "[DONE]" else json.loads(data))
    return payloads


@pytest.mark.parametrize(
    ("effort", "thinks"), [("none", False), ("minimal", True), ("xhigh", True), ("high", True)]
)
def test_reasoning_effort_maps_onto_think(
    fake_ollama: FakeOllama, effort: str, thinks: bool
) -> None:
    message = complete(fake_ollama, model="qwen3:8b", reasoning_effort=effort).json()["choices"][0][
        "message"
    ]

    assert ("reasoning" in message) is thinks


def test_request_fields_map_onto_native_options(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("one two three four five six")

    body = complete(fake_ollama, max_tokens=2, stop="never", seed=1, presence_penalty=0.5).json()

    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


def test_stream_is_sse_with_role_first_finish_chunk_usage_and_done(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("Hi there")

    response = complete(fake_ollama, stream=True, stream_options={"include_usage": True})

    assert response.headers["Content-Type"] == "text/event-stream"
    payloads = events(response)
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
    assert chunks[1]["choices"][0] == {
        "index": 0,
        "delta": {"content": " there"},
        "finish_reason": None,
    }
    assert chunks[2]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert chunks[3]["choices"] == []
    assert chunks[3]["usage"]["completion_tokens"] == count_tokens("Hi there")
    assert "usage" not in chunks[2]


def test_before_v0326_the_finish_reason_rides_on_the_last_chunk(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(version="0.32.5")
    fake.reply_with("Hi")

    chunks = events(complete(fake, stream=True))[:-1]

    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "stop"]
    assert chunks[-1]["choices"][0]["delta"] == {"content": ""}


def test_stream_faults_apply_to_sse(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("a b c")
    fake_ollama.error_mid_stream_next(after_chunks=1)

    payloads = events(complete(fake_ollama, stream=True))

    assert "[DONE]" not in payloads
    assert len(payloads) == 2
    assert payloads[1]["model"] == ""
    assert payloads[1]["choices"][0]["delta"] == {"content": ""}


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        ({"messages": []}, 400, "invalid_request_error", "[] is too short - 'messages'"),
        ({"model": "nope"}, 404, "not_found_error", "model 'nope' not found"),
        ({"model": ""}, 400, "invalid_request_error", "model is required"),
        (
            {"stream": "yes"},
            400,
            "invalid_request_error",
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.stream "
            "of type bool",
        ),
        (
            {"temperature": "hot"},
            400,
            "invalid_request_error",
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.temperature "
            "of type float64",
        ),
        (
            {"messages": ["hi"]},
            400,
            "invalid_request_error",
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.messages "
            "of type openai.Message",
        ),
    ],
)
def test_errors_use_the_openai_shape(
    fake_ollama: FakeOllama, body: dict[str, Any], status: int, kind: str, message: str
) -> None:
    response = complete(fake_ollama, **body)

    assert response.status_code == status
    assert response.json() == {
        "error": {"message": message, "type": kind, "param": None, "code": None}
    }
    assert response.headers["Content-Type"] == "application/json"


def test_scripted_failures_use_the_openai_shape_with_api_error(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next()

    response = complete(fake_ollama)

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "api_error"


@pytest.mark.parametrize(("model", "shown"), [("nope", "nope:latest"), ("a%20b", "a b:latest")])
def test_retrieve_a_missing_model_is_a_404_not_found_error(
    fake_ollama: FakeOllama, model: str, shown: str
) -> None:
    response = requests.get(fake_ollama.url + "/v1/models/" + model, timeout=5)

    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": f"model '{shown}' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
