"""The /v1 mode against a real inference server: llama-cpp-python's (the llama.cpp engine).

Each test states what a user of ``api="openai"`` sees from this server: a short answer with
counts, a stream, a prompt longer than the server's context, an answer interrupted by another
request, eight concurrent requests, a model it does not serve, a JSON-schema request, and the
CLI's ``doctor`` and ``run``. The model is random noise (tiny_model.py), so the tests assert
on the protocol, never on the words.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.cli import main
from persona_ollama.errors import (
    ContextOverflowError,
    ModelNotPulledError,
    OllamaError,
    OllamaResponseError,
)
from persona_ollama.timings import TimingStore

pytestmark = pytest.mark.realserver

PROMPT = "Describe one user of a note-taking app in two sentences."


@pytest.fixture
def provider(llama_server):
    p = OllamaProvider(base_url=llama_server.url, api="openai", model=llama_server.model)
    yield p
    p.close()


def test_a_short_answer_comes_with_its_real_output_count(provider, llama_server):
    response = provider.generate(PROMPT, max_tokens=12, temperature=0.0)

    assert response.finish_reason in ("stop", "length")
    assert response.model == llama_server.model
    # The server sends no usage in a stream: the answer is counted by its own tokenizer (the
    # text re-tokenised, which for random bytes can differ a little from what was sampled),
    # and the prompt count is unknown (None), not a false 0.
    raw = response.raw_response
    assert 0 < raw["output_tokens"] == response.output_tokens <= 12
    expected = "max_tokens" if response.finish_reason == "length" else "server tokenizer"
    assert raw["output_tokens_source"] == expected
    assert raw["input_tokens"] is None
    assert raw["warnings"] == [] or response.finish_reason == "length"


def test_an_explicit_num_ctx_is_said_not_sent_and_raw_response_is_the_servers_own(
    provider, llama_server, caplog
):
    # The server has one window for every request (its --n_ctx): num_ctx cannot be sent.
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        response = provider.generate(PROMPT, max_tokens=8, num_ctx=2048, temperature=0.0)

    said = [r.getMessage() for r in caplog.records if "num_ctx=2048" in r.getMessage()]
    assert len(said) == 1
    assert "llama.cpp server has no per-request context size" in said[0]
    raw = response.raw_response
    # Not planned with it either: llama-cpp-python states no window (no /props, no meta),
    # so the plan is the default one, not the 2,048 the caller asked for.
    assert raw["num_ctx"] != 2048
    assert raw["finish_reason"] == response.finish_reason  # the server's own word
    assert not {"prompt_eval_count", "eval_count", "eval_duration"} & set(raw)


def test_a_stream_yields_the_whole_answer_in_pieces(provider):
    chat = provider.stream(PROMPT, max_tokens=24, temperature=0.0)
    pieces = list(chat)

    assert chat.response is not None
    assert "".join(pieces) == chat.response.content
    assert chat.response.finish_reason in ("stop", "length")


def test_a_prompt_longer_than_the_context_is_an_overflow_error_with_sizes(provider, llama_server):
    # The streamed request gets a 200 with an empty body; the error comes from asking again.
    with pytest.raises(ContextOverflowError) as caught:
        provider.generate("persona research " * 400, max_tokens=8)

    error = caught.value
    assert error.context_length == llama_server.n_ctx
    assert error.prompt_tokens is not None and error.prompt_tokens > llama_server.n_ctx
    assert "llama.cpp server" in error.message
    assert "Ollama" not in str(error)


def test_an_answer_interrupted_by_another_request_is_an_error_not_a_partial_answer(
    provider, llama_server
):
    first: dict[str, object] = {}
    started = threading.Event()

    def long_answer() -> None:
        try:
            # This model rarely ends an answer itself (tiny_model.output_weights): 400 tokens
            # take about a second, long enough for the second request to arrive.
            chat = provider.stream(PROMPT, max_tokens=400, temperature=1.0)
            for _ in chat:
                started.set()
            first["response"] = chat.response
        except OllamaError as error:
            first["error"] = error
        finally:
            started.set()

    thread = threading.Thread(target=long_answer)
    thread.start()
    assert started.wait(120)
    other = OllamaProvider(base_url=llama_server.url, api="openai", model=llama_server.model)
    other.generate("Hello", max_tokens=4)
    other.close()
    thread.join(60)

    if "response" in first:  # it finished before the second request arrived
        response = first["response"]
        assert response.finish_reason in ("stop", "length")  # type: ignore[union-attr]
        pytest.skip("the first answer finished before the second request interrupted it")
    error = first["error"]
    assert isinstance(error, OllamaResponseError)
    assert "interrupted" in error.message and "--interrupt_requests False" in str(error.hint)


def test_eight_concurrent_requests_each_complete_or_fail_typed(provider):
    async def all_of_them():
        calls = [provider.generate_async(PROMPT, max_tokens=48) for _ in range(8)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(all_of_them())

    completed = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(completed) + len(failed) == 8
    assert completed, "at least the last request must be answered"
    for response in completed:
        assert response.finish_reason in ("stop", "length")
        assert response.output_tokens > 0 or response.content == ""
    for error in failed:
        assert isinstance(error, OllamaResponseError), repr(error)
        assert "interrupted" in error.message


def test_a_model_the_server_does_not_serve_is_named_with_what_it_serves(llama_server):
    provider = OllamaProvider(base_url=llama_server.url, api="openai")
    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("Hello", model="no-such-model", max_tokens=4)
    provider.close()

    assert llama_server.model in str(caught.value)
    assert "ollama pull" not in str(caught.value.hint)


def test_a_schema_request_is_accepted_and_the_answer_follows_it(provider):
    schema = {
        "type": "object",
        "properties": {"age": {"type": "integer"}},
        "required": ["age"],
    }

    response = provider.generate(PROMPT, max_tokens=48, format=schema, temperature=0.0)

    if response.finish_reason == "stop":  # else the grammar was cut off by max_tokens
        assert isinstance(json.loads(response.content)["age"], int)


def test_the_cli_doctor_names_the_server(llama_server, cli_runner, monkeypatch):
    monkeypatch.setenv("PERSONA_OLLAMA_MODEL", llama_server.model)

    result = cli_runner.invoke(main, ["doctor", "--host", llama_server.url, "--api", "openai"])

    assert "llama.cpp server (OpenAI-compatible API)" in result.output, result.output
    assert "Ollama 0" not in result.output and "ollama pull" not in result.output
    assert result.exit_code == 0, result.output + result.stderr


def test_the_cli_run_prints_the_answer_and_honest_counts(llama_server, cli_runner):
    result = cli_runner.invoke(
        main,
        [
            "run", "Say hello", "--host", llama_server.url, "--api", "openai",
            "--model", llama_server.model, "--max-tokens", "8",
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output + result.stderr
    assert "? tokens in" in result.stderr
    assert "0 tokens in, 0 out" not in result.stderr


def test_the_cli_run_json_shows_an_unknown_count_as_null_and_no_more_than_the_limit(
    llama_server, cli_runner
):
    result = cli_runner.invoke(
        main,
        [
            "run", "Say hello", "--json", "--host", llama_server.url, "--api", "openai",
            "--model", llama_server.model, "--max-tokens", "8",
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output + result.stderr
    shown = json.loads(result.stdout)
    assert shown["input_tokens"] is None  # the server sends no usage: unknown, not 0
    assert 0 < shown["output_tokens"] <= 8


def test_the_cli_bench_measures_the_real_server_and_records_its_speeds(
    llama_server, cli_runner, tmp_path
):
    # Notes and an answer limit that fit the server's 512-token context.
    notes = tmp_path / "notes.csv"
    notes.write_text('id,quote\nR1,"I keep my notes in a spreadsheet"\n', encoding="utf-8")
    args = ["bench", llama_server.model, "-n", "2", "--notes", str(notes), "--max-tokens", "16"]
    args += ["--host", llama_server.url, "--api", "openai"]

    result = cli_runner.invoke(main, [*args, "--json"])
    text = cli_runner.invoke(main, args)

    assert result.exit_code == 0, result.output + result.stderr
    (report,) = json.loads(result.stdout)
    assert report["runs"] == 2
    # This server states no timings and no prompt count: the answer is timed by the client.
    assert report["prompt_tokens_per_second"] is None
    assert report["answer_clock"] == "client"
    assert report["answer_tokens_per_second"] > 0
    assert report["valid_json"] in (0, 1, 2)  # random weights: the words mean nothing
    assert "answer     " in text.stdout and "this machine's clock" in text.stdout
    speeds = TimingStore.from_env().speeds(llama_server.url + "/v1", llama_server.model)
    assert speeds is not None and speeds.runs == 4
    assert speeds.answer_tokens_per_second > 0
    doctor = cli_runner.invoke(main, ["doctor", "--host", llama_server.url, "--api", "openai"])
    measured = f"Measured   {llama_server.model} "
    assert measured in doctor.stdout, doctor.output
    assert "answer tokens/s (prompt speed not measured)" in doctor.stdout, doctor.output
