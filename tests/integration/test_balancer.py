"""One address, several machines (balancer.py): when the machine that answers contradicts the
facts the provider read from the same address, the error says so. Here one double changes
between two requests, as the next machine behind a balancer would (tests/scaleout has the
same with a real nginx in front of two doubles)."""

from __future__ import annotations

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.errors import ContextOverflowError, ModelNotPulledError
from persona_ollama.testing import FakeModel

MODEL = "llama3.2:3b"


@pytest.fixture
def provider(fake):
    p = OllamaProvider(base_url=fake.url, model=MODEL, environ={})
    yield p
    p.close()


def test_a_model_described_then_missing_is_said_to_be_missing_on_a_machine(provider, fake):
    assert provider.model_info(MODEL).context_length == 131072
    fake.remove_model(MODEL)  # the next machine does not have it

    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("Hello", max_tokens=16)

    error = caught.value
    assert "described 'llama3.2:3b' and then answered that it is not installed" in error.message
    assert "not every machine behind it has the model" in error.message
    assert "same versions" in (error.hint or "") and "Did you mean" not in (error.hint or "")
    assert error.model == MODEL


def test_a_model_listed_then_not_found_is_said_to_be_missing_on_a_machine(provider, fake):
    fake.fail_next(1, 404, f"model '{MODEL}' not found", path="/api/show")

    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("Hello", max_tokens=16)

    assert f"listed '{MODEL}' and then answered that it is not installed" in caught.value.message


def test_a_model_that_is_really_missing_keeps_the_pull_advice(provider, fake):
    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("Hello", model="qwen3:8b", max_tokens=16)

    assert "is not installed on the Ollama server" in caught.value.message
    assert "persona-ollama pull qwen3:8b" in (caught.value.hint or "")


def test_a_machine_running_a_shorter_version_of_the_model_is_named(provider, fake):
    assert provider.model_info(MODEL).context_length == 131072
    fake.remove_model(MODEL)
    fake.add_model(FakeModel(MODEL, context_length=8192))  # another version on this machine

    with pytest.raises(ContextOverflowError) as caught:
        provider.generate("persona research " * 3000, max_tokens=64)

    error = caught.value
    assert error.context_length == 8192
    assert "trained for 131072 tokens, but the machine that answered ran it with 8192" in str(error)
    assert "pass a larger num_ctx" not in (error.hint or "")


@pytest.mark.parametrize(
    ("used", "trained"),
    [(16384, 131072), (None, 131072), (8192, None), (8192, 8192)],
    ids=["ran-with-the-window-sent", "no-size-from-the-server", "facts-unknown", "facts-agree"],
)
def test_an_overflow_that_does_not_contradict_the_facts_is_left_as_it_is(used, trained):
    from persona_ollama.balancer import shorter_on_a_machine

    error = ContextOverflowError("The prompt is too long.", context_length=used)

    same = shorter_on_a_machine(error, window=16384, trained=trained, url="http://gateway:8080")

    assert same is error and same.message == "The prompt is too long." and same.hint is None
