"""A batch reuses the loaded window: no reload for a prompt that fits what is loaded.

Against the double's scheduler, which reloads a model when num_ctx changes as server/sched.go
does, and counts loads.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from persona_ollama import OllamaProvider
from persona_ollama.choosing.catalogue import load_catalogue
from persona_ollama.choosing.selection import HEADROOM_MIN, estimate_memory_bytes, fits
from persona_ollama.model_info import ModelInfo
from persona_ollama.testing import FakeModel, FakeOllama

MODEL = "llama3.2:3b"


def prompt_of(tokens: int) -> str:
    """About ``tokens`` tokens by the client's estimate (3 ASCII characters per token)."""
    return "ab " * tokens


# With max_tokens=1000: rungs 4096, 8192 and 16384.
SMALL, MEDIUM, LARGE = 2000, 5000, 12000


@pytest.fixture
def fake() -> Any:
    with FakeOllama([FakeModel(MODEL, context_length=131072, size=2_000_000_000)]) as server:
        yield server


def provider_for(fake: FakeOllama, **environ: str) -> OllamaProvider:
    return OllamaProvider(base_url=fake.url, model=MODEL, environ=environ)


def sent_windows(fake: FakeOllama) -> list[int]:
    return [r.num_ctx or 0 for r in fake.requests if r.path == "/api/chat"]


def test_a_sequential_batch_loads_once_per_larger_window(fake: FakeOllama) -> None:
    provider = provider_for(fake)
    for tokens in (MEDIUM, SMALL, MEDIUM, LARGE, SMALL, MEDIUM, LARGE, SMALL):
        provider.generate(prompt_of(tokens), max_tokens=1000)

    # Today's per-prompt ladder would send 8192, 4096, 8192, 16384, 4096... : 8 loads.
    assert sent_windows(fake) == [8192, 8192, 8192, 16384, 16384, 16384, 16384, 16384]
    assert fake.loads == 2


def test_a_window_loaded_by_someone_else_is_reused_when_large_enough(fake: FakeOllama) -> None:
    requests.post(
        fake.url + "/api/chat",
        json={"model": MODEL, "messages": [], "options": {"num_ctx": 32768}},
        timeout=5,
    )
    provider = provider_for(fake)
    provider.generate(prompt_of(SMALL), max_tokens=1000)

    assert sent_windows(fake)[-1] == 32768
    assert fake.loads == 1
    assert fake.loaded_models == {MODEL: 32768}


def test_a_loaded_window_too_small_for_the_prompt_grows_to_its_rung(fake: FakeOllama) -> None:
    requests.post(fake.url + "/api/chat", json={"model": MODEL, "messages": []}, timeout=5)
    provider = provider_for(fake)
    provider.generate(prompt_of(LARGE), max_tokens=1000)

    assert sent_windows(fake)[-1] == 16384
    assert fake.loaded_models == {MODEL: 16384}


def test_an_explicit_num_ctx_still_wins(fake: FakeOllama) -> None:
    provider = provider_for(fake)
    provider.generate(prompt_of(LARGE), max_tokens=1000)
    provider.generate(prompt_of(SMALL), max_tokens=1000, num_ctx=4096)
    provider.generate(prompt_of(SMALL), max_tokens=1000, options={"num_ctx": 6144})

    assert sent_windows(fake) == [16384, 4096, 6144]
    assert fake.loads == 3


def test_concurrent_calls_agree_on_one_window(fake: FakeOllama) -> None:
    fake.load_time = 0.2
    provider = provider_for(fake)
    sizes = [SMALL, MEDIUM] * 8
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda t: provider.generate(prompt_of(t), max_tokens=1000), sizes))

    # One load, plus at most one for the larger window a later call needed.
    assert fake.loads <= 2
    windows = sent_windows(fake)
    assert windows[-8:] == [8192] * 8


def test_a_reused_window_must_fit_the_memory_budget(fake: FakeOllama) -> None:
    installed = ModelInfo(MODEL, size_bytes=2_000_000_000, parameter_size="3.2B")
    catalogue = load_catalogue({})
    at_8k = estimate_memory_bytes(installed, 8192, catalogue)
    at_16k = estimate_memory_bytes(installed, 16384, catalogue)
    assert at_8k is not None and at_16k is not None and at_8k < at_16k
    # Between the two, with the headroom the selection keeps free (selection.HEADROOM_*).
    budget = (at_8k + at_16k) // 2 + HEADROOM_MIN
    assert fits(at_8k, budget) and not fits(at_16k, budget)
    budget_gb = budget / (1 << 30)
    provider = provider_for(fake, PERSONA_OLLAMA_MEMORY_GB=f"{budget_gb:.4f}")

    provider.generate(prompt_of(LARGE), max_tokens=1000)  # a prompt that needs 16384 gets it
    provider.generate(prompt_of(SMALL), max_tokens=1000)  # but 16384 does not fit: own rung
    provider.generate(prompt_of(MEDIUM), max_tokens=1000)  # 8192 fits: reused from here on
    provider.generate(prompt_of(SMALL), max_tokens=1000)

    assert sent_windows(fake) == [16384, 4096, 8192, 8192]


def test_ps_is_looked_up_at_most_once_per_few_seconds(fake: FakeOllama) -> None:
    provider = provider_for(fake)
    for _ in range(5):
        provider.generate(prompt_of(SMALL), max_tokens=1000)

    # Once for the window before the first call, once after its load for the GPU share
    # (offload.py); the warm calls after it ask nothing.
    assert fake.request_count("/api/ps") == 2


def test_providers_in_one_process_share_what_they_know(fake: FakeOllama) -> None:
    # Persona builds a provider per call: the window must survive the instance.
    provider_for(fake).generate(prompt_of(MEDIUM), max_tokens=1000)
    provider_for(fake).generate(prompt_of(SMALL), max_tokens=1000)
    assert sent_windows(fake) == [8192, 8192]
    assert fake.loads == 1


def test_two_threads_on_two_models_keep_their_own_windows() -> None:
    models = [FakeModel(MODEL, context_length=131072), FakeModel("qwen3:8b", context_length=40960)]
    with FakeOllama(models) as fake:
        provider = OllamaProvider(base_url=fake.url, environ={})

        def batch(model: str, tokens: int) -> None:
            for _ in range(3):
                provider.generate(prompt_of(tokens), model=model, max_tokens=1000, think=False)

        threads = [
            threading.Thread(target=batch, args=(MODEL, LARGE)),
            threading.Thread(target=batch, args=("qwen3:8b", SMALL)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert fake.loaded_models == {MODEL: 16384, "qwen3:8b": 4096}
        assert fake.loads == 2


def test_a_window_that_failed_to_load_is_not_reused_for_smaller_prompts(fake: FakeOllama) -> None:
    from persona_ollama import InsufficientMemoryError

    provider = provider_for(fake)
    fake.out_of_memory_next(path="/api/chat")
    with pytest.raises(InsufficientMemoryError):
        provider.generate(prompt_of(LARGE), max_tokens=1000)
    # The server could not load 16384: a smaller prompt gets its own rung, not the window
    # that just failed (which would fail again, every time, for minutes).
    provider.generate(prompt_of(SMALL), max_tokens=1000)
    assert sent_windows(fake)[-1] == 4096


@pytest.mark.parametrize("setting", ["catalogue", "memory"])
def test_a_broken_setting_does_not_fail_a_generation_that_reuses_a_window(
    fake: FakeOllama, tmp_path: Any, setting: str
) -> None:
    # The memory check of a reused window reads the catalogue and the memory budget; the model
    # is named, so the generation itself never needed them. Before: the second, smaller
    # prompt raised their ConfigurationError while the first had worked.
    broken = tmp_path / "catalogue.json"
    broken.write_text("not json", encoding="utf-8")
    environ = (
        {"PERSONA_OLLAMA_CATALOGUE": str(broken)}
        if setting == "catalogue"
        else {"PERSONA_OLLAMA_MEMORY_GB": "lots"}
    )
    provider = provider_for(fake, **environ)
    provider.generate(prompt_of(MEDIUM), max_tokens=1000)
    provider.generate(prompt_of(SMALL), max_tokens=1000)
    assert sent_windows(fake) == [8192, 8192]


def test_waiting_for_a_smaller_window_ends_at_the_deadline(fake: FakeOllama) -> None:
    # A call without a deadline sends a small window to a server slow to answer (a cold load);
    # a call with deadline=1 needs a larger one and waits for that answer first: its deadline
    # covers the wait too, not only its own request.
    import time

    from persona_ollama.errors import OllamaTimeoutError

    patient = provider_for(fake)
    hurried = OllamaProvider(base_url=fake.url, model=MODEL, environ={}, deadline=1.0)
    patient.model_info(MODEL)
    hurried.model_info(MODEL)
    fake.latency(first_byte=6.0, times=1, path="/api/chat")
    sent = threading.Thread(
        target=patient.generate, args=(prompt_of(SMALL),), kwargs={"max_tokens": 1000}
    )
    sent.start()
    while not fake.request_count("/api/chat"):
        time.sleep(0.01)

    started = time.monotonic()
    with pytest.raises(OllamaTimeoutError):
        hurried.generate(prompt_of(LARGE), max_tokens=1000)
    took = time.monotonic() - started
    sent.join()

    assert took < 3.0, f"the call with deadline=1 took {took:.1f} s"
