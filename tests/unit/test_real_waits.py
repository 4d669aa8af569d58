"""The guard on real sleeps in unit tests (tests/real_waits.py), run on small test files."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
from real_waits import no_real_sleep

def pytest_configure(config):
    config.addinivalue_line("markers", "real_wait(reason): must wait")
"""

TESTS = """
import subprocess
import sys
import threading
import time

import pytest
from real_waits import wait_until


def test_a_fixed_wait():
    time.sleep(0.06)


def test_short_waits_that_add_up():
    for _ in range(4):
        time.sleep(0.02)


def test_a_short_wait():
    time.sleep(0.01)


@pytest.mark.real_wait("it must")
def test_a_marked_wait():
    time.sleep(0.06)


@pytest.mark.real_wait
def test_a_marked_wait_without_a_reason():
    pass


def test_polls_until_a_condition_holds():
    ends = time.monotonic() + 0.06
    wait_until(lambda: time.monotonic() > ends)


def test_polls_that_time_out_fail():
    wait_until(lambda: False, timeout=0.01)


def test_an_event_that_times_out():
    assert not threading.Event().wait(0.06)


def test_a_condition_that_times_out():
    condition = threading.Condition()
    with condition:
        assert not condition.wait(0.06)


def test_an_event_set_by_another_thread():
    event = threading.Event()
    threading.Timer(0.06, event.set).start()  # the Timer's own wait is the code's: not counted
    assert event.wait(5)


def test_waits_for_a_child_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    assert child.wait(timeout=30) == 0
"""


@pytest.mark.real_wait("runs tests that sleep, to see the guard fail them")
def test_the_guard_fails_unit_tests_that_sleep_and_lets_marked_ones_and_polls_pass(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sleeps=TESTS)

    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")

    outcomes = {
        report.nodeid.split("::")[-1]: report.outcome
        for report in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
        if report.outcome == "failed" or report.when == "call"
    }
    assert outcomes == {
        "test_a_fixed_wait": "failed",
        "test_short_waits_that_add_up": "failed",
        "test_a_short_wait": "passed",
        "test_a_marked_wait": "passed",
        "test_a_marked_wait_without_a_reason": "failed",
        "test_polls_until_a_condition_holds": "passed",
        "test_polls_that_time_out_fail": "failed",
        "test_waits_for_a_child_process": "passed",
        "test_an_event_that_times_out": "failed",
        "test_a_condition_that_times_out": "failed",
        "test_an_event_set_by_another_thread": "passed",
    }
    result.stdout.fnmatch_lines(
        [
            "*slept 0.06 s in real time (1 call(s) of time.sleep*)*budget of 0.05 s*real_wait*",
            "*slept 0.08 s in real time (4 call(s) of time.sleep*",
            "*real_wait needs a reason*",
            "*still false after 0.01 s*",
        ],
        consecutive=False,
    )
