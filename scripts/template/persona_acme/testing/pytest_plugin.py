"""pytest plugin (entry point ``pytest11``): the fixture ``fake_server``.

pytest imports this module in every session of every project that has persona-acme installed,
so it imports nothing but pytest until the fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import FakeServer


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """A started double of the Acme server serving one small model; stopped after the test.
    Point a client at ``fake_server.url``."""
    from .models import FakeModel
    from .stand_in import stand_in

    with stand_in([FakeModel(name="acme-7b", context_length=16384)]) as fake:
        yield fake
