"""The provider against the double emulating each Ollama release where the wire changed.

Each test names the behaviour and the versions on either side of its change; the sources are
cited in docs/reference/ollama-protocol.md.
"""

from __future__ import annotations

import logging

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.testing import FakeModel, FakeOllama


def provider_for(fake: FakeOllama, **kwargs) -> OllamaProvider:
    provider = OllamaProvider(base_url=fake.url, model="llama3.2:3b", environ={}, **kwargs)
    provider.client.backoff = 0
    return provider


@pytest.mark.parametrize(("version", "show_calls"), [("0.24.0", 1), ("0.30.0", 0)])
def test_tags_context_length_saves_the_show_round_trip(version, show_calls):
    # v0.30 added details.context_length and capabilities to /api/tags (api/types.go).
    with FakeOllama([FakeModel("llama3.2:3b", context_length=131072)], version=version) as fake:
        provider = provider_for(fake)
        provider.installed_tags()  # what default-model selection or `models` fetched already
        assert provider.generate("hi", max_tokens=20).content
        assert fake.request_count("/api/show") == show_calls
        assert provider.model_info("llama3.2:3b").context_length == 131072


@pytest.mark.parametrize(("version", "warned"), [("0.11.11", True), ("0.12.6", False)])
def test_a_server_that_cuts_prompts_is_named_once(version, warned, caplog):
    with FakeOllama(version=version) as fake, caplog.at_level(logging.WARNING, "persona_ollama"):
        provider = provider_for(fake)
        provider.generate("hi", max_tokens=20)
        provider.generate("hi again", max_tokens=20)
    found = [r for r in caplog.records if "before 0.12.6" in r.getMessage()]
    assert len(found) == (1 if warned else 0)
    assert fake.request_count("/api/version") == 1
