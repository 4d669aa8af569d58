"""Fixtures the unit tests share: none of them may sleep in real time (tests/real_waits.py)."""

from __future__ import annotations

from real_waits import no_real_sleep  # noqa: F401  (autouse: no real sleeps in unit tests)
