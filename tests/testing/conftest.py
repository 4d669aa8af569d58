"""The double's own tests are unit tests: they are held to the same rule on real sleeps."""

from __future__ import annotations

from real_waits import no_real_sleep  # noqa: F401  (autouse: no real sleeps in unit tests)
