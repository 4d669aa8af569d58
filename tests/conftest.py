"""Shared fixtures: every test starts with the provider's process-wide caches empty."""

from __future__ import annotations

import inspect
import sys

import pytest
from click.testing import CliRunner

from persona_ollama import _persona, model_info, privacy, windows
from persona_ollama.backends import ollama, openai

if sys.version_info < (3, 10):
    # On import, the importlib_metadata backport appends its distribution finder to
    # sys.meta_path and deletes the stdlib PathFinder's find_distributions. Import it before any
    # test snapshots sys.meta_path (_error_bases below, pytester): restoring a snapshot taken
    # before that import drops the backport's finder, and then neither importlib.metadata nor
    # the backport finds any distribution or entry point for the rest of the session.
    import importlib_metadata  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Model facts, /v1 model ids and once-per-process warnings are shared by every provider in
    a process (Persona builds one per call); tests must not see each other's."""
    resets = (
        model_info.FACTS.clear,
        privacy.reset_warnings,
        openai._SERVED.clear,
        windows.WINDOWS.clear,
        ollama._VERSIONS_SEEN.clear,
        openai._KINDS.clear,
    )
    for reset in resets:
        reset()
    yield
    for reset in resets:
        reset()


@pytest.fixture(autouse=True)
def _private_timings(tmp_path_factory, monkeypatch):
    """Measured speeds (timings.py) go to a cache folder of the test's own, never the user's,
    and one test's measurements never change another's first-byte wait."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def cli_runner() -> CliRunner:
    """A CliRunner that keeps stderr apart from stdout on every click version (click < 8.2,
    the last for Python 3.9, mixes them unless told not to)."""
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    return CliRunner()


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
