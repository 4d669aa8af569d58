"""The first-byte wait (waits.py): measured beats estimated, the default is the floor."""

from __future__ import annotations

import pytest

from persona_ollama.timings import Speeds
from persona_ollama.waits import (
    MAX_WAIT,
    SAFETY,
    Expectation,
    expected_first_byte_seconds,
    first_byte_wait,
)


def speeds(prompt_tps: float | None = 50.0, load: float | None = 12.0) -> Speeds:
    return Speeds("http://127.0.0.1:11434", "m:8b", "d", 3, prompt_tps, 9.0, load, 0.0)


def test_measured_speed_gives_load_plus_prompt_time():
    expected = expected_first_byte_seconds(20_000, measured=speeds(), estimated_seconds=1.0)
    assert expected == Expectation(12.0 + 20_000 / 50.0, "measured")


def test_a_loaded_model_has_no_load_to_wait_for():
    expected = expected_first_byte_seconds(20_000, measured=speeds(), loaded=True)
    assert expected.seconds == pytest.approx(400.0)


def test_the_estimate_is_used_without_a_measured_prompt_speed():
    expected = expected_first_byte_seconds(
        20_000, measured=speeds(prompt_tps=None), estimated_seconds=2000.0
    )
    assert expected == Expectation(2000.0, "estimated")


def test_nothing_known_means_no_expectation():
    assert expected_first_byte_seconds(20_000) is None


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
