"""Shared fixtures: every test starts with the provider's process-wide state empty."""

from __future__ import annotations

import pytest
from error_bases import error_bases  # noqa: F401  (autouse: the errors' bases restored)

from persona_acme.server_state import SERVERS


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """What the process knows of each server and the warnings already given are shared by
    every provider in a process (Persona builds one per call): one registry holds them all,
    and tests must not see each other's."""
    SERVERS.clear()
    yield
    SERVERS.clear()


@pytest.fixture(autouse=True)
def _private_timings(tmp_path_factory, monkeypatch):
    """Measured speeds (timings.py) go to a cache folder of the test's own, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
