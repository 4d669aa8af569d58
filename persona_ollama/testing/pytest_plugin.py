"""pytest plugin (entry point ``pytest11``): fixtures ``fake_ollama`` and ``fake_ollama_factory``.

pytest imports this module in every session of every project that has persona-ollama installed,
so it imports nothing but pytest until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:
    from .ollama_server import FakeOllama


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    """A started FakeOllama with DEFAULT_MODELS installed (llama3.2:3b, qwen3:8b,
    nomic-embed-text:latest); stopped after the test. Point a client at ``fake_ollama.url``."""
    from .ollama_server import FakeOllama

    with FakeOllama() as fake:
        yield fake


@pytest.fixture
def fake_ollama_factory() -> Iterator[Callable[..., FakeOllama]]:
    """Build started FakeOllama servers with your own arguments, e.g.
    ``fake_ollama_factory(["qwen3:0.6b"], version="0.11.0")``; all are stopped after the test."""
    from .ollama_server import FakeOllama

    started: list[FakeOllama] = []

    def factory(*args: Any, **kwargs: Any) -> FakeOllama:
        fake = FakeOllama(*args, **kwargs).start()
        started.append(fake)
        return fake

    yield factory
    for fake in started:
        fake.stop()
