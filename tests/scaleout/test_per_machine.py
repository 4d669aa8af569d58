"""What is true per machine, behind the docs' nginx block: machines that do not serve the same
model, or the same version of it, behind one address. Every request gets an answer or an
error that says the machines disagree (balancer.py); none gets a cut prompt or "did you mean
<the same name>?". The doubles run in this process: nothing is killed here."""

from __future__ import annotations

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.errors import ContextOverflowError, ModelNotPulledError
from persona_ollama.testing import FakeModel, FakeOllama

from .conftest import Nginx

pytestmark = pytest.mark.scaleout

MODEL = "llama3.2:3b"
CALLS = 6


def outcomes(provider: OllamaProvider, prompt: str) -> list[object]:
    results: list[object] = []
    for _ in range(CALLS):
        try:
            results.append(provider.generate(prompt, max_tokens=64))
        except (ModelNotPulledError, ContextOverflowError) as error:
            results.append(error)
    return results


def test_a_model_missing_on_one_machine_is_named_as_such(tmp_path, gateway):
    with FakeOllama([MODEL]) as first, FakeOllama(["qwen3:8b"]) as second:
        nginx = Nginx(tmp_path, [first.url[len("http://") :], second.url[len("http://") :]])
        gateway.append(nginx)
        provider = OllamaProvider(base_url=nginx.url, model=MODEL, environ={})
        results = outcomes(provider, "Create a persona")
        provider.close()
        served = first.request_count("/api/chat")

    answered = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(answered) == served  # every request the first machine got was answered
    assert errors, "nginx sent no request to the machine without the model"
    for error in errors:
        assert isinstance(error, ModelNotPulledError)
        assert "not every machine behind it has the model" in error.message
        assert "Did you mean" not in (error.hint or "")


def test_a_machine_with_another_version_of_the_model_is_named_as_such(tmp_path, gateway):
    long = FakeModel(MODEL, context_length=131072)
    short = FakeModel(MODEL, context_length=8192)
    with FakeOllama([long]) as first, FakeOllama([short]) as second:
        nginx = Nginx(tmp_path, [first.url[len("http://") :], second.url[len("http://") :]])
        gateway.append(nginx)
        provider = OllamaProvider(base_url=nginx.url, model=MODEL, environ={})
        # The facts come from whichever machine answers first: here the long one's.
        for _ in range(20):
            if provider.model_info(MODEL).context_length == 131072:
                break
            provider.refresh()
        assert provider.model_info(MODEL).context_length == 131072
        results = outcomes(provider, "persona research " * 3000)  # about 12,000 tokens
        provider.close()
        answered_by_first = first.request_count("/api/chat")
        refused_by_second = second.request_count("/api/chat")

    answered = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert (len(answered), len(errors)) == (answered_by_first, refused_by_second)
    assert errors, "nginx sent no request to the machine with the shorter model"
    for error in errors:
        assert isinstance(error, ContextOverflowError)
        assert error.context_length == 8192
        assert "its machines do not all have the same version of the model" in error.message
    for response in answered:
        assert not response.raw_response["warnings"]  # nothing was cut
