"""The fast counterparts of the real-server group (tests/realserver): the /v1 double scripted
to behave as llama-cpp-python's server does, against the provider and the CLI over sockets."""

from __future__ import annotations

import json

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.cli import main
from persona_ollama.errors import (
    ConnectionBrokenError,
    ContextOverflowError,
    ModelNotPulledError,
    OllamaResponseError,
)

MODEL = "llama3.2:3b"


@pytest.fixture
def provider(fake):
    p = OllamaProvider(base_url=fake.url + "/v1", model=MODEL, api="openai", environ={})
    p.backend.transport.backoff = 0
    yield p
    p.close()


def test_done_without_a_finish_reason_is_an_interrupted_answer_not_a_partial_one(fake, provider):
    fake.reply_with("one two three four five six seven eight")
    fake.interrupt_stream_next(after_chunks=3)

    with pytest.raises(OllamaResponseError) as caught:
        provider.generate("Hello", max_tokens=64)

    assert "interrupted" in caught.value.message
    assert "partial answer was discarded" in caught.value.message
    assert caught.value.hint  # the double is an Ollama server: no llama.cpp advice
    assert "--interrupt_requests" not in caught.value.hint


def test_a_stream_cut_before_its_chunked_terminator_is_an_error(fake, provider):
    fake.reply_with("one two three four five six seven eight")
    fake.drop_connection_mid_stream_next(after_chunks=3)

    # stream() is never asked again (generate() is: tests/integration/test_restarts.py).
    with pytest.raises(ConnectionBrokenError) as caught:
        list(provider.stream("Hello", max_tokens=64))

    assert "partial result was discarded" in caught.value.message


def test_an_empty_stream_is_asked_again_and_the_overflow_comes_with_both_sizes(fake, provider):
    fake.context_overflow_next(context_length=512, prompt_tokens=6827)

    with pytest.raises(ContextOverflowError) as caught:
        provider.generate("Hello", max_tokens=8)

    error = caught.value
    assert (error.context_length, error.prompt_tokens) == (512, 6827)
    assert "silently dropped" not in str(error)
    bodies = [r.json for r in fake.requests if r.path == "/v1/chat/completions"]
    assert [body["stream"] for body in bodies] == [True, False]


def test_without_usage_the_counts_are_unknown_not_zero(fake, provider, cli_runner):
    fake.omit_usage_next()

    response = provider.generate("Hello", max_tokens=16)

    assert response.content
    assert response.raw_response["input_tokens"] is None
    assert response.raw_response["output_tokens"] is None

    fake.omit_usage_next()
    result = cli_runner.invoke(
        main,
        ["run", "Hello", "--host", fake.url, "--api", "openai", "--model", MODEL],
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert "? tokens in, ? out" in result.stderr
    assert "load 0.0 s" not in result.stderr  # a /v1 server states no load time

    fake.omit_usage_next()
    result = cli_runner.invoke(
        main,
        ["run", "Hello", "--json", "--host", fake.url, "--api", "openai", "--model", MODEL],
    )
    assert result.exit_code == 0, result.output + result.stderr
    shown = json.loads(result.stdout)
    assert (shown["input_tokens"], shown["output_tokens"]) == (None, None)  # not a false 0


def test_usage_gives_real_counts(fake, provider):
    response = provider.generate("Hello", max_tokens=16)

    assert response.input_tokens > 0 and response.output_tokens > 0
    assert response.raw_response["output_tokens"] == response.output_tokens


def test_a_server_traceback_is_not_shown(fake, provider):
    fake.fail_next(
        status=500,
        error='bad request\n\n  File "/srv/app/server.py", line 376, in create\n    POST /v1/x',
    )

    with pytest.raises(OllamaResponseError) as caught:
        provider.generate("Hello", max_tokens=8)

    shown = str(caught.value) + str(caught.value.server_text)
    assert "/srv/app" not in shown and "bad request" in shown


def test_the_cli_doctor_names_the_server_kind(fake, cli_runner):
    result = cli_runner.invoke(main, ["doctor", "--host", fake.url, "--api", "openai"])

    assert "Ollama server (OpenAI-compatible API)" in result.output, result.output


def test_the_cli_says_what_to_do_when_the_server_cannot_load_the_model(fake, cli_runner):
    fake.out_of_memory_next()

    result = cli_runner.invoke(
        main, ["run", "Hello", "--host", fake.url, "--api", "openai", "--model", MODEL]
    )

    assert result.exit_code == 1
    assert f"could not load '{MODEL}': not enough memory" in result.stderr
    assert "Hint: Pick a smaller model" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_a_misspelt_model_names_the_close_served_one_and_offers_no_pull(fake):
    provider = OllamaProvider(base_url=fake.url + "/v1", api="openai", environ={})
    try:
        with pytest.raises(ModelNotPulledError) as caught:
            provider.generate("hi", model=MODEL[:-1])
    finally:
        provider.close()

    assert f"Did you mean {MODEL}?" in str(caught.value)
    assert "pull" not in caught.value.hint
