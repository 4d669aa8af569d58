"""Counts the hypothesis cases the fuzz properties run and prints the total at the end."""

from __future__ import annotations

from collections import Counter

import pytest

_CASES = pytest.StashKey[Counter]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_CASES] = Counter()


@pytest.fixture(autouse=True)
def no_restart_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """Restarts run (a fuzzed answer often breaks off mid-way), without restart.py's pause
    before each (0.5 s): thousands of cases would otherwise spend most of their time asleep."""
    from persona_ollama import restart

    monkeypatch.setattr(restart, "RESTART_PAUSE", 0.0)


@pytest.fixture
def tally(request: pytest.FixtureRequest):
    """Call once per example: the count of cases actually run, per property."""
    cases = request.config.stash[_CASES]
    name = request.node.name
    return lambda: cases.update([name])


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    cases = config.stash.get(_CASES, Counter())
    if cases:
        failed = len(terminalreporter.stats.get("failed", []))
        terminalreporter.write_line(
            f"hypothesis: {sum(cases.values())} cases over {len(cases)} properties, "
            f"{failed} failing properties (unhandled exceptions fail a property)"
        )
