"""server_state.py: one state per server, and a registry with a bound."""

from __future__ import annotations

import gc
import logging

import pytest

from persona_ollama import privacy
from persona_ollama.server_state import MAX_SERVERS, SERVERS, Servers, ServerState, Warnings

A, B, C = "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"


def test_one_key_one_state_and_two_keys_two() -> None:
    servers = Servers()
    assert servers.state(A) is servers.state(A)
    assert servers.state(A) is not servers.state(B)
    assert servers.state(A).key == A


def test_beyond_its_size_the_server_used_longest_ago_is_dropped() -> None:
    servers = Servers(size=2)
    servers.state(A).facts.ttl = 1.0  # a mark to tell the same object from a new one
    servers.state(B)
    servers.state(A)  # used again: now B is the oldest
    servers.state(C)
    gc.collect()
    assert servers.state(A).facts.ttl == 1.0
    assert len(servers._recent) == 2 and B not in servers._recent


def test_a_state_a_provider_holds_is_kept_past_the_bound() -> None:
    servers = Servers(size=1)
    held = servers.state(A)
    servers.state(B)
    servers.state(C)
    gc.collect()
    assert servers.state(A) is held


def test_a_dropped_state_that_nothing_holds_is_gone() -> None:
    servers = Servers(size=1)
    servers.state(A).release_asked = True
    servers.state(B)
    gc.collect()
    assert servers.state(A).release_asked is False


def test_the_process_registry_has_the_documented_bound() -> None:
    assert SERVERS.size == MAX_SERVERS


def test_a_warning_is_given_once_per_place(caplog: pytest.LogCaptureFixture) -> None:
    warnings = Warnings()
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        warnings.warn_once("k", "first")
        warnings.warn_once("k", "again")
        warnings.warn_once("other", "second")
    assert [r.getMessage() for r in caplog.records] == ["first", "second"]


def test_clear_forgets_servers_and_every_warning(caplog: pytest.LogCaptureFixture) -> None:
    servers = Servers()
    held = servers.state(A)
    held.warnings.warn_once("k", "about A")
    servers.warnings.warn_once("k", "about none")
    servers.clear()
    assert servers.state(A) is not held
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        held.warnings.warn_once("k", "about A")  # a provider built before still holds it
        servers.warnings.warn_once("k", "about none")
    assert [r.getMessage() for r in caplog.records] == ["about A", "about none"]


def test_reset_warnings_forgets_those_about_servers_too(caplog: pytest.LogCaptureFixture) -> None:
    state = SERVERS.state(A)
    state.warnings.warn_once("k", "about A")
    privacy.warn_once("k", "about none")
    privacy.reset_warnings()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        state.warnings.warn_once("k", "about A")
        privacy.warn_once("k", "about none")
    assert [r.getMessage() for r in caplog.records] == ["about A", "about none"]


def test_a_state_starts_knowing_nothing() -> None:
    state = ServerState(A)
    assert state.facts.get("m") is None
    assert (state.release, state.release_asked, state.kind, state.served) == (
        None,
        False,
        None,
        {},
    )
    assert repr(state) == f"ServerState({A!r})"


def test_a_state_compares_model_names_by_its_servers_rules() -> None:
    from persona_ollama.backends.openai_rules import ServedIds
    from persona_ollama.model_info import ModelInfo

    state = ServerState(A)
    state.facts.put(ModelInfo(name="Org/Model"))
    # The default API's backend's rules (Ollama's): a tag is implied, case does not matter.
    assert state.facts.get("org/model:latest") is not None
    state.names = ServedIds(["Org/Model"])  # a /v1 server's ids as listed: the case only
    assert state.facts.names is state.names
    assert state.facts.get("Org/Model") is None  # keyed by the old rules: asked again
    state.facts.put(ModelInfo(name="Org/Model"))
    assert state.facts.get("org/model") is not None
    assert state.facts.get("org/model:latest") is None
    # Listed beside "org/model", "Org/Model" is one model of two: its facts are its own.
    state.names = ServedIds(["Org/Model", "org/model"])
    state.facts.put(ModelInfo(name="Org/Model", context_length=4096))
    assert state.facts.get("org/model") is None and state.facts.get("ORG/MODEL") is None
    assert state.facts.get("Org/Model") == ModelInfo(name="Org/Model", context_length=4096)
