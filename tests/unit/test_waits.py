"""The first-byte wait (waits.py): measured beats estimated, the default is the floor."""

from __future__ import annotations

import pytest

from persona_ollama.timings import Speeds
from persona_ollama.waits import (
    CPU_PROMPT_RATE_PER_THREAD_B,
    MAX_WAIT,
    SAFETY,
    Expectation,
    estimated_prompt_speed,
    expected_first_byte_seconds,
    first_byte_wait,
)


def speeds(prompt_tps: float | None = 50.0, load: float | None = 12.0) -> Speeds:
    return Speeds("http://127.0.0.1:11434", "m:8b", "d", 3, prompt_tps, 9.0, load, 0.0)


def test_measured_speed_gives_load_plus_prompt_time():
    expected = expected_first_byte_seconds(
        20_000, measured=speeds(), estimated_prompt_tokens_per_second=1e6
    )
    assert expected == Expectation(12.0 + 20_000 / 50.0, "measured")


def test_a_loaded_model_has_no_load_to_wait_for():
    expected = expected_first_byte_seconds(20_000, measured=speeds(), loaded=True)
    assert expected.seconds == pytest.approx(400.0)


def test_the_estimate_is_used_without_a_measured_prompt_speed():
    expected = expected_first_byte_seconds(
        20_000, measured=speeds(prompt_tps=None), estimated_prompt_tokens_per_second=10.0
    )
    assert expected == Expectation(2000.0, "estimated")


def test_nothing_known_means_no_expectation():
    assert expected_first_byte_seconds(20_000) is None


def test_cpu_estimate_scales_with_threads_and_inversely_with_parameters():
    assert estimated_prompt_speed(7.0, cpu_threads=4, cpu_only=True) == pytest.approx(
        CPU_PROMPT_RATE_PER_THREAD_B * 4 / 7.0
    )
    # The published measurement it comes from: a 7B model on 4 threads, 22.44 tokens/s.
    assert estimated_prompt_speed(7.0, cpu_threads=4, cpu_only=True) == pytest.approx(22.3, abs=0.2)


@pytest.mark.parametrize(
    ("parameters_b", "threads", "cpu_only"), [(7.0, 4, False), (None, 4, True), (0.0, 4, True)]
)
def test_no_cpu_estimate_with_a_gpu_or_an_unknown_size(parameters_b, threads, cpu_only):
    assert estimated_prompt_speed(parameters_b, cpu_threads=threads, cpu_only=cpu_only) is None


@pytest.mark.parametrize(
    ("expected", "wait"),
    [
        (None, 300.0),
        (Expectation(10.0, "measured"), 300.0),  # the read timeout is the floor
        (Expectation(1000.0, "measured"), 1000.0 * SAFETY),
        (Expectation(1e9, "estimated"), MAX_WAIT),
    ],
)
def test_first_byte_wait(expected, wait):
    assert first_byte_wait(300.0, expected) == wait
