"""The deadline of one call: a value the provider makes and passes down, never a shared state.

The provider makes one for each ``generate()`` or ``stream()`` with :func:`ends_at` and hands
it, as the argument ``deadline=``, to everything the call does: choosing the default model,
the model's facts, the request, every read of the answer. A backend passes it to each request
of its transport, which bounds every wait with it (the pool, the connection, retries, the
headers' watchdog, each read of the body). Nothing keeps it: two calls at once, in threads or
in ``generate_async``, each carry their own.

A deadline is a ``time.monotonic()`` instant, or None for none.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


def ends_at(seconds: float | None, *, within: float | None = None) -> float | None:
    """The instant ``seconds`` from now (None: no limit of its own), never later than
    ``within``, the deadline of the call this one is part of (None: none)."""
    if seconds is None:
        return within
    end = time.monotonic() + seconds
    return end if within is None else min(end, within)


@contextlib.contextmanager
def call_deadline(seconds: float | None, *, within: float | None = None) -> Iterator[float | None]:
    """:func:`ends_at` for the block that makes one call: it yields the instant, which the
    block passes on; nothing is kept, and leaving the block changes nothing."""
    yield ends_at(seconds, within=within)
