"""The deadline of one call: owned by the provider, handed to the transport as a value.

The provider opens a :func:`call_deadline` block around everything one ``generate()`` or
``stream()`` does (choosing the default model, model facts, the request, every read of the
answer). The transport of each backend is given :func:`current` when it is built: it asks it
once as a request starts, and passes the value it got down through every wait of that request
(the pool, the connection, retries, the headers' watchdog, each read of the body). The
transport itself keeps no deadline and reads no context variable.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

# The time.monotonic() instant by which the current call must be over (None: no deadline);
# one value per context, so concurrent calls (threads, generate_async) each have their own.
CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "persona_ollama_call_deadline", default=None
)


def current() -> float | None:
    """The time.monotonic() instant the current call must end by, or None."""
    return CALL_DEADLINE.get()


@contextlib.contextmanager
def call_deadline(seconds: float | None) -> Iterator[float | None]:
    """Within the block, every request ends by ``seconds`` from now (None: no change); a
    block inside another keeps the earlier end. Yields the instant in force."""
    if seconds is None:
        yield CALL_DEADLINE.get()
        return
    end = time.monotonic() + seconds
    current = CALL_DEADLINE.get()
    if current is not None:
        end = min(end, current)
    token = CALL_DEADLINE.set(end)
    try:
        yield end
    finally:
        CALL_DEADLINE.reset(token)
