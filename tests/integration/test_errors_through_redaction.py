"""Errors that pass through the transport's redaction still render every field.

With credentials configured (a reverse proxy's token) the transport scrubs each error's text
before it goes up; the layers above then add what they know (the request's sizes, the
machine that answered) as fields. Those facts must appear exactly as they do without a token.
"""

from __future__ import annotations

import pytest

import persona_ollama.request as request_module
from persona_ollama import OllamaProvider
from persona_ollama.errors import ContextOverflowError
from persona_ollama.testing import FakeModel, FakeOllama


@pytest.fixture
def undercounting(monkeypatch):
    # A tokenizer that needs more tokens than our estimate (code, emoji): the plan sends a
    # window the prompt does not fit, and the server refuses it.
    real_estimate = request_module.estimate_messages
    monkeypatch.setattr(request_module, "estimate_messages", lambda m: real_estimate(m) // 3)


@pytest.mark.parametrize("api_key", [None, "tok-9f2c-proxy-secret"])
def test_a_refusal_without_sizes_gets_the_request_sizes_with_or_without_a_token(
    undercounting, api_key
):
    # 0.12.6-0.24 refuse a long prompt without numbers: our estimate and num_ctx fill them in.
    with FakeOllama([FakeModel("llama3.2:3b", context_length=131072)], version="0.12.6") as fake:
        provider = OllamaProvider(
            base_url=fake.url, model="llama3.2:3b", api_key=api_key, environ={}
        )
        with pytest.raises(ContextOverflowError) as caught:
            provider.generate("x" * 4 * 6000, max_tokens=100)
    error = caught.value
    assert error.server_text == "the input length exceeds the context length"
    assert error.estimated and error.context_length == 4096
    assert (
        f"(about {error.prompt_tokens} prompt tokens by our estimate, num_ctx=4096); it refused "
        "the request rather than cut the input." in str(error)
    )
