"""The same behavioural checks in both modes: api="native" (/api/chat) and api="openai"
(/v1/chat/completions), against the loopback double over real sockets. Where the two APIs
differ (what goes on the wire, what a mid-stream error looks like) the test says so."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.choosing import catalogue
from persona_ollama.choosing.catalogue import Catalogue, GiB, ModelSpec
from persona_ollama.errors import (
    CloudSignInRequiredError,
    ConfigurationError,
    InsufficientMemoryError,
    ModelNotPulledError,
    ModelRunnerError,
    OllamaResponseError,
    OllamaTimeoutError,
    ServerBusyError,
)
from persona_ollama.testing import FakeModel, FakeOllama, count_prompt_tokens

CHAT_PATH = {"native": "/api/chat", "openai": "/v1/chat/completions"}


@pytest.fixture(autouse=True)
def known_catalogue(monkeypatch):
    """/v1 servers other than vLLM and llama.cpp do not say a model's context length, so the
    catalogue's is used: a fixed one here, independent of data/models.json."""
    specs = [
        ModelSpec("llama3.2:3b", "llama", 3.2, 131072, 2 * GiB, 3 * GiB, 60),
        ModelSpec("llama3:8b", "llama", 8.0, 8192, 5 * GiB, 6 * GiB, 50),
        ModelSpec("qwen3:8b", "qwen3", 8.2, 40960, 5 * GiB, 6 * GiB, 80, thinking=True),
    ]
    monkeypatch.setattr(catalogue, "load_catalogue", lambda environ=None: Catalogue(specs))


@pytest.fixture
def fake(server_version):
    models = [
        FakeModel("llama3.2:3b", context_length=131072),
        FakeModel("llama3:8b", context_length=8192, parameter_size="8.0B"),
        FakeModel(
            "qwen3:8b",
            family="qwen3",
            capabilities=["completion", "thinking"],
            thinking="Let me think about the interviews.",
        ),
    ]
    with FakeOllama(models, version=server_version) as server:
        yield server


@pytest.fixture
def chat_path(api) -> str:
    return CHAT_PATH[api]


@pytest.fixture
def provider(fake, api):
    # A /v1 user pastes the address with /v1, as vLLM's documentation writes it.
    url = fake.url + "/v1" if api == "openai" else fake.url
    p = OllamaProvider(base_url=url, model="llama3.2:3b", api=api, environ={})
    p.backend.transport.backoff = 0  # retries without waiting, so failure tests stay fast
    yield p
    p.close()


def test_generate_round_trip_reports_content_tokens_and_reason(provider, fake, api, chat_path):
    fake.reply_with("Hello from the double")

    response = provider.generate("Say hello", max_tokens=50)

    assert response.content == "Hello from the double"
    assert response.finish_reason == "stop"
    sent = fake.last_request(chat_path).json
    assert response.input_tokens == count_prompt_tokens(sent["messages"])
    assert response.output_tokens > 0
    if api == "native":
        assert (sent["options"]["num_predict"], sent["truncate"]) == (50, False)
    else:
        assert sent["max_tokens"] == 50
        assert sent["stream_options"] == {"include_usage": True}


def test_num_predict_running_out_gives_finish_reason_length(provider, fake):
    fake.reply_with("word " * 200)

    response = provider.generate("hi", max_tokens=10)

    assert response.finish_reason == "length"
    assert response.output_tokens <= 10


def test_503_twice_is_retried_and_succeeds(provider, fake, chat_path):
    fake.fail_next(2)

    assert provider.generate("hi", max_tokens=20).content
    assert fake.request_count(chat_path) == 3


def test_503_beyond_the_retries_raises_server_busy(provider, fake, chat_path):
    fake.fail_next(10)

    with pytest.raises(ServerBusyError):
        provider.generate("hi")
    assert fake.request_count(chat_path) == 1 + provider.backend.transport.retries


def test_out_of_memory_raises_insufficient_memory(provider, fake):
    fake.out_of_memory_next()

    with pytest.raises(InsufficientMemoryError) as caught:
        provider.generate("hi")
    assert caught.value.status_code == 500


def test_a_runner_that_died_before_answering_raises_a_runner_error(provider, fake):
    fake.runner_stopped_next()

    with pytest.raises(ModelRunnerError) as caught:
        provider.generate("hi")
    assert "ollama serve" in str(caught.value.hint)  # where the log of this server is


def test_a_signed_out_server_refusing_a_cloud_model_says_ollama_signin(server_version, api):
    with FakeOllama(["llama3.2:3b"], version=server_version, signed_in=False) as server:
        server.add_cloud_model("gpt-oss:120b-cloud")
        provider = OllamaProvider(base_url=server.url, api=api, environ={})
        with pytest.raises(CloudSignInRequiredError) as caught:
            provider.generate("hi", model="gpt-oss:120b-cloud")
        provider.close()

    assert caught.value.status_code == 401
    assert "`ollama signin`" in str(caught.value.hint)


def test_error_mid_stream_raises_and_no_partial_answer_is_returned(provider, fake, api):
    fake.reply_with("one two three four five six")
    fake.error_mid_stream_next(after_chunks=2)
    seen: list[str] = []

    # Ollama's /v1 turns the error line into an empty chunk and closes the stream without
    # [DONE]: the client can only tell that the answer is incomplete.
    expected = "middle of the answer" if api == "native" else "ended before the server said"
    with pytest.raises(OllamaResponseError, match=expected):
        provider.generate("hi", on_token=seen.append)
    assert 0 < len(seen) <= 2


def test_connection_dropped_mid_stream_twice_raises(provider, fake, chat_path):
    fake.reply_with("one two three four five six")
    fake.drop_connection_mid_stream_next(after_chunks=2)
    fake.drop_connection_mid_stream_next(after_chunks=2)

    # Asked again once (restarts=1, tests/integration/test_restarts.py), then given up.
    with pytest.raises(OllamaResponseError, match="broke in the middle"):
        provider.generate("hi")
    assert fake.request_count(chat_path) == 2


def test_stream_without_done_raises(provider, fake):
    fake.end_stream_without_done_next()

    with pytest.raises(OllamaResponseError, match="ended before the server said it was done"):
        provider.generate("hi")


def test_malformed_json_raises(provider, fake):
    fake.malformed_json_next()

    with pytest.raises(OllamaResponseError, match="not JSON"):
        provider.generate("hi")


def test_missing_model_names_the_installed_alternatives(provider, fake, chat_path):
    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("hi", model="llama3")

    assert "llama3:8b" in caught.value.suggestions
    assert "llama3:8b" in caught.value.hint  # the installed name, in the hint the user reads
    assert fake.request_count(chat_path) == 0


def test_thinking_model_keeps_reasoning_out_of_content(provider, fake):
    fake.reply_with('{"personas": []}', model="qwen3:8b")

    response = provider.generate("hi", model="qwen3:8b")
    assert response.content == '{"personas": []}'
    assert response.raw_response["thinking"] == "Let me think about the interviews."

    response = provider.generate("hi", model="qwen3:8b", think=False)
    assert response.raw_response["thinking"] is None


def test_json_format_is_passed_and_answer_parses(provider, fake, api, chat_path):
    fake.reply_with('{"personas": [{"id": "p1"}]}')

    response = provider.generate("hi", format="json")

    assert json.loads(response.content)["personas"][0]["id"] == "p1"
    sent = fake.last_request(chat_path).json
    if api == "native":
        assert sent["format"] == "json"
    else:
        assert sent["response_format"] == {"type": "json_object"}


def test_stream_yields_pieces_as_they_arrive(provider, fake):
    fake.reply_with("alpha beta gamma")

    chat = provider.stream("hi")
    pieces = list(chat)

    assert len(pieces) >= 3
    assert "".join(pieces) == "alpha beta gamma"
    assert chat.response is not None and chat.response.finish_reason == "stop"


def test_32_threads_share_one_provider_without_pool_warnings(provider, fake, caplog):
    fake.reply_with(lambda request: request["messages"][-1]["content"].upper())
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = provider.generate(f"request {i}", max_tokens=20).content
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    with caplog.at_level(logging.WARNING, logger="urllib3"):
        threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert results == {i: f"REQUEST {i}" for i in range(32)}
    assert not [r for r in caplog.records if "pool" in r.getMessage().lower()]


def test_cold_load_longer_than_the_read_timeout_raises_timeout(fake, api):
    fake.latency(first_byte=1.0, times=1, path=CHAT_PATH[api])
    provider = OllamaProvider(
        base_url=fake.url, model="llama3.2:3b", timeout=0.3, api=api, environ={}
    )

    with pytest.raises(OllamaTimeoutError):
        provider.generate("hi")


def test_spelling_variants_reach_the_same_model(fake, api):
    fake.add_model(FakeModel("llama3:latest", context_length=8192))
    provider = OllamaProvider(base_url=fake.url, api=api, environ={})

    for name in ("llama3", "llama3:latest", "LLAMA3", "library/llama3"):
        assert provider.generate("hi", model=name, max_tokens=10).content


def test_is_configured_when_the_server_answers(provider):
    assert provider.is_configured()


# -- what only the /v1 mode does ----------------------------------------------------------


def openai_provider(fake: FakeOllama, **kwargs) -> OllamaProvider:
    return OllamaProvider(base_url=fake.url, api="openai", environ={}, **kwargs)


def test_ollama_v1_ignores_num_ctx_so_a_long_prompt_is_cut_and_the_answer_says_so(fake, caplog):
    # The double's default context is 4096, like a real server on a small GPU.
    provider = openai_provider(fake, model="llama3.2:3b")
    prompt = "participant,quote\n" + "P1,I lose track of which call a quote came from\n" * 600

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        response = provider.generate(prompt, max_tokens=100)

    assert "num_ctx" not in json.dumps(fake.last_request("/v1/chat/completions").json)
    # The server kept its default window (4096) of a longer prompt (runner NewSequence).
    assert response.input_tokens in (4095, 4096)
    assert response.input_tokens < count_prompt_tokens([{"content": prompt}])
    assert any("dropped part of the input" in w for w in response.raw_response["warnings"])
    assert any("api='native'" in r.getMessage() for r in caplog.records)


def test_pull_is_refused_in_openai_mode(fake):
    with pytest.raises(ConfigurationError, match="native Ollama API"):
        openai_provider(fake).backend.pull("phi4:14b")


def test_health_reports_an_openai_compatible_server(fake):
    provider = openai_provider(fake)

    report = provider.health()

    assert report["reachable"] is True
    assert report["version"] == "Ollama server (OpenAI-compatible API)"
    assert report["url"] == fake.url + "/v1"


def test_an_explicit_num_ctx_is_sent_natively_and_said_once_on_v1(provider, fake, api, caplog):
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        provider.generate("hi", max_tokens=20, num_ctx=8192)
        provider.generate("hi", max_tokens=20, num_ctx=8192)

    said = [r.getMessage() for r in caplog.records if "per-request context size" in r.getMessage()]
    sent = [r.json for r in fake.requests if r.path == CHAT_PATH[api]]
    if api == "native":
        assert [body["options"]["num_ctx"] for body in sent] == [8192, 8192]
        assert said == []
    else:
        assert not any("num_ctx" in json.dumps(body) for body in sent)
        assert len(said) == 1  # once per process, not once per call
        assert "Ollama server has no per-request context size: num_ctx=8192 was not sent" in said[0]


def test_raw_response_holds_what_the_server_sent_and_the_neutral_counts(provider, fake, api):
    fake.reply_with("word " * 40)

    response = provider.generate("hi", max_tokens=5)
    raw = response.raw_response

    assert (raw["input_tokens"], raw["output_tokens"]) == (
        response.input_tokens,
        response.output_tokens,
    )
    assert raw["done_reason"] == response.finish_reason == "length"
    if api == "native":  # Ollama's final line, as it sent it
        assert raw["prompt_eval_count"] == response.input_tokens
        assert raw["eval_count"] == response.output_tokens
        assert isinstance(raw["load_seconds"], float)
    else:  # the /v1 server's own fields, and no native ones made up for it
        assert raw["usage"]["prompt_tokens"] == response.input_tokens
        assert raw["usage"]["completion_tokens"] == response.output_tokens
        assert raw["finish_reason"] == "length"
        assert not {"prompt_eval_count", "eval_count", "load_duration"} & set(raw)
        assert raw["load_seconds"] is None  # a /v1 server states no load time
