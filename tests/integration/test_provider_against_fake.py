"""OllamaProvider against the loopback double over real sockets: context sizing, cold loads,
parallel servers, large answers, pulls. The behaviours shared with the /v1 mode (failure modes,
thinking, JSON, streaming, 32 threads) run for both APIs in test_both_apis.py."""

from __future__ import annotations

import threading
import time

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.backends.base import ChatRequest
from persona_ollama.errors import (
    ContextOverflowError,
    ModelNotPulledError,
    OllamaResponseError,
    OllamaTimeoutError,
)
from persona_ollama.testing import FakeModel, FakeOllama, Profile, count_prompt_tokens
from persona_ollama.testing.wire import LLAMA_SERVER, REFUSES_OVERFLOW

INTERVIEW_ROW = (
    'P07,Product designer,Mid-size SaaS,"I lose track of which quotes came from which call"\n'
)


def long_prompt(tokens: int) -> str:
    """A persona prompt of roughly ``tokens`` tokens (at ~4 characters per token)."""
    header = "participant,role,company,quote\n"
    rows = INTERVIEW_ROW * (tokens * 4 // len(INTERVIEW_ROW) + 1)
    return f"Create personas from this research data:\n{header}{rows}"


@pytest.fixture
def fake(server_version):
    models = [
        FakeModel("llama3.2:3b", context_length=131072),
        FakeModel("llama3:8b", context_length=8192, parameter_size="8.0B"),
        FakeModel("qwen2.5:7b", family="qwen2", context_length=32768, parameter_size="7.6B"),
        FakeModel(
            "qwen3:8b",
            family="qwen3",
            capabilities=["completion", "thinking"],
            thinking="Let me think about the interviews.",
        ),
        FakeModel("nomic-embed-text:latest", family="nomic-bert", capabilities=["embedding"]),
    ]
    with FakeOllama(models, version=server_version) as server:
        yield server


@pytest.fixture
def provider(fake):
    p = OllamaProvider(base_url=fake.url, model="llama3.2:3b", environ={})
    p.backend.transport.backoff = 0  # retries without waiting, so failure tests stay fast
    yield p
    p.close()


def test_15k_token_prompt_on_32k_model_is_sent_whole(provider, fake):
    prompt = long_prompt(15000)
    response = provider.generate(prompt, model="qwen2.5:7b", max_tokens=4096)
    sent = fake.last_request("/api/chat").json
    assert sent["messages"][-1]["content"] == prompt
    assert sent["options"]["num_ctx"] == 32768
    # The double counted every prompt token: nothing was truncated.
    assert response.input_tokens == count_prompt_tokens(sent["messages"])
    assert not response.raw_response["warnings"]


def test_15k_token_prompt_on_8k_model_raises_overflow_and_sends_nothing(provider, fake):
    with pytest.raises(ContextOverflowError) as caught:
        provider.generate(long_prompt(15000), model="llama3:8b", max_tokens=4096)
    assert fake.request_count("/api/chat") == 0
    assert "llama3.2:3b" in caught.value.hint  # installed with a longer context


def test_server_refusal_of_an_over_long_prompt_maps_to_context_overflow(provider, fake):
    request = ChatRequest(
        model="llama3.2:3b",
        messages=({"role": "user", "content": "x " * 6000},),
        max_tokens=64,
        window=1024,
    )
    if not Profile(fake.version).has(REFUSES_OVERFLOW):
        # Before 0.12.6 truncate is ignored: the runner keeps num_ctx tokens and answers 200.
        *_, done = provider.backend.chat(request)
        assert done.input_tokens == 1024
        return
    with pytest.raises(ContextOverflowError) as caught:
        list(provider.backend.chat(request))
    assert caught.value.status_code == 400
    assert not caught.value.server_text.startswith("{")  # readable, not llama-server's JSON
    if Profile(fake.version).has(LLAMA_SERVER):  # llama-server's error names both sizes
        assert caught.value.context_length == 1024
        assert caught.value.prompt_tokens == count_prompt_tokens(list(request.messages))


def test_missing_model_names_pull_command_and_installed_alternatives(provider, fake):
    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("hi", model="llama3")
    assert "ollama pull llama3" in str(caught.value)
    assert "llama3:8b" in caught.value.suggestions


def test_llama3_latest_spelling_variants_reach_the_same_model(fake):
    fake.add_model(FakeModel("llama3:latest", context_length=8192))
    provider = OllamaProvider(base_url=fake.url, environ={})
    for name in ("llama3", "llama3:latest", "LLAMA3", "library/llama3"):
        assert provider.generate("hi", model=name, max_tokens=10).content
    assert provider.validate_model("llama3")


def test_cold_load_within_the_read_timeout_succeeds(fake):
    fake.latency(first_byte=0.6, times=2)
    provider = OllamaProvider(base_url=fake.url, model="llama3.2:3b", timeout=5, environ={})
    assert provider.generate("hi").content


def test_slow_tokens_do_not_trip_the_read_timeout(fake):
    fake.reply_with("a b c d e f")
    fake.latency(between_chunks=0.2, path="/api/chat")
    provider = OllamaProvider(base_url=fake.url, model="llama3.2:3b", timeout=0.5, environ={})
    assert provider.generate("hi").content == "a b c d e f"


def test_32_concurrent_requests_overlap_on_a_parallel_server():
    with FakeOllama(["llama3.2:3b"], parallel=32) as server:
        provider = OllamaProvider(base_url=server.url, model="llama3.2:3b", environ={})
        provider.model_info("llama3.2:3b")
        server.latency(first_byte=0.3, path="/api/chat")
        started = time.monotonic()
        threads = [threading.Thread(target=provider.generate, args=("hi",)) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        elapsed = time.monotonic() - started
    # Serially this would take 32 x 0.3 s; overlapping it takes little more than one.
    assert elapsed < 32 * 0.3 / 4


def test_large_answer_arrives_whole(provider, fake):
    answer = " ".join(f"w{i}" for i in range(20000))
    fake.reply_with(answer)
    response = provider.generate("hi", max_tokens=60000)
    assert response.content == answer
    assert response.finish_reason == "stop"


def test_health_and_available_models(provider, fake):
    health = provider.health()
    assert health["reachable"] is True
    assert health["version"] == fake.version
    assert "nomic-embed-text:latest" not in provider.available_models
    assert "qwen2.5:7b" in provider.list_available_models()
    assert provider.is_configured()


def test_pull_streams_progress_and_installs_the_model(provider, fake):
    fake.pullable("phi4:14b")
    statuses = [progress.status for progress in provider.backend.pull("phi4:14b")]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    provider.refresh()
    assert "phi4:14b" in provider.list_available_models()


def test_pull_of_an_unknown_model_raises_with_the_servers_reason(provider, fake):
    with pytest.raises(OllamaResponseError) as caught:
        list(provider.backend.pull("no-such-model:1b"))
    assert "file does not exist" in caught.value.server_text


def test_keep_alive_goes_top_level_and_loads_with_the_planned_window(provider, fake):
    provider.generate("hi", keep_alive="10m")
    sent = fake.last_request("/api/chat").json
    assert sent["keep_alive"] == "10m"
    assert fake.loaded_models["llama3.2:3b"] == sent["options"]["num_ctx"]


def test_local_only_refuses_a_cloud_model_and_the_server_sees_no_request(fake):
    from persona_ollama.errors import LocalOnlyViolationError

    fake.add_model(FakeModel("gpt-oss:120b-cloud"))
    provider = OllamaProvider(base_url=fake.url, local_only=True, environ={})
    with pytest.raises(LocalOnlyViolationError):
        provider.generate("confidential interview notes", model="gpt-oss:120b-cloud")
    assert fake.request_count() == 0


def test_a_stream_closed_early_stops_reading_and_the_provider_carries_on(provider, fake):
    fake.reply_with(" ".join(f"w{i}" for i in range(200)))
    with provider.stream("hi", max_tokens=500) as chat:
        first = next(chat)
    assert first.strip() == "w0"
    assert chat.response is None  # never passed off as complete
    with pytest.raises(StopIteration):
        next(chat)
    fake.reply_with("again")
    assert provider.generate("hi").content == "again"


def test_a_stall_in_the_middle_of_the_answer_raises_timeout(fake):
    fake.reply_with("a b c d")
    fake.latency(between_chunks=1.0, path="/api/chat")
    provider = OllamaProvider(base_url=fake.url, model="llama3.2:3b", timeout=0.3, environ={})
    provider.model_info("llama3.2:3b")
    with pytest.raises(OllamaTimeoutError, match=r"sent nothing for 0\.3 s"):
        provider.generate("hi")
