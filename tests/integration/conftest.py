"""The integration suite runs on every release profile of the double (conformance).

``server_version`` is one of :data:`persona_ollama.testing.PROFILES`: a release on each side of
every wire change the double knows (testing/wire.py). A fixture that builds a FakeOllama
takes it, so each test runs once per profile. tox's sampled runs (every Python but py311, see
tests/conftest.py) take the oldest and the newest profile only: the two ends, which between
them fall on both sides of every wire change.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from persona_ollama.testing import PROFILES, FakeModel, FakeOllama

RUN_PROFILES = (
    (PROFILES[0], PROFILES[-1]) if os.environ.get("PERSONA_OLLAMA_TEST_SAMPLE") == "1" else PROFILES
)


@pytest.fixture(params=RUN_PROFILES, ids=[f"ollama-{v}" for v in RUN_PROFILES])
def server_version(request) -> str:
    return str(request.param)


@pytest.fixture(params=["native", "openai"])
def api(request) -> str:
    """The server API a test runs against: Ollama's own, and its OpenAI-compatible /v1."""
    return str(request.param)


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    """The double serving one model, llama3.2:3b, with its trained window of 131072 tokens
    (files that need another server define their own ``fake``)."""
    with FakeOllama([FakeModel("llama3.2:3b", context_length=131072)]) as server:
        yield server
