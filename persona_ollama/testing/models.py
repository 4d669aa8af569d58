"""FakeModel: the facts of one model and how the server describes it on each endpoint."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Union

from .go import go_float, go_quote, local_rfc3339
from .model_names import ModelName, parse_name

__all__ = [
    "CLOUD_HOST",
    "DEFAULT_MODELS",
    "LIBRARY",
    "Answer",
    "FakeModel",
    "as_model",
    "cloud_stub",
    "is_cloud_name",
    "remote_alias",
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

# A cloud stub's remote_host (server/create.go remoteURL turns "ollama.com" into this) and
# its size in /api/tags: a config blob and a few small layers, no weights.
CLOUD_HOST = "https://ollama.com:443"
STUB_SIZE = 384
_FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}


@dataclass
class FakeModel:
    """One installed (or pullable) model.

    ``name`` is normalised to the server's display form, always tagged (``"llama3"`` becomes
    ``"llama3:latest"``). A ``context_length`` of 0 means the GGUF does not say: the field is then
    left out of ``/api/show`` ``model_info`` and ``/api/tags`` details, and num_ctx is not capped.
    ``reply`` and ``thinking`` are what the model answers when no ``reply_with`` rule applies;
    ``parameters`` are Modelfile PARAMETERs, which sit between request options and server defaults.
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
        parsed = parse_name(self.name.strip())
        if not parsed.is_valid:
            raise ValueError(
                f"{self.name!r} is not a valid model name "
                "(expected e.g. 'llama3.2:3b' or 'namespace/model:tag')"
            )
        self.name = parsed.display
        unknown = sorted(set(self.capabilities) - set(CAPABILITIES))
        if unknown:
            raise ValueError(f"unknown capabilities {unknown}; expected some of {CAPABILITIES}")
        if not self.digest:
            self.digest = hashlib.sha256(f"fake-ollama:{self.name}".encode()).hexdigest()
        if is_cloud_name(self.name) and not self.remote_host:
            # Whatever else it says, a ":cloud"/"-cloud" model runs on the cloud host.
            self.remote_host, self.remote_model = CLOUD_HOST, _cloud_base(self.name)

    @property
    def is_remote(self) -> bool:
        """The server forwards this model's requests (server/routes.go ChatHandler)."""
        return bool(self.remote_host and self.remote_model)

    @property
    def parsed_name(self) -> ModelName:
        return parse_name(self.name)

    @property
    def key(self) -> str:
        """The case-insensitive lookup key shared by every spelling of this name."""
        return self.parsed_name.key

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


def is_cloud_name(name: str) -> bool:
    """A ``:cloud`` tag or one ending in ``-cloud`` (internal/modelref parseSourceSuffix)."""
    tag = parse_name(name.strip()).tag.lower()
    return tag == "cloud" or tag.endswith("-cloud")


def _cloud_base(name: str) -> str:
    parsed = parse_name(name.strip())
    base = parsed.display.rsplit(":", 1)[0]
    tag = parsed.tag.lower()
    return base if tag == "cloud" else f"{base}:{parsed.tag[: -len('-cloud')]}"


def cloud_stub(name: str, **facts: Any) -> FakeModel:
    """What pulling ``NAME-cloud`` installs: a few hundred bytes whose requests the server
    forwards to the cloud host (``remote_host``), asking there for ``remote_model``."""
    defaults: dict[str, Any] = {
        "family": "gptoss",
        "parameter_size": "116.8B",
        "quantization_level": "MXFP4",
        "size": STUB_SIZE,
        "capabilities": ["completion", "tools", "thinking"],
        "remote_host": CLOUD_HOST,
        "remote_model": _cloud_base(name),
    }
    return FakeModel(name, **{**defaults, **facts})


def remote_alias(name: str, of: FakeModel, **facts: Any) -> FakeModel:
    """A model created ``FROM`` a remote one (``notes-model`` created with ``FROM
    gpt-oss:120b-cloud``): no cloud suffix, the same remote_host (server/create.go)."""
    digest = hashlib.sha256(f"fake-ollama-remote:{name}".encode()).hexdigest()
    return replace(
        of,
        name=name,
        digest=digest,
        remote_model=of.remote_model or _cloud_base(of.name),
        **facts,
    )


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


def _library(*models: FakeModel) -> dict[str, FakeModel]:
    return {model.key: model for model in models}


# Facts of a few real models, so that a double given ["qwen3:8b"] behaves like that model.
LIBRARY: dict[str, FakeModel] = _library(
    FakeModel("llama3.2:3b", modified_at=1_746_405_464.706),
    FakeModel(
        "llama3.2:1b",
        parameter_size="1.2B",
        quantization_level="Q8_0",
        size=1_321_098_329,
        modified_at=1_746_405_400.0,
    ),
    FakeModel(
        "qwen3:8b",
        family="qwen3",
        parameter_size="8.2B",
        context_length=40960,
        size=5_225_388_164,
        capabilities=["completion", "tools", "thinking"],
        embedding_length=4096,
        modified_at=1_746_405_300.0,
    ),
    FakeModel(
        "qwen3:0.6b",
        family="qwen3",
        parameter_size="751.63M",
        context_length=40960,
        size=522_653_767,
        capabilities=["completion", "tools", "thinking"],
        embedding_length=1024,
        modified_at=1_746_405_200.0,
    ),
    FakeModel(
        "gemma3:4b",
        family="gemma3",
        parameter_size="4.3B",
        size=3_338_801_804,
        capabilities=["completion", "vision"],
        embedding_length=2560,
        modified_at=1_746_405_100.0,
    ),
    FakeModel(
        "nomic-embed-text:latest",
        family="nomic-bert",
        parameter_size="137M",
        quantization_level="F16",
        context_length=2048,
        size=274_302_450,
        capabilities=["embedding"],
        embedding_length=768,
        modified_at=1_746_405_000.0,
    ),
)

DEFAULT_MODELS: tuple[str, ...] = ("llama3.2:3b", "qwen3:8b", "nomic-embed-text:latest")
"""What a double given no models installs (its pytest fixture too): a tool-capable chat model,
a thinking model and an embedding-only model."""


def as_model(model: FakeModel | str, library: dict[str, FakeModel] | None = None) -> FakeModel:
    """A FakeModel from ``model``; a name found in ``library`` takes that model's facts."""
    if isinstance(model, FakeModel):
        return model
    known = (LIBRARY if library is None else library).get(parse_name(model.strip()).key)
    if known:
        return replace(known)
    return cloud_stub(model) if is_cloud_name(model) else FakeModel(model)
