"""Shared fixtures: every test starts with the provider's process-wide caches empty."""

from __future__ import annotations

import inspect

import pytest
from click.testing import CliRunner

from persona_ollama import facts, openai_client, privacy, windows


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Model facts, /v1 model ids and once-per-process warnings are shared by every provider in
    a process (Persona builds one per call); tests must not see each other's."""
    resets = (
        facts.FACTS.clear,
        privacy.reset_warnings,
        openai_client._SERVED.clear,
        windows.WINDOWS.clear,
    )
    for reset in resets:
        reset()
    yield
    for reset in resets:
        reset()


@pytest.fixture
def cli_runner() -> CliRunner:
    """A CliRunner that keeps stderr apart from stdout on every click version (click < 8.2,
    the last for Python 3.9, mixes them unless told not to)."""
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    return CliRunner()
