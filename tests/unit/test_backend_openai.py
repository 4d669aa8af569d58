"""OpenAIBackend over a mocked HTTP layer: the request it sends, the event stream it reads, the
facts it takes from /v1/models (vLLM, llama.cpp, LM Studio and Ollama shapes), and every failure
in the server's own terms."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
import responses

from persona_ollama import OllamaProvider
from persona_ollama.backends.base import ChatRequest, Chunk
from persona_ollama.backends.ollama import OllamaBackend
from persona_ollama.backends.openai import (
    OpenAIBackend,
    completion_request,
    entries_serving,
    final_chunk,
    server_kind,
    sse_chunks,
)
from persona_ollama.backends.openai_models import names_of
from persona_ollama.backends.openai_rules import ServedIds
from persona_ollama.choosing import catalogue
from persona_ollama.choosing.catalogue import Catalogue, GiB, ModelSpec
from persona_ollama.endpoint import parse_host, v1_endpoint
from persona_ollama.errors import (
    CloudSignInRequiredError,
    ConfigurationError,
    ContextOverflowError,
    InsufficientMemoryError,
    ModelNotPulledError,
    ModelRunnerError,
    OllamaAuthenticationError,
    OllamaError,
    OllamaNotRunningError,
    OllamaResponseError,
    ServerBusyError,
)

BASE = "http://127.0.0.1:8000"
CHAT = f"{BASE}/v1/chat/completions"
MODELS = f"{BASE}/v1/models"
TAGS = f"{BASE}/api/tags"
VLLM_MODEL = "Qwen/Qwen3-8B"
HI = ({"role": "user", "content": "hi"},)


def sse(*events: Any) -> str:
    """An event stream: dicts become JSON data, strings are sent as they are."""
    return "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    model: str = "m",
    **delta: Any,
) -> dict[str, Any]:
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def usage(prompt: int = 26, completion: int = 3, model: str = "m") -> dict[str, Any]:
    total = prompt + completion
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total},
    }


def vllm_card(model: str = VLLM_MODEL, max_model_len: int = 8192) -> dict[str, Any]:
    return {
        "id": model,
        "object": "model",
        "created": 1787000000,
        "owned_by": "vllm",
        "root": model,
        "parent": None,
        "max_model_len": max_model_len,
        "permission": [],
    }


def llama_cpp_card(n_ctx_train: int = 131072) -> dict[str, Any]:
    meta = {"vocab_type": 2, "n_vocab": 128256, "n_ctx_train": n_ctx_train, "n_params": 8030261248}
    return {
        "id": "llama-3.1-8b.gguf",
        "object": "model",
        "created": 1,
        "owned_by": "llamacpp",
        "meta": meta,
    }


def ollama_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1, "owned_by": "library"}


def models_list(*cards: dict[str, Any]) -> dict[str, Any]:
    return {"object": "list", "data": list(cards)}


def sent_body(mocked: responses.RequestsMock, index: int = -1) -> dict[str, Any]:
    posts = [call for call in mocked.calls if call.request.method == "POST"]
    return json.loads(posts[index].request.body)


def ask(model: str = "m", messages: tuple[dict[str, str], ...] = (), **fields: Any) -> ChatRequest:
    """A neutral chat request, as request.py builds it (max_tokens is always set there)."""
    return ChatRequest(
        model=model, messages=messages, max_tokens=fields.pop("max_tokens", 64), **fields
    )


def chunks_of(data: str, model: str = "m") -> list[Chunk]:
    """What sse_chunks reads from ``data`` sent as one piece."""
    return list(sse_chunks([data.encode()], model=model))


@pytest.fixture(autouse=True)
def known_catalogue(monkeypatch):
    """A fixed catalogue, so that the fallback context length does not follow data/models.json."""
    specs = [
        ModelSpec("llama3.2:3b", "llama", 3.2, 131072, 2 * GiB, 3 * GiB, 60),
        ModelSpec("qwen3:8b", "qwen3", 8.2, 40960, 5 * GiB, 6 * GiB, 80, thinking=True),
    ]
    monkeypatch.setattr(catalogue, "load_catalogue", lambda environ=None: Catalogue(specs))


@pytest.fixture
def backend():
    b = OpenAIBackend(parse_host(BASE + "/v1"), backoff=0)
    yield b
    b.close()


def stream_reply(mocked: responses.RequestsMock, *events: Any) -> None:
    mocked.post(CHAT, body=sse(*events), content_type="text/event-stream")


# -- the request --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_tokens": 50}, {"max_tokens": 50}),
        (
            {"options": {"temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": ["\n\n"]}},
            {"temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": ["\n\n"]},
        ),
        (
            {"options": {"presence_penalty": 0.5, "frequency_penalty": 0.1}},
            {"presence_penalty": 0.5, "frequency_penalty": 0.1},
        ),
        ({"options": {"top_k": 40, "min_p": 0.05}}, {"top_k": 40, "min_p": 0.05}),
        ({"format": "json"}, {"response_format": {"type": "json_object"}}),
        (
            {"format": {"type": "object"}},
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "response", "schema": {"type": "object"}},
                }
            },
        ),
        ({"think": False}, {"reasoning_effort": "none"}),
        ({"think": "low"}, {"reasoning_effort": "low"}),
        ({"think": "max"}, {"reasoning_effort": "max"}),
        ({"think": True}, {}),  # the server's default: thinking models think
        ({"window": 8192}, {}),  # a /v1 server has one fixed window: never sent
    ],
)
def test_completion_request_says_the_neutral_request_in_v1_fields(fields, expected):
    fields = dict(fields)
    request = ChatRequest(model="m", messages=HI, max_tokens=fields.pop("max_tokens", 64), **fields)

    body, dropped = completion_request(request, served="m")

    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
        **expected,
    }
    assert dropped == []


def test_the_served_id_is_sent_not_the_name_asked_for():
    body, _ = completion_request(ask("qwen/qwen3-8b"), served=VLLM_MODEL)

    assert body["model"] == VLLM_MODEL


@pytest.mark.parametrize(
    ("think", "expected"),
    [
        (False, {"chat_template_kwargs": {"enable_thinking": False}}),
        ("max", {"reasoning_effort": "high"}),
        ("medium", {"reasoning_effort": "medium"}),
    ],
)
def test_vllm_gets_only_the_reasoning_values_it_accepts(think, expected):
    body, _ = completion_request(ask(think=think), served="m", owner="vllm")

    assert {k: v for k, v in body.items() if k in expected} == expected
    assert "reasoning_effort" in body or "chat_template_kwargs" in body


def test_options_a_v1_server_cannot_take_are_not_sent_and_named():
    request = ask(
        window=8192,
        options={"num_gpu": 20, "repeat_penalty": 1.1},
        keep_alive="10m",
    )

    body, dropped = completion_request(request, served="m")

    # The window is not an option here: request.py says so once when the caller set it.
    assert dropped == ["keep_alive", "num_gpu", "repeat_penalty"]
    assert not {"options", "num_ctx", "truncate", "keep_alive", "window"} & set(body)


def test_chat_posts_the_completion_request_to_v1(backend, mocked):
    stream_reply(mocked, chunk("Hi", finish="stop"), usage(), "[DONE]")
    messages = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"})
    request = ask(
        messages=messages,
        max_tokens=20,
        window=4096,
        options={"temperature": 0.7, "seed": 1},
        format="json",
    )

    list(backend.chat(request))

    sent = sent_body(mocked)
    assert sent["model"] == "m"
    assert sent["messages"] == list(messages)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 20
    assert (sent["temperature"], sent["seed"]) == (0.7, 1)
    assert sent["response_format"] == {"type": "json_object"}
    assert not {"options", "truncate", "num_ctx"} & set(sent)


def test_dropped_options_are_warned_about_once(backend, mocked, caplog):
    for _ in range(2):
        stream_reply(mocked, chunk("x", finish="stop"), "[DONE]")
    request = ask(options={"num_gpu": 1})

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        list(backend.chat(request))
        list(backend.chat(request))

    assert [r.getMessage() for r in caplog.records if "num_gpu" in r.getMessage()] == [
        "The OpenAI-compatible API has no 'num_gpu'; it was not sent "
        "(api='native' with Ollama takes it)."
    ]


def test_nothing_is_read_before_the_first_item_and_closing_gives_the_connection_back(
    backend, mocked
):
    stream_reply(mocked, chunk("a"), chunk("b", finish="stop"), "[DONE]")

    chat = backend.chat(ask())
    assert backend.connections_in_use() == 1
    assert next(chat).content == "a"
    chat.close()

    assert backend.connections_in_use() == 0


# -- the event stream ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "events",
    [
        # vLLM, llama.cpp, Ollama < 0.32.6: the finish reason rides on the last content chunk
        [chunk("Hel", role="assistant"), chunk("lo", finish="stop"), usage(), "[DONE]"],
        # Ollama >= 0.32.6: the finish reason has a chunk of its own with an empty delta
        [chunk("Hel", role="assistant"), chunk("lo"), chunk(finish="stop"), usage(), "[DONE]"],
    ],
    ids=["finish-on-last-content", "finish-in-own-chunk"],
)
def test_stream_becomes_chunks_with_usage_in_the_final_one(backend, mocked, events):
    stream_reply(mocked, *events)

    chunks = list(backend.chat(ask()))

    assert "".join(c.content for c in chunks) == "Hello"
    assert all(c.done is False for c in chunks[:-1])
    final = chunks[-1]
    assert (final.done, final.reason, final.model) == (True, "stop", "m")
    assert (final.input_tokens, final.output_tokens) == (26, 3)
    assert final.content == "" and final.load_seconds is None  # a /v1 server states none
    # raw_response gets the server's own fields, not fabricated native ones.
    assert final.raw["usage"] == {"prompt_tokens": 26, "completion_tokens": 3, "total_tokens": 29}
    assert final.raw["finish_reason"] == "stop"
    assert not {"prompt_eval_count", "eval_count", "eval_duration"} & set(final.raw)


@pytest.mark.parametrize(
    ("reason", "neutral"),
    [("stop", "stop"), ("length", "length"), ("tool_calls", "stop"), ("abort", "abort")],
)
def test_finish_reasons_map_onto_neutral_reasons(backend, mocked, reason, neutral):
    stream_reply(mocked, chunk("x", finish=reason), "[DONE]")

    final = list(backend.chat(ask()))[-1]

    assert final.reason == neutral
    assert final.raw["finish_reason"] == reason  # the server's own word is kept


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_goes_to_thinking_not_content(backend, mocked, field):
    stream_reply(mocked, chunk("", **{field: "Hmm."}), chunk("42", finish="stop"), "[DONE]")

    chunks = list(backend.chat(ask()))

    assert (chunks[0].content, chunks[0].thinking) == ("", "Hmm.")
    assert (chunks[1].content, chunks[1].thinking) == ("42", "")


def test_usage_before_the_finish_reason_is_still_read():
    final = chunks_of(sse(chunk("a"), usage(5, 1), chunk(finish="stop"), "[DONE]"))[-1]

    assert (final.input_tokens, final.output_tokens) == (5, 1)


def test_llama_cpp_timings_become_seconds_and_are_kept_as_sent():
    timings = {"prompt_ms": 12.5, "predicted_ms": 250.0}
    timed = {**chunk("a", finish="stop"), "timings": timings}

    final = chunks_of(sse(timed, "[DONE]"))[-1]

    assert (final.prompt_seconds, final.answer_seconds) == (0.0125, 0.25)
    assert final.raw["timings"] == timings


def test_the_served_model_name_is_reported():
    data = sse(chunk("a", finish="stop", model="Qwen/Qwen3-8B"), "[DONE]")

    assert chunks_of(data, model="qwen/qwen3-8b")[-1].model == "Qwen/Qwen3-8B"


def test_final_chunk_without_a_reason_says_stop_and_leaves_absent_counts_unknown():
    final = final_chunk("m", None, {}, {})

    assert (final.done, final.reason, final.model) == (True, "stop", "m")
    assert (final.input_tokens, final.output_tokens, final.prompt_seconds) == (None, None, None)
    assert "usage" not in final.raw and "timings" not in final.raw


@pytest.mark.parametrize(
    "error_event",
    [
        {"error": {"message": "boom", "type": "api_error", "param": None, "code": None}},
        {"object": "error", "message": "boom", "type": "InternalServerError", "code": 500},
    ],
    ids=["nested", "flat-older-vllm"],
)
def test_error_event_mid_stream_raises_even_when_done_follows(backend, mocked, error_event):
    stream_reply(mocked, chunk("partial"), error_event, "[DONE]")  # vLLM sends [DONE] after it
    seen: list[str] = []

    with pytest.raises(OllamaResponseError, match="middle of the answer: boom") as caught:
        for item in backend.chat(ask()):
            seen.append(item.content)

    assert seen == ["partial"]
    assert caught.value.server_text == "boom"
    assert backend.connections_in_use() == 0


def test_an_out_of_memory_error_event_is_insufficient_memory(backend, mocked):
    stream_reply(mocked, chunk("a"), {"error": {"message": "CUDA out of memory. Tried ..."}})

    with pytest.raises(InsufficientMemoryError) as caught:
        list(backend.chat(ask()))

    assert caught.value.status_code == 200
    assert "could not load 'm'" in caught.value.message
    assert "smaller model" in str(caught.value.hint)


def test_an_overflow_error_event_is_a_context_overflow_with_its_sizes(backend, mocked):
    text = (
        "This model's maximum context length is 4096 tokens. However, your request has "
        "5000 input tokens."
    )
    stream_reply(mocked, {"error": {"message": text, "code": 400}})

    with pytest.raises(ContextOverflowError) as caught:
        list(backend.chat(ask()))

    assert (caught.value.prompt_tokens, caught.value.context_length) == (5000, 4096)
    assert caught.value.status_code == 200


def test_stream_without_done_or_finish_reason_raises(backend, mocked):
    stream_reply(mocked, chunk("one"), chunk("two"), usage())

    with pytest.raises(OllamaResponseError, match="ended before the server said it was done"):
        list(backend.chat(ask()))


def test_stream_with_a_finish_reason_but_no_done_marker_is_complete(backend, mocked):
    stream_reply(mocked, chunk("one", finish="length"))

    assert list(backend.chat(ask()))[-1].reason == "length"


def test_done_before_any_finish_reason_is_an_interrupted_answer(backend, mocked):
    mocked.get(MODELS, json=models_list(vllm_card("m")))
    stream_reply(mocked, chunk("one"), chunk("two"), "[DONE]")

    with pytest.raises(OllamaResponseError) as caught:
        list(backend.chat(ask()))

    assert "interrupted" in caught.value.message
    assert "partial answer was discarded" in caught.value.message
    assert "vLLM server" in caught.value.message
    assert "--interrupt_requests" not in str(caught.value.hint)  # llama.cpp's advice only
    assert backend.connections_in_use() == 0


def test_an_interrupted_llama_cpp_answer_says_how_to_stop_the_interruptions(backend, mocked):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, chunk("one"), "[DONE]")

    with pytest.raises(OllamaResponseError, match="interrupted") as caught:
        list(backend.chat(ask()))

    assert "--interrupt_requests False" in str(caught.value.hint)


@pytest.mark.parametrize(
    "event",
    [
        chunk("a", finish=["stop"]),  # type: ignore[arg-type]
        chunk("a", finish={"why": "stop"}),  # type: ignore[arg-type]
        chunk(5, finish="stop"),  # type: ignore[arg-type]
        chunk(["a"], finish="stop"),  # type: ignore[arg-type]
        chunk("", reasoning={"text": "Hmm"}),
        chunk("", reasoning_content=7),
    ],
    ids=["finish-list", "finish-object", "content-number", "content-list", "reasoning-object",
         "reasoning-number"],
)  # fmt: skip
def test_a_field_of_the_wrong_type_is_a_typed_error_not_a_type_error(backend, mocked, event):
    stream_reply(mocked, event, chunk("b", finish="stop"), "[DONE]")

    with pytest.raises(OllamaResponseError, match="where text was expected"):
        list(backend.chat(ask()))


@pytest.mark.parametrize(
    ("counts", "timings"),
    [
        ({"prompt_tokens": "5", "completion_tokens": "2"}, {"prompt_ms": "1"}),
        ({"prompt_tokens": True, "completion_tokens": False}, {"prompt_ms": True}),
        ({"prompt_tokens": -5, "completion_tokens": -1}, {"prompt_ms": -1.0}),
    ],
    ids=["strings", "booleans", "negative"],
)
def test_counts_and_timings_that_are_not_counts_are_unknown_not_numbers(counts, timings):
    events = [chunk("a", finish="stop"), {"choices": [], "usage": counts, "timings": timings}]
    final = chunks_of(sse(*events, "[DONE]"))[-1]

    assert final.done is True
    assert (final.input_tokens, final.output_tokens) == (None, None)
    assert (final.prompt_seconds, final.answer_seconds) == (None, None)


def test_non_finite_timings_and_choices_that_are_not_a_list_are_ignored():
    # NaN and Infinity are accepted by Python's JSON parser; they are not durations.
    data = sse({"choices": 5}, chunk("a", finish="stop"), "[DONE]").replace(
        '"choices": 5', '"choices": 5, "timings": {"prompt_ms": NaN, "predicted_ms": 1e400}'
    )
    chunks = chunks_of(data)

    assert [c.content for c in chunks] == ["a", ""]
    assert (chunks[-1].prompt_seconds, chunks[-1].answer_seconds) == (None, None)


LLAMA_CPP_PYTHON = {"id": "m", "object": "model", "owned_by": "me", "permissions": []}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([chunk("a"), {"error": {"message": "boom"}}], "check the llama.cpp server's log"),
        ([chunk("a")], "neither a finish reason nor [DONE]"),
        (["[1, 2]"], "points at an OpenAI-compatible server"),
        (["{bad"], "points at an OpenAI-compatible server"),
    ],
    ids=["error-event", "no-end", "not-an-object", "not-json"],
)
def test_stream_errors_from_a_server_that_is_not_ollama_give_no_ollama_advice(
    backend, mocked, events, expected
):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, *events)

    with pytest.raises(OllamaResponseError) as caught:
        list(backend.chat(ask(messages=HI)))

    assert expected in str(caught.value.hint)
    assert "ollama" not in str(caught.value.hint).replace("persona-ollama", "").lower()


def test_stream_errors_from_ollama_behind_v1_say_where_its_log_is(backend, mocked):
    mocked.get(MODELS, json=models_list(ollama_card("llama3.2:3b")))
    stream_reply(mocked, chunk("a"), {"error": {"message": "boom"}})

    with pytest.raises(OllamaResponseError) as caught:
        list(backend.chat(ask("llama3.2:3b")))

    assert "Ollama server" in caught.value.message
    assert "ollama serve" in str(caught.value.hint)


def test_malformed_event_data_raises(backend, mocked):
    stream_reply(mocked, '{"id": "chatcmpl-1", "obj')

    with pytest.raises(OllamaResponseError, match="not JSON"):
        list(backend.chat(ask()))


def test_an_ollama_server_behind_v1_is_warned_about_once(backend, mocked, caplog):
    ollama_chunk = {**chunk("x", finish="stop"), "system_fingerprint": "fp_ollama"}
    for _ in range(2):
        stream_reply(mocked, ollama_chunk, "[DONE]")

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        list(backend.chat(ask()))
        list(backend.chat(ask()))

    warned = [r.getMessage() for r in caplog.records if "ignores num_ctx" in r.getMessage()]
    assert len(warned) == 1
    assert "api='native'" in warned[0]


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error_text",
    ["The model `llama3` does not exist.", "model 'llama3' not found"],
    ids=["vllm", "ollama-v1"],
)
def test_chat_404_for_the_model_raises_not_pulled_naming_the_served_models(
    backend, mocked, error_text
):
    error = {"error": {"message": error_text, "type": "NotFoundError", "param": "model"}}
    mocked.post(CHAT, json=error, status=404)
    mocked.get(MODELS, json=models_list(ollama_card("llama3:8b"), ollama_card("qwen3:8b")))

    with pytest.raises(ModelNotPulledError) as caught:
        list(backend.chat(ask("llama3")))

    assert caught.value.model == "llama3"
    assert caught.value.server_text == error_text
    assert caught.value.suggestions == ["llama3:8b"]
    assert "not served by the Ollama server at" in caught.value.message  # owned_by: library
    assert "it serves llama3:8b, qwen3:8b" in caught.value.hint
    assert "Did you mean llama3:8b?" in caught.value.hint
    assert "pull" not in caught.value.hint  # a close name is served: not advised to pull


def test_a_model_with_no_close_served_name_says_how_to_serve_it(backend, mocked):
    mocked.get(MODELS, json=models_list(ollama_card("qwen3:8b")))

    with pytest.raises(ModelNotPulledError) as caught:
        backend.describe("llama3")

    assert caught.value.suggestions == []
    assert "ollama pull llama3" in caught.value.hint  # how to serve it, on this kind


@pytest.mark.parametrize(
    ("card", "advice"),
    [
        (vllm_card(), "vllm serve <repo> --served-model-name llama3"),
        (llama_cpp_card(), "llama-server -m <file.gguf> --alias llama3"),
        (LLAMA_CPP_PYTHON, "--model_alias llama3"),
        ({"id": "q", "owned_by": "organization_owner"}, "lms load"),
        ({"id": "q", "owned_by": "litellm"}, "to the proxy's model_list"),
        ({"id": "q", "owned_by": "openai"}, "start the server with that model"),
    ],
    ids=["vllm", "llama-server", "llama-cpp-python", "lm-studio", "litellm", "generic"],
)
def test_a_model_not_served_says_how_to_serve_it_on_that_kind_of_server(
    backend, mocked, card, advice
):
    mocked.get(MODELS, json=models_list(card))

    with pytest.raises(ModelNotPulledError) as caught:
        backend.describe("llama3")

    assert advice in str(caught.value.hint)
    assert "ollama" not in str(caught.value.hint).replace("persona-ollama", "").lower()


def test_not_found_with_an_unknown_or_empty_listing_says_so(backend, mocked):
    unknown = backend.not_found("llama3", None)
    empty = backend.not_found("llama3", [])

    assert "GET /v1/models lists the ones it serves" in str(unknown.hint)
    assert "it lists no models" in str(empty.hint)
    assert unknown.status_code == 404 and unknown.model == "llama3"


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        pytest.param(
            "This model's maximum context length is 8192 tokens. However, you requested 9000 "
            "tokens (5000 in the messages, 4000 in the completion).",
            (5000, 8192),
            id="older-words",
        ),
        pytest.param(
            "This model's maximum context length is 32768 tokens. However, your request has "
            "40000 input tokens. Please reduce the length of the input messages.",
            (40000, 32768),
            id="newer-words",
        ),
    ],
)
def test_context_overflow_reported_by_vllm_maps_to_context_overflow_with_both_sizes(
    backend, mocked, text, sizes
):
    mocked.post(CHAT, json={"error": {"message": text, "type": "BadRequestError"}}, status=400)

    with pytest.raises(ContextOverflowError) as caught:
        list(backend.chat(ask()))

    assert (caught.value.prompt_tokens, caught.value.context_length) == sizes
    assert caught.value.server_text == text
    assert "nothing was cut" in caught.value.message


def test_context_overflow_without_sizes_still_says_nothing_was_cut(backend):
    body = json.dumps({"error": {"message": "request exceeds the available context size"}})

    error = backend.status_error(400, body, model="m")

    assert isinstance(error, ContextOverflowError)
    assert error.context_length is None and "nothing was cut" in error.message
    assert "--max-model-len" in str(error.hint)


def test_ollamas_v1_refusal_of_a_prompt_longer_than_its_window_is_a_context_overflow(backend):
    # Ollama 0.30.9+ (llm/llama_server.go completionPromptForRequest): a prompt over the
    # window with context shift off is refused with 400, and its /v1 passes the text on
    # (middleware/openai.go writeError). api="native" and main's /v1 mode both raised
    # ContextOverflowError for it: a caller that splits its input on that must still see it.
    text = (
        "the prompt is longer than the context length currently available to the model; "
        "shorten the prompt, adjust the context length in settings, or use a model with a "
        "longer context length"
    )
    body = json.dumps({"error": {"message": text, "type": "invalid_request_error"}})

    error = backend.status_error(400, body, model="m")

    assert isinstance(error, ContextOverflowError)
    assert "nothing was cut" in error.message and error.server_text == text


def test_flat_error_body_of_older_vllm_is_unwrapped(backend):
    body = json.dumps({"object": "error", "message": "bad", "type": "BadRequestError", "code": 400})

    assert backend.status_error(400, body, model=None).server_text == "bad"


@pytest.mark.parametrize(
    ("status", "kind", "says"),
    [
        (503, ServerBusyError, "is busy"),
        (429, ServerBusyError, "is busy"),
        (401, OllamaError, "refused the request (HTTP 401)"),
        (500, InsufficientMemoryError, "not enough memory"),
        (502, OllamaResponseError, "answered HTTP 502"),
    ],
)
def test_status_errors_are_said_in_the_servers_own_words(backend, status, kind, says):
    text = "CUDA out of memory" if kind is InsufficientMemoryError else "nope"
    error = backend.status_error(status, json.dumps({"error": {"message": text}}), model="m")

    assert isinstance(error, kind)
    assert says in error.message
    assert (error.status_code, error.server_text) == (status, text)
    assert "Ollama" not in error.message  # the kind is unknown: no server is named wrongly


@pytest.mark.parametrize(
    "text",
    [
        "model runner has unexpectedly stopped, this may be due to resource limitations",
        "llama runner process has terminated: exit status 2",
        "an error was encountered while running the model: unexpected EOF",
    ],
)
def test_a_runner_that_died_is_a_runner_error_that_says_where_the_log_is(backend, mocked, text):
    mocked.get(MODELS, json=models_list(ollama_card("llama3.2:3b")))
    mocked.post(CHAT, status=500, json={"error": {"message": text, "type": "api_error"}})

    with pytest.raises(ModelRunnerError) as caught:
        list(backend.chat(ask("llama3.2:3b")))

    assert "Ollama server" in caught.value.message and "'llama3.2:3b'" in caught.value.message
    assert "ollama serve" in str(caught.value.hint)
    assert caught.value.server_text == text


def test_a_signed_out_ollama_refusing_a_cloud_model_says_to_sign_in(backend, mocked):
    # Ollama's /v1 keeps only the message of its native 401 (middleware/openai.go writeError).
    mocked.get(MODELS, json=models_list(ollama_card("analyst:latest")))
    mocked.post(CHAT, status=401, json={"error": {"message": "unauthorized", "type": "api_error"}})

    with pytest.raises(CloudSignInRequiredError) as caught:
        list(backend.chat(ask("analyst:latest")))

    assert "`ollama signin`" in str(caught.value.hint)
    assert "not signed in" in caught.value.message
    assert caught.value.status_code == 401


def test_a_cloud_name_refused_by_a_server_of_unknown_kind_says_to_sign_in(backend):
    body = json.dumps({"error": {"message": "unauthorized"}})

    error = backend.status_error(401, body, model="gpt-oss:120b-cloud")

    assert isinstance(error, CloudSignInRequiredError)


def test_ollama_with_cloud_turned_off_says_to_pick_a_local_model(backend):
    text = "ollama cloud is disabled: remote model details are unavailable"
    body = json.dumps({"error": {"message": text}})

    error = backend.status_error(403, body, model="gpt-oss:120b-cloud")

    assert type(error) is OllamaAuthenticationError
    assert "cloud models are turned off" in error.message
    assert "local model" in str(error.hint) and "API key" not in str(error.hint)


@pytest.mark.parametrize(
    ("owner", "model"), [("vllm", "m"), ("openai", "m"), ("litellm", "gpt-oss:120b-cloud")]
)
def test_a_401_from_any_other_server_asks_for_its_api_key(backend, mocked, owner, model):
    mocked.get(MODELS, json=models_list({"id": model, "owned_by": owner}))
    mocked.post(CHAT, status=401, json={"error": {"message": "unauthorized"}})

    with pytest.raises(OllamaAuthenticationError) as caught:
        list(backend.chat(ask(model)))

    assert not isinstance(caught.value, CloudSignInRequiredError)
    assert "API key" in str(caught.value.hint)


def test_a_model_that_cannot_think_says_to_pass_think_false(backend):
    body = json.dumps({"error": {"message": '"llama3.2:3b" does not support thinking'}})

    error = backend.status_error(400, body, model="llama3.2:3b")

    assert "think=False" in str(error.hint)


def test_an_embedding_model_on_ollamas_v1_says_to_pick_a_chat_model(backend):
    # /v1/models lists no capabilities, so an embedder is sent; Ollama refuses it with 400
    # '"<name>" does not support chat' (server/routes.go ChatHandler), as main said it.
    body = json.dumps({"error": {"message": '"nomic-embed-text:latest" does not support chat'}})

    error = backend.status_error(400, body, model="nomic-embed-text")

    assert "embedding model" in str(error.hint) and "persona-ollama models" in str(error.hint)


def test_a_404_that_is_not_about_a_model_says_to_check_the_address(backend):
    error = backend.status_error(404, "Not Found", model="m")

    assert type(error) is OllamaResponseError
    assert "doctor --api openai" in str(error.hint)


def test_nothing_listening_names_openai_compatible_servers():
    backend = OpenAIBackend(parse_host("http://127.0.0.1:9/v1"), retries=0)

    with pytest.raises(OllamaNotRunningError) as caught:
        backend.models()
    backend.close()

    assert "vllm serve" in caught.value.hint
    assert "OpenAI-compatible server" in caught.value.message


def test_pull_is_refused_and_no_window_is_known_to_be_loaded(backend):
    with pytest.raises(ConfigurationError, match="only available with the native Ollama API"):
        backend.pull("llama3")
    assert backend.loaded_windows() == {}
    assert backend.sets_window is False
    assert backend.refuses_overflow() is None


# -- /v1/models ---------------------------------------------------------------------------


def test_describe_reads_vllm_max_model_len(backend, mocked):
    mocked.get(MODELS, json=models_list(vllm_card(max_model_len=8192)))
    mocked.get(TAGS, status=404)

    info = backend.describe(VLLM_MODEL)

    assert (info.name, info.context_length) == (VLLM_MODEL, 8192)
    assert info.capabilities == ("completion",)
    assert not info.placement.remote


@pytest.mark.parametrize(
    "props",
    [
        {"default_generation_settings": {"n_ctx": 4096}},
        {"n_ctx": 4096, "default_generation_settings": {}},  # the top-level field, read too
    ],
)
def test_describe_reads_llama_cpp_slot_context_from_props(backend, mocked, props):
    mocked.get(MODELS, json=models_list(llama_cpp_card(n_ctx_train=131072)))
    mocked.get(f"{BASE}/props", json=props)
    mocked.get(TAGS, status=404)

    assert backend.describe("llama-3.1-8b.gguf").context_length == 4096


def test_describe_falls_back_to_llama_cpp_n_ctx_train_without_props(backend, mocked):
    mocked.get(MODELS, json=models_list(llama_cpp_card(n_ctx_train=131072)))
    mocked.get(f"{BASE}/props", status=404, body="Not Found")
    mocked.get(TAGS, status=404)

    assert backend.describe("llama-3.1-8b.gguf").context_length == 131072


def test_describe_takes_lm_studio_loaded_context_else_its_longest(backend, mocked):
    card = {"id": "qwen3-8b", "object": "model", "owned_by": "organization_owner"}
    mocked.get(MODELS, json=models_list(card))
    entry = f"{BASE}/api/v0/models/qwen3-8b"
    mocked.get(
        entry, json={"id": "qwen3-8b", "loaded_context_length": 4096, "max_context_length": 40960}
    )
    mocked.get(entry, json={"id": "qwen3-8b", "state": "not-loaded", "max_context_length": 40960})
    mocked.get(TAGS, status=404)

    assert backend.describe("qwen3-8b").context_length == 4096
    assert backend.describe("qwen3-8b").context_length == 40960


def test_describe_takes_length_and_thinking_from_the_catalogue_when_the_server_says_nothing(
    backend, mocked
):
    mocked.get(MODELS, json=models_list(ollama_card("qwen3:8b")))

    info = backend.describe("qwen3:8b")

    assert info.context_length == 40960
    assert info.capabilities == ("completion", "thinking")
    assert info.thinks


def test_describe_of_a_model_neither_says_anything_about_has_no_length(backend, mocked):
    mocked.get(MODELS, json=models_list(ollama_card("someone/custom:1b")))

    info = backend.describe("someone/custom:1b")

    assert info.context_length is None
    assert info.capabilities == ("completion",)


def test_describe_of_a_model_not_served_raises_not_pulled_with_the_served_names(backend, mocked):
    mocked.get(MODELS, json=models_list(vllm_card()))

    with pytest.raises(ModelNotPulledError) as caught:
        backend.describe("llama3")

    assert caught.value.status_code == 404
    assert f"it serves {VLLM_MODEL}" in caught.value.hint
    assert "not served by the vLLM server" in caught.value.message


def test_a_model_made_from_a_cloud_model_behind_ollamas_v1_is_described_as_remote(backend, mocked):
    # Ollama's /v1/models says nothing of where a model runs; its own /api/tags does, for a
    # model created FROM a cloud one too (a name that does not say -cloud).
    cards = models_list(ollama_card("analyst:latest"), ollama_card("llama3.2:3b"))
    mocked.get(MODELS, json=cards)
    analyst = {
        "name": "analyst:latest",
        "remote_host": "https://ollama.com:443",
        "remote_model": "gpt-oss:120b",
    }
    odd = [{"name": "llama3.2:3b", "size": 2019393189}, "not an entry", {"name": 5}]
    mocked.get(TAGS, json={"models": [analyst, *odd]})

    listed = {info.name: info for info in backend.models()}

    assert listed["analyst:latest"].placement.remote
    assert listed["analyst:latest"].placement.host == "https://ollama.com:443"
    assert listed["analyst:latest"].placement.remote_model == "gpt-oss:120b"
    assert not listed["llama3.2:3b"].placement.remote
    assert backend.describe("analyst:latest").placement.host == "https://ollama.com:443"


@pytest.mark.parametrize(
    "tags", [{"status": 404}, {"body": "not json"}, {"json": [1, 2]}, {"json": {"models": 5}}]
)
def test_remote_fields_are_empty_where_no_native_listing_answers(backend, mocked, tags):
    mocked.get(TAGS, **tags)

    assert backend._remote_fields()[0] == {}
    assert len([c for c in mocked.calls if c.request.url == TAGS]) == 1  # asked once


def test_a_name_spelled_differently_is_sent_as_the_served_id(backend, mocked):
    mocked.get(MODELS, json=models_list(vllm_card(), ollama_card("llama3:latest")))
    stream_reply(mocked, chunk("x", finish="stop"), "[DONE]")
    stream_reply(mocked, chunk("x", finish="stop"), "[DONE]")

    backend.describe("qwen/qwen3-8b")
    backend.describe("llama3")
    list(backend.chat(ask("qwen/qwen3-8b", think=False)))
    list(backend.chat(ask("llama3")))

    assert sent_body(mocked, 0)["model"] == VLLM_MODEL
    # vLLM refuses reasoning_effort "none": thinking goes off through the chat template.
    assert sent_body(mocked, 0)["chat_template_kwargs"] == {"enable_thinking": False}
    assert sent_body(mocked, 1)["model"] == "llama3:latest"


def test_a_served_id_is_matched_by_the_rules_of_the_server_that_lists_it(backend, mocked):
    # "library/" and ":latest" mean something in Ollama's names only: on vLLM, "mistral" is
    # not the model served as "library/mistral" (Ollama's rules once sent that one instead).
    cards = (vllm_card("library/mistral"), vllm_card("qwen3:latest"), ollama_card("llama3:8b"))
    mocked.get(MODELS, json=models_list(*cards))
    stream_reply(mocked, chunk("x", finish="stop"), "[DONE]")

    for asked in ("mistral", "qwen3"):
        with pytest.raises(ModelNotPulledError, match="not served by the vLLM server"):
            backend.describe(asked)
    backend.describe("LIBRARY/Mistral")  # the case only: the same vLLM id
    list(backend.chat(ask("LIBRARY/Mistral")))

    assert sent_body(mocked)["model"] == "library/mistral"
    # The server's state (its facts, its listing) compares names by the same rules.
    assert backend.state.names.canonical("LIBRARY/Mistral") == "library/mistral"
    # The Ollama model in the same listing (a proxy) keeps Ollama's rules: a tag is a name.
    assert entries_serving(cards, "library/llama3:8B") == [ollama_card("llama3:8b")]


@pytest.mark.parametrize(
    ("listed", "asked", "key"),
    [
        (["Qwen/Qwen3-8B"], "qwen/qwen3-8b", "Qwen/Qwen3-8B"),  # the case only: that id
        (["Qwen", "qwen"], "Qwen", "Qwen"),  # two ids, two models: each named exactly
        (["Qwen", "qwen"], "qwen", "qwen"),
        (["Qwen", "qwen"], "QWEN", "QWEN"),  # shared by both: names neither
        (["Qwen"], " QWEN ", "Qwen"),
        ([], "Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),  # nothing listed: compared exactly
    ],
)
def test_served_ids_key_a_spelling_by_the_one_listed_id_it_names(listed, asked, key):
    assert ServedIds(listed).canonical(asked) == key
    assert ServedIds(listed) == ServedIds(reversed(listed))  # the same rules: facts are kept


@pytest.mark.parametrize("ollama_first", [True, False], ids=["ollama-first", "vllm-first"])
def test_a_proxy_listing_keeps_each_entrys_rules_whichever_comes_first(ollama_first):
    cards = [vllm_card("Org/Model"), vllm_card("org/model"), ollama_card("gpt-oss:20b-cloud")]
    if ollama_first:
        cards.reverse()

    rules = names_of(server_kind(cards[0]), cards)

    assert rules.canonical("Org/Model") != rules.canonical("org/model")  # two models
    assert rules.canonical("ORG/MODEL") == "ORG/MODEL"  # shared by both: names neither
    assert rules.canonical("GPT-OSS:20B-cloud") == "gpt-oss:20b-cloud"  # Ollama's rules
    assert rules.is_remote("gpt-oss:20b-cloud") and not rules.is_remote("Org/Model")
    # A listing of Ollama's models only keeps Ollama's rules (its tags, its cloud names).
    assert names_of("Ollama", [ollama_card("llama3:8b")]).canonical("LLAMA3:8b") == "llama3:8b"


def test_a_spelling_that_two_served_ids_share_is_refused_naming_both(backend, mocked):
    cards = (vllm_card("Org/Model"), vllm_card("org/model"), vllm_card("Other"))
    mocked.get(MODELS, json=models_list(*cards))

    def serving(asked: str) -> list[str]:
        return [entry["id"] for entry in entries_serving(list(cards), asked)]

    assert serving("org/model") == ["org/model"]
    assert serving("ORG/MODEL") == ["Org/Model", "org/model"]
    with pytest.raises(ModelNotPulledError) as caught:
        backend.describe("ORG/MODEL")

    assert caught.value.suggestions == ["Org/Model", "org/model"]
    assert caught.value.message == (
        f"Model 'ORG/MODEL' could be any of 2 models served by the vLLM server at {BASE}: "
        "'Org/Model' and 'org/model', whose ids differ only in case; nothing was sent."
    )
    assert caught.value.hint == (
        "Pass the id of the one you mean exactly as the vLLM server lists it, "
        "e.g. model='Org/Model'."
    )
    # The same words where the caller hands over the listing (served.py's "not found").
    again = backend.not_found("ORG/MODEL", ["Other", "Org/Model", "org/model"])
    assert (again.message, again.hint) == (caught.value.message, caught.value.hint)
    assert backend.describe("org/model").name == "org/model"
    assert not [c for c in mocked.calls if c.request.method == "POST"]


def test_models_lists_served_models_as_model_info(backend, mocked):
    mocked.get(MODELS, json=models_list(vllm_card(), ollama_card("llama3:8b")))

    models = backend.models()

    assert [(m.name, m.context_length, m.capabilities) for m in models] == [
        (VLLM_MODEL, 8192, ("completion",)),
        ("llama3:8b", None, ("completion",)),
    ]
    # A listing entry lacks what describe() asks (llama.cpp's /props, the catalogue).
    assert not any(m.complete for m in models)


def test_an_empty_ollama_model_list_is_null_and_means_no_models(backend, mocked):
    mocked.get(MODELS, json={"object": "list", "data": None})

    assert backend.models() == []


def test_version_names_the_server_and_probes_without_retries(backend, mocked):
    vllm = {"id": "Qwen/Qwen3-8B", "object": "model", "owned_by": "vllm", "max_model_len": 8192}
    mocked.get(MODELS, json=models_list(vllm), headers={"Server": "uvicorn"})
    mocked.get(MODELS, status=503, json={"error": {"message": "busy"}})

    assert backend.version(timeout=1.0) == "vLLM server (OpenAI-compatible API)"
    assert backend.label == "vLLM server"
    with pytest.raises(ServerBusyError):
        backend.version(timeout=1.0)
    assert len(mocked.calls) == 2  # the busy answer was not retried


def test_a_version_of_a_server_that_does_not_say_its_kind_is_generic(backend, mocked):
    mocked.get(MODELS, json=models_list())

    assert backend.version() == "OpenAI-compatible server"
    assert backend.label == "OpenAI-compatible server"


@pytest.mark.parametrize("given", [BASE, BASE + "/v1", BASE + "/v1/"])
def test_the_base_url_works_with_or_without_v1(mocked, given):
    mocked.get(MODELS, json=models_list())

    backend = OpenAIBackend(parse_host(given))
    assert backend.models() == []
    assert backend.url == BASE
    backend.close()


@pytest.mark.parametrize(
    ("url", "v1", "expected"),
    [
        ("http://h:8000", True, "http://h:8000/v1"),
        ("http://h:8000/v1", True, "http://h:8000/v1"),
        ("http://h:8000/v1", False, "http://h:8000"),
        ("http://h:8000", False, "http://h:8000"),
        ("https://h/llm/v1", False, "https://h:443/llm"),
        ("https://h/llm", True, "https://h:443/llm/v1"),
        ("http://h:8000/v1/v1", False, "http://h:8000/v1"),  # only one is cut
    ],
)
def test_v1_endpoint(url, v1, expected):
    endpoint = v1_endpoint(parse_host(url), v1=v1)

    assert endpoint.base_url == expected
    assert expected.endswith(endpoint.path_prefix)


@pytest.mark.parametrize("data", [True, "m", {"id": "m"}])
def test_a_v1_model_list_that_is_not_a_list_raises_naming_the_field(backend, mocked, data):
    mocked.get(MODELS, json={"object": "list", "data": data})
    with pytest.raises(OllamaResponseError, match=r"/v1/models data = .* where a list was"):
        backend.models()


# -- the provider in /v1 mode -------------------------------------------------------------


def vllm_provider(**kwargs: Any) -> OllamaProvider:
    provider = OllamaProvider(
        base_url=BASE + "/v1", model=VLLM_MODEL, api="openai", environ={}, **kwargs
    )
    provider.backend.transport.backoff = 0
    return provider


def test_validate_model_compares_ids_by_the_rules_of_the_server(mocked):
    mocked.get(MODELS, json=models_list(vllm_card("qwen3:latest")))
    provider = vllm_provider()

    assert provider.validate_model("QWEN3:latest")  # the case only
    assert not provider.validate_model("qwen3")  # a tag is part of a vLLM id, not implied


def test_a_new_provider_per_call_still_sends_the_served_id(mocked):
    # Persona builds a provider for every call; model facts are cached per process, so the
    # second provider does not ask /v1/models again and must still know vLLM's exact id.
    mocked.get(MODELS, json=models_list(vllm_card()))
    for _ in range(2):
        stream_reply(mocked, chunk("x", finish="stop"), "[DONE]")

    for _ in range(2):
        OllamaProvider(base_url=BASE, api="openai", environ={}).generate(
            "hi", model="qwen/qwen3-8b", think=False
        )

    # Once each, for the first provider: /v1/models, and /api/tags (unanswered: not Ollama)
    # for the remote fields only Ollama's own listing gives.
    gets = [call.request.url for call in mocked.calls if call.request.method == "GET"]
    assert gets.count(MODELS) == 1 and len(gets) == 2
    for index in (0, 1):
        assert sent_body(mocked, index)["model"] == VLLM_MODEL
        assert sent_body(mocked, index)["chat_template_kwargs"] == {"enable_thinking": False}


def test_vllm_max_model_len_refuses_a_too_long_prompt_before_sending(mocked):
    mocked.get(MODELS, json=models_list(vllm_card(max_model_len=8192)))
    provider = vllm_provider()

    with pytest.raises(ContextOverflowError) as caught:
        provider.generate("persona data " * 20000, max_tokens=1024)

    assert caught.value.context_length == 8192
    assert all(call.request.method == "GET" for call in mocked.calls)
    assert "the context the vLLM server states" in caught.value.message
    assert "Ollama" not in str(caught.value)


def test_a_v1_prompt_count_past_the_planned_window_is_not_called_a_cut(mocked):
    # num_ctx is not sent in /v1 mode: vLLM evaluated the whole prompt in its own 32K window,
    # and its count passing our plan's 4096 (a poor estimate) means nothing was dropped.
    mocked.get(MODELS, json=models_list(vllm_card(max_model_len=32768)))
    mocked.get(TAGS, status=404)
    stream_reply(mocked, chunk("ok", finish="stop", model=VLLM_MODEL), usage(6000, 1), "[DONE]")

    response = vllm_provider().generate("研究 " * 1000, max_tokens=16)

    assert response.raw_response["num_ctx"] < 6000
    assert response.input_tokens == 6000
    assert response.raw_response["warnings"] == []


def test_vllm_max_model_len_caps_the_answer_budget(mocked):
    mocked.get(MODELS, json=models_list(vllm_card(max_model_len=8192)))
    stream_reply(
        mocked,
        chunk("ok", finish="stop", model=VLLM_MODEL),
        usage(3900, 1, model=VLLM_MODEL),
        "[DONE]",
    )
    provider = vllm_provider()

    response = provider.generate("persona data " * 1000, max_tokens=4096)

    assert sent_body(mocked)["max_tokens"] < 4096
    assert response.raw_response["num_predict"] == sent_body(mocked)["max_tokens"]
    assert response.content == "ok"
    assert (response.input_tokens, response.output_tokens) == (3900, 1)
    assert response.model == VLLM_MODEL


def test_raw_response_on_v1_carries_the_servers_own_fields_and_the_neutral_keys(mocked):
    mocked.get(MODELS, json=models_list(vllm_card(max_model_len=32768)))
    mocked.get(TAGS, status=404)
    timings = {"prompt_ms": 40.0, "predicted_ms": 500.0}
    stream_reply(
        mocked,
        chunk("Hi there", model=VLLM_MODEL),
        {**chunk(finish="length", model=VLLM_MODEL), "timings": timings},
        usage(30, 10, model=VLLM_MODEL),
        "[DONE]",
    )

    raw = vllm_provider().generate("hi", max_tokens=10).raw_response

    assert raw["usage"] == {"prompt_tokens": 30, "completion_tokens": 10, "total_tokens": 40}
    assert raw["timings"] == timings
    assert (raw["finish_reason"], raw["done_reason"]) == ("length", "length")
    assert (raw["input_tokens"], raw["output_tokens"]) == (30, 10)
    assert raw["tokens_per_second"] == 20.0  # 10 tokens in 0.5 s
    assert raw["load_seconds"] is None  # a /v1 server states no load time: unknown, not 0
    # No native fields are made up for a server that never sent them.
    fabricated = {"prompt_eval_count", "eval_count", "eval_duration", "load_duration"}
    assert not fabricated & set(raw)


def test_an_explicit_num_ctx_on_v1_is_not_sent_and_said_once(mocked, caplog):
    mocked.get(MODELS, json=models_list(vllm_card(max_model_len=32768)))
    mocked.get(TAGS, status=404)
    for _ in range(2):
        stream_reply(mocked, chunk("ok", finish="stop", model=VLLM_MODEL), usage(), "[DONE]")
    provider = vllm_provider()

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        provider.generate("hi", max_tokens=16, num_ctx=8192)
        provider.generate("hi", max_tokens=16, num_ctx=8192)

    said = [r.getMessage() for r in caplog.records if "per-request context size" in r.getMessage()]
    assert len(said) == 1
    assert "vLLM server has no per-request context size: num_ctx=8192 was not sent" in said[0]
    assert "--max-model-len" in said[0]  # where to set it instead
    for index in (0, 1):
        assert "num_ctx" not in json.dumps(sent_body(mocked, index))


def test_without_an_explicit_num_ctx_nothing_is_said_about_it(mocked, caplog):
    mocked.get(MODELS, json=models_list(vllm_card(max_model_len=32768)))
    mocked.get(TAGS, status=404)
    stream_reply(mocked, chunk("ok", finish="stop", model=VLLM_MODEL), usage(), "[DONE]")

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        vllm_provider().generate("hi", max_tokens=16)

    assert not [r for r in caplog.records if "num_ctx" in r.getMessage()]


@pytest.mark.parametrize(
    ("kwargs", "environ"),
    [({"api": "openai"}, {}), ({}, {"PERSONA_OLLAMA_API": "OpenAI"})],
    ids=["argument", "environment"],
)
def test_api_openai_chooses_the_openai_backend_and_the_v1_url(kwargs, environ):
    provider = OllamaProvider(base_url=BASE, environ=environ, **kwargs)

    assert isinstance(provider.backend, OpenAIBackend)
    assert str(provider.endpoint) == BASE + "/v1"
    assert provider.backend.url == BASE


@pytest.mark.parametrize(
    ("kwargs", "environ", "named"),
    [
        ({"api": "grpc"}, {}, "api='grpc'"),
        ({}, {"PERSONA_OLLAMA_API": "v1"}, "PERSONA_OLLAMA_API='v1'"),
    ],
)
def test_an_unknown_api_is_refused_listing_the_valid_ones(kwargs, environ, named):
    with pytest.raises(ConfigurationError) as caught:
        OllamaProvider(base_url=BASE, environ=environ, **kwargs)

    assert named in caught.value.message
    assert "native, openai" in caught.value.message


def test_the_native_api_stays_the_default():
    provider = OllamaProvider(base_url=BASE, environ={})

    assert provider.api == "native"
    assert isinstance(provider.backend, OllamaBackend)


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ({"id": "m", "owned_by": "vllm"}, "vLLM"),
        ({"id": "m", "owned_by": "llamacpp", "meta": {"n_ctx_train": 4096}}, "llama.cpp"),
        ({"id": "m", "owned_by": "me", "permissions": []}, "llama.cpp"),  # llama-cpp-python
        ({"id": "m", "owned_by": "organization_owner"}, "LM Studio"),
        ({"id": "m", "owned_by": "library"}, "Ollama"),
        # Ollama says a model's namespace as its owner, and lists every name with its tag.
        ({"id": "myuser/notes:latest", "owned_by": "myuser"}, "Ollama"),
        ({"id": "hf.co/bartowski/x-GGUF:Q4_K_M", "owned_by": "bartowski"}, "Ollama"),
        ({"id": "myuser/notes", "owned_by": "myuser"}, "OpenAI-compatible server"),
        ({"id": "myuser/notes:latest", "owned_by": "other"}, "OpenAI-compatible server"),
        ({"id": "m", "owned_by": "openai"}, "OpenAI-compatible server"),
        ({"id": "m"}, "OpenAI-compatible server"),
    ],
)
def test_the_server_kind_comes_from_the_model_list(entry, kind):
    assert server_kind(entry) == kind


def test_a_llama_cpp_server_gets_the_schema_inside_json_object():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    request = ask(format=schema)

    llama, _ = completion_request(request, served="m", kind="llama.cpp")
    vllm, _ = completion_request(request, served="m", kind="vLLM")

    assert llama["response_format"] == {"type": "json_object", "schema": schema}
    assert vllm["response_format"]["type"] == "json_schema"
    assert vllm["response_format"]["json_schema"]["schema"] == schema


def test_a_version_of_a_llama_cpp_server_says_so_by_its_server_header(backend, mocked):
    mocked.get(
        MODELS, json=models_list({"id": "m", "object": "model"}), headers={"Server": "llama.cpp"}
    )

    assert backend.version() == "llama.cpp server (OpenAI-compatible API)"


def test_server_file_paths_are_left_out_of_errors(backend, mocked):
    text = (
        '1 validation error:\n  bad type\n\n  File "/srv/venv/llama_cpp/server/app.py", '
        "line 376, in create_chat_completion\n    POST /v1/chat/completions"
    )
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    mocked.post(
        CHAT, status=500, json={"error": {"message": text, "type": "internal_server_error"}}
    )

    with pytest.raises(OllamaError) as caught:
        list(backend.chat(ask(messages=HI)))

    shown = str(caught.value) + str(caught.value.server_text)
    assert "/srv/venv" not in shown and "app.py" not in shown
    assert "bad type" in shown


def test_server_file_paths_are_left_out_of_an_error_event(backend, mocked):
    text = 'boom\n  File "/srv/venv/llama_cpp/server/app.py", line 9, in stream'
    stream_reply(mocked, chunk("a"), {"error": {"message": text}})

    with pytest.raises(OllamaResponseError) as caught:
        list(backend.chat(ask()))

    shown = str(caught.value) + str(caught.value.server_text)
    assert "/srv/venv" not in shown and "boom" in shown


def test_lm_studio_states_the_loaded_context_in_its_own_api(mocked):
    card = {"id": "qwen3-8b", "object": "model", "owned_by": "organization_owner"}
    mocked.get(MODELS, json=models_list(card))
    mocked.get(
        f"{BASE}/api/v0/models/qwen3-8b",
        json={
            "id": "qwen3-8b",
            "state": "loaded",
            "max_context_length": 40960,
            "loaded_context_length": 4096,
        },
    )
    provider = OllamaProvider(base_url=BASE + "/v1", model="qwen3-8b", api="openai", environ={})

    with pytest.raises(ContextOverflowError) as caught:
        provider.generate("persona data " * 3000, max_tokens=256)

    assert caught.value.context_length == 4096
    assert "the context the LM Studio server states" in caught.value.message


# -- llama-cpp-python's server: no usage, empty streams -----------------------------------

COUNT = f"{BASE}/extras/tokenize/count"


def test_without_usage_a_llama_cpp_server_counts_the_answer_with_its_tokenizer(backend, mocked):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, chunk("Hello there"), chunk(finish="stop"), "[DONE]")
    mocked.post(COUNT, json={"count": 4})  # BOS + 3 tokens
    mocked.post(COUNT, json={"count": 1})  # BOS alone

    *_, final = backend.chat(ask(messages=HI))

    assert final.output_tokens == 3
    assert final.raw["output_tokens_source"] == "server tokenizer"
    assert final.input_tokens is None  # unknown, not 0
    counted = [json.loads(c.request.body) for c in mocked.calls if c.request.url == COUNT]
    assert counted == [{"input": "Hello there", "model": "m"}, {"input": "", "model": "m"}]


def test_without_usage_an_answer_stopped_at_the_limit_counts_exactly_the_limit(backend, mocked):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, chunk("x y z"), chunk(finish="length"), "[DONE]")
    # No tokenizer call is mocked: re-tokenising could count more than was sampled.

    *_, final = backend.chat(ask(max_tokens=8))

    assert (final.output_tokens, final.raw["output_tokens_source"]) == (8, "max_tokens")


def test_a_re_tokenised_count_is_never_more_than_the_limit(backend, mocked):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, chunk("x y z"), chunk(finish="stop"), "[DONE]")
    mocked.post(COUNT, json={"count": 10})
    mocked.post(COUNT, json={"count": 1})

    *_, final = backend.chat(ask(max_tokens=8))

    assert final.output_tokens == 8


@pytest.mark.parametrize(
    "answers",
    [
        [{"status": 404, "json": {"detail": "Not Found"}}],
        [{"json": {"count": "4"}}, {"json": {"count": 1}}],
        [{"json": [4]}, {"json": {"count": 1}}],
    ],
    ids=["no-tokenizer", "count-not-a-number", "not-an-object"],
)
def test_without_usage_or_a_usable_tokenizer_the_counts_stay_unknown(backend, mocked, answers):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, chunk("Hello"), chunk(finish="stop"), "[DONE]")
    for answer in answers:
        mocked.post(COUNT, **answer)

    *_, final = backend.chat(ask(messages=HI))

    assert (final.output_tokens, final.input_tokens) == (None, None)
    assert "output_tokens_source" not in final.raw


def test_other_kinds_are_not_asked_for_a_token_count(backend, mocked):
    mocked.get(MODELS, json=models_list(vllm_card("m")))
    stream_reply(mocked, chunk("Hello"), chunk(finish="stop"), "[DONE]")

    *_, final = backend.chat(ask(messages=HI))

    assert final.output_tokens is None
    assert not [c for c in mocked.calls if c.request.url == COUNT]


def test_an_empty_stream_answered_unstreamed_is_the_answer(backend, mocked):
    mocked.get(MODELS, json=models_list({"id": "m", "owned_by": "vllm"}))
    mocked.post(CHAT, body="", content_type="text/event-stream")
    completion = {
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }
    mocked.post(CHAT, json=completion)

    chunks = list(backend.chat(ask(messages=HI)))

    assert chunks[0].content == "ok"
    assert (chunks[-1].done, chunks[-1].input_tokens, chunks[-1].output_tokens) == (True, 5, 1)
    assert sent_body(mocked, -1)["stream"] is False
    assert "stream_options" not in sent_body(mocked, -1)
    assert backend.connections_in_use() == 0


def test_an_empty_stream_then_a_refusal_is_the_refusal_with_its_sizes(backend, mocked):
    # llama-cpp-python's answer to an over-long prompt: an empty 200 stream; asked again
    # unstreamed, its 400 says why.
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    mocked.post(CHAT, body="", content_type="text/event-stream")
    text = (
        "Requested tokens (6827) exceed context window of 512. This model's maximum context "
        "length is 512 tokens. However, you requested 6835 tokens (6827 in the messages, 8 in "
        "the completion)."
    )
    mocked.post(CHAT, status=400, json={"error": {"message": text}})

    with pytest.raises(ContextOverflowError) as caught:
        list(backend.chat(ask(messages=HI)))

    assert (caught.value.prompt_tokens, caught.value.context_length) == (6827, 512)
    assert "llama.cpp server" in caught.value.message


def test_a_field_of_the_wrong_type_gives_advice_for_a_v1_server(backend, mocked):
    # As main's /v1 mode said it: the caller already uses api='openai', so the advice is to
    # check what answers there, not to point the URL at an Ollama server.
    stream_reply(mocked, chunk(5, finish="stop"), "[DONE]")  # type: ignore[arg-type]

    with pytest.raises(OllamaResponseError) as caught:
        list(backend.chat(ask()))

    assert "persona-ollama doctor --api openai" in str(caught.value.hint)
    assert "Ollama server" not in str(caught.value.hint)


@pytest.mark.parametrize(
    ("finish", "content", "expected"),
    [
        (None, "partial", "without a finish reason"),
        (["stop"], "ok", "where text was expected"),
        ("stop", {"text": "ok"}, "where text was expected"),
    ],
    ids=["no-finish", "finish-list", "content-object"],
)
def test_an_unstreamed_answer_that_is_not_well_formed_is_a_typed_error(
    backend, mocked, finish, content, expected
):
    mocked.get(MODELS, json=models_list({"id": "m", "owned_by": "vllm"}))
    mocked.post(CHAT, body="", content_type="text/event-stream")
    choice = {"index": 0, "message": {"content": content}, "finish_reason": finish}
    mocked.post(CHAT, json={"model": "m", "choices": [choice]})

    with pytest.raises(OllamaResponseError, match=re.escape(expected)):
        list(backend.chat(ask(messages=HI)))


def test_an_empty_stream_and_an_empty_answer_are_an_error(backend, mocked):
    mocked.get(MODELS, json=models_list({"id": "m", "owned_by": "vllm"}))
    mocked.post(CHAT, body="", content_type="text/event-stream")
    mocked.post(CHAT, json={"model": "m", "choices": []})

    with pytest.raises(OllamaResponseError, match="empty answer, twice"):
        list(backend.chat(ask(messages=HI)))


def test_a_library_model_beside_a_served_tag_is_still_told_how_to_serve(backend, mocked):
    """qwen3:0.6b is a model of its own (https://ollama.com/library/qwen3), not a misspelling
    of the served qwen3:8b: the hint names qwen3:8b and still says how to serve qwen3:0.6b."""
    mocked.get(MODELS, json=models_list(ollama_card("qwen3:8b")))

    with pytest.raises(ModelNotPulledError) as caught:
        backend.describe("qwen3:0.6b")

    assert "Did you mean qwen3:8b?" in caught.value.hint
    assert "ollama pull qwen3:0.6b" in caught.value.hint


def test_a_misspelt_model_beside_a_served_one_is_not_told_to_pull(backend, mocked):
    mocked.get(MODELS, json=models_list(ollama_card("qwen3:8b")))

    with pytest.raises(ModelNotPulledError) as caught:
        backend.describe("qwen3:8bb")

    assert "Did you mean qwen3:8b?" in caught.value.hint
    assert "pull" not in caught.value.hint
