"""The double that stands in for the server this provider talks to.

The contract tests (tests/contract) start the server they drive the installed plugin against
with :func:`stand_in`, and never name a face.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import FakeModel
    from .server import FakeServer


def stand_in(models: Iterable[FakeModel | str]) -> FakeServer:
    """A double of the Acme server (not started: use it in ``with``) serving the first of
    ``models``: an Acme server serves one model."""
    from .acme import AcmeFace
    from .server import FakeServer

    return FakeServer([AcmeFace()], list(models)[:1])
