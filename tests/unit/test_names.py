"""Model names compared the way the server compares them."""

from __future__ import annotations

import pytest

from persona_ollama.backends.ollama_rules import split
from persona_ollama.errors import ConfigurationError
from persona_ollama.names import canonical, check_name, is_cloud


@pytest.mark.parametrize(
    "alias",
    [
        "llama3",
        "llama3:latest",
        "library/llama3",
        "registry.ollama.ai/library/llama3:latest",
        "LLAMA3",
        " llama3 ",
    ],
)
def test_default_registry_namespace_and_tag_name_the_same_model(alias):
    assert canonical(alias) == "llama3:latest"
    assert canonical(alias) == canonical("llama3")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hf.co/org/repo:Q4_K_M", "hf.co/org/repo:q4_k_m"),
        ("user/m", "user/m:latest"),
        ("myreg:5000/ns/m", "myreg:5000/ns/m:latest"),
        ("llama3.2:3b", "llama3.2:3b"),
    ],
)
def test_canonical_keeps_non_default_parts(name, expected):
    assert canonical(name) == expected


def test_split_fills_defaults():
    assert split("qwen2.5") == ("registry.ollama.ai", "library", "qwen2.5", "latest")


@pytest.mark.parametrize(
    ("name", "cloud"),
    [
        ("gpt-oss:120b-cloud", True),
        ("m:cloud", True),
        ("deepseek-v3.1:671b-cloud", True),
        ("llama3:8b", False),
        ("cloudy:7b", False),
    ],
)
def test_cloud_suffixes_are_recognised(name, cloud):
    assert is_cloud(name) is cloud


@pytest.mark.parametrize("bad", ["", "  ", "a b", "llama3:", ":tag", "-x", None, 3, "x" * 81])
def test_invalid_names_are_refused_before_sending(bad):
    with pytest.raises(ConfigurationError):
        check_name(bad)


@pytest.mark.parametrize(
    "good", ["llama3.2:3b", "hf.co/bartowski/Llama-3.2-3B-GGUF:Q4_K_M", "user/model", "_x"]
)
def test_valid_names_pass(good):
    assert check_name(good) == good


@pytest.mark.parametrize(
    ("api", "hint"),
    [
        ("native", "e.g. model='llama3.2:3b'; `persona-ollama models` lists installed models."),
        ("openai", "`persona-ollama models` lists the server's models by name."),
    ],
)
def test_an_empty_name_is_refused_with_an_example_only_from_a_backend_that_has_one(api, hint):
    # A /v1 server's ids are whatever it was started with (vLLM: Qwen/Qwen2.5-7B-Instruct):
    # an Ollama tag is no example there. Ollama users read the hint they always did.
    from persona_ollama import OllamaProvider

    for bad in ("", "   "):
        with pytest.raises(ConfigurationError) as caught:
            OllamaProvider(base_url="http://127.0.0.1:9", api=api, model=bad, environ={})
        assert caught.value.hint == hint
        assert (
            str(caught.value)
            == f"A model name must be a non-empty string, got {bad!r}.\nHint: {hint}"
        )
