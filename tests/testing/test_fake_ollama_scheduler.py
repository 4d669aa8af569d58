"""FakeOllama's scheduler: reloads when runner options differ, as server/sched.go decides."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from real_waits import wait_until

from persona_ollama.testing import FakeOllama, scheduler


def chat(fake: FakeOllama, model: str = "llama3.2:3b", **body: Any) -> requests.Response:
    body.setdefault("messages", [{"role": "user", "content": "Hello there"}])
    response = requests.post(
        fake.url + "/api/chat", json={"model": model, "stream": False, **body}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response


def ps(fake: FakeOllama) -> dict[str, int]:
    models = requests.get(fake.url + "/api/ps", timeout=5).json()["models"]
    return {entry["name"]: entry["context_length"] for entry in models}


def test_same_runner_options_reuse_the_loaded_model(fake_ollama: FakeOllama) -> None:
    for _ in range(3):
        chat(fake_ollama, options={"num_ctx": 8192, "temperature": 0.1})
    # temperature, seed... are not runner options: no reload
    chat(fake_ollama, options={"num_ctx": 8192, "temperature": 0.9, "seed": 3})

    assert fake_ollama.loads == 1
    assert ps(fake_ollama) == {"llama3.2:3b": 8192}


def test_a_different_num_ctx_reloads_and_ps_shows_the_new_window(fake_ollama: FakeOllama) -> None:
    for window in (8192, 16384, 8192, 8192):
        chat(fake_ollama, options={"num_ctx": window})

    assert fake_ollama.loads == 3
    assert fake_ollama.load_count("llama3.2:3b") == 3
    assert ps(fake_ollama) == {"llama3.2:3b": 8192}


@pytest.mark.parametrize(
    ("first", "second", "reloads"),
    [
        ({"num_batch": 512}, {}, False),  # the default value
        ({"num_batch": 256}, {}, True),
        ({"num_gpu": 20}, {"num_gpu": -1}, False),  # a negative num_gpu matches any
        ({"num_gpu": 20}, {"num_gpu": 10}, True),
        ({"num_thread": 4}, {"num_thread": 8}, True),
        ({"use_mmap": False}, {}, True),
        ({"main_gpu": 1}, {}, True),
        ({"top_k": 5}, {"top_k": 50}, False),
    ],
)
def test_runner_options_other_than_num_ctx(
    fake_ollama: FakeOllama, first: dict[str, Any], second: dict[str, Any], reloads: bool
) -> None:
    chat(fake_ollama, options={"num_ctx": 4096, **first})
    chat(fake_ollama, options={"num_ctx": 4096, **second})

    assert fake_ollama.loads == (2 if reloads else 1)


@pytest.mark.parametrize(("version", "reloads"), [("0.12.6", False), ("0.32.15", True)])
def test_an_explicit_main_gpu_0_differs_from_none_since_0_30(
    fake_ollama_factory: Any, version: str, reloads: bool
) -> None:
    # api.Runner.MainGPU became a pointer in 0.30: absent (nil) and 0 are different options.
    fake = fake_ollama_factory(["llama3.2:3b"], version=version)
    chat(fake, options={"num_ctx": 4096, "main_gpu": 0})
    chat(fake, options={"num_ctx": 4096})
    assert fake.loads == (2 if reloads else 1)


@pytest.mark.parametrize(("version", "reloads"), [("0.12.6", False), ("0.32.15", True)])
def test_a_different_context_shift_reloads_since_0_30(
    fake_ollama_factory: Any, version: str, reloads: bool
) -> None:
    fake = fake_ollama_factory(["llama3.2:3b"], version=version)
    chat(fake, options={"num_ctx": 4096})
    chat(fake, options={"num_ctx": 4096}, shift=True)  # what an absent shift means here
    assert fake.loads == 1
    chat(fake, options={"num_ctx": 4096}, shift=False)
    assert fake.loads == (2 if reloads else 1)


def test_windows_above_the_trained_context_match_since_0_30(fake_ollama_factory: Any) -> None:
    # effectiveContext caps the request's num_ctx before needsReload compares (v0.32.15)...
    new = fake_ollama_factory(["llama3.2:3b"], version="0.32.15")
    chat(new, options={"num_ctx": 200_000})
    chat(new, options={"num_ctx": 300_000})
    assert new.loads == 1
    assert ps(new) == {"llama3.2:3b": 131072}
    # ...while v0.12.6 compares the options as requested.
    old = fake_ollama_factory(["llama3.2:3b"], version="0.12.6")
    chat(old, options={"num_ctx": 200_000})
    chat(old, options={"num_ctx": 300_000})
    assert old.loads == 2


def test_automatic_windows_never_reload_each_other_since_0_30(fake_ollama_factory: Any) -> None:
    fake = fake_ollama_factory(["llama3.2:3b"], version="0.32.15")
    chat(fake)  # no num_ctx: the automatic default
    chat(fake)
    chat(fake, options={"num_ctx": 4096})  # an explicit window equal to the loaded one
    assert fake.loads == 1
    chat(fake, options={"num_ctx": 16384})
    assert fake.loads == 2
    chat(fake)  # automatic against an explicit runner: the windows are compared
    assert fake.loads == 3


class _WallClock:
    """Stands for the time module in the double's scheduler: wall time that the test moves on."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def time(self) -> float:
        return self.now


def test_keep_alive_expiry_unloads_and_the_next_request_loads_again(
    fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _WallClock()
    monkeypatch.setattr(scheduler, "time", clock)
    chat(fake_ollama, keep_alive="300ms")
    clock.now += 0.29
    assert ps(fake_ollama) == {"llama3.2:3b": 4096}
    clock.now += 0.02
    assert ps(fake_ollama) == {}
    chat(fake_ollama)
    assert fake_ollama.loads == 2


@pytest.mark.real_wait("it checks that the scripted load time is waited once, in real time")
def test_load_time_is_paid_once_and_reported_in_metrics(fake_ollama_factory: Any) -> None:
    fake = fake_ollama_factory(["llama3.2:3b"], load_time=0.3)
    started = time.monotonic()
    chat(fake)
    chat(fake)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.6
    assert fake.loads == 1


@pytest.mark.real_wait("concurrent requests wait for one real load")
def test_concurrent_compatible_requests_share_one_load(fake_ollama_factory: Any) -> None:
    fake = fake_ollama_factory(["llama3.2:3b"], load_time=0.3)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: chat(fake, options={"num_ctx": 8192}), range(8)))
    elapsed = time.monotonic() - started
    assert fake.loads == 1
    assert elapsed < 2 * 0.3  # all waited for the one load, none loaded again


@pytest.mark.real_wait("a reload waits for running requests held by a real load time")
def test_a_different_window_waits_for_running_requests_then_reloads(
    fake_ollama_factory: Any,
) -> None:
    fake = fake_ollama_factory(["llama3.2:3b"], load_time=0.05)
    fake.latency(first_byte=0.1)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(chat, fake, options={"num_ctx": 8192})
        wait_until(lambda: fake.loads == 1)  # the first is loading, then generating
        second = pool.submit(chat, fake, options={"num_ctx": 16384})
        first.result()
        second.result()
    assert fake.loads == 2
    assert ps(fake) == {"llama3.2:3b": 16384}
