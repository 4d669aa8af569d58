"""What this process knows of each server it talks to: one :class:`ServerState` per server,
and :data:`SERVERS`, the one registry of them.

What is a fact of a server outlives any one provider: Persona builds a new provider for every
command, and a batch or a scale-out builds many for one server. So the models' facts, the
windows the server has loaded, its release, the kind of server behind an OpenAI-compatible API
(and the entry serving each model there) and the warnings already given about it live in the
server's :class:`ServerState`. The provider takes it from :data:`SERVERS` once, when it opens
its backend, and passes it down explicitly: to the backend's constructor and to the modules
that plan and check a request. Nothing below the provider looks a server up.

A server is its normalised address and API: the native API and the OpenAI-compatible one of
the same server answer differently (a /v1 server has one fixed window), so their states are
apart. The registry keeps the :data:`MAX_SERVERS` used last, and every state a provider still
holds (held weakly: two live providers for one server always share one state). A state that
is dropped loses only what can be asked of its server again; its warnings may be given again.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .model_info import FactsCache
from .windows import Windows

if TYPE_CHECKING:
    from .backends.rules import NameRules

__all__ = ["MAX_SERVERS", "SERVERS", "ServerState", "Servers", "Warnings"]

log = logging.getLogger("persona_ollama")

# More servers than one process talks to in practice (a balancer and the machines behind it,
# a few remote hosts): beyond it the one used longest ago is dropped, unless a provider holds it.
MAX_SERVERS = 64


class Warnings:
    """The warnings already given, by key: each one is logged once (thread-safe)."""

    def __init__(self) -> None:
        self._given: set[str] = set()
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        """True the first time ``key`` is seen; it is remembered from then on."""
        with self._lock:
            if key in self._given:
                return False
            self._given.add(key)
            return True

    def warn_once(self, key: str, message: str) -> None:
        """Log ``message`` at WARNING the first time ``key`` is seen here."""
        if self.first(key):
            log.warning(message)

    def clear(self) -> None:
        """Forget which warnings were given."""
        with self._lock:
            self._given.clear()


class ServerState:
    """Everything this process knows of one server (``key``: its address and API).

    ``facts`` and ``windows`` guard themselves; ``release``, ``kind`` and ``served`` are
    written under ``lock``. The kind of server and the entries serving models are kept only
    by backends whose API does not say which server it is (the OpenAI-compatible one).
    """

    __slots__ = (
        "__weakref__",
        "facts",
        "key",
        "kind",
        "lock",
        "release",
        "release_asked",
        "release_at",
        "served",
        "warnings",
        "windows",
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self.facts = FactsCache()
        self.windows = Windows()
        self.warnings = Warnings()
        self.lock = threading.Lock()
        # The server's release as its backend reads it; None when unreadable. Asked once per
        # facts.ttl: ``release_asked`` and ``release_at`` are set before the question goes out.
        self.release: tuple[int, ...] | None = None
        self.release_asked = False
        self.release_at = 0.0  # when it was asked (time.monotonic()); asked again after facts.ttl
        # The kind of server as its model list last said it (None: not asked yet), and
        # canonical model name -> the model list's entry serving it.
        self.kind: str | None = None
        self.served: dict[str, Mapping[str, Any]] = {}

    def __repr__(self) -> str:
        return f"ServerState({self.key!r})"

    @property
    def names(self) -> NameRules:
        """The server's model-name rules: which spellings name one model, for its facts and
        its listing. The default API's backend's until a backend says otherwise (the /v1
        backend, once it knows which kind of server it talks to)."""
        return self.facts.names

    @names.setter
    def names(self, rules: NameRules) -> None:
        """Compare this server's names by ``rules`` from now on; facts keyed by other rules
        are forgotten (asked again), so that one model never has two entries."""
        if rules is not self.facts.names:
            self.facts.forget()
            self.facts.names = rules


class Servers:
    """The registry: key -> :class:`ServerState`, the ``size`` used last plus every state still
    held elsewhere. Also the warnings that are about no one server."""

    def __init__(self, size: int = MAX_SERVERS) -> None:
        self.size = size
        self.warnings = Warnings()
        self._recent: OrderedDict[str, ServerState] = OrderedDict()
        self._held: weakref.WeakValueDictionary[str, ServerState] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def state(self, key: str) -> ServerState:
        """The state of the server ``key``, the same object for every caller while it is kept.
        Called once per provider (when its backend opens), never per request."""
        with self._lock:
            state = self._recent.get(key) or self._held.get(key)
            if state is None:
                state = ServerState(key)
                self._held[key] = state
            self._recent[key] = state
            self._recent.move_to_end(key)
            while len(self._recent) > self.size:
                self._recent.popitem(last=False)
            return state

    def forget_warnings(self) -> None:
        """Forget every warning given, about any server or none."""
        self.warnings.clear()
        with self._lock:
            states = list(self._held.values())
        for state in states:
            state.warnings.clear()

    def clear(self) -> None:
        """Forget every server and every warning (tests; a host that starts over). Providers
        that hold a state keep it; a provider built afterwards starts afresh."""
        self.forget_warnings()
        with self._lock:
            self._recent.clear()
            self._held = weakref.WeakValueDictionary()


SERVERS = Servers()
