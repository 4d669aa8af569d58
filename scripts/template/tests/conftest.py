"""Shared fixtures: every test starts with the provider's process-wide state empty."""

from __future__ import annotations

import sys

import pytest

from persona_acme import _persona, model_info, privacy, windows


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


@pytest.fixture(autouse=True)
def _error_bases():
    """A test that imports a Persona-shaped package after the errors were defined moves them
    onto its classes (_persona._adopt); later tests must see the stand-in bases again."""
    stand_ins = (
        _persona._ProviderError,
        _persona._AuthenticationError,
        _persona._RateLimitError,
        _persona._ModelNotFoundError,
    )
    saved = {cls: cls.__bases__ for base in stand_ins for cls in base.__subclasses__()}
    meta_path = list(sys.meta_path)
    yield
    for cls, bases in saved.items():
        if cls.__bases__ != bases:
            cls.__bases__ = bases
    sys.meta_path[:] = meta_path
