"""The deadline is a value: the provider makes one per call and passes it, as ``deadline=``,
to every backend method the call uses (listing, facts, version, windows, the chat)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.testing import FakeModel, FakeOllama

MODEL = "llama3.2:3b"
# The backend methods a generate() may call on its way to the answer.
ASKED = ("models", "describe", "refuses_overflow", "version", "loaded_windows", "chat")


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama([FakeModel(MODEL, context_length=8192, size=2_000_000_000)]) as server:
        yield server


def recording(provider: OllamaProvider) -> list[tuple[str, Any]]:
    """Every call of the backend's methods in ASKED, with the deadline it was given."""
    seen: list[tuple[str, Any]] = []
    backend = provider.backend
    for name in ASKED:
        method = getattr(backend, name)

        def record(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            seen.append((_name, kwargs.get("deadline", "not passed")))
            return _method(*args, **kwargs)

        setattr(backend, name, record)
    return seen


def test_every_request_of_a_call_is_given_the_calls_deadline(fake: FakeOllama) -> None:
    provider = OllamaProvider(base_url=fake.url, deadline=60, environ={})
    seen = recording(provider)
    before = time.monotonic()
    response = provider.generate("Hello", max_tokens=16)  # the default model: a listing too
    after = time.monotonic()
    assert response.content
    asked = {name for name, _ in seen}
    assert {"models", "refuses_overflow", "loaded_windows", "chat"} <= asked, seen
    deadlines = {deadline for _, deadline in seen}
    assert len(deadlines) == 1, seen  # one value for the whole call
    (deadline,) = deadlines
    assert before + 60 <= deadline <= after + 60


def test_each_call_makes_its_own_deadline_and_none_without_one(fake: FakeOllama) -> None:
    timed = OllamaProvider(base_url=fake.url, model=MODEL, deadline=60, environ={})
    seen = recording(timed)
    timed.generate("Hello", max_tokens=16)
    assert {name for name, _ in seen} >= {"describe", "chat"}  # a named model is described
    first = {deadline for _, deadline in seen}
    time.sleep(0.01)
    timed.generate("Hello again", max_tokens=16)
    both = {deadline for name, deadline in seen if name == "chat"}
    assert len(first) == 1 and len(both) == 2, seen  # the second call made its own

    untimed = OllamaProvider(base_url=fake.url, model=MODEL, environ={})
    seen = recording(untimed)
    untimed.generate("Hello", max_tokens=16)
    assert seen and {deadline for _, deadline in seen} == {None}, seen


def test_local_only_asks_again_by_the_same_deadline_once_the_answer_starts(
    fake: FakeOllama,
) -> None:
    # A /v1 answer does not say where it ran, so local-only mode asks the server again after
    # the answer starts: still part of the call, by its deadline.
    provider = OllamaProvider(
        base_url=fake.url, model=MODEL, api="openai", local_only=True, deadline=60, environ={}
    )
    seen = recording(provider)
    assert provider.generate("Hello", max_tokens=16).content
    after_chat = [name for name, _ in seen[[n for n, _ in seen].index("chat") + 1 :]]
    assert "models" in after_chat, seen  # the listing asked again once the answer started
    assert len({deadline for _, deadline in seen}) == 1, seen
