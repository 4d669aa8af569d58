"""One type for a model a server has (:class:`ModelInfo`), where it runs (:class:`Placement`),
and the cache of one server's facts.

Backends fill :class:`ModelInfo` from their server's documents; everything above them reads
only this type. Each server's facts are cached in its
:class:`~persona_ollama.server_state.ServerState` (shared by every provider for that server),
by canonical model name. An entry expires after FACTS_TTL and is dropped as soon as a fresh
listing shows the model removed or re-pulled (a new digest).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import names

if TYPE_CHECKING:
    from .backends.rules import NameRules

FACTS_TTL = 600.0  # seconds; a model's described facts change only when it is re-pulled
# A model whose files on the server total less than this holds no weights: it is a stub whose
# requests go elsewhere (a cloud stub is a few hundred bytes; the smallest real GGUF is ~50 MB).
STUB_MAX_BYTES = 1 << 20
# Servers before v0.30 list no capabilities: then the name is the only clue to an embedder.
EMBEDDING_NAME = re.compile(r"embed|minilm|(^|[/_.-])(bge|e5|gte)([-_.:]|$)", re.IGNORECASE)


def embedding_only(capabilities: Iterable[str] | None, name: str) -> bool:
    """True for a model that can only embed: by its capabilities, else by its name."""
    caps = set(capabilities or ())
    if caps:
        return "completion" not in caps and "embedding" in caps
    return bool(EMBEDDING_NAME.search(name))


@dataclass(frozen=True)
class Placement:
    """Where a model runs: on the server itself, or elsewhere (``remote``).

    ``host`` is the URL the server forwards prompts to (None when unknown or local),
    ``remote_model`` the name it asks for there, and ``evidence`` says how we know.
    """

    remote: bool = False
    host: str | None = None
    remote_model: str | None = None
    evidence: str = ""
    # False when the server could not say where the model runs (its listing failed or was
    # malformed): local-only mode refuses such a model; otherwise it counts as local.
    known: bool = True

    @property
    def host_text(self) -> str:
        """The destination, for messages: the host, or a description when it is unknown."""
        return self.host or "a host the server does not name"


LOCAL = Placement()


def placement(
    name: str,
    *,
    remote_host: Any = None,
    remote_model: Any = None,
    size: Any = None,
    unknown: str | None = None,
    rules: NameRules | None = None,
) -> Placement:
    """Where ``name`` runs, from everything the server says about it.

    ``unknown``, when set, says why the server's remote fields could not be read: a model
    not otherwise shown to be remote is then of unknown placement.
    ``remote_host``/``remote_model`` are what the server's listing or description says of
    where it forwards the model (the backend reads them). A name that ``rules`` (the backend's
    model-name rules; default: the default API's) say is forwarded by its form alone runs on
    their ``remote_host`` whatever the server lists. ``size`` (the listing's) below
    STUB_MAX_BYTES means no weights are on the server.
    """
    host = remote_host.strip() if isinstance(remote_host, str) else ""
    upstream = remote_model.strip() if isinstance(remote_model, str) else ""
    if host or upstream:
        return Placement(True, host or None, upstream or None, "the server reports remote_host")
    for field, value in (("remote_host", remote_host), ("remote_model", remote_model)):
        if value not in (None, "", [], {}) and not isinstance(value, str):
            # Not text, yet there: a server that says so in a form this plugin does not
            # know may forward the model all the same.
            kind = type(value).__name__
            return Placement(True, None, None, f"the server reports {field} (as a {kind})")
    rules = names.DEFAULT_RULES if rules is None else rules
    if rules.is_remote(name):
        return Placement(True, rules.remote_host, None, rules.remote_evidence)
    if isinstance(size, (int, float)) and not isinstance(size, bool) and 0 < size < STUB_MAX_BYTES:
        return Placement(True, None, None, f"the server holds only {size} bytes for it, no weights")
    if (size is not None and not isinstance(size, (int, float))) or isinstance(size, bool):
        # A size that is not a number cannot rule out a stub.
        return Placement(
            evidence=f"its size is not a number (a {type(size).__name__})", known=False
        )
    if unknown:
        return Placement(evidence=unknown, known=False)
    return LOCAL


# "8.0B", "137M", "1.5T": parameter sizes as servers list them.
_PARAMETER_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMBT])\s*$", re.IGNORECASE)
_SCALE = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}


@dataclass(frozen=True)
class ModelInfo:
    """What a server says about one of its models. Fields it does not state are None.

    ``complete`` is False for an entry of a listing that lacks what a full description
    gives (the context length, the capabilities): the provider then asks the backend to
    describe the model before planning a request for it.

    ``context_length`` is the window the prompt and the answer share (a server's "max total
    tokens"). ``input_limit`` is a separate, smaller budget for the prompt alone, for a
    server that states one (a "max input tokens"); None where the window is the only limit.
    """

    name: str
    family: str | None = None
    parameter_size: str | None = None
    quantization_level: str | None = None
    context_length: int | None = None
    capabilities: tuple[str, ...] = ()
    size_bytes: int | None = None
    modelfile_num_ctx: int | None = None
    digest: str | None = None
    placement: Placement = LOCAL
    complete: bool = True
    input_limit: int | None = None

    @property
    def thinks(self) -> bool:
        """True when the server lists the "thinking" capability."""
        return "thinking" in self.capabilities

    @property
    def is_embedding(self) -> bool:
        """True for an embedding-only model: by capabilities, else (older servers) by name."""
        return embedding_only(self.capabilities, self.name)

    @property
    def can_chat(self) -> bool:
        """True unless the model is embedding-only."""
        return not self.is_embedding

    @property
    def parameters_b(self) -> float | None:
        """Billions of parameters from ``parameter_size`` ("8.0B", "137M"), or None."""
        match = _PARAMETER_SIZE.match(self.parameter_size or "")
        if match is None:
            return None
        return float(match.group(1)) * _SCALE[match.group(2).upper()]


class FactsCache:
    """One server's model -> ModelInfo, with expiry (thread-safe); a part of its
    :class:`~persona_ollama.server_state.ServerState`. Two spellings of one model share an
    entry by ``names``, the server's model-name rules (ServerState.names)."""

    def __init__(self, ttl: float = FACTS_TTL, rules: NameRules = names.DEFAULT_RULES) -> None:
        self.ttl = ttl
        self.names = rules
        self._entries: dict[str, tuple[ModelInfo, float]] = {}
        self._lock = threading.Lock()

    def get(self, model: str, *, since: float | None = None) -> ModelInfo | None:
        """The cached facts of ``model``, or None if absent, stale, or (``since``, a
        time.monotonic() instant) learnt before ``since``."""
        with self._lock:
            entry = self._entries.get(self.names.canonical(model))
        if entry is None or time.monotonic() - entry[1] >= self.ttl:
            return None
        if since is not None and entry[1] < since:
            return None
        return entry[0]

    def put(self, info: ModelInfo) -> None:
        """Cache ``info`` for ``ttl`` seconds."""
        with self._lock:
            self._entries[self.names.canonical(info.name)] = (info, time.monotonic())

    def forget(self, model: str | None = None) -> None:
        """Drop one model's facts, or every model's."""
        with self._lock:
            if model is None:
                self._entries.clear()
            else:
                self._entries.pop(self.names.canonical(model), None)

    def reconcile(self, models: Iterable[ModelInfo]) -> None:
        """Drop facts of models that a fresh listing no longer has or has with a new digest."""
        canonical = self.names.canonical
        digests = {canonical(model.name): model.digest for model in models}
        with self._lock:
            for key in list(self._entries):
                known = self._entries[key][0].digest
                if key not in digests or (known and known != digests[key]):
                    del self._entries[key]
