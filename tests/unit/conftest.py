"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from real_waits import no_real_sleep  # noqa: F401  (autouse: no real sleeps in unit tests)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """The HTTP layer mocked; the test fails if an answer it registered was never asked for.

    test_privacy.py and test_provider.py register answers a call may not need and override this
    with a mock that does not check that.
    """
    with responses.RequestsMock() as rsps:
        yield rsps
