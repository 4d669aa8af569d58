"""FakeOllama's /api/chat and /api/generate (docs/reference/ollama-protocol.md, "Chat requests",
"Generate", "Context and truncation")."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from shared_helpers import json_lines

from persona_ollama.testing import (
    PROMPT_TOO_LONG,
    FakeModel,
    FakeOllama,
    count_prompt_tokens,
    count_tokens,
)

NDJSON = "application/x-ndjson"
THINK_CHOICES = '"high", "medium", "low", "max", true, or false'
METRICS = [
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
]


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def chat(fake: FakeOllama, **body: Any) -> requests.Response:
    body.setdefault("model", "llama3.2:3b")
    body.setdefault("messages", [user("Hello there")])
    return requests.post(fake.url + "/api/chat", json=body, timeout=5)


def chat_json(fake: FakeOllama, **body: Any) -> dict[str, Any]:
    response = chat(fake, stream=False, **body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


# --- streaming and non-streaming ---------------------------------------------------------------


def test_chat_streams_ndjson_by_default(fake_ollama: FakeOllama) -> None:
    response = chat(fake_ollama)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == NDJSON
    assert response.headers["Transfer-Encoding"] == "chunked"
    chunks = json_lines(response)
    assert len(chunks) > 2
    for chunk in chunks[:-1]:
        assert list(chunk) == ["model", "created_at", "message", "done"]
        assert chunk["model"] == "llama3.2:3b"
        assert chunk["message"]["role"] == "assistant"
        assert chunk["done"] is False
    final = chunks[-1]
    assert final["done"] is True
    assert final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    assert list(final)[5:] == METRICS
    assert all(isinstance(final[key], int) and final[key] > 0 for key in METRICS)


def test_prompt_tokens_follow_the_documented_rule(fake_ollama: FakeOllama) -> None:
    messages = [{"role": "system", "content": "Be brief."}, user("héllo wörld" * 10)]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]

    body = chat_json(fake_ollama, messages=messages, tools=tools)

    assert body["prompt_eval_count"] == count_prompt_tokens(messages, tools)
    assert count_tokens("é") == 1
    assert count_tokens("abcde") == 2
    assert count_tokens("") == 0


# --- reply scripting ---------------------------------------------------------------------------


def test_reply_with_a_function_computes_the_answer_from_the_request(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.reply_with(lambda request: json.dumps({"echo": request["messages"][-1]["content"]}))

    body = chat_json(fake_ollama, messages=[user("ping")])

    assert json.loads(body["message"]["content"]) == {"echo": "ping"}


def test_a_reply_function_that_raises_becomes_a_500_naming_the_error(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.reply_with(lambda request: request["missing"])

    assert error(chat(fake_ollama)) == (
        500,
        "FakeOllama: the reply function raised KeyError('missing')",
    )


def test_counted_replies_are_used_in_order_then_the_open_ended_one(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.reply_with("always")
    fake_ollama.reply_with("first", times=1)
    fake_ollama.reply_with("second", times=1)

    answers = [chat_json(fake_ollama)["message"]["content"] for _ in range(3)]

    assert answers == ["first", "second", "always"]


def test_a_reply_for_one_model_leaves_the_others_alone(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("from qwen", model="qwen3:8b")

    qwen = chat_json(fake_ollama, model="QWEN3:8B", think=False)
    llama = chat_json(fake_ollama, model="llama3.2:3b")

    assert qwen["message"]["content"] == "from qwen"
    assert llama["message"]["content"].startswith("Fake answer")


def test_reset_forgets_requests_rules_and_loads(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("scripted")
    chat(fake_ollama, stream=False)

    fake_ollama.reset()

    assert fake_ollama.requests == []
    assert fake_ollama.loaded_models == {}
    assert chat_json(fake_ollama)["message"]["content"].startswith("Fake answer")


# --- thinking ----------------------------------------------------------------------------------


def test_think_true_on_a_model_without_thinking_is_400(fake_ollama: FakeOllama) -> None:
    response = chat(fake_ollama, model="llama3.2:3b", think=True)

    assert error(response) == (400, '"llama3.2:3b" does not support thinking')


@pytest.mark.parametrize(
    ("think", "message"),
    [
        ("extreme", f'invalid think value: "extreme" (must be {THINK_CHOICES})'),
        (1, f"think must be a boolean or string ({THINK_CHOICES})"),
    ],
)
def test_bad_think_values_are_400(fake_ollama: FakeOllama, think: object, message: str) -> None:
    assert error(chat(fake_ollama, model="qwen3:8b", think=think)) == (400, message)


# --- request errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "shown"),
    [("yaml", '"\\"yaml\\""'), (42, '"42"'), (["a"], '"[\\"a\\"]"')],
)
def test_an_invalid_format_is_500(fake_ollama: FakeOllama, fmt: object, shown: str) -> None:
    response = chat(fake_ollama, format=fmt)

    assert error(response) == (
        500,
        f'invalid format: {shown}; expected "json" or a valid JSON Schema object',
    )


@pytest.mark.parametrize(
    ("keep_alive", "message"),
    [
        ("10", 'time: missing unit in duration "10"'),
        ("", 'time: invalid duration ""'),
        ("soon", 'time: invalid duration "soon"'),
        ("5 m", 'time: unknown unit " m" in duration "5 m"'),
        ("-", 'time: invalid duration "-"'),
        (True, "Unsupported type: 'bool'"),
        ({}, "Unsupported type: 'map[string]interface {}'"),
        ([], "Unsupported type: '[]interface {}'"),
    ],
)
def test_bad_keep_alive_is_400(fake_ollama: FakeOllama, keep_alive: object, message: str) -> None:
    assert error(chat(fake_ollama, keep_alive=keep_alive)) == (400, message)


# --- load trick and keep_alive -----------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_empty_messages_load_the_model_with_one_object(
    fake_ollama: FakeOllama, stream: bool
) -> None:
    response = chat(fake_ollama, messages=[], stream=stream)

    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body) == ["model", "created_at", "message", "done", "done_reason"]
    assert body["message"] == {"role": "assistant", "content": ""}
    assert (body["done"], body["done_reason"]) == (True, "load")
    assert fake_ollama.loaded_models == {"llama3.2:3b": 4096}


def test_empty_messages_with_keep_alive_zero_unload(fake_ollama: FakeOllama) -> None:
    chat(fake_ollama, messages=[])

    body = chat(fake_ollama, messages=[], keep_alive=0).json()

    assert body["done_reason"] == "unload"
    assert fake_ollama.loaded_models == {}


def test_first_request_reports_a_cold_load_and_the_next_a_warm_one(fake_ollama: FakeOllama) -> None:
    cold = chat_json(fake_ollama)["load_duration"]
    warm = chat_json(fake_ollama)["load_duration"]
    reloaded = chat_json(fake_ollama, options={"num_ctx": 8192})["load_duration"]

    assert cold > warm
    assert reloaded == cold  # a changed num_ctx reloads the model


# --- context size and truncation ---------------------------------------------------------------


def test_num_ctx_precedence_request_over_modelfile_over_default(fake_ollama_factory) -> None:
    fake = fake_ollama_factory([FakeModel("m:1b", parameters={"num_ctx": 8192})])

    chat(fake, model="m:1b", stream=False)
    from_modelfile = fake.last_request().num_ctx
    chat(fake, model="m:1b", stream=False, options={"num_ctx": 16384})
    from_request = fake.last_request().num_ctx

    assert (from_modelfile, from_request) == (8192, 16384)


@pytest.mark.parametrize(("version", "kept"), [("0.24.0", 4096), ("0.33.0-rc2", 4095)])
def test_overflow_is_silently_truncated_to_the_window(fake_ollama_factory, version, kept) -> None:
    # truncate=true: the runner keeps num_ctx tokens (runner NewSequence); llama-server one
    # less (llm/llama_server.go completionPromptForRequest).
    fake = fake_ollama_factory(version=version)
    long_prompt = "x" * 4 * 5000  # 5000 tokens in a 4096 window

    body = chat_json(fake, messages=[user(long_prompt)])

    assert body["prompt_eval_count"] == kept
    assert fake.last_request().num_ctx == 4096


def test_overflow_first_drops_old_messages_keeping_system_and_last(
    fake_ollama: FakeOllama,
) -> None:
    system = {"role": "system", "content": "s" * 400}
    old = [user("o" * 4 * 5000), {"role": "assistant", "content": "a" * 40}]
    last = user("q" * 40)

    body = chat_json(fake_ollama, messages=[system, *old, last])

    kept = [system, old[1], last]
    assert body["prompt_eval_count"] == count_prompt_tokens(kept)


@pytest.mark.parametrize("version", ["0.30.0", "0.33.0-rc2"])
def test_overflow_with_truncate_false_is_llama_servers_error(fake_ollama_factory, version) -> None:
    # llm/llama_server.go: llama-server's JSON body becomes Ollama's error string.
    fake = fake_ollama_factory(version=version)
    messages = [user("x" * 4 * 5000)]
    response = chat(fake, messages=messages, truncate=False)

    status, text = error(response)
    assert status == 400
    assert response.headers["Content-Type"] == "application/json"  # streamResponse's, no charset
    inner = json.loads(text)["error"]
    assert inner["type"] == "exceed_context_size_error"
    assert (inner["n_prompt_tokens"], inner["n_ctx"]) == (count_prompt_tokens(messages), 4096)
    assert f"request ({inner['n_prompt_tokens']} tokens) exceeds" in inner["message"]


@pytest.mark.parametrize(("version", "refused"), [("0.24.0", False), ("0.30.0", True)])
def test_a_prompt_that_fills_the_window_exactly(fake_ollama_factory, version, refused) -> None:
    # The runner refuses only more than num_ctx tokens (NewSequence, v0.12.6-v0.24);
    # llama-server refuses a prompt that fills the slot (n_tokens >= n_ctx), as Ollama notes
    # in llm/llama_server.go completionPromptForRequest (v0.30).
    fake = fake_ollama_factory(version=version)
    messages = [user("x" * 4 * (4096 - count_prompt_tokens([user("")])))]
    assert count_prompt_tokens(messages) == 4096

    response = chat(fake, messages=messages, truncate=False, stream=False)

    if refused:
        status, text = error(response)
        assert status == 400
        assert json.loads(text)["error"]["n_prompt_tokens"] == 4096
    else:
        assert response.json()["prompt_eval_count"] == 4096


@pytest.mark.parametrize("version", ["0.12.6", "0.24.0"])
def test_overflow_with_truncate_false_is_the_runners_400(fake_ollama_factory, version) -> None:
    # runner/*/runner.go errorInputTooLong, from v0.12.6
    fake = fake_ollama_factory(version=version)
    response = chat(fake, messages=[user("x" * 4 * 5000)], truncate=False)

    assert error(response) == (400, "the input length exceeds the context length")


def test_before_0_12_6_truncate_false_is_ignored_and_num_ctx_tokens_kept(
    fake_ollama_factory,
) -> None:
    # v0.11.11: no truncate field; the runner keeps exactly num_ctx tokens (NewSequence).
    fake = fake_ollama_factory(version="0.11.11")
    body = chat_json(fake, messages=[user("x" * 4 * 5000)], truncate=False)

    assert body["prompt_eval_count"] == 4096


def test_overflow_with_shift_false_is_400_after_dropping_history(fake_ollama: FakeOllama) -> None:
    response = chat(fake_ollama, messages=[user("x" * 4 * 5000)], shift=False)

    assert error(response) == (400, PROMPT_TOO_LONG)


@pytest.mark.parametrize(("version", "kept"), [("0.24.0", 4096), ("0.30.0", 4095)])
def test_before_0_30_9_shift_false_still_cuts_the_prompt(fake_ollama_factory, version, kept):
    # The runners use shift only while generating (runner/ollamarunner/runner.go, v0.24.0);
    # llama_server.go refuses with shift off only from v0.30.9.
    fake = fake_ollama_factory(version=version)
    body = chat_json(fake, messages=[user("x" * 4 * 5000)], shift=False)

    assert body["prompt_eval_count"] == kept


# --- output limits and formats -----------------------------------------------------------------


def test_num_predict_cuts_the_answer_with_done_reason_length(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("abcd" * 10)

    body = chat_json(fake_ollama, options={"num_predict": 3})

    assert body["message"]["content"] == "abcd" * 3
    assert (body["done_reason"], body["eval_count"]) == ("length", 3)


# --- /api/generate -----------------------------------------------------------------------------


def generate(fake: FakeOllama, **body: Any) -> requests.Response:
    body.setdefault("model", "llama3.2:3b")
    return requests.post(fake.url + "/api/generate", json=body, timeout=5)


def test_generate_streams_response_pieces_and_a_context(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("Once upon a time")

    chunks = json_lines(generate(fake_ollama, prompt="Tell a story", system="Be brief."))

    assert "".join(c["response"] for c in chunks) == "Once upon a time"
    assert list(chunks[0]) == ["model", "created_at", "response", "done"]
    final = chunks[-1]
    prompt_tokens = count_prompt_tokens([{"content": "Be brief."}, {"content": "Tell a story"}])
    assert final["prompt_eval_count"] == prompt_tokens
    assert len(final["context"]) == prompt_tokens + final["eval_count"]


def test_generate_errors_follow_the_spec(fake_ollama: FakeOllama) -> None:
    raw = generate(fake_ollama, prompt="x", raw=True, system="s")
    embed = generate(fake_ollama, model="nomic-embed-text", prompt="x")
    insert = generate(fake_ollama, prompt="x", suffix="y")
    bad = generate(fake_ollama, model="a b", prompt="x")

    assert error(raw) == (400, "raw mode does not support template, system, or context")
    assert error(embed) == (400, '"nomic-embed-text" does not support generate')
    assert error(insert) == (400, "registry.ollama.ai/library/llama3.2:3b does not support insert")
    assert error(bad) == (400, "invalid model name")
