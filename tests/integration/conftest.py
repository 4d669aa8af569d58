"""The integration suite runs on every release profile of the double (conformance).

``server_version`` is one of :data:`persona_ollama.testing.PROFILES`: a release on each side of
every wire change the double knows (testing/wire.py). A fixture that builds a FakeOllama
takes it, so each test runs once per profile.
"""

from __future__ import annotations

import pytest

from persona_ollama.testing import PROFILES


@pytest.fixture(params=PROFILES, ids=[f"ollama-{v}" for v in PROFILES])
def server_version(request) -> str:
    return str(request.param)
