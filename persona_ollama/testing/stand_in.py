"""The double that stands in for the server this provider talks to by default.

The contract tests (tests/contract) start the server they drive the installed plugin against
with :func:`stand_in`, and never name a face: a provider built from this repository
(docs/writing-a-provider.md) makes this one function serve its own face, and the same contract
suite then runs against its server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import FakeModel
    from .server import FakeServer


def stand_in(models: Iterable[FakeModel | str]) -> FakeServer:
    """A double (not started: use it in ``with``) of the server of ``settings.DEFAULT_API``,
    with ``models`` installed."""
    # Ollama, with its native and /v1 faces.
    from .ollama_server import FakeOllama

    return FakeOllama(models=models)
