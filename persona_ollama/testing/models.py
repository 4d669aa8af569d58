"""FakeModel: the facts of one model and how the server describes it on each endpoint.

A FakeModel's name is what its author wrote; the server it is installed on checks it and shows
it in its own form (model_names.py, ``Naming.adopt``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from .go import go_float, go_quote, local_rfc3339

__all__ = [
    "Answer",
    "FakeModel",
]

Answer = Union[str, Callable[[Any], str]]
"""A canned answer: the text itself, or a function of the request JSON that returns it."""

CAPABILITIES = (
    "completion",
    "tools",
    "insert",
    "vision",
    "embedding",
    "thinking",
    "image",
    "audio",
)

_FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}


@dataclass
class FakeModel:
    """One installed (or pullable) model.

    ``name`` is what its author wrote; once installed it is checked and shown in the server's
    display form (``Naming.adopt``, model_names.py). A ``context_length`` of 0 means the model
    file does not say: the field is then left out of the server's model descriptions, and the
    window is not capped. ``reply`` and ``thinking`` are what the model answers when no
    ``reply_with`` rule applies; ``parameters`` are the model's own default options, which sit
    between request options and server defaults.
    ``modified_at`` is a Unix time in seconds; /api/tags lists the newest first.
    """

    name: str
    family: str = "llama"
    parameter_size: str = "3.2B"
    quantization_level: str = "Q4_K_M"
    context_length: int = 131072
    size: int = 2_019_393_189
    capabilities: list[str] = field(default_factory=lambda: ["completion", "tools"])
    digest: str = ""
    modified_at: float = field(default_factory=time.time)
    reply: Answer | None = None
    thinking: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    embedding_length: int = 3072
    remote_host: str = ""
    remote_model: str = ""
    # KV cache per token of context, for /api/ps ``size``: llama3.2:3b's, 2 (K and V) x 28
    # layers x 8 KV heads x 128 dimensions x 2 bytes (f16), from its published config.
    kv_bytes_per_token: int = 114_688

    def __post_init__(self) -> None:
        unknown = sorted(set(self.capabilities) - set(CAPABILITIES))
        if unknown:
            raise ValueError(f"unknown capabilities {unknown}; expected some of {CAPABILITIES}")

    @property
    def is_remote(self) -> bool:
        """The server forwards this model's requests (server/routes.go ChatHandler)."""
        return bool(self.remote_host and self.remote_model)

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def details(self, *, with_lengths: bool) -> dict[str, Any]:
        """``details`` object; lengths appear only in /api/tags from v0.30 (omitted when 0)."""
        details: dict[str, Any] = {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }
        if with_lengths and self.context_length:
            details["context_length"] = self.context_length
        if with_lengths and self.has("embedding") and self.embedding_length:
            details["embedding_length"] = self.embedding_length
        return details

    def tags_entry(self, *, v030: bool, remote_fields: bool = True) -> dict[str, Any]:
        """One element of ``/api/tags`` ``models``; ``remote_fields``: the server has them
        (v0.12.0+, api/types.go ListModelResponse, omitted when empty)."""
        entry: dict[str, Any] = {"name": self.name, "model": self.name}
        if remote_fields:
            entry.update(self.remote_fields())
        entry.update(
            {
                "modified_at": self.modified_at_text,
                "size": self.size,
                "digest": self.digest,
                "details": self.details(with_lengths=v030),
            }
        )
        if v030 and self.capabilities:
            entry["capabilities"] = list(self.capabilities)
        return entry

    def remote_fields(self) -> dict[str, Any]:
        """``remote_model`` and ``remote_host``, in the order Go writes them, when set."""
        fields: dict[str, Any] = {}
        if self.remote_model:
            fields["remote_model"] = self.remote_model
        if self.remote_host:
            fields["remote_host"] = self.remote_host
        return fields

    @property
    def modified_at_text(self) -> str:
        return local_rfc3339(int(self.modified_at * 1e9))

    def model_info(self) -> dict[str, Any]:
        """GGUF metadata; Go encodes this map with its keys sorted."""
        arch = self.family
        info: dict[str, Any] = {
            "general.architecture": arch,
            "general.parameter_count": _parameter_count(self.parameter_size),
            "general.file_type": _FILE_TYPES.get(self.quantization_level, 15),
            "general.quantization_version": 2,
            f"{arch}.block_count": 28,
            f"{arch}.embedding_length": self.embedding_length,
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.tokens": [],  # longer than 5 elements, so emptied without verbose
        }
        if self.context_length:
            info[f"{arch}.context_length"] = self.context_length
        return dict(sorted(info.items()))

    def parameters_text(self) -> str:
        """Modelfile parameters: key padded to 30 characters, a space, the Go ``%#v`` value."""
        lines = []
        for key, value in self.parameters.items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"{key:<30} {_go_value(item)}")
        return "\n".join(lines)


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (int, float)):
        # Modelfile numbers come back from JSON as float64 (server/routes.go GetModelInfo, %#v).
        return go_float(value)
    return json.dumps(value)


def _parameter_count(size: str) -> int:
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(size[-1:].upper(), 1.0)
    try:
        return int(float(size.rstrip("KMBTkmbt")) * scale)
    except ValueError:
        return 0
