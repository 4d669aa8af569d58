"""No real waiting in unit tests: a test whose calls to ``time.sleep`` (in any thread) ask for
more than ``SLEEP_BUDGET_S`` seconds in all fails, unless it is marked ``real_wait``. Waits on a
``threading.Event`` or ``Condition`` that run out their timeout count too (the time they
took): a wait that the code ends early, by setting the event, is a signal, not a pause.

Polls for a condition are not counted: ``wait_until`` below (it returns as soon as the
condition holds, and fails the test at its timeout) and ``subprocess``'s own (``Popen.wait``
with a timeout sleeps in steps while a real child process runs; nothing there could be injected).

A unit test that needs time to pass injects a clock or a zero pause where the code offers one
(``restart.RESTART_PAUSE``, the transport's backoff, a patched clock), waits on an event that the
code under test sets, or polls with ``wait_until``. ``@pytest.mark.real_wait("why")`` is for
the few that must see real time go by; the reason is required. tests/unit/conftest.py and
tests/testing/conftest.py use the fixture; tests/integration and the other suites are not held
to it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

SLEEP_BUDGET_S = 0.05  # less than any fixed wait a test could rely on, on a loaded machine
MARKER = "real_wait"
_POLLERS = frozenset({"subprocess", __name__})  # modules whose sleeps are polls, not waits
# Modules whose timed-out waits are their own polls (threading: Event.wait on a Condition;
# the others: pytest's and xdist's machinery, and the HTTP server's serve_forever loop).
_WAIT_POLLERS = frozenset({"threading", "execnet.gateway_base", "socketserver", "queue"})


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Returns as soon as ``condition()`` is true (polled every millisecond); fails the test
    when it is still false after ``timeout`` seconds."""
    ends = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > ends:
            pytest.fail(f"still false after {timeout} s: {condition.__qualname__}", pytrace=True)
        time.sleep(0.001)


def _reason(marker: pytest.Mark) -> str:
    return str(marker.args[0]) if marker.args else str(marker.kwargs.get("reason", ""))


@pytest.fixture(autouse=True)
def no_real_sleep(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Counts what ``time.sleep`` is asked for during the test and fails it above the budget."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        if not _reason(marker).strip():
            pytest.fail(
                f"@pytest.mark.{MARKER} needs a reason: why must this test wait in real time?"
            )
        yield
        return
    asked: list[float] = []
    lock = threading.Lock()
    real_sleep = time.sleep

    def counted_sleep(seconds: float) -> None:
        if sys._getframe(1).f_globals.get("__name__") not in _POLLERS:
            with lock:
                asked.append(seconds)
        real_sleep(seconds)

    def timed_out(wait: Callable[..., bool]) -> Callable[..., bool]:
        """``wait``, counting the time of each call that ran out its timeout (a real wait);
        a wait that something ended early is the code's own signal, not a pause."""

        def counted_wait(self: object, timeout: float | None = None) -> bool:
            started = time.monotonic()
            done = wait(self, timeout)
            caller = sys._getframe(1).f_globals.get("__name__")
            if not done and timeout and caller not in _WAIT_POLLERS:
                with lock:
                    asked.append(time.monotonic() - started)
            return done

        return counted_wait

    monkeypatch.setattr(time, "sleep", counted_sleep)
    monkeypatch.setattr(threading.Event, "wait", timed_out(threading.Event.wait))
    monkeypatch.setattr(threading.Condition, "wait", timed_out(threading.Condition.wait))
    yield
    with lock:
        total = sum(asked)
        calls = len(asked)
    if total > SLEEP_BUDGET_S:
        pytest.fail(
            f"slept {total:.2f} s in real time ({calls} call(s) of time.sleep or timed-out "
            "waits), over the unit "
            f"tests' budget of {SLEEP_BUDGET_S} s: inject a clock or a zero pause, wait on an "
            f"event, or mark the test @pytest.mark.{MARKER}('why it must wait')",
            pytrace=False,
        )
