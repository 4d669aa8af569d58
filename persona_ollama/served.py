"""What one server has: its model listing (cached a few seconds) and each model's facts.

The listing is one round trip that answers several questions (the default model, local-only
checks, `persona-ollama models`), so a command or a generation asks it once. Facts come from
the listing when it says enough (complete entries), else from the backend's ``describe``, and are
cached in the server's state (server_state.py), shared by every provider for that server.
Unknown models get the backend's own "not found".
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from .errors import ModelNotAvailableError, ServerError, ServerNotRunningError
from .model_info import ModelInfo
from .privacy import cannot_tell

if TYPE_CHECKING:
    from .backends.base import Backend
    from .server_state import ServerState

log = logging.getLogger("persona_ollama")

LISTING_TTL = 10.0  # seconds; keeps `available_models` cheap without hiding a fresh pull for long
# At most this many descriptions to find longer-context models for an overflow's hint, on
# servers whose listing does not state context lengths.
MAX_DESCRIBE_FOR_ALTERNATIVES = 12


class ServedModels:
    """The models of the server behind ``backend`` (thread-safe); their facts are kept in
    ``state``, the server's state."""

    def __init__(self, backend: Backend, url: str, state: ServerState) -> None:
        self.backend = backend
        self.url = url
        self.state = state
        self._facts = state.facts
        self._lock = threading.Lock()
        self._listing: tuple[float, list[ModelInfo]] | None = None

    def forget(self) -> None:
        """Drop the cached listing and this server's cached facts."""
        self._facts.forget()
        with self._lock:
            self._listing = None

    def forget_listing(self, model: str) -> None:
        """Drop the cached listing and ``model``'s cached facts: the next call asks anew."""
        self._facts.forget(model)
        with self._lock:
            self._listing = None

    def listing(self, *, deadline: float | None = None) -> list[ModelInfo]:
        """Every model the server has (embedders and remote ones too), cached LISTING_TTL s;
        ``deadline``: the call's (deadline.py), for a listing asked now."""
        return self._dated_listing(deadline)[1]

    def _dated_listing(self, deadline: float | None = None) -> tuple[float, list[ModelInfo]]:
        """The listing and the time.monotonic() instant it was asked for."""
        with self._lock:
            cached = self._listing
        if cached is not None and time.monotonic() - cached[0] < LISTING_TTL:
            return cached
        asked = time.monotonic()
        models = self.backend.models(deadline=deadline)
        with self._lock:
            self._listing = (asked, models)
        self._facts.reconcile(models)  # drop facts of removed or re-pulled models
        return asked, models

    def chat_models(self, *, deadline: float | None = None) -> list[str]:
        """The names of the models that can chat; raises when the server is down."""
        return [model.name for model in self.listing(deadline=deadline) if model.can_chat]

    def listed(self, model: str, *, fresh: bool = False) -> ModelInfo | None:
        """``model``'s entry in the listing already fetched (none is fetched), or None.
        ``fresh``: only from a listing younger than LISTING_TTL."""
        with self._lock:
            cached = self._listing
        if cached is None or (fresh and time.monotonic() - cached[0] >= LISTING_TTL):
            return None
        canonical = self.state.names.canonical
        key = canonical(model)
        return next((m for m in cached[1] if canonical(m.name) == key), None)

    def facts(self, model: str, *, deadline: float | None = None) -> ModelInfo:
        """Everything known about ``model``: cached, from a complete listing entry, or
        described by the backend; the backend's "not found" when the server lacks it."""
        info = self._facts.get(model)
        if info is not None:
            return info
        listed = self.listed(model, fresh=True)
        if listed is not None and listed.complete:  # no description needed
            # Named as asked, as a description is: "llama3.2", not the listing's ":latest".
            info = replace(listed, name=model)
            self._facts.put(info)
            return info
        try:
            info = self.backend.describe(model, self.listed(model), deadline=deadline)
        except ModelNotAvailableError:
            raise self.not_found(model, deadline=deadline) from None
        self._facts.put(info)
        return info

    def checked_facts(
        self, model: str, *, sent: bool = False, deadline: float | None = None
    ) -> tuple[ModelInfo | None, ModelInfo]:
        """``model``'s listing entry and facts for local-only mode, which fails closed: a
        listing or description that fails or is malformed is a LocalOnlyViolationError
        (``sent``: the request has gone already). The facts are never older than the listing
        and come from the server's description of the model (remote fields may be there
        only), not from the listing alone."""
        try:
            asked, models = self._dated_listing(deadline)
        except ServerNotRunningError:
            raise  # nothing can be sent anyway, and this error says how to start the server
        except ServerError as error:
            why = f"the model list failed: {error.message}"
            raise cannot_tell(model, why, self.url, sent=sent) from None
        canonical = self.state.names.canonical
        key = canonical(model)
        listed = next((m for m in models if canonical(m.name) == key), None)
        info = self._facts.get(model, since=asked)
        if info is None:
            try:
                info = self.backend.describe(model, listed, deadline=deadline)
            except ModelNotAvailableError:
                raise self.not_found(model, deadline=deadline) from None
            except ServerNotRunningError:
                raise
            except ServerError as error:
                why = f"its description failed: {error.message}"
                raise cannot_tell(model, why, self.url, sent=sent) from None
            self._facts.put(info)
        return listed, info

    def not_found(self, model: str, *, deadline: float | None = None) -> ModelNotAvailableError:
        """The backend's error for a model the server lacks, naming what it has instead."""
        self._facts.forget(model)
        with self._lock:
            self._listing = None
        try:
            served: list[str] | None = self.chat_models(deadline=deadline)
        except ServerError:
            served = None
        canonical = self.state.names.canonical
        key = canonical(model)
        if served is not None and any(canonical(name) == key for name in served):
            # Listed, and not found: one address, several machines (balancer.py).
            from .balancer import missing_on_a_machine

            return missing_on_a_machine(model, self.url, seen="listed")
        return self.backend.not_found(model, served)

    def longer_context(
        self,
        context_length: int | None,
        model: str,
        holds: int = 0,
        *,
        deadline: float | None = None,
    ) -> list[str]:
        """Local models known to have a longer context than ``context_length``, of at least
        ``holds`` tokens (one still too short is no way out), longest first."""
        if context_length is None:
            return []
        try:
            listing = self.listing(deadline=deadline)
        except ServerError:
            return []
        longer = []
        described = 0
        for entry in listing:
            if entry.placement.remote:
                continue  # never suggested: only a caller who names it sends data there
            length = entry.context_length
            if length is None and described < MAX_DESCRIBE_FOR_ALTERNATIVES:
                # A listing without context lengths: describe (on the error path only).
                described += 1
                try:
                    facts = self.facts(entry.name, deadline=deadline)
                except ServerError:
                    continue
                length = facts.context_length if facts.can_chat else None
            fits = length is not None and length > context_length and length >= holds
            if fits and entry.name != model:
                longer.append((length, entry.name))
        return [name for _, name in sorted(longer, reverse=True)[:3]]
