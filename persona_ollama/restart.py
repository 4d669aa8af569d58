"""Asking again when the connection breaks in the middle of an answer.

Behind a balancer (docs/scaling.md), a machine that dies while it answers cuts the stream:
the transport raises :class:`~persona_ollama.errors.ConnectionBrokenError` and the partial
answer is discarded. A blocking ``generate()`` then sends the same request again on a fresh
connection, ``restarts`` times at most (default 1); the balancer sends it to a machine that
is still up. Only a broken connection is asked again: an error line from the server, the
deadline, a refused prompt are answers, and asking again would get the same one.

A call with ``on_token`` has shown part of the answer already. It is asked again only when
nothing reached ``on_token`` yet, or when the caller passed ``on_restart``: that callable gets
the error first, so it can clear what it showed, and the whole answer then streams again from
its first piece. Without it, the error is raised, saying how much had been delivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import ConfigurationError, ConnectionBrokenError
from .settings import RESTARTS_VAR

if TYPE_CHECKING:
    from ._persona import LLMResponse
    from .stream import ChatStream

log = logging.getLogger("persona_ollama")

RESTARTS = 1
RESTART_PAUSE = 0.5  # seconds before the first restart, doubled for each next one
RESTART_PAUSE_MAX = 8.0  # ... up to this many


def check_restarts(value: object) -> int:
    """``value`` as a number of restarts (a whole number >= 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"restarts must be a whole number of 0 or more, got {value!r}.",
            hint=f"e.g. OllamaProvider(restarts=2) or {RESTARTS_VAR}=2; 0 never asks again.",
        )
    return value


def generate_with_restarts(
    start: Callable[[], ChatStream],
    *,
    restarts: int,
    on_token: Callable[[str], object] | None,
    on_restart: Callable[[ConnectionBrokenError], object] | None,
    ends_at: float | None,
    before_restart: Callable[[], object] | None = None,
) -> LLMResponse:
    """The response of the stream ``start()`` returns, started again after a broken
    connection (see the module's docstring); ``ends_at`` (time.monotonic()) is the call's
    deadline: a restart whose pause would reach it is not started, the break is raised.
    ``before_restart`` is called just before each restart (local-only mode: forget where the
    models run, so that the machine the restart reaches is checked anew)."""
    attempt = 0
    while True:
        chat: ChatStream | None = None
        delivered = 0
        broken: ConnectionBrokenError | None = None
        try:
            try:
                chat = start()
                pieces = iter(chat)
            except ConnectionBrokenError as error:  # e.g. the model's facts, cut mid-read
                broken = error
            while broken is None:
                try:
                    piece = next(pieces)
                except StopIteration:
                    break
                except ConnectionBrokenError as error:
                    broken = error
                    break
                # Outside the except: an error on_token raises is the caller's, never a
                # reason to send this request again (even a ConnectionBrokenError of its own).
                if on_token is not None:
                    delivered += 1
                    on_token(piece)
        finally:
            # on_token raising (or Ctrl-C inside it) must not keep the connection checked out.
            if chat is not None:
                chat.close()
        if broken is None:
            assert chat is not None
            response = chat.response
            assert response is not None
            response.raw_response["restarts"] = attempt
            return response
        if attempt >= restarts:
            raise broken
        if delivered and on_restart is None:
            raise broken.with_context(
                f"{delivered} piece(s) of it had reached on_token, so it was not asked "
                "again (the caller would see them twice)."
            ).with_fields(
                hint="Pass on_restart= to generate() to be told and receive the whole answer "
                "again, or leave out on_token."
            )
        attempt += 1
        # A moment for a balancer or proxy to notice the machine is down, doubling up to a
        # bound: restarts=20 must not wait for days.
        pause = min(RESTART_PAUSE * 2.0 ** min(attempt - 1, 64), RESTART_PAUSE_MAX)
        if ends_at is not None and time.monotonic() + pause >= ends_at:
            # No time left to be answered: the break is the error, not a timeout after the
            # pause that would hide it.
            raise broken
        log.warning(
            "%s Asked again on a fresh connection (restart %d of %d).",
            broken.message,
            attempt,
            restarts,
        )
        if delivered and on_restart is not None:
            on_restart(broken)
        time.sleep(pause)
        if before_restart is not None:
            before_restart()
