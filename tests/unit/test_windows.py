"""windows.py: which window to send so that a loaded model is not reloaded."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest

from persona_ollama import windows
from persona_ollama.backends.ollama import loaded_windows_of
from persona_ollama.windows import Windows


def choose(w: Windows, needed: int, rung: int, **kwargs: object) -> int:
    args: dict[str, object] = {"loaded": None, "limit": 131072, "cap": lambda: None}
    args.update(kwargs)
    return w.choose("qwen3:8b", needed=needed, rung=rung, **args)  # type: ignore[arg-type]


def test_first_call_gets_its_rung_then_smaller_prompts_reuse_it() -> None:
    w = Windows()
    assert choose(w, 10000, 16384) == 16384
    assert choose(w, 3000, 4096) == 16384
    assert choose(w, 20000, 32768) == 32768  # grows only when needed
    assert choose(w, 3000, 4096) == 32768


def test_a_loaded_window_large_enough_is_reused_and_a_small_one_grows() -> None:
    w = Windows()
    assert choose(w, 3000, 4096, loaded=65536) == 65536
    w = Windows()
    assert choose(w, 6000, 8192, loaded=4096) == 8192


def test_names_are_compared_as_the_server_does() -> None:
    w = Windows()
    w.choose("qwen3:8b", needed=9000, rung=16384, loaded=None, limit=None, cap=lambda: None)
    again = w.choose("QWEN3:8b", needed=100, rung=4096, loaded=None, limit=None, cap=lambda: None)
    assert again == 16384


def test_a_known_window_above_the_trained_context_is_ignored() -> None:
    w = Windows()
    assert choose(w, 3000, 4096, loaded=65536, limit=32768) == 4096


def test_a_known_window_that_does_not_fit_memory_is_not_reused() -> None:
    w = Windows()
    calls = []

    def cap() -> int:
        calls.append(1)
        return 8192

    assert choose(w, 3000, 4096, loaded=32768, cap=cap) == 4096
    assert choose(w, 3000, 4096, loaded=8192, cap=cap) == 8192
    assert calls  # asked only when a larger window would be reused
    w = Windows()
    assert choose(w, 3000, 4096, loaded=4096, cap=lambda: pytest.fail("not needed")) == 4096


def test_a_sent_window_is_forgotten_after_the_keep_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    w = Windows()
    choose(w, 10000, 16384)
    monkeypatch.setattr(windows, "SENT_TTL", 0.0)
    assert choose(w, 3000, 4096) == 4096


def test_ps_is_fetched_once_per_ttl_and_a_failure_counts_as_nothing_loaded() -> None:
    w = Windows()
    fetched = []

    def fetch() -> list[dict[str, object]]:
        fetched.append(1)
        return [{"name": "qwen3:8b", "context_length": 8192}, {"name": "old:1b"}]

    assert w.loaded(lambda: loaded_windows_of(fetch())) == {"qwen3:8b": 8192}
    assert w.loaded(lambda: loaded_windows_of(fetch())) == {"qwen3:8b": 8192}
    assert len(fetched) == 1

    def broken() -> list[dict[str, object]]:
        raise OSError("down")

    assert Windows().loaded(broken) == {}  # another server: nothing cached


class _WatchedCondition(threading.Condition):
    """A condition that says when a thread has started waiting on it."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def test_a_grown_window_waits_until_smaller_ones_on_their_way_are_answered() -> None:
    w = Windows()
    w._answered = watched = _WatchedCondition(w._lock)  # the lock it guards
    order: list[str] = []
    small_sent = threading.Event()
    release_small = threading.Event()

    def small() -> None:
        with w.sending("qwen3:8b", 8192):
            small_sent.set()
            release_small.wait(5)
            order.append("small answered")

    def large() -> None:
        small_sent.wait(5)
        with w.sending("qwen3:8b", 16384):
            order.append("large sent")

    threads = [threading.Thread(target=small), threading.Thread(target=large)]
    for thread in threads:
        thread.start()
    assert watched.waiting.wait(5)
    assert order == []  # the large one is waiting
    release_small.set()
    for thread in threads:
        thread.join(5)
    assert order == ["small answered", "large sent"]


def test_equal_or_smaller_windows_do_not_wait() -> None:
    w = Windows()
    with contextlib.ExitStack() as stack:  # would block forever if any of these waited
        for model, window in (("qwen3:8b", 16384), ("qwen3:8b", 16384), ("qwen3:8b", 8192)):
            stack.enter_context(w.sending(model, window))
        stack.enter_context(w.sending("other:1b", 65536))


def test_a_failed_window_is_forgotten_but_not_a_newer_one() -> None:
    w = Windows()
    assert choose(w, 10000, 16384) == 16384
    w.failed("qwen3:8b", 16384)  # e.g. out of memory while loading it
    assert choose(w, 3000, 4096) == 4096
    assert choose(w, 20000, 32768) == 32768
    w.failed("qwen3:8b", 4096)  # an older, smaller request failing keeps the newer window
    assert choose(w, 3000, 4096) == 32768
