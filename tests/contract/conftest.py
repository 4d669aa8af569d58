"""The fixtures the modules here share: the plugin's wheel, built once per session and
installed into a fresh virtual environment (test_installed_plugin.py says how), and the
stand-in double with models installed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from persona_ollama.testing import FakeModel, FakeServer, stand_in

if TYPE_CHECKING:
    from test_installed_plugin import InstalledPlugin


@pytest.fixture(scope="session")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> InstalledPlugin:
    from test_installed_plugin import install_plugin

    return install_plugin(tmp_path_factory)


@pytest.fixture
def server_with_models() -> Iterator[FakeServer]:
    """Two chat models and an embedding model, which a chat host must not be offered (a
    one-model server's double serves the first only)."""
    models = [
        FakeModel(name="llama3.2:3b", context_length=131072),
        FakeModel(name="qwen2.5:7b", context_length=32768),
        FakeModel(name="nomic-embed-text:latest", context_length=2048, capabilities=["embedding"]),
    ]
    with stand_in(models) as fake:
        yield fake
