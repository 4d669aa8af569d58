"""Live tests against a real Ollama server (``pytest -m live`` or ``tox -e live``).

They switch themselves on when a server answers at OLLAMA_BASE_URL / OLLAMA_HOST (default
http://127.0.0.1:11434) and skip with the reason otherwise. They use the smallest installed
chat model, so a laptop with `ollama pull llama3.2:1b` (or any small model) is enough.
"""

from __future__ import annotations

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.errors import ModelNotPulledError, OllamaError

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def provider() -> OllamaProvider:
    provider = OllamaProvider(timeout=600)
    health = provider.health()
    if not health["reachable"]:
        pytest.skip(f"no Ollama server answers at {health['url']}: {health['error']}")
    if is_the_double(health["url"]):
        pytest.skip(f"{health['url']} is persona_ollama.testing's double, not a real Ollama")
    return provider


def is_the_double(url: str) -> bool:
    """The double names itself in a response header that the real server never sends."""
    import requests

    from persona_ollama.testing.ollama_server import DOUBLE_HEADER

    return DOUBLE_HEADER in requests.get(url.rstrip("/") + "/api/version", timeout=5).headers


def test_the_double_is_recognised(fake_ollama):
    """Not live itself: the check above must hold, or the live tests would pass against it."""
    assert is_the_double(fake_ollama.url)


@pytest.fixture(scope="module")
def small_model(provider: OllamaProvider) -> str:
    chat = [m for m in provider.installed_models() if m.can_chat]
    if not chat:
        pytest.skip("the server has no chat model installed: `ollama pull llama3.2:1b`")
    return min(chat, key=lambda m: (m.size_bytes or 0, m.name)).name


def test_generate_answers_with_token_counts_and_a_finish_reason(provider, small_model):
    response = provider.generate(
        "Reply with the single word: ready",
        model=small_model,
        max_tokens=64,
        temperature=0,
        think=False,
    )
    assert response.content.strip()
    assert response.input_tokens > 0
    assert response.output_tokens > 0
    assert response.finish_reason in ("stop", "length")


def test_streaming_yields_several_pieces(provider, small_model):
    chat = provider.stream(
        "Count from 1 to 10, separated by spaces.",
        small_model,
        max_tokens=64,
        temperature=0,
        think=False,
    )
    pieces = list(chat)
    assert len(pieces) > 1
    assert chat.response is not None
    assert chat.response.content == "".join(pieces)


def test_installed_models_are_detected_and_names_match_like_the_server(provider, small_model):
    assert small_model in provider.list_available_models()
    assert provider.validate_model(small_model.upper())
    info = provider.model_info(small_model)
    assert info.context_length is None or info.context_length >= 2048


def test_a_missing_model_raises_model_not_pulled(provider):
    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("hi", model="persona-ollama-no-such-model:1b")
    assert "ollama pull persona-ollama-no-such-model:1b" in str(caught.value)


def test_a_long_prompt_is_evaluated_whole_with_a_sized_context(provider, small_model):
    # About 6,000 tokens: more than the 4096 many servers default to, so without num_ctx
    # sizing Ollama would silently keep only about half of it.
    rows = "".join(
        f'P{i:03d},designer,"finding old interview quotes takes too long"\n' for i in range(600)
    )
    prompt = f"How many rows does this CSV have? Answer with a number.\n{rows}"
    try:
        response = provider.generate(
            prompt, model=small_model, max_tokens=32, temperature=0, think=False
        )
    except OllamaError as error:  # a model with a short context refuses before sending
        pytest.skip(f"{small_model} cannot take this prompt: {error.message}")
    assert response.raw_response["num_ctx"] >= 8192
    assert response.input_tokens > 4096
    assert not [w for w in response.raw_response["warnings"] if "dropped" in w]
