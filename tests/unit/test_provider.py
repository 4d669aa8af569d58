"""OllamaProvider against a mocked HTTP layer: what it sends, what it returns, how it fails."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import responses
from responses import matchers
from shared_helpers import free_url

from persona_ollama import OllamaProvider
from persona_ollama._persona import LLMResponse, ModelNotFoundError, ProviderError
from persona_ollama.choosing.selection import FALLBACK_MODEL
from persona_ollama.errors import (
    ConfigurationError,
    ContextOverflowError,
    ModelNotPulledError,
    OllamaNotRunningError,
)
from persona_ollama.testing import FakeOllama

BASE = "http://127.0.0.1:11434"


def show_body(
    context_length: int = 131072, arch: str = "llama", caps=("completion",), parameters: str = ""
) -> dict:
    return {
        "details": {"family": arch, "parameter_size": "8.0B", "quantization_level": "Q4_K_M"},
        "model_info": {"general.architecture": arch, f"{arch}.context_length": context_length},
        "capabilities": list(caps),
        "parameters": parameters,
    }


def tags_entry(name: str, context_length: int | None = None, caps=("completion",)) -> dict:
    details = {
        "family": "llama",
        "parameter_size": "8.0B",
        "quantization_level": "Q4_K_M",
        "format": "gguf",
        "parent_model": "",
        "families": ["llama"],
    }
    if context_length:
        details["context_length"] = context_length
    return {
        "name": name,
        "model": name,
        "size": 4_000_000_000,
        "digest": "a" * 64,
        "details": details,
        "capabilities": list(caps),
    }


def final(**extra) -> dict:
    return {
        "model": "llama3:8b",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 20,
        "eval_count": 3,
        "eval_duration": 1_500_000_000,
        "prompt_eval_duration": 500_000_000,
        "load_duration": 2_000_000_000,
        "total_duration": 4_000_000_000,
        **extra,
    }


def stream_of(*pieces: str, thinking: tuple[str, ...] = (), **final_extra) -> str:
    lines = [
        {
            "model": "llama3:8b",
            "message": {"role": "assistant", "content": "", "thinking": t},
            "done": False,
        }
        for t in thinking
    ]
    lines += [
        {"model": "llama3:8b", "message": {"role": "assistant", "content": p}, "done": False}
        for p in pieces
    ]
    lines.append(final(**final_extra))
    return "".join(json.dumps(line) + "\n" for line in lines)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def provider():
    p = OllamaProvider(base_url=BASE, model="llama3:8b", environ={}, retries=0)
    yield p
    p.close()


def sent_chat(mocked) -> dict:
    bodies = [
        json.loads(c.request.body) for c in mocked.calls if c.request.url.endswith("/api/chat")
    ]
    assert len(bodies) == 1
    return bodies[0]


def test_generate_returns_content_tokens_and_finish_reason(provider, mocked):
    mocked.post(f"{BASE}/api/show", json=show_body())
    mocked.post(f"{BASE}/api/chat", body=stream_of("Hel", "lo"))
    response = provider.generate("Say hello")
    assert isinstance(response, LLMResponse)
    assert response.content == "Hello"
    assert response.model == "llama3:8b"
    assert (response.input_tokens, response.output_tokens) == (20, 3)
    assert response.finish_reason == "stop"
    assert response.raw_response["tokens_per_second"] == 2.0
    assert response.raw_response["load_seconds"] == 2.0


def test_generate_sends_a_planned_window_and_never_lets_the_server_truncate(provider, mocked):
    mocked.post(f"{BASE}/api/show", json=show_body())
    mocked.post(f"{BASE}/api/chat", body=stream_of("ok"))
    provider.generate("hi", max_tokens=500, temperature=0.2)
    body = sent_chat(mocked)
    assert body["model"] == "llama3:8b"
    assert body["stream"] is True
    assert body["truncate"] is False
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["options"] == {"temperature": 0.2, "num_ctx": 4096, "num_predict": 500}


def test_system_keep_alive_format_think_and_options_go_where_the_server_reads_them(
    provider, mocked
):
    mocked.post(f"{BASE}/api/show", json=show_body(caps=("completion", "thinking")))
    mocked.post(f"{BASE}/api/chat", body=stream_of("{}"))
    provider.generate(
        "hi",
        system_prompt="be terse",
        format="json",
        think=False,
        keep_alive="10m",
        seed=42,
        stop=["\n\n"],
        options={"top_p": 0.5},
    )
    body = sent_chat(mocked)
    assert body["messages"][0] == {"role": "system", "content": "be terse"}
    assert body["keep_alive"] == "10m"
    assert "keep_alive" not in body["options"]
    assert body["format"] == "json"
    assert body["think"] is False
    assert body["options"]["seed"] == 42
    assert body["options"]["stop"] == ["\n\n"]
    assert body["options"]["top_p"] == 0.5


def test_finish_reason_is_the_servers_done_reason(provider, mocked):
    mocked.post(f"{BASE}/api/show", json=show_body())
    mocked.post(f"{BASE}/api/chat", body=stream_of("cut", done_reason="length"))
    assert provider.generate("hi").finish_reason == "length"


def test_thinking_is_kept_out_of_content_from_field_and_from_inline_tags(provider, mocked):
    mocked.post(f"{BASE}/api/show", json=show_body(caps=("completion", "thinking")))
    mocked.post(f"{BASE}/api/chat", body=stream_of('{"a"', ": 1}", thinking=("step 1. ",)))
    response = provider.generate("hi")
    assert response.content == '{"a": 1}'
    assert response.raw_response["thinking"] == "step 1. "

    mocked.post(f"{BASE}/api/chat", body=stream_of("<think>hm", "m</think>", "\n[1]"))
    response = provider.generate("hi", think=True)
    assert response.content == "[1]"
    assert response.raw_response["thinking"] == "hmm"


def test_a_thinking_model_gets_extra_answer_budget(provider, mocked):
    mocked.post(f"{BASE}/api/show", json=show_body(caps=("completion", "thinking")))
    mocked.post(f"{BASE}/api/chat", body=stream_of("x"))
    provider.generate("hi", max_tokens=1000)
    assert sent_chat(mocked)["options"]["num_predict"] == 2000


def test_long_prompt_on_32k_model_is_sent_whole_with_a_sufficient_window(provider, mocked):
    prompt = "participant,quote\n" + "P1,I lose track of interviews in spreadsheets\n" * 950
    mocked.post(f"{BASE}/api/show", json=show_body(context_length=32768))
    mocked.post(f"{BASE}/api/chat", body=stream_of("ok"))
    provider.generate(prompt, max_tokens=4096)
    body = sent_chat(mocked)
    assert body["messages"][-1]["content"] == prompt
    assert body["options"]["num_ctx"] == 32768


def test_long_prompt_on_8k_model_raises_overflow_and_sends_nothing(provider, mocked):
    prompt = "participant,quote\n" + "P1,I lose track of interviews in spreadsheets\n" * 950
    mocked.post(f"{BASE}/api/show", json=show_body(context_length=8192))
    mocked.get(
        f"{BASE}/api/tags",
        json={"models": [tags_entry("llama3:8b", 8192), tags_entry("qwen2.5:7b", 32768)]},
    )
    chat = mocked.post(f"{BASE}/api/chat", body=stream_of("never"))
    with pytest.raises(ContextOverflowError) as caught:
        provider.generate(prompt, max_tokens=4096)
    assert chat.call_count == 0
    assert "qwen2.5:7b" in caught.value.hint
    assert caught.value.context_length == 8192


def test_missing_model_raises_model_not_pulled_with_the_closest_installed_tags(mocked):
    provider = OllamaProvider(base_url=BASE, environ={})
    mocked.post(f"{BASE}/api/show", status=404, json={"error": "model 'llama3:latest' not found"})
    mocked.get(
        f"{BASE}/api/tags", json={"models": [tags_entry("llama3:8b"), tags_entry("phi4:14b")]}
    )
    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("hi", model="llama3")
    error = caught.value
    assert isinstance(error, ModelNotFoundError)
    assert isinstance(error, ProviderError)
    assert error.suggestions == ["llama3:8b"]
    assert "persona-ollama pull llama3" in str(error)


def test_model_facts_are_cached_so_generate_makes_one_round_trip(provider, mocked):
    show = mocked.post(f"{BASE}/api/show", json=show_body())
    tags = mocked.get(f"{BASE}/api/tags", json={"models": []})
    chat = mocked.post(f"{BASE}/api/chat", body=stream_of("a"))
    for _ in range(3):
        provider.generate("hi")
    assert (show.call_count, tags.call_count, chat.call_count) == (1, 0, 3)


def test_stream_yields_pieces_and_then_holds_the_response(provider, mocked):
    mocked.post(f"{BASE}/api/show", json=show_body())
    mocked.post(f"{BASE}/api/chat", body=stream_of("a", "b", "c"))
    chat = provider.stream("hi")
    assert list(chat) == ["a", "b", "c"]
    assert chat.response is not None
    assert chat.response.content == "abc"


def test_on_token_receives_each_piece(provider, mocked):
    mocked.post(f"{BASE}/api/show", json=show_body())
    mocked.post(f"{BASE}/api/chat", body=stream_of("a", "b"))
    seen: list[str] = []
    provider.generate("hi", on_token=seen.append)
    assert seen == ["a", "b"]


def test_generate_async_has_the_same_contract(provider, mocked):
    mocked.post(f"{BASE}/api/show", json=show_body())
    mocked.post(f"{BASE}/api/chat", body=stream_of("async"))
    response = asyncio.run(provider.generate_async("hi", max_tokens=10))
    assert response.content == "async"


def test_unknown_keyword_is_ignored_with_one_warning(provider, mocked, caplog):
    mocked.post(f"{BASE}/api/show", json=show_body())
    mocked.post(f"{BASE}/api/chat", body=stream_of("a"))
    mocked.post(f"{BASE}/api/chat", body=stream_of("a"))
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        provider.generate("hi", response_format="x")
        provider.generate("hi", response_format="x")
    assert [r.message for r in caplog.records].count(
        "OllamaProvider ignores the argument 'response_format'."
    ) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": b"bytes"}, "prompt must be text"),
        ({"prompt": "x", "max_tokens": "9"}, "integer"),
        ({"prompt": "x", "temperature": "hot"}, "number"),
        ({"prompt": "x", "model": "a b"}, "valid"),
        ({"prompt": "x", "keep_alive": "10"}, "keep_alive"),
        ({"prompt": "x", "top_p": "hi"}, "top_p"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(provider, mocked, kwargs, message):
    mocked.post(f"{BASE}/api/show", json=show_body())
    chat = mocked.post(f"{BASE}/api/chat", body=stream_of("a"))
    with pytest.raises(ConfigurationError, match=message):
        provider.generate(**kwargs)
    assert chat.call_count == 0


def test_bad_arguments_are_refused_before_the_default_model_is_chosen(mocked):
    # With no model named, choosing one asks the server for its models and probes the
    # hardware: a call that is refused anyway must not wait for (or fail on) any of that.
    provider = OllamaProvider(base_url=BASE, environ={"PERSONA_OLLAMA_MEMORY_GB": "lots"})
    tags = mocked.get(f"{BASE}/api/tags", json={"models": []})
    with pytest.raises(ConfigurationError, match="prompt must be text"):
        provider.generate(b"bytes")
    assert tags.call_count == 0


def test_a_close_while_the_default_model_is_chosen_does_not_break_the_call(mocked, monkeypatch):
    # close() from another thread (a host shutting a batch down) while this call lists the
    # models: the call goes on with a reopened connection, as every other use of the provider.
    provider = OllamaProvider(base_url=BASE, environ={}, retries=0)
    choose = OllamaProvider.selection

    def closing_meanwhile(self, **deadline):
        choice = choose(self, **deadline)
        self.close()  # after the listing: nothing of this provider reopens it before the chat
        return choice

    monkeypatch.setattr(OllamaProvider, "selection", closing_meanwhile)
    mocked.get(f"{BASE}/api/tags", json={"models": [tags_entry("llama3:8b", 8192)]})
    mocked.post(f"{BASE}/api/show", json=show_body(context_length=8192))
    mocked.post(f"{BASE}/api/chat", body=stream_of("still here"))

    assert provider.generate("hi", max_tokens=16).content == "still here"


def test_constructor_accepts_persona_factory_call_and_refuses_unknown_keywords():
    assert OllamaProvider(api_key=None, environ={}).name == "ollama"
    with pytest.raises(ConfigurationError, match="unexpected keyword") as caught:
        OllamaProvider(temprature=0.1, environ={})
    assert "temperature" in caught.value.hint


def test_default_options_and_api_key_apply_to_every_request(mocked):
    provider = OllamaProvider(base_url=BASE, model="m", api_key="tok", environ={}, top_k=20)
    mocked.get(f"{BASE}/api/ps", json={"models": []})  # else 3.5 s of retry backoff
    mocked.post(f"{BASE}/api/show", json=show_body())
    chat = mocked.post(f"{BASE}/api/chat", body=stream_of("a"))
    provider.generate("hi")
    assert chat.calls[0].request.headers["Authorization"] == "Bearer tok"
    assert json.loads(chat.calls[0].request.body)["options"]["top_k"] == 20


def test_environment_model_and_timeout_are_used_when_no_argument_is_given():
    provider = OllamaProvider(
        environ={"PERSONA_OLLAMA_MODEL": "qwen2.5:7b", "PERSONA_OLLAMA_TIMEOUT": "900"}
    )
    assert provider.default_model == "qwen2.5:7b"
    assert provider.timeout == 900.0
    assert (
        OllamaProvider(model="phi4:14b", environ={"PERSONA_OLLAMA_MODEL": "x"}).default_model
        == "phi4:14b"
    )


def test_bad_timeout_setting_names_the_variable():
    with pytest.raises(ConfigurationError, match="PERSONA_OLLAMA_TIMEOUT"):
        OllamaProvider(environ={"PERSONA_OLLAMA_TIMEOUT": "soon"})


def test_available_models_lists_chat_models_and_validate_model_matches_like_the_server(mocked):
    provider = OllamaProvider(base_url=BASE, environ={})
    mocked.get(
        f"{BASE}/api/tags",
        json={
            "models": [
                tags_entry("llama3:latest"),
                tags_entry("nomic-embed-text:latest", caps=("embedding",)),
            ]
        },
    )
    assert provider.available_models == ["llama3:latest"]
    assert provider.validate_model("llama3")
    assert provider.validate_model("LLAMA3:latest")
    assert not provider.validate_model("nomic-embed-text")


def test_model_info_reports_what_the_server_knows(provider, mocked):
    mocked.post(
        f"{BASE}/api/show",
        json=show_body(
            context_length=32768, arch="qwen2", parameters="num_ctx                        8192"
        ),
    )
    info = provider.model_info("qwen2.5:7b")
    assert (info.context_length, info.family, info.modelfile_num_ctx) == (32768, "qwen2", 8192)
    assert info.can_chat and not info.thinks


def test_model_info_names_the_model_as_asked_whether_listed_or_described(mocked):
    # Ollama 0.30+ lists enough to skip /api/show: the answer must not change with that
    # (main named the facts after the name asked for on both paths).
    provider = OllamaProvider(base_url=BASE, environ={})
    mocked.get(f"{BASE}/api/tags", json={"models": [tags_entry("llama3.2:latest", 131072)]})
    provider.installed_models()

    assert provider.model_info("llama3.2").name == "llama3.2"


def test_with_nothing_listening_is_configured_stays_true_and_generate_says_what_to_do():
    """is_configured() means a usable address, not a server that answers now: a host that
    stops on False prints its own advice ("set OLLAMA_API_KEY"), which is wrong here."""
    url = free_url()
    provider = OllamaProvider(base_url=url, model="llama3.2:3b", environ={})
    assert provider.is_configured() is True
    with pytest.raises(OllamaNotRunningError) as caught:
        provider.generate("hi")
    assert url in str(caught.value)
    assert "ollama serve" in str(caught.value)
    assert provider.available_models == []
    with pytest.raises(OllamaNotRunningError):
        provider.list_available_models()
    health = provider.health()
    assert health["reachable"] is False
    assert health["url"] == url
    assert "ollama serve" in health["hint"]


def test_health_reports_version_latency_and_model_count(mocked):
    provider = OllamaProvider(base_url=BASE, environ={})
    mocked.get(f"{BASE}/api/version", json={"version": "0.33.0"})
    mocked.get(f"{BASE}/api/tags", json={"models": [tags_entry("llama3:8b")]})
    health = provider.health()
    assert health["reachable"] is True
    assert health["version"] == "0.33.0"
    assert health["model_count"] == 1
    assert health["latency_ms"] >= 0


def test_is_configured_asks_the_server_nothing(provider, mocked):
    assert provider.is_configured() is True
    assert len(mocked.calls) == 0  # responses would refuse any request it was not told of


def test_server_side_truncation_is_reported_in_a_warning(provider, mocked, caplog):
    prompt = "x" * 30000
    mocked.post(f"{BASE}/api/show", json=show_body(context_length=16384))
    mocked.post(f"{BASE}/api/chat", body=stream_of("ok", prompt_eval_count=2050))
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        response = provider.generate(prompt, max_tokens=100, num_ctx=16384)
    assert any("dropped part of the input" in w for w in response.raw_response["warnings"])
    assert any("dropped part of the input" in r.message for r in caplog.records)


def test_capped_answer_budget_is_warned_about(provider, mocked, caplog):
    mocked.post(f"{BASE}/api/show", json=show_body(context_length=8192))
    mocked.post(f"{BASE}/api/chat", body=stream_of("ok"))
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        provider.generate("y" * 20000, max_tokens=4096)
    body = sent_chat(mocked)
    assert body["options"]["num_ctx"] == 8192
    assert body["options"]["num_predict"] < 4096
    assert any("capped" in r.message for r in caplog.records)


def test_plugin_metadata_for_personas_registry():
    assert OllamaProvider.__plugin_description__
    assert OllamaProvider.__plugin_version__
    assert OllamaProvider.__plugin_author__


def test_refresh_forgets_cached_facts(provider, mocked):
    show = mocked.post(f"{BASE}/api/show", json=show_body())
    provider.model_info("llama3:8b")
    provider.refresh()
    provider.model_info("llama3:8b")
    assert show.call_count == 2


def test_request_matching_helper_sanity(mocked):
    # keeps `matchers` import honest: the show request carries the model name
    mocked.post(
        f"{BASE}/api/show",
        json=show_body(),
        match=[matchers.json_params_matcher({"model": "qwen2.5:7b"})],
    )
    OllamaProvider(base_url=BASE, environ={}).model_info("qwen2.5:7b")


@pytest.mark.parametrize(
    ("name", "capabilities"),
    [
        ("m:1b", ("completion",)),
        ("e:1b", ("embedding",)),
        ("e:1b", ("embedding", "vision")),
        ("nomic-embed-text:latest", ()),
        ("llama3:8b", ()),
        ("v:1b", ("vision",)),
    ],
)
def test_the_listing_and_the_description_agree_on_what_can_chat(name, capabilities):
    from persona_ollama.backends.ollama import described_model, listed_model

    listed = listed_model({"name": name, "capabilities": list(capabilities)})
    described = described_model(name, {"capabilities": list(capabilities)})
    assert described.can_chat is listed.can_chat
    assert listed.can_chat is (name in ("m:1b", "llama3:8b", "v:1b"))


@pytest.mark.parametrize("server", ["down", "empty"])
def test_default_model_warns_about_fit_only_when_the_server_listed_its_models(server, caplog):
    """With the server down, the fallback model comes without a warning about fit: the host
    then prints generate()'s "cannot reach the server" first, not a misleading line."""
    with FakeOllama([]) as fake:
        url = fake.url
        tiny = {"PERSONA_OLLAMA_MEMORY_GB": "0.1"}  # no catalogue model fits either
        provider = OllamaProvider(base_url=url, environ=tiny, retries=0)
        if server == "empty":
            with caplog.at_level(logging.WARNING, logger="persona_ollama"):
                assert provider.default_model == FALLBACK_MODEL
    if server == "down":
        with caplog.at_level(logging.WARNING, logger="persona_ollama"):
            assert provider.default_model == FALLBACK_MODEL

    warned = [r.message for r in caplog.records if "No installed model fits" in r.message]
    assert bool(warned) is (server == "empty")
