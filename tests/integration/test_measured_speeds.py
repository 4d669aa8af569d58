"""Measured speeds, the scaled first-byte wait and the partial-offload warning, against the
loopback double (real sockets; the double states Ollama's timings and /api/ps sizes)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import pytest
from shared_helpers import clear_environment

from persona_ollama import OllamaProvider
from persona_ollama import provider as provider_module
from persona_ollama.choosing import hardware
from persona_ollama.cli import main
from persona_ollama.errors import OllamaTimeoutError
from persona_ollama.testing import FakeModel
from persona_ollama.testing.engine import EVAL_NS_PER_TOKEN, PROMPT_EVAL_NS_PER_TOKEN
from persona_ollama.timings import Sample, TimingStore

GIB = 1024**3
SMALL = FakeModel("llama3.2:3b", parameter_size="3.2B")
PROMPT = "Summarise these interview notes in one line. " * 20


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    clear_environment(monkeypatch, "PERSONA_OLLAMA_TIMEOUT", "PERSONA_OLLAMA_RECORD_TIMINGS")


def test_a_generation_records_the_servers_own_timings(fake_ollama_factory):
    fake = fake_ollama_factory([SMALL])
    provider = OllamaProvider(base_url=fake.url)
    provider.installed_models()  # with the listing at hand, speeds are kept by digest

    response = provider.generate(PROMPT, model="llama3.2:3b")

    speeds = TimingStore.from_env().speeds(fake.url, "llama3.2:3b", fake.models[0].digest)
    assert speeds is not None
    assert speeds.runs == 1
    # The double's nominal rates: 0.25 ms per prompt token, 25 ms per answer token.
    assert speeds.prompt_tokens_per_second == pytest.approx(
        1e9 / PROMPT_EVAL_NS_PER_TOKEN, rel=1e-3
    )
    assert speeds.answer_tokens_per_second == pytest.approx(1e9 / EVAL_NS_PER_TOKEN, rel=1e-3)
    assert speeds.load_seconds == pytest.approx(response.raw_response["load_seconds"])
    # Another provider in the process (Persona builds one per call) adds to the same model's
    # runs, and a caller without the digest finds them by name.
    OllamaProvider(base_url=fake.url).generate(PROMPT, model="llama3.2:3b")
    assert TimingStore.from_env().speeds(fake.url, "llama3.2:3b").runs == 2
    text = TimingStore.from_env().path.read_text()
    assert "Summarise" not in text
    assert response.content not in text


def test_nothing_is_recorded_when_switched_off(fake_ollama_factory, monkeypatch):
    monkeypatch.setenv("PERSONA_OLLAMA_RECORD_TIMINGS", "0")
    fake = fake_ollama_factory([SMALL])

    OllamaProvider(base_url=fake.url).generate(PROMPT, model="llama3.2:3b")

    assert not TimingStore.from_env().path.exists()


def _measured_slow(provider: OllamaProvider, url: str) -> None:
    """This model measured at 10 prompt tokens/s with a 1.5 s cold load on this server."""
    digest = provider.model_info("llama3.2:3b").digest
    slow = Sample(100, 10.0, 10, 1.0, 1.5, time.time())
    assert provider.timings().record(url, "llama3.2:3b", digest, slow)


def test_the_first_byte_wait_grows_with_the_measured_load_and_prompt_time(
    fake_ollama_factory, monkeypatch, caplog
):
    monkeypatch.setattr(provider_module, "DEFAULT_TIMEOUT", 1.0)  # 300 s, scaled down
    fake = fake_ollama_factory([SMALL])
    provider = OllamaProvider(base_url=fake.url)
    _measured_slow(provider, fake.url)
    fake.latency(first_byte=2.0, times=1)  # a load + prompt that takes 2 s, over the 1 s timeout

    with caplog.at_level(logging.INFO, logger="persona_ollama"):
        response = provider.generate(PROMPT, model="llama3.2:3b")

    assert response.content
    assert "for the first byte: measured load + prompt time" in caplog.text


def test_an_explicit_timeout_wins_over_the_measured_wait(fake_ollama_factory):
    fake = fake_ollama_factory([SMALL])
    provider = OllamaProvider(base_url=fake.url, timeout=1.0)
    _measured_slow(provider, fake.url)
    fake.latency(first_byte=2.0, times=1)

    with pytest.raises(OllamaTimeoutError, match="sent nothing for 1 s"):
        provider.generate(PROMPT, model="llama3.2:3b")


def test_without_a_measurement_a_short_prompt_keeps_the_plain_timeout(
    fake_ollama_factory, monkeypatch
):
    monkeypatch.setattr(provider_module, "DEFAULT_TIMEOUT", 1.0)
    fake = fake_ollama_factory([SMALL])
    fake.latency(first_byte=2.0, times=1)

    with pytest.raises(OllamaTimeoutError, match="sent nothing for 1 s"):
        OllamaProvider(base_url=fake.url).generate(PROMPT, model="llama3.2:3b")


def test_a_model_partly_on_the_cpu_is_warned_about_once(fake_ollama_factory, caplog):
    big = FakeModel("llama3:70b", size=40 * GIB, parameter_size="70.6B", context_length=8192)
    fits = FakeModel("qwen3:14b", family="qwen3", size=9 * GIB, parameter_size="14.8B")
    fake = fake_ollama_factory([big, fits, SMALL], vram_gib=24)
    provider = OllamaProvider(base_url=fake.url)

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        provider.generate("Hello", model="llama3:70b")
        provider.generate("Hello again", model="llama3:70b")
        provider.generate("Hello", model="qwen3:14b")  # fits: no warning

    warnings = [r.getMessage() for r in caplog.records if "on the CPU" in r.getMessage()]
    assert len(warnings) == 1
    (warning,) = warnings
    assert warning.startswith("llama3:70b runs 41% on the CPU")
    assert "x slower than with the whole model on the GPU" in warning
    assert "qwen3:14b (9.0 GiB) would fit" in warning


def test_the_double_reports_size_and_size_vram_for_its_gpu(fake_ollama_factory):
    big = FakeModel("llama3:70b", size=40 * GIB, context_length=8192)
    for vram_gib, expected_vram in ((0, 0), (24, 24 * GIB), (80, None)):
        fake = fake_ollama_factory([big], vram_gib=vram_gib)
        provider = OllamaProvider(base_url=fake.url)
        provider.generate("Hello", model="llama3:70b", num_ctx=4096)

        (loaded,) = provider.backend.loaded_models()  # type: ignore[attr-defined]

        assert loaded.size_bytes == 40 * GIB + big.kv_bytes_per_token * 4096
        assert loaded.gpu_bytes == (loaded.size_bytes if expected_vram is None else expected_vram)
        assert loaded.window == 4096


def test_doctor_shows_loaded_models_with_their_gpu_share_and_measured_speeds(
    fake_ollama_factory, cli_runner, monkeypatch
):
    monkeypatch.setenv("PERSONA_OLLAMA_MEMORY_GB", "16")
    big = FakeModel("llama3:70b", size=40 * GIB, parameter_size="70.6B", context_length=8192)
    fits = FakeModel("qwen3:14b", family="qwen3", size=9 * GIB, parameter_size="14.8B")
    fake = fake_ollama_factory([big, fits], vram_gib=24)
    provider = OllamaProvider(base_url=fake.url)
    provider.installed_models()
    provider.generate(PROMPT, model="llama3:70b", num_ctx=4096, max_tokens=100)
    provider.generate(PROMPT, model="qwen3:14b", num_ctx=4096, max_tokens=100)
    provider.close()  # the second sample is written now, not WRITE_EVERY seconds later

    report = json.loads(cli_runner.invoke(main, ["doctor", "--host", fake.url, "--json"]).stdout)
    text = cli_runner.invoke(main, ["doctor", "--host", fake.url]).stdout

    loaded = {entry["name"]: entry for entry in report["loaded"]}
    assert loaded["llama3:70b"]["gpu_bytes"] == 24 * GIB
    assert loaded["llama3:70b"]["gpu_share"] == pytest.approx(24 / 40.4, abs=0.01)
    assert loaded["qwen3:14b"]["gpu_share"] == 1.0
    assert loaded["qwen3:14b"]["warning"] is None
    assert loaded["qwen3:14b"]["estimated_bytes"] > 9 * GIB  # the file + KV cache + overhead
    assert any(w.startswith("llama3:70b runs 41% on the CPU") for w in report["warnings"])
    assert report["measured"]["llama3:70b"]["runs"] == 1
    assert report["measured"]["qwen3:14b"]["answer_tokens_per_second"] == pytest.approx(40.0)
    assert "Loaded     " in text
    assert "llama3:70b (40.4 GiB, 59% on the GPU)" in text
    assert "qwen3:14b (9.4 GiB, 100% on the GPU)" in text
    assert "Measured   " in text
    assert "qwen3:14b 4000 prompt / 40 answer tokens/s" in text
    assert "Warning    llama3:70b runs 41% on the CPU" in text


def test_doctor_says_a_prompt_speed_was_not_measured_rather_than_showing_a_question_mark(
    fake_ollama_factory, cli_runner, monkeypatch
):
    # A prompt under MIN_PROMPT_TOKENS gives an answer speed but no prompt speed.
    monkeypatch.setenv("PERSONA_OLLAMA_MEMORY_GB", "16")
    fake = fake_ollama_factory([SMALL])
    provider = OllamaProvider(base_url=fake.url)
    provider.generate("Hi", model=SMALL.name, max_tokens=20)
    provider.close()

    text = cli_runner.invoke(main, ["doctor", "--host", fake.url]).stdout

    assert f"Measured   {SMALL.name} 40 answer tokens/s (prompt speed not measured)" in text
    assert "?" not in text.split("Measured   ")[1].splitlines()[0]


def test_without_a_measurement_a_long_prompt_on_a_cpu_gets_an_estimated_wait(
    fake_ollama_factory, monkeypatch, caplog
):
    monkeypatch.setattr(provider_module, "DEFAULT_TIMEOUT", 1.0)
    cpu_only = dataclasses.replace(hardware.probe(), budget_source="cpu", cpu_count=2)
    monkeypatch.setattr(hardware, "probe", lambda **_: cpu_only)
    fake = fake_ollama_factory([SMALL])
    fake.latency(first_byte=2.0, times=1)
    long_prompt = "interview notes " * 1200  # about 4,800 tokens by the plugin's estimate

    with caplog.at_level(logging.INFO, logger="persona_ollama"):
        response = OllamaProvider(base_url=fake.url).generate(
            long_prompt, model="llama3.2:3b", max_tokens=100
        )

    assert response.content
    # The speed model on a 2-core CPU: seconds of loading and reading, twice that to wait.
    assert "for the first byte: estimated load + prompt time" in caplog.text


def test_an_unreadable_api_ps_after_a_load_costs_only_the_warning(fake_ollama_factory, caplog):
    big = FakeModel("llama3:70b", size=40 * GIB, parameter_size="70.6B", context_length=8192)
    fake = fake_ollama_factory([big], vram_gib=24)
    fake.fail_next(1, 500, "boom", path="/api/ps")
    fake.fail_next(1, 500, "boom", path="/api/ps")

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        response = OllamaProvider(base_url=fake.url).generate("Hello", model="llama3:70b")

    assert response.content
    assert "on the CPU" not in caplog.text


def test_the_v1_api_gets_the_grown_first_byte_wait_too(fake_ollama_factory, monkeypatch):
    monkeypatch.setattr(provider_module, "DEFAULT_TIMEOUT", 1.0)
    fake = fake_ollama_factory([SMALL])
    provider = OllamaProvider(base_url=fake.url, api="openai")
    slow = Sample(100, 10.0, 10, 1.0, 1.5, time.time())
    assert provider.timings().record(str(provider.endpoint), "llama3.2:3b", None, slow)
    fake.latency(first_byte=2.0, times=1)

    assert provider.generate(PROMPT, model="llama3.2:3b").content


def test_only_the_first_byte_waits_longer_the_next_ones_get_the_plain_timeout(
    fake_ollama_factory, monkeypatch
):
    monkeypatch.setattr(provider_module, "DEFAULT_TIMEOUT", 1.0)
    fake = fake_ollama_factory([SMALL])
    provider = OllamaProvider(base_url=fake.url)
    _measured_slow(provider, fake.url)
    fake.latency(first_byte=2.0, between_chunks=1.6, times=1)  # a stall mid-answer

    with pytest.raises(OllamaTimeoutError, match="sent nothing for 1 s"):
        provider.generate(PROMPT, model="llama3.2:3b")
