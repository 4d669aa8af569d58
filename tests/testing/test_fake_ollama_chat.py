"""FakeOllama's /api/chat and /api/generate (docs/reference/ollama-protocol.md, "Chat requests",
"Generate", "Context and truncation")."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from persona_ollama.testing import (
    MESSAGE_OVERHEAD_TOKENS,
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


def lines(response: requests.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.iter_lines() if line]


def error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


# --- streaming and non-streaming ---------------------------------------------------------------


def test_chat_streams_ndjson_by_default(fake_ollama: FakeOllama) -> None:
    response = chat(fake_ollama)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == NDJSON
    assert response.headers["Transfer-Encoding"] == "chunked"
    chunks = lines(response)
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


def test_streamed_content_is_the_default_answer(fake_ollama: FakeOllama) -> None:
    chunks = lines(chat(fake_ollama, messages=[user("Hello there")]))

    content = "".join(chunk["message"]["content"] for chunk in chunks)

    prompt_tokens = count_tokens("Hello there") + MESSAGE_OVERHEAD_TOKENS
    assert (
        content
        == f"Fake answer from llama3.2:3b: the prompt had {prompt_tokens} tokens in 1 message."
    )
    assert chunks[-1]["prompt_eval_count"] == prompt_tokens
    assert chunks[-1]["eval_count"] == count_tokens(content)


def test_chat_without_stream_returns_one_object_with_all_content(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("Hi! How can I help?")

    response = chat(fake_ollama, stream=False)

    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body)[:5] == ["model", "created_at", "message", "done", "done_reason"]
    assert body["message"] == {"role": "assistant", "content": "Hi! How can I help?"}
    assert body["done"] is True
    assert body["eval_count"] == count_tokens("Hi! How can I help?")


def test_model_is_echoed_exactly_as_requested(fake_ollama: FakeOllama) -> None:
    body = chat_json(fake_ollama, model="LLAMA3.2:3B")

    assert body["model"] == "LLAMA3.2:3B"


def test_chunk_size_splits_the_answer_into_fixed_pieces(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(chunk_size=3)
    fake.reply_with("abcdefgh")

    chunks = lines(chat(fake))

    assert [c["message"]["content"] for c in chunks] == ["abc", "def", "gh", ""]


def test_strings_are_escaped_like_go(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("<b>&</b>")

    response = chat(fake_ollama, stream=False)

    assert b"\\u003cb\\u003e\\u0026\\u003c/b\\u003e" in response.content
    assert response.json()["message"]["content"] == "<b>&</b>"


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


def test_a_model_canned_reply_is_used_when_no_rule_applies(fake_ollama_factory) -> None:
    fake = fake_ollama_factory([FakeModel("m:1b", reply="canned")])

    assert chat_json(fake, model="m:1b")["message"]["content"] == "canned"


def test_reply_done_reason_overrides_the_computed_one(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("cut", done_reason="length")

    assert chat_json(fake_ollama)["done_reason"] == "length"


def test_reset_forgets_requests_rules_and_loads(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("scripted")
    chat(fake_ollama, stream=False)

    fake_ollama.reset()

    assert fake_ollama.requests == []
    assert fake_ollama.loaded_models == {}
    assert chat_json(fake_ollama)["message"]["content"].startswith("Fake answer")


# --- thinking ----------------------------------------------------------------------------------


def test_thinking_model_thinks_first_when_think_is_omitted(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("The answer.", thinking="Let me think.")

    chunks = lines(chat(fake_ollama, model="qwen3:8b"))

    thinking = [c for c in chunks if "thinking" in c["message"]]
    assert "".join(c["message"]["thinking"] for c in thinking) == "Let me think."
    assert all(c["message"]["content"] == "" for c in thinking)
    assert chunks.index(thinking[-1]) < min(
        i for i, c in enumerate(chunks) if c["message"]["content"]
    )
    assert "".join(c["message"]["content"] for c in chunks) == "The answer."


def test_thinking_is_concatenated_without_streaming(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(
        [FakeModel("r1:1b", capabilities=["completion", "thinking"], thinking="Hmm.")]
    )

    body = chat_json(fake, model="r1:1b", think="high")

    assert body["message"]["thinking"] == "Hmm."
    assert body["eval_count"] == count_tokens("Hmm.") + count_tokens(body["message"]["content"])


def test_think_false_turns_thinking_off(fake_ollama: FakeOllama) -> None:
    body = chat_json(fake_ollama, model="qwen3:8b", think=False)

    assert "thinking" not in body["message"]


def test_think_true_on_a_model_without_thinking_is_400(fake_ollama: FakeOllama) -> None:
    response = chat(fake_ollama, model="llama3.2:3b", think=True)

    assert error(response) == (400, '"llama3.2:3b" does not support thinking')


def test_think_false_is_accepted_by_any_model(fake_ollama: FakeOllama) -> None:
    assert chat(fake_ollama, think=False, stream=False).status_code == 200


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


def test_chat_missing_model_returns_404_with_request_string(fake_ollama: FakeOllama) -> None:
    assert error(chat(fake_ollama, model="Nope")) == (404, "model 'Nope' not found")


def test_chat_missing_model_before_v012_suggests_pulling(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(version="0.11.10")

    assert error(chat(fake, model="nope")) == (
        404,
        'model "nope" not found, try pulling it first',
    )


@pytest.mark.parametrize("model", ["", None])
def test_chat_with_an_empty_model_is_400_model_is_required(
    fake_ollama: FakeOllama, model: object
) -> None:
    assert error(chat(fake_ollama, model=model)) == (400, "model is required")


def test_chat_with_a_malformed_name_is_400(fake_ollama: FakeOllama) -> None:
    assert error(chat(fake_ollama, model="my model")) == (400, "invalid model name")


def test_chat_with_an_embedding_model_is_400(fake_ollama: FakeOllama) -> None:
    response = chat(fake_ollama, model="nomic-embed-text")

    assert error(response) == (400, '"nomic-embed-text" does not support chat')


def test_tools_on_a_model_without_tool_support_is_400(fake_ollama_factory) -> None:
    fake = fake_ollama_factory([FakeModel("gemma3", capabilities=["completion"])])

    response = chat(fake, model="gemma3", tools=[{"type": "function", "function": {"name": "f"}}])

    assert error(response) == (
        400,
        "registry.ollama.ai/library/gemma3:latest does not support tools",
    )


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
    ("options", "message"),
    [
        ({"num_ctx": "8k"}, 'option "num_ctx" must be of type integer'),
        ({"num_predict": True}, 'option "num_predict" must be of type integer'),
        ({"seed": [1]}, 'option "seed" must be of type integer'),
        ({"top_k": None, "temperature": "hot"}, 'option "temperature" must be of type float32'),
        ({"top_p": {}}, 'option "top_p" must be of type float32'),
        ({"stop": "x"}, 'option "stop" must be of type array'),
        ({"stop": [1]}, 'option "stop" must be of an array of strings'),
        ({"use_mmap": 1}, 'option "use_mmap" must be of type boolean'),
    ],
)
def test_options_of_the_wrong_type_are_500(
    fake_ollama: FakeOllama, options: dict[str, object], message: str
) -> None:
    assert error(chat(fake_ollama, options=options)) == (500, message)


def test_unknown_options_are_dropped_and_numbers_convert(fake_ollama: FakeOllama) -> None:
    response = chat(
        fake_ollama,
        stream=False,
        options={"colour": 1, "num_ctx": 2048.0, "top_k": 5.5, "temperature": 1, "use_mmap": True},
    )

    assert response.status_code == 200
    assert fake_ollama.last_request().num_ctx == 2048


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


@pytest.mark.parametrize("keep_alive", ["5m", "1h30m", "1.5s", "300ms", "+1h", "0", 30, 2.5, "2µs"])
def test_good_keep_alive_values_are_accepted(fake_ollama: FakeOllama, keep_alive: object) -> None:
    assert chat(fake_ollama, keep_alive=keep_alive, stream=False).status_code == 200


@pytest.mark.parametrize("top_logprobs", [-1, 21])
def test_top_logprobs_out_of_range_is_400(fake_ollama: FakeOllama, top_logprobs: int) -> None:
    assert error(chat(fake_ollama, top_logprobs=top_logprobs)) == (
        400,
        "top_logprobs must be between 0 and 20",
    )


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


def test_keep_alive_zero_unloads_after_the_request(fake_ollama: FakeOllama) -> None:
    chat(fake_ollama, stream=False, keep_alive=0)

    assert fake_ollama.loaded_models == {}


def test_first_request_reports_a_cold_load_and_the_next_a_warm_one(fake_ollama: FakeOllama) -> None:
    cold = chat_json(fake_ollama)["load_duration"]
    warm = chat_json(fake_ollama)["load_duration"]
    reloaded = chat_json(fake_ollama, options={"num_ctx": 8192})["load_duration"]

    assert cold > warm
    assert reloaded == cold  # a changed num_ctx reloads the model


# --- context size and truncation ---------------------------------------------------------------


def test_num_ctx_defaults_to_the_server_default(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(default_num_ctx=2048)

    chat(fake, stream=False)

    assert fake.last_request().num_ctx == 2048


def test_num_ctx_precedence_request_over_modelfile_over_default(fake_ollama_factory) -> None:
    fake = fake_ollama_factory([FakeModel("m:1b", parameters={"num_ctx": 8192})])

    chat(fake, model="m:1b", stream=False)
    from_modelfile = fake.last_request().num_ctx
    chat(fake, model="m:1b", stream=False, options={"num_ctx": 16384})
    from_request = fake.last_request().num_ctx

    assert (from_modelfile, from_request) == (8192, 16384)


def test_num_ctx_is_capped_at_the_trained_length_and_floored(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(
        [
            FakeModel("small:1b", context_length=2048),
            FakeModel("eyes:1b", capabilities=["completion", "vision"]),
        ]
    )

    chat(fake, model="small:1b", stream=False, options={"num_ctx": 100000})
    capped = fake.last_request().num_ctx
    chat(fake, model="small:1b", stream=False, options={"num_ctx": 1})
    floored = fake.last_request().num_ctx
    chat(fake, model="eyes:1b", stream=False, options={"num_ctx": 512})
    vision = fake.last_request().num_ctx

    assert (capped, floored, vision) == (2048, 4, 2048)


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


def test_overflow_drops_as_many_old_messages_as_needed(fake_ollama: FakeOllama) -> None:
    old = [user("o" * 4 * 4090), user("p" * 4 * 4090), user("r" * 40)]
    last = user("q" * 40)

    body = chat_json(fake_ollama, messages=[*old, last])

    assert body["prompt_eval_count"] == count_prompt_tokens([old[2], last])


def test_a_model_of_unknown_trained_length_takes_any_num_ctx(fake_ollama_factory) -> None:
    fake = fake_ollama_factory([FakeModel("odd:1b", context_length=0)])

    chat(fake, model="odd:1b", stream=False, options={"num_ctx": 1_000_000})

    assert fake.last_request().num_ctx == 1_000_000


def test_a_message_without_a_role_is_accepted(fake_ollama: FakeOllama) -> None:
    assert chat(fake_ollama, stream=False, messages=[{"content": "hi"}]).status_code == 200


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


def test_prompt_too_long_text_is_the_servers() -> None:
    # llm/llama_server.go completionPromptForRequest (v0.33): truncation with context shift off.
    assert PROMPT_TOO_LONG == (
        "the prompt is longer than the context length currently available to the model; "
        "shorten the prompt, adjust the context length in settings, or use a model with a "
        "longer context length"
    )


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


def test_a_prompt_that_fits_is_not_truncated(fake_ollama: FakeOllama) -> None:
    messages = [user("x" * 4 * 4000)]

    body = chat_json(fake_ollama, messages=messages, truncate=False)

    assert body["prompt_eval_count"] == count_prompt_tokens(messages) <= 4096


# --- output limits and formats -----------------------------------------------------------------


def test_num_predict_cuts_the_answer_with_done_reason_length(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("abcd" * 10)

    body = chat_json(fake_ollama, options={"num_predict": 3})

    assert body["message"]["content"] == "abcd" * 3
    assert (body["done_reason"], body["eval_count"]) == ("length", 3)


def test_num_predict_zero_leaves_out_the_zero_metrics(fake_ollama: FakeOllama) -> None:
    body = chat_json(fake_ollama, options={"num_predict": 0})

    assert body["message"]["content"] == ""
    assert "eval_count" not in body
    assert "eval_duration" not in body
    assert body["done_reason"] == "length"


def test_num_predict_counts_thinking_first(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("content", thinking="t" * 40)

    body = chat_json(fake_ollama, model="qwen3:8b", options={"num_predict": 4})

    assert (body["message"]["thinking"], body["message"]["content"]) == ("t" * 16, "")
    assert body["done_reason"] == "length"


def test_stop_sequences_end_the_answer(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("one. two. END three.")

    body = chat_json(fake_ollama, options={"stop": ["END", "zzz", ""]})

    assert (body["message"]["content"], body["done_reason"]) == ("one. two. ", "stop")


@pytest.mark.parametrize("fmt", ["json", {"type": "object"}])
def test_json_format_wraps_a_plain_text_reply(fake_ollama: FakeOllama, fmt: object) -> None:
    fake_ollama.reply_with("not json")

    body = chat_json(fake_ollama, format=fmt)

    assert json.loads(body["message"]["content"]) == {"response": "not json"}


def test_json_format_keeps_a_json_reply(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with('{"personas": []}')

    body = chat_json(fake_ollama, format="json")

    assert body["message"]["content"] == '{"personas": []}'


@pytest.mark.parametrize("fmt", [None, ""])
def test_empty_format_means_plain_text(fake_ollama: FakeOllama, fmt: object) -> None:
    fake_ollama.reply_with("plain")

    assert chat_json(fake_ollama, format=fmt)["message"]["content"] == "plain"


def test_roles_are_lowercased_on_decode(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with(lambda request: request["messages"][0]["role"])

    assert (
        chat_json(fake_ollama, messages=[{"role": "USER", "content": "x"}])["message"]["content"]
        == "user"
    )


# --- /api/generate -----------------------------------------------------------------------------


def generate(fake: FakeOllama, **body: Any) -> requests.Response:
    body.setdefault("model", "llama3.2:3b")
    return requests.post(fake.url + "/api/generate", json=body, timeout=5)


def test_generate_streams_response_pieces_and_a_context(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("Once upon a time")

    chunks = lines(generate(fake_ollama, prompt="Tell a story", system="Be brief."))

    assert "".join(c["response"] for c in chunks) == "Once upon a time"
    assert list(chunks[0]) == ["model", "created_at", "response", "done"]
    final = chunks[-1]
    prompt_tokens = count_prompt_tokens([{"content": "Be brief."}, {"content": "Tell a story"}])
    assert final["prompt_eval_count"] == prompt_tokens
    assert len(final["context"]) == prompt_tokens + final["eval_count"]


def test_generate_without_stream_concatenates_and_raw_has_no_context(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.reply_with("Hi", thinking="Greeting.")

    body = generate(fake_ollama, model="qwen3:8b", prompt="hello", stream=False, raw=True).json()

    assert (body["response"], body["thinking"]) == ("Hi", "Greeting.")
    assert "context" not in body


def test_generate_thinking_chunks_use_the_top_level_field(fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("A", thinking="T")

    chunks = lines(generate(fake_ollama, model="qwen3:8b", prompt="q"))

    assert chunks[0]["thinking"] == "T"
    assert chunks[0]["response"] == ""


def test_generate_empty_prompt_loads_and_keep_alive_zero_unloads(fake_ollama: FakeOllama) -> None:
    load = generate(fake_ollama).json()
    unload = generate(fake_ollama, keep_alive=0).json()

    assert (load["response"], load["done_reason"]) == ("", "load")
    assert unload["done_reason"] == "unload"


@pytest.mark.parametrize(("model", "status"), [("", 404), ("missing", 404)])
def test_generate_missing_model_is_404_even_when_empty(
    fake_ollama: FakeOllama, model: str, status: int
) -> None:
    assert error(generate(fake_ollama, model=model, prompt="x")) == (
        status,
        f"model '{model}' not found",
    )


def test_generate_errors_follow_the_spec(fake_ollama: FakeOllama) -> None:
    raw = generate(fake_ollama, prompt="x", raw=True, system="s")
    embed = generate(fake_ollama, model="nomic-embed-text", prompt="x")
    insert = generate(fake_ollama, prompt="x", suffix="y")
    bad = generate(fake_ollama, model="a b", prompt="x")

    assert error(raw) == (400, "raw mode does not support template, system, or context")
    assert error(embed) == (400, '"nomic-embed-text" does not support generate')
    assert error(insert) == (400, "registry.ollama.ai/library/llama3.2:3b does not support insert")
    assert error(bad) == (400, "invalid model name")
