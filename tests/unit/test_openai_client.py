"""OpenAIClient over a mocked HTTP layer: the request it sends, the event stream it reads, the
facts it takes from /v1/models (vLLM, llama.cpp and Ollama shapes), and every failure mapped."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
import responses

from persona_ollama import OllamaProvider
from persona_ollama.backends.ollama_errors import error_from_status
from persona_ollama.choosing import catalogue
from persona_ollama.choosing.catalogue import Catalogue, GiB, ModelSpec
from persona_ollama.endpoint import parse_host, v1_endpoint
from persona_ollama.errors import (
    ConfigurationError,
    ContextOverflowError,
    ModelNotPulledError,
    OllamaError,
    OllamaNotRunningError,
    OllamaResponseError,
    ServerBusyError,
)
from persona_ollama.backends.openai import (
    OpenAIClient,
    completion_request,
    native_chunks,
    server_kind,
)

BASE = "http://127.0.0.1:8000"
CHAT = f"{BASE}/v1/chat/completions"
MODELS = f"{BASE}/v1/models"
VLLM_MODEL = "Qwen/Qwen3-8B"


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


@pytest.fixture(autouse=True)
def known_catalogue(monkeypatch):
    """A fixed catalogue, so that the fallback context length does not follow data/models.json."""
    specs = [
        ModelSpec("llama3.2:3b", "llama", 3.2, 131072, 2 * GiB, 3 * GiB, 60),
        ModelSpec("qwen3:8b", "qwen3", 8.2, 40960, 5 * GiB, 6 * GiB, 80, thinking=True),
    ]
    monkeypatch.setattr(catalogue, "load_catalogue", lambda environ=None: Catalogue(specs))


@pytest.fixture
def client():
    with OpenAIClient(parse_host(BASE + "/v1"), backoff=0) as c:
        yield c


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def stream_reply(mocked: responses.RequestsMock, *events: Any) -> None:
    mocked.post(CHAT, body=sse(*events), content_type="text/event-stream")


# -- the request --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        ({"options": {"num_predict": 50}}, {"max_tokens": 50}),
        ({"options": {"num_predict": -1}}, {}),  # open-ended: the server's limit applies
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
    ],
)
def test_completion_request_translates_the_native_body(native, expected):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **native}

    request, dropped = completion_request(body)

    assert request == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        **expected,
    }
    assert dropped == []


@pytest.mark.parametrize(
    ("think", "expected"),
    [
        (False, {"chat_template_kwargs": {"enable_thinking": False}}),
        ("max", {"reasoning_effort": "high"}),
        ("medium", {"reasoning_effort": "medium"}),
    ],
)
def test_vllm_gets_only_the_reasoning_values_it_accepts(think, expected):
    request, _ = completion_request({"model": "m", "messages": [], "think": think}, server="vllm")

    assert {k: v for k, v in request.items() if k in expected} == expected
    assert "reasoning_effort" in request or "chat_template_kwargs" in request


def test_options_a_v1_server_cannot_take_are_dropped_and_named():
    body = {
        "model": "m",
        "messages": [],
        "options": {"num_ctx": 8192, "num_gpu": 20, "repeat_penalty": 1.1},
        "truncate": False,
        "keep_alive": "10m",
    }

    request, dropped = completion_request(body)

    assert dropped == ["keep_alive", "num_gpu", "repeat_penalty"]  # num_ctx, truncate: silent
    assert not {"options", "num_ctx", "truncate", "keep_alive"} & set(request)


def test_chat_posts_the_translated_request_to_v1(client, mocked):
    stream_reply(mocked, chunk("Hi", finish="stop"), usage(), "[DONE]")
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "options": {"temperature": 0.7, "num_ctx": 4096, "num_predict": 20, "seed": 1},
        "truncate": False,
        "format": "json",
    }

    list(client.chat(body))

    sent = sent_body(mocked)
    assert sent["model"] == "m"
    assert sent["messages"] == body["messages"]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 20
    assert (sent["temperature"], sent["seed"]) == (0.7, 1)
    assert sent["response_format"] == {"type": "json_object"}
    assert "options" not in sent and "truncate" not in sent


def test_dropped_options_are_warned_about_once(client, mocked, caplog):
    for _ in range(2):
        stream_reply(mocked, chunk("x", finish="stop"), "[DONE]")
    body = {"model": "m", "messages": [], "options": {"num_gpu": 1}}

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        list(client.chat(body))
        list(client.chat(body))

    assert [r.getMessage() for r in caplog.records if "num_gpu" in r.getMessage()] == [
        "The OpenAI-compatible API has no 'num_gpu'; it was not sent "
        "(api='native' with Ollama takes it)."
    ]


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
def test_stream_becomes_native_chunks_with_usage_in_the_final_one(client, mocked, events):
    stream_reply(mocked, *events)

    chunks = list(client.chat({"model": "m", "messages": []}))

    assert "".join(c["message"]["content"] for c in chunks) == "Hello"
    assert all(c["done"] is False for c in chunks[:-1])
    assert chunks[-1] == {
        "model": "m",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 26,
        "eval_count": 3,
    }


@pytest.mark.parametrize(
    ("reason", "native"),
    [("stop", "stop"), ("length", "length"), ("tool_calls", "stop"), ("abort", "abort")],
)
def test_finish_reasons_map_onto_done_reasons(client, mocked, reason, native):
    stream_reply(mocked, chunk("x", finish=reason), "[DONE]")

    assert list(client.chat({"model": "m", "messages": []}))[-1]["done_reason"] == native


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_goes_to_thinking_not_content(client, mocked, field):
    stream_reply(mocked, chunk("", **{field: "Hmm."}), chunk("42", finish="stop"), "[DONE]")

    chunks = list(client.chat({"model": "m", "messages": []}))

    assert chunks[0]["message"] == {"role": "assistant", "content": "", "thinking": "Hmm."}
    assert chunks[1]["message"] == {"role": "assistant", "content": "42"}


def test_usage_before_the_finish_reason_is_still_read():
    data = sse(chunk("a"), usage(5, 1), chunk(finish="stop"), "[DONE]").encode()

    final = list(native_chunks([data], model="m"))[-1]

    assert (final["prompt_eval_count"], final["eval_count"]) == (5, 1)


def test_llama_cpp_timings_become_native_durations():
    timed = {**chunk("a", finish="stop"), "timings": {"prompt_ms": 12.5, "predicted_ms": 250.0}}

    final = list(native_chunks([sse(timed, "[DONE]").encode()], model="m"))[-1]

    assert (final["prompt_eval_duration"], final["eval_duration"]) == (12_500_000, 250_000_000)


def test_the_served_model_name_is_reported():
    data = sse(chunk("a", finish="stop", model="Qwen/Qwen3-8B"), "[DONE]").encode()

    assert list(native_chunks([data], model="qwen/qwen3-8b"))[-1]["model"] == "Qwen/Qwen3-8B"


@pytest.mark.parametrize(
    "error_event",
    [
        {"error": {"message": "boom", "type": "api_error", "param": None, "code": None}},
        {"object": "error", "message": "boom", "type": "InternalServerError", "code": 500},
    ],
    ids=["nested", "flat-older-vllm"],
)
def test_error_event_mid_stream_raises_even_when_done_follows(client, mocked, error_event):
    stream_reply(mocked, chunk("partial"), error_event, "[DONE]")  # vLLM sends [DONE] after it
    seen: list[str] = []

    with pytest.raises(OllamaResponseError, match="middle of the answer: boom") as caught:
        for item in client.chat({"model": "m", "messages": []}):
            seen.append(item["message"]["content"])

    assert seen == ["partial"]
    assert caught.value.server_text == "boom"


def test_stream_without_done_or_finish_reason_raises(client, mocked):
    stream_reply(mocked, chunk("one"), chunk("two"), usage())

    with pytest.raises(OllamaResponseError, match="ended before the server said it was done"):
        list(client.chat({"model": "m", "messages": []}))


def test_stream_with_a_finish_reason_but_no_done_marker_is_complete(client, mocked):
    stream_reply(mocked, chunk("one", finish="length"))

    assert list(client.chat({"model": "m", "messages": []}))[-1]["done_reason"] == "length"


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
def test_a_field_of_the_wrong_type_is_a_typed_error_not_a_type_error(client, mocked, event):
    stream_reply(mocked, event, chunk("b", finish="stop"), "[DONE]")

    with pytest.raises(OllamaResponseError, match="where text was expected"):
        list(client.chat({"model": "m", "messages": []}))


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
    final = list(native_chunks([sse(*events, "[DONE]").encode()], model="m"))[-1]

    assert final["done"] is True
    assert not {"prompt_eval_count", "eval_count", "prompt_eval_duration"} & set(final)


def test_non_finite_timings_and_choices_that_are_not_a_list_are_ignored():
    # NaN and Infinity are accepted by Python's JSON parser; int() of them raises.
    data = (
        sse({"choices": 5}, chunk("a", finish="stop"), "[DONE]")
        .replace(
            '"choices": 5', '"choices": 5, "timings": {"prompt_ms": NaN, "predicted_ms": 1e400}'
        )
        .encode()
    )
    chunks = list(native_chunks([data], model="m"))

    assert [c["message"]["content"] for c in chunks] == ["a", ""]
    assert "prompt_eval_duration" not in chunks[-1] and "eval_duration" not in chunks[-1]


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
    client, mocked, events, expected
):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, *events)

    with pytest.raises(OllamaResponseError) as caught:
        list(client.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))

    assert expected in str(caught.value.hint)
    assert "ollama" not in str(caught.value.hint).replace("persona-ollama", "").lower()


def test_stream_errors_from_ollama_behind_v1_keep_the_ollama_advice(client, mocked):
    mocked.get(MODELS, json=models_list(ollama_card("llama3.2:3b")))
    stream_reply(mocked, chunk("a"), {"error": {"message": "boom"}})

    with pytest.raises(OllamaResponseError) as caught:
        list(client.chat({"model": "llama3.2:3b", "messages": []}))

    assert "ollama serve" in str(caught.value.hint)


def test_malformed_event_data_raises(client, mocked):
    stream_reply(mocked, '{"id": "chatcmpl-1", "obj')

    with pytest.raises(OllamaResponseError, match="not JSON"):
        list(client.chat({"model": "m", "messages": []}))


def test_an_ollama_server_behind_v1_is_warned_about_once(client, mocked, caplog):
    ollama_chunk = {**chunk("x", finish="stop"), "system_fingerprint": "fp_ollama"}
    for _ in range(2):
        stream_reply(mocked, ollama_chunk, "[DONE]")

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        list(client.chat({"model": "m", "messages": []}))
        list(client.chat({"model": "m", "messages": []}))

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
    client, mocked, error_text
):
    error = {"error": {"message": error_text, "type": "NotFoundError", "param": "model"}}
    mocked.post(CHAT, json=error, status=404)
    mocked.get(MODELS, json=models_list(ollama_card("llama3:8b"), ollama_card("qwen3:8b")))

    with pytest.raises(ModelNotPulledError) as caught:
        list(client.chat({"model": "llama3", "messages": []}))

    assert caught.value.model == "llama3"
    assert caught.value.server_text == error_text
    assert caught.value.suggestions == ["llama3:8b"]
    assert "not served by the Ollama server at" in caught.value.message  # owned_by: library
    assert "it serves llama3:8b, qwen3:8b" in caught.value.hint


def test_context_overflow_reported_by_vllm_maps_to_context_overflow(client, mocked):
    text = (
        "This model's maximum context length is 8192 tokens. However, you requested 9000 "
        "tokens (5000 in the messages, 4000 in the completion)."
    )
    mocked.post(CHAT, json={"error": {"message": text, "type": "BadRequestError"}}, status=400)

    with pytest.raises(ContextOverflowError) as caught:
        list(client.chat({"model": "m", "messages": []}))

    assert (caught.value.prompt_tokens, caught.value.context_length) == (5000, 8192)


def test_context_overflow_in_newer_vllm_words_gives_both_sizes(client, mocked):
    text = (
        "This model's maximum context length is 32768 tokens. However, your request has "
        "40000 input tokens. Please reduce the length of the input messages."
    )
    mocked.post(CHAT, json={"error": {"message": text, "type": "BadRequestError"}}, status=400)

    with pytest.raises(ContextOverflowError) as caught:
        list(client.chat({"model": "m", "messages": []}))

    assert (caught.value.prompt_tokens, caught.value.context_length) == (40000, 32768)
    assert "nothing was cut" in caught.value.message


def test_flat_error_body_of_older_vllm_is_unwrapped():
    body = json.dumps({"object": "error", "message": "bad", "type": "BadRequestError", "code": 400})

    assert error_from_status(400, body, url=BASE).server_text == "bad"


def test_nothing_listening_names_openai_compatible_servers():
    client = OpenAIClient(parse_host("http://127.0.0.1:9/v1"), retries=0)

    with client, pytest.raises(OllamaNotRunningError) as caught:
        client.tags()

    assert "vllm serve" in caught.value.hint


def test_pull_is_refused_and_ps_is_empty(client):
    with pytest.raises(ConfigurationError, match="only available with the native Ollama API"):
        client.pull("llama3")
    assert client.ps() == []


# -- /v1/models ---------------------------------------------------------------------------


def test_show_reads_vllm_max_model_len(client, mocked):
    mocked.get(MODELS, json=models_list(vllm_card(max_model_len=8192)))

    show = client.show(VLLM_MODEL)

    assert show["model_info"] == {"general.architecture": "openai", "openai.context_length": 8192}
    assert show["capabilities"] == ["completion"]


def test_show_reads_llama_cpp_slot_context_from_props(client, mocked):
    mocked.get(MODELS, json=models_list(llama_cpp_card(n_ctx_train=131072)))
    mocked.get(f"{BASE}/props", json={"default_generation_settings": {"n_ctx": 4096}})

    assert client.show("llama-3.1-8b.gguf")["model_info"]["openai.context_length"] == 4096


def test_show_falls_back_to_llama_cpp_n_ctx_train_without_props(client, mocked):
    mocked.get(MODELS, json=models_list(llama_cpp_card(n_ctx_train=131072)))
    mocked.get(f"{BASE}/props", status=404, body="Not Found")

    assert client.show("llama-3.1-8b.gguf")["model_info"]["openai.context_length"] == 131072


def test_show_takes_length_and_thinking_from_the_catalogue_when_the_server_says_nothing(
    client, mocked
):
    mocked.get(MODELS, json=models_list(ollama_card("qwen3:8b")))

    show = client.show("qwen3:8b")

    assert show["model_info"]["openai.context_length"] == 40960
    assert show["capabilities"] == ["completion", "thinking"]


def test_show_of_a_model_neither_says_anything_about_has_no_length(client, mocked):
    mocked.get(MODELS, json=models_list(ollama_card("someone/custom:1b")))

    assert client.show("someone/custom:1b")["model_info"] == {"general.architecture": "openai"}


def test_show_of_a_model_not_served_raises_not_pulled_with_the_served_names(client, mocked):
    mocked.get(MODELS, json=models_list(vllm_card()))

    with pytest.raises(ModelNotPulledError) as caught:
        client.show("llama3")

    assert caught.value.status_code == 404
    assert f"it serves {VLLM_MODEL}" in caught.value.hint


def test_a_name_spelled_differently_is_sent_as_the_served_id(client, mocked):
    mocked.get(MODELS, json=models_list(vllm_card(), ollama_card("llama3:latest")))
    stream_reply(mocked, chunk("x", finish="stop"), "[DONE]")
    stream_reply(mocked, chunk("x", finish="stop"), "[DONE]")

    client.show("qwen/qwen3-8b")
    client.show("llama3")
    list(client.chat({"model": "qwen/qwen3-8b", "messages": [], "think": False}))
    list(client.chat({"model": "llama3", "messages": []}))

    assert sent_body(mocked, 0)["model"] == VLLM_MODEL
    # vLLM refuses reasoning_effort "none": thinking goes off through the chat template.
    assert sent_body(mocked, 0)["chat_template_kwargs"] == {"enable_thinking": False}
    assert sent_body(mocked, 1)["model"] == "llama3:latest"


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


def test_tags_lists_served_models_shaped_like_api_tags(client, mocked):
    mocked.get(MODELS, json=models_list(vllm_card(), ollama_card("llama3:8b")))

    assert client.tags() == [
        {
            "name": VLLM_MODEL,
            "model": VLLM_MODEL,
            "details": {"context_length": 8192},
            "capabilities": ["completion"],
        },
        {"name": "llama3:8b", "model": "llama3:8b", "details": {}, "capabilities": ["completion"]},
    ]


def test_an_empty_ollama_model_list_is_null_and_means_no_models(client, mocked):
    mocked.get(MODELS, json={"object": "list", "data": None})

    assert client.tags() == []


def test_version_names_the_server_and_probes_without_retries(client, mocked):
    vllm = {"id": "Qwen/Qwen3-8B", "object": "model", "owned_by": "vllm", "max_model_len": 8192}
    mocked.get(MODELS, json=models_list(vllm), headers={"Server": "uvicorn"})
    mocked.get(MODELS, status=503, json={"error": {"message": "busy"}})

    assert client.version(timeout=1.0) == "vLLM server (OpenAI-compatible API)"
    with pytest.raises(ServerBusyError):
        client.version(timeout=1.0)
    assert len(mocked.calls) == 2  # the busy answer was not retried


@pytest.mark.parametrize("given", [BASE, BASE + "/v1", BASE + "/v1/"])
def test_the_base_url_works_with_or_without_v1(mocked, given):
    mocked.get(MODELS, json=models_list())

    with OpenAIClient(parse_host(given)) as client:
        assert client.tags() == []


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


# -- the provider in /v1 mode -------------------------------------------------------------


def vllm_provider(**kwargs: Any) -> OllamaProvider:
    provider = OllamaProvider(
        base_url=BASE + "/v1", model=VLLM_MODEL, api="openai", environ={}, **kwargs
    )
    provider.client.backoff = 0
    return provider


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
    mocked.get(f"{BASE}/api/tags", status=404)
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


@pytest.mark.parametrize(
    ("kwargs", "environ"),
    [({"api": "openai"}, {}), ({}, {"PERSONA_OLLAMA_API": "OpenAI"})],
    ids=["argument", "environment"],
)
def test_api_openai_chooses_the_openai_client_and_the_v1_url(kwargs, environ):
    provider = OllamaProvider(base_url=BASE, environ=environ, **kwargs)

    assert isinstance(provider.client, OpenAIClient)
    assert str(provider.endpoint) == BASE + "/v1"
    assert str(provider.client.endpoint) == BASE


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
    assert type(provider.client).__name__ == "OllamaClient"


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ({"id": "m", "owned_by": "vllm"}, "vLLM"),
        ({"id": "m", "owned_by": "llamacpp", "meta": {"n_ctx_train": 4096}}, "llama.cpp"),
        ({"id": "m", "owned_by": "me", "permissions": []}, "llama.cpp"),  # llama-cpp-python
        ({"id": "m", "owned_by": "organization_owner"}, "LM Studio"),
        ({"id": "m", "owned_by": "library"}, "Ollama"),
        ({"id": "m", "owned_by": "openai"}, "OpenAI-compatible server"),
        ({"id": "m"}, "OpenAI-compatible server"),
    ],
)
def test_the_server_kind_comes_from_the_model_list(entry, kind):
    assert server_kind(entry) == kind


def test_a_llama_cpp_server_gets_the_schema_inside_json_object():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {"model": "m", "messages": [], "format": schema}

    llama, _ = completion_request(body, kind="llama.cpp")
    vllm, _ = completion_request(body, kind="vLLM")

    assert llama["response_format"] == {"type": "json_object", "schema": schema}
    assert vllm["response_format"]["type"] == "json_schema"
    assert vllm["response_format"]["json_schema"]["schema"] == schema


def test_a_version_of_a_llama_cpp_server_says_so_by_its_server_header(client, mocked):
    mocked.get(
        MODELS, json=models_list({"id": "m", "object": "model"}), headers={"Server": "llama.cpp"}
    )

    assert client.version() == "llama.cpp server (OpenAI-compatible API)"


def test_server_file_paths_are_left_out_of_errors(client, mocked):
    text = (
        '1 validation error:\n  bad type\n\n  File "/srv/venv/llama_cpp/server/app.py", '
        "line 376, in create_chat_completion\n    POST /v1/chat/completions"
    )
    mocked.get(MODELS, json=models_list({"id": "m", "owned_by": "me", "permissions": []}))
    mocked.post(
        CHAT, status=500, json={"error": {"message": text, "type": "internal_server_error"}}
    )

    with pytest.raises(OllamaError) as caught:
        list(client.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))

    shown = str(caught.value) + str(caught.value.server_text)
    assert "/srv/venv" not in shown and "app.py" not in shown
    assert "bad type" in shown


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

LLAMA_CPP_PYTHON = {"id": "m", "object": "model", "owned_by": "me", "permissions": []}
COUNT = f"{BASE}/extras/tokenize/count"


def test_without_usage_a_llama_cpp_server_counts_the_answer_with_its_tokenizer(client, mocked):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, chunk("Hello there"), chunk(finish="stop"), "[DONE]")
    mocked.post(COUNT, json={"count": 4})  # BOS + 3 tokens
    mocked.post(COUNT, json={"count": 1})  # BOS alone

    *_, final = client.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})

    assert final["eval_count"] == 3
    assert final["eval_count_source"] == "server tokenizer"
    assert "prompt_eval_count" not in final  # unknown, not 0


def test_without_usage_an_answer_stopped_at_the_limit_counts_exactly_the_limit(client, mocked):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, chunk("x y z"), chunk(finish="length"), "[DONE]")
    # No tokenizer call is mocked: re-tokenising could count more than was sampled.
    body = {"model": "m", "messages": [], "options": {"num_predict": 8}}

    *_, final = client.chat(body)

    assert (final["eval_count"], final["eval_count_source"]) == (8, "max_tokens")


def test_a_re_tokenised_count_is_never_more_than_the_limit(client, mocked):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, chunk("x y z"), chunk(finish="stop"), "[DONE]")
    mocked.post(COUNT, json={"count": 10})
    mocked.post(COUNT, json={"count": 1})
    body = {"model": "m", "messages": [], "options": {"num_predict": 8}}

    *_, final = client.chat(body)

    assert final["eval_count"] == 8


def test_without_usage_or_a_tokenizer_the_counts_stay_unknown(client, mocked):
    mocked.get(MODELS, json=models_list(LLAMA_CPP_PYTHON))
    stream_reply(mocked, chunk("Hello"), chunk(finish="stop"), "[DONE]")
    mocked.post(COUNT, status=404, json={"detail": "Not Found"})

    *_, final = client.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})

    assert "eval_count" not in final and "prompt_eval_count" not in final


def test_an_empty_stream_answered_unstreamed_is_the_answer(client, mocked):
    mocked.get(MODELS, json=models_list({"id": "m", "owned_by": "vllm"}))
    mocked.post(CHAT, body="", content_type="text/event-stream")
    completion = {
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }
    mocked.post(CHAT, json=completion)

    chunks = list(client.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))

    assert chunks[0]["message"]["content"] == "ok"
    assert (chunks[-1]["done"], chunks[-1]["prompt_eval_count"], chunks[-1]["eval_count"]) == (
        True,
        5,
        1,
    )
    assert sent_body(mocked, -1)["stream"] is False
    assert "stream_options" not in sent_body(mocked, -1)


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
    client, mocked, finish, content, expected
):
    mocked.get(MODELS, json=models_list({"id": "m", "owned_by": "vllm"}))
    mocked.post(CHAT, body="", content_type="text/event-stream")
    choice = {"index": 0, "message": {"content": content}, "finish_reason": finish}
    mocked.post(CHAT, json={"model": "m", "choices": [choice]})

    with pytest.raises(OllamaResponseError, match=re.escape(expected)):
        list(client.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))


def test_an_empty_stream_and_an_empty_answer_are_an_error(client, mocked):
    mocked.get(MODELS, json=models_list({"id": "m", "owned_by": "vllm"}))
    mocked.post(CHAT, body="", content_type="text/event-stream")
    mocked.post(CHAT, json={"model": "m", "choices": []})

    with pytest.raises(OllamaResponseError, match="empty answer, twice"):
        list(client.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))


@pytest.mark.parametrize("data", [True, "m", {"id": "m"}])
def test_a_v1_model_list_that_is_not_a_list_raises_naming_the_field(client, mocked, data):
    mocked.get(MODELS, json={"object": "list", "data": data})
    with pytest.raises(OllamaResponseError, match=r"/v1/models data = .* where a list was"):
        client.tags()
