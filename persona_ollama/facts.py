"""What the server says about installed models (/api/show), cached for the whole process.

Persona builds a new provider for every call, so the cache is shared by every provider in
the process, keyed by server URL and canonical model name. An entry expires after FACTS_TTL
and is dropped as soon as /api/tags shows the model removed or re-pulled (a new digest).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import names
from .context import modelfile_num_ctx, trained_context_length

FACTS_TTL = 600.0  # seconds; /api/show facts change only when a model is re-pulled
# Where Ollama forwards a cloud model's requests: the remote_host of every cloud stub since
# v0.12.0, and the default of OLLAMA_CLOUD_BASE_URL (server/cloud_proxy.go,
# defaultCloudProxyBaseURL) since v0.18.0, which forwards any ":cloud"/"-cloud" name.
CLOUD_HOST = "https://ollama.com:443"
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
    """Where a model runs: on the Ollama server itself, or elsewhere (``remote``).

    ``host`` is the URL the server forwards prompts to (None when unknown or local),
    ``remote_model`` the name it asks for there, and ``evidence`` says how we know.
    """

    remote: bool = False
    host: str | None = None
    remote_model: str | None = None
    evidence: str = ""

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
) -> Placement:
    """Where ``name`` runs, from everything the server says about it.

    ``remote_host``/``remote_model`` are the fields of /api/tags and /api/show (v0.12.0+:
    api/types.go ListModelResponse and ShowResponse; the server forwards chat to a model that
    has them, server/routes.go ChatHandler). A ``:cloud``/``-cloud`` name is forwarded to
    ollama.com whatever the server lists (v0.18.0+ proxies it even with no stub installed).
    ``size`` (from /api/tags) below STUB_MAX_BYTES means no weights are on the server.
    """
    host = remote_host.strip() if isinstance(remote_host, str) else ""
    upstream = remote_model.strip() if isinstance(remote_model, str) else ""
    if host or upstream:
        return Placement(True, host or None, upstream or None, "the server reports remote_host")
    if names.is_cloud(name):
        return Placement(
            True, CLOUD_HOST, None, "Ollama forwards ':cloud' and '-cloud' models to ollama.com"
        )
    if isinstance(size, int) and not isinstance(size, bool) and 0 < size < STUB_MAX_BYTES:
        return Placement(True, None, None, f"the server holds only {size} bytes for it, no weights")
    return LOCAL


@dataclass(frozen=True)
class ModelInfo:
    """What the server says about an installed model (from /api/show)."""

    name: str
    family: str | None
    parameter_size: str | None
    quantization_level: str | None
    context_length: int | None
    capabilities: tuple[str, ...]
    size_bytes: int | None = None
    modelfile_num_ctx: int | None = None
    digest: str | None = None
    placement: Placement = LOCAL

    @property
    def thinks(self) -> bool:
        """True when the server lists the "thinking" capability."""
        return "thinking" in self.capabilities

    @property
    def can_chat(self) -> bool:
        """True unless the model is embedding-only."""
        return not embedding_only(self.capabilities, self.name)


def _described(details: Mapping[str, Any], caps: Any) -> dict[str, Any]:
    """The fields /api/show and /api/tags describe alike: ``details`` and ``capabilities``."""
    return {
        "family": details.get("family"),
        "parameter_size": details.get("parameter_size"),
        "quantization_level": details.get("quantization_level"),
        "capabilities": tuple(c for c in caps if isinstance(c, str))
        if isinstance(caps, list)
        else (),
    }


def model_info_from_show(
    name: str,
    show: Mapping[str, Any],
    digest: str | None,
    tags_entry: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Read a /api/show answer (fields may be missing on old servers); ``tags_entry``, the
    model's /api/tags element when known, adds its size and remote fields."""
    entry = tags_entry or {}
    details = show.get("details")
    if not isinstance(details, dict):
        details = {}
    return ModelInfo(
        name=name,
        **_described(details, show.get("capabilities")),
        context_length=trained_context_length(show),
        modelfile_num_ctx=modelfile_num_ctx(show),
        digest=digest,
        size_bytes=entry.get("size") if isinstance(entry.get("size"), int) else None,
        placement=placement(
            name,
            remote_host=show.get("remote_host") or entry.get("remote_host"),
            remote_model=show.get("remote_model") or entry.get("remote_model"),
            size=entry.get("size"),
        ),
    )


def model_info_from_tags(name: str, entry: Mapping[str, Any]) -> ModelInfo | None:
    """Facts from one /api/tags entry, or None when it lacks what /api/show would give.

    Since v0.30 the list carries ``details.context_length`` and ``capabilities`` (api/types.go
    ListModelResponse, ModelDetails), enough to plan a request without /api/show. The
    Modelfile's own num_ctx is not listed there: the ladder alone sizes the window then.
    """
    details = entry.get("details")
    caps = entry.get("capabilities")
    if not isinstance(details, dict) or not isinstance(caps, list):
        return None
    length = details.get("context_length")
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
        return None
    size = entry.get("size")
    where = placement(
        name,
        remote_host=entry.get("remote_host"),
        remote_model=entry.get("remote_model"),
        size=size,
    )
    if where.remote:  # a cloud or remote model: /api/show says more about where it runs
        return None
    digest = entry.get("digest")
    return ModelInfo(
        name=name,
        **_described(details, caps),
        context_length=length,
        size_bytes=size if isinstance(size, int) else None,
        digest=str(digest) if digest else None,
    )


class FactsCache:
    """Thread-safe (server URL, model) -> ModelInfo with expiry."""

    def __init__(self, ttl: float = FACTS_TTL) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[ModelInfo, float]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, model: str) -> ModelInfo | None:
        """The cached facts of ``model`` on the server at ``url``, or None if absent or stale."""
        with self._lock:
            entry = self._entries.get((url, names.canonical(model)))
        if entry is None or time.monotonic() - entry[1] >= self.ttl:
            return None
        return entry[0]

    def put(self, url: str, info: ModelInfo) -> None:
        """Cache ``info`` for the server at ``url`` for ``ttl`` seconds."""
        with self._lock:
            self._entries[(url, names.canonical(info.name))] = (info, time.monotonic())

    def forget(self, url: str, model: str | None = None) -> None:
        """Drop one model's facts, or every model's of that server."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == url]:
                if model is None or key[1] == names.canonical(model):
                    del self._entries[key]

    def reconcile(self, url: str, tags: Iterable[Mapping[str, Any]]) -> None:
        """Drop facts of models that /api/tags no longer lists or lists with a new digest."""
        digests = {names.canonical(str(t.get("name", ""))): t.get("digest") for t in tags}
        with self._lock:
            for key in [k for k in self._entries if k[0] == url]:
                known = self._entries[key][0].digest
                if key[1] not in digests or (known and known != digests[key[1]]):
                    del self._entries[key]

    def clear(self) -> None:
        """Forget every server's facts."""
        with self._lock:
            self._entries.clear()


FACTS = FactsCache()
