"""The kernel is driven by what a backend declares (backends/rules.py): a server with other
address variables, another port and another name in messages gets its own parsing and words,
and the Ollama backend's declaration reproduces Ollama's rules."""

from __future__ import annotations

import pytest

from persona_ollama import names
from persona_ollama.backends.registry import BACKENDS, declared
from persona_ollama.backends.rules import AddressRules, AnyName, ContextWords
from persona_ollama.context import overflow, truncation_warning
from persona_ollama.endpoint import parse_host, resolve_endpoint
from persona_ollama.errors import ConfigurationError
from persona_ollama.options import COMMON_OPTIONS, OPTION_TYPES, validate_options
from persona_ollama.settings import APIS, BASE_URL_VAR, DEFAULT_API, HOST_VAR, check_api

ACME = AddressRules(
    label="Acme",
    variables=("ACME_URL", "ACME_HOST"),
    default_port=8080,
    special={"acme.cloud": "https://api.acme.example:443"},
    remote_example="https://gpu-box.example/acme",
)


def test_every_api_is_registered_with_a_declaration():
    assert set(BACKENDS) == set(APIS)
    for api in APIS:
        assert declared(api).address.variables
        assert declared(api).speaks


def test_the_default_backends_variables_stay_importable_from_settings():
    assert (BASE_URL_VAR, HOST_VAR) == ("OLLAMA_BASE_URL", "OLLAMA_HOST")
    assert declared(DEFAULT_API).address.variables == (BASE_URL_VAR, HOST_VAR)
    # The /v1 backend reads the address as the native one does (api="openai" at the same server).
    assert declared("openai").address == declared("native").address


def test_variables_win_in_their_declared_order_and_the_default_uses_the_declared_port():
    both = {"ACME_URL": "http://first:1", "ACME_HOST": "second:2", "OLLAMA_HOST": "x:3"}
    assert resolve_endpoint(None, both, rules=ACME).base_url == "http://first:1"
    assert resolve_endpoint(None, {"ACME_HOST": "second"}, rules=ACME).base_url == (
        "http://second:8080"
    )
    endpoint = resolve_endpoint(None, {"OLLAMA_HOST": "ignored:3"}, rules=ACME)
    assert (endpoint.base_url, endpoint.source) == ("http://127.0.0.1:8080", "default")


def test_special_spellings_and_scheme_ports_follow_the_declaration():
    assert parse_host("acme.cloud", rules=ACME).base_url == "https://api.acme.example:443"
    assert parse_host("ollama.com", rules=ACME).base_url == "http://ollama.com:8080"
    # Ollama keeps its default port for a scheme not written in lower case; a neutral server
    # uses the scheme's port.
    assert parse_host("HTTP://box", rules=ACME).base_url == "http://box:80"
    assert parse_host("HTTP://box").base_url == "http://box:11434"


@pytest.mark.parametrize(
    ("source", "message", "hint"),
    [
        (
            "ACME_URL",
            "ACME_URL='htp://x' is not a valid Acme address: unsupported scheme 'htp' (only http "
            "and https are supported). Expected host, host:port or http(s)://host:port/path, "
            "e.g. ACME_HOST=127.0.0.1:8080 or ACME_URL=http://gpu-box:8080.",
            "Correct ACME_URL in your environment, or unset it to use ACME_HOST or the default "
            "http://127.0.0.1:8080.",
        ),
        (
            "argument",
            "base_url='htp://x' is not a valid Acme address: unsupported scheme 'htp' (only http "
            "and https are supported). Expected host, host:port or http(s)://host:port/path, "
            "e.g. base_url='http://127.0.0.1:8080' or base_url='https://gpu-box.example/acme'.",
            "Correct the base_url argument, or leave it out to use ACME_URL, ACME_HOST or the "
            "default http://127.0.0.1:8080.",
        ),
    ],
)
def test_messages_name_the_declared_server_variables_and_port(source, message, hint):
    with pytest.raises(ConfigurationError) as caught:
        parse_host("htp://x", source=source, rules=ACME)
    assert (caught.value.message, caught.value.hint) == (message, hint)
    assert "Ollama" not in str(caught.value) and "11434" not in str(caught.value)


def test_a_bare_ipv6_address_is_explained_with_the_declared_port():
    with pytest.raises(ConfigurationError, match=r"e\.g\. \[fe80::1\]:8080"):
        parse_host("fe80::zz:1", rules=ACME)


def test_the_api_hint_lists_what_each_backend_speaks():
    with pytest.raises(ConfigurationError) as caught:
        check_api("grpc", "api")
    assert caught.value.hint == (
        "native (the default) talks to Ollama's /api/chat; openai talks to the "
        "OpenAI-compatible /v1/chat/completions of vLLM, llama.cpp, LM Studio, LiteLLM or "
        "Ollama (see docs/scaling.md)."
    )


def test_neutral_name_rules_take_any_id_and_compare_it_exactly():
    rules = AnyName()
    for model_id in ("/models/x.gguf", "Qwen/Qwen2.5-0.5B-Instruct", "my model"):
        assert names.check_name(f" {model_id} ", rules) == model_id
        assert names.canonical(model_id, rules) == model_id
        assert not names.is_cloud(model_id, rules)
    with pytest.raises(ConfigurationError, match="not a valid Ollama model name"):
        names.check_name("/models/x.gguf")  # the default backend's grammar


def test_options_are_the_common_ones_plus_the_backends_own():
    native = declared("native").options
    assert "num_ctx" in native and "num_ctx" not in COMMON_OPTIONS
    assert {**COMMON_OPTIONS, **native} == OPTION_TYPES
    assert not declared("openai").options
    # A server that does not declare num_ctx: its value is passed on unchecked, with a warning.
    assert validate_options({"num_ctx": "8k"}, COMMON_OPTIONS) == {"num_ctx": "8k"}
    with pytest.raises(ConfigurationError, match="must be an integer"):
        validate_options({"num_ctx": "8k"})


def test_the_backends_words_for_a_cut_prompt_reach_the_messages():
    words = ContextWords(would_cut="Acme would have cut it", fills_window="Acme cut it.")
    error = overflow("m", prompt_tokens=9000, window=4096, limit_reason="its context", words=words)
    assert error.message.endswith("Nothing was sent: Acme would have cut it.")
    warning = truncation_warning(3900, 4096, 4096, words=words)
    assert warning is not None and warning.endswith("our estimate was 3900): Acme cut it.")
    neutral = truncation_warning(3900, 4096, 4096, words=ContextWords())
    assert neutral is not None and "Ollama" not in neutral
