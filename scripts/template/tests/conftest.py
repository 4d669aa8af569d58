"""Shared fixtures: every test starts with the provider's process-wide state empty."""

from __future__ import annotations

import pytest
from error_bases import error_bases  # noqa: F401  (autouse: the errors' bases restored)

from persona_acme import model_info, privacy, windows


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Model facts, loaded windows and once-per-process warnings are shared by every provider
    in a process (Persona builds one per call); tests must not see each other's."""
    resets = (model_info.FACTS.clear, privacy.reset_warnings, windows.WINDOWS.clear)
    for reset in resets:
        reset()
    yield
    for reset in resets:
        reset()


@pytest.fixture(autouse=True)
def _private_timings(tmp_path_factory, monkeypatch):
    """Measured speeds (timings.py) go to a cache folder of the test's own, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
