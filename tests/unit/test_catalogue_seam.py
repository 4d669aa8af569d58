"""A provider without choosing/ (a project generated from the template): its default model is
the server's first chat model, it estimates no speed and caps no window, and nothing imports
the catalogue."""

from __future__ import annotations

import sys

import pytest
from shared_helpers import free_port

from persona_ollama import OllamaProvider, catalogue_seam, provider, request
from persona_ollama.errors import ServerNotRunningError
from persona_ollama.model_info import ModelInfo
from persona_ollama.testing import FakeOllama


@pytest.fixture
def no_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package as a generated project has it: no choosing/ to import."""
    monkeypatch.setattr(provider, "HAS_CATALOGUE", False)
    monkeypatch.setattr(request, "HAS_CATALOGUE", False)
    for name in [name for name in sys.modules if name.startswith("persona_ollama.choosing")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "persona_ollama.choosing", None)  # importing it fails


def test_the_first_chat_model_skips_embedders_and_names_no_model_when_there_is_none():
    listing = [
        ModelInfo(name="nomic-embed-text:latest", capabilities=("embedding",)),
        ModelInfo(name="acme-7b", capabilities=("completion",)),
        ModelInfo(name="acme-13b", capabilities=("completion",)),
    ]

    assert catalogue_seam.first_chat_model(listing) == "acme-7b"
    assert catalogue_seam.first_chat_model(listing[:1]) == catalogue_seam.NO_MODEL
    assert catalogue_seam.HAS_CATALOGUE is True  # this repository has its catalogue


def test_without_a_catalogue_the_default_is_the_servers_first_chat_model_and_it_generates(
    no_catalogue: None, fake_ollama: FakeOllama
):
    fake_ollama.reply_with("ok")
    plugin = OllamaProvider(base_url=fake_ollama.url, environ={})
    listed = [info.name for info in plugin.installed_models() if info.can_chat]

    model = plugin.default_model
    # A long prompt to a local server: where a speed estimate would be asked of choosing/.
    answer = plugin.generate("word " * 6000)

    assert model == listed[0]
    assert answer.content == "ok" and answer.model == model
    assert fake_ollama.last_request("/api/chat").json["model"] == model


def test_without_a_catalogue_a_server_that_is_down_is_reported_by_generate(no_catalogue: None):
    url = f"http://127.0.0.1:{free_port()}"
    plugin = OllamaProvider(base_url=url, environ={})

    assert plugin.default_model == catalogue_seam.NO_MODEL
    with pytest.raises(ServerNotRunningError) as caught:
        plugin.generate("Hi")

    assert url in str(caught.value)
