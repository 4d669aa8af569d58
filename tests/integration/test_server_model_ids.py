"""Model ids are the server's: a /v1 server's ``org/model`` ids and local paths reach it as
written, while Ollama's grammar still refuses what Ollama would refuse, before anything is sent.

The /v1 server here is a loopback stand-in shaped like vLLM's OpenAI-compatible server
(tests/vllm_like.py: one model, served under the id it was started with, a Hugging Face id or
a path), over real sockets.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Iterator

import pytest
from vllm_like import VllmLike

from persona_ollama import OllamaProvider
from persona_ollama.errors import ConfigurationError, ModelNotPulledError
from persona_ollama.testing import FakeModel, FakeOllama


@pytest.fixture
def serve() -> Iterator[Callable[[str], VllmLike]]:
    with contextlib.ExitStack() as stack:
        yield lambda model_id: stack.enter_context(VllmLike(model_id))


@pytest.mark.parametrize(
    "model_id",
    ["/models/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf", "Qwen/Qwen2.5-0.5B-Instruct", "Org/Model:v1.2"],
)
def test_a_v1_servers_own_model_id_reaches_it_as_written(serve, model_id):
    server = serve(model_id)
    provider = OllamaProvider(base_url=server.v1, model=model_id, api="openai", environ={})

    response = provider.generate("Hello", max_tokens=8)

    provider.close()
    assert response.content == "Hi"
    assert [body["model"] for body in server.bodies] == [model_id]
    assert "/v1/chat/completions" in server.paths


@pytest.mark.parametrize("model_id", ["/models/x.gguf", "org/model:v1 q", "a" * 81])
def test_ollamas_grammar_still_refuses_before_anything_is_sent(model_id):
    with FakeOllama([FakeModel("llama3.2:3b")]) as fake:
        with pytest.raises(ConfigurationError, match="is not a valid Ollama model name"):
            OllamaProvider(base_url=fake.url, model=model_id, environ={})
        provider = OllamaProvider(base_url=fake.url, environ={})
        with pytest.raises(ConfigurationError, match="is not a valid Ollama model name"):
            provider.generate("Hello", model=model_id, max_tokens=8)
        provider.close()
        assert fake.requests == []


@pytest.mark.parametrize(
    ("model_id", "problem"),
    [("org/model\n", None), ("org/\x1bmodel", "control character"), ("m" * 1025, "characters")],
)
def test_any_server_refuses_control_characters_and_pasted_documents(model_id, problem):
    if problem is None:  # a trailing newline is stripped, as every name is
        assert OllamaProvider(model=model_id, api="openai", environ={}).default_model == "org/model"
        return
    with pytest.raises(ConfigurationError, match=problem) as caught:
        OllamaProvider(model=model_id, api="openai", environ={})
    assert "\x1b" not in str(caught.value)


def test_the_advice_for_a_missing_id_is_a_command_that_runs_as_shown(serve):
    # Any id passes now, spaces and quotes too: the vLLM command that would serve it must
    # take it as one argument when pasted into a shell.
    server = serve("Qwen/Qwen2.5-0.5B-Instruct")
    provider = OllamaProvider(base_url=server.v1, api="openai", environ={})

    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("Hello", model="my model's v2", max_tokens=8)

    provider.close()
    command = (caught.value.hint or "").split("`")[1]
    assert command.startswith("vllm serve <repo> --served-model-name ")
    assert shlex.split(command)[-1] == "my model's v2"
