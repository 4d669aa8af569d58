"""Two /v1 model ids that differ only in case are two models: an exact id gets exactly its
model, a spelling that ignores case is used only where it names one served id, and one that
two ids share names neither and sends nothing.

The server is tests/vllm_like.py, shaped like vLLM (it serves ids exactly as written), over
real sockets; what reached it is read from its records.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vllm_like import VllmLike

from persona_ollama import OllamaProvider
from persona_ollama.errors import ModelNotAvailableError
from persona_ollama.testing import FakeModel, FakeOllama

PAIRS = [("Org/Model", "org/model"), ("Qwen", "qwen")]


@pytest.fixture(params=PAIRS, ids=["org-model", "qwen"])
def twins(request: pytest.FixtureRequest) -> Iterator[VllmLike]:
    """A vLLM-like server serving two ids that differ only in case, and a third model."""
    with VllmLike(*request.param, "Other/Model-7B") as server:
        yield server


def provider_for(server: VllmLike) -> OllamaProvider:
    return OllamaProvider(base_url=server.v1, api="openai", environ={})


def test_each_exact_id_gets_exactly_its_model(twins: VllmLike) -> None:
    provider = provider_for(twins)
    first, second = twins.ids[:2]

    # Both, in both orders: a model asked for first must not stand in for its twin later.
    for model in (first, second, first, second):
        assert provider.generate("Hello", model=model, max_tokens=8).model == model

    provider.close()
    assert [body["model"] for body in twins.bodies] == [first, second, first, second]
    assert provider.validate_model(first) and provider.validate_model(second)


def test_a_spelling_two_ids_share_is_refused_naming_both_and_nothing_is_sent(
    twins: VllmLike,
) -> None:
    provider = provider_for(twins)
    first, second = twins.ids[:2]
    provider.generate("Hello", model=first, max_tokens=8)  # facts cached for one of the two
    spelling = first.upper()

    with pytest.raises(ModelNotAvailableError) as caught:
        provider.generate("Hello", model=spelling, max_tokens=8)

    provider.close()
    error = caught.value
    assert f"'{first}'" in str(error) and f"'{second}'" in str(error)
    assert "differ only in case" in error.message
    assert error.model == spelling and set(error.suggestions[:2]) == {first, second}
    assert [body["model"] for body in twins.bodies] == [first]  # the refused call sent nothing
    assert not provider.validate_model(spelling)


def test_a_spelling_one_id_matches_ignoring_case_is_sent_as_that_id(twins: VllmLike) -> None:
    provider = provider_for(twins)

    response = provider.generate("Hello", model="other/model-7b", max_tokens=8)

    provider.close()
    assert response.content == "Hi"
    assert [body["model"] for body in twins.bodies] == ["Other/Model-7B"]
    assert provider.validate_model("OTHER/MODEL-7B")


@pytest.mark.parametrize(
    "listed",
    [
        ("llama3.2:latest", "Org/Model", "org/model"),  # Ollama's model listed first
        ("Org/Model", "org/model", "llama3.2:latest"),
    ],
    ids=["ollama-first", "vllm-first"],
)
def test_a_proxy_listing_ollama_models_keeps_case_twins_apart_whatever_comes_first(
    listed: tuple[str, ...],
) -> None:
    # A proxy lists an Ollama model (owned_by "library") beside vLLM's: which entry comes
    # first must not decide the rules for all of them (Ollama's ignore case).
    with VllmLike(*listed, owners={"llama3.2:latest": "library"}) as server:
        provider = provider_for(server)
        for model in ("org/model", "Org/Model", "org/model"):
            assert provider.generate("Hello", model=model, max_tokens=8).model == model
        with pytest.raises(ModelNotAvailableError, match="differ only in case"):
            provider.generate("Hello", model="ORG/MODEL", max_tokens=8)
        # The Ollama model keeps Ollama's rules: its name without the tag, in any case.
        assert provider.generate("Hello", model="LLAMA3.2", max_tokens=8).model == (
            "llama3.2:latest"
        )
        provider.close()

    sent = [body["model"] for body in server.bodies]
    assert sent == ["org/model", "Org/Model", "org/model", "llama3.2:latest"]


@pytest.mark.parametrize("first", ["myuser/notes:latest", "llama3.2:latest"])
def test_ollamas_v1_serves_a_namespaced_model_by_ollamas_names_whatever_comes_first(
    first: str,
) -> None:
    # Ollama's /v1/models says a model's namespace as its owner ("myuser", "bartowski"), not
    # "library": such a model is still Ollama's, named without its tag and in any case.
    names = ["myuser/notes:latest", "llama3.2:latest", "hf.co/bartowski/Tiny-GGUF:Q4_K_M"]
    names.remove(first)
    with FakeOllama([FakeModel(name, context_length=8192) for name in [first, *names]]) as fake:
        provider = OllamaProvider(base_url=fake.url + "/v1", api="openai", environ={})
        asked = ["MyUser/Notes", "llama3.2", "hf.co/Bartowski/tiny-gguf:q4_k_m"]
        served = [provider.generate("Hello", model=m, max_tokens=8).model for m in asked]
        provider.close()

    assert served == ["myuser/notes:latest", "llama3.2:latest", "hf.co/bartowski/Tiny-GGUF:Q4_K_M"]
