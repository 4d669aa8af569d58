"""The models Ollama's double knows by name: :data:`LIBRARY` (real models' facts, pullable),
:data:`DEFAULT_MODELS` and models made ``FROM`` a remote one (:func:`remote_alias`)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from .models import FakeModel
from .ollama_names import OLLAMA_NAMES, cloud_base

__all__ = [
    "DEFAULT_MODELS",
    "LIBRARY",
    "as_model",
    "remote_alias",
]


def _library(*models: FakeModel) -> dict[str, FakeModel]:
    adopted = [OLLAMA_NAMES.adopt(model) for model in models]
    return {OLLAMA_NAMES.key(model.name): model for model in adopted}


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


def as_model(model: FakeModel | str) -> FakeModel:
    """A FakeModel from ``model``: a name :data:`LIBRARY` knows takes that model's facts, a cloud
    name is a :func:`~persona_ollama.testing.ollama_names.cloud_stub`."""
    if isinstance(model, FakeModel):
        return model
    known = LIBRARY.get(OLLAMA_NAMES.key(model))
    return replace(known) if known else OLLAMA_NAMES.model(model)


def remote_alias(name: str, of: FakeModel, **facts: Any) -> FakeModel:
    """A model created ``FROM`` a remote one (``notes-model`` created with ``FROM
    gpt-oss:120b-cloud``): no cloud suffix, the same remote_host (server/create.go)."""
    digest = hashlib.sha256(f"fake-ollama-remote:{name}".encode()).hexdigest()
    return replace(
        of,
        name=name,
        digest=digest,
        remote_model=of.remote_model or cloud_base(of.name),
        **facts,
    )
