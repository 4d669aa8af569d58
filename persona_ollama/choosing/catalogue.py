"""The model catalogue: what each well-known model needs and how good it is for personas.

Three layers, each able to add models or change fields of earlier ones: the packaged
``data/models.json`` (itself a built-in plugin), entries from plugins' hook
``persona_ollama_catalogue_entries``, and last the user's JSON file named by
PERSONA_OLLAMA_CATALOGUE. Names are matched the way Ollama matches them (``names.canonical``),
and ``aliases`` say which tag ``:latest`` points to.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import names
from ..errors import ConfigurationError
from ..settings import CATALOGUE_VAR
from .packaged_catalogue import entries_of
from .packaged_catalogue import packaged_document as packaged_document  # re-exported
from .plugins import implementations
from .units import GiB as GiB  # re-exported: tests and plugins import it from here
from .units import MiB
from .units import format_gib as format_gib  # re-exported

TYPICAL_CONTEXT = 8192

# Runtime overhead beside weights and KV cache: the CUDA/Metal context and llama.cpp's compute
# buffers (which grow with the model's width), at Ollama's default batch of 512.
OVERHEAD_BYTES = 512 * MiB
OVERHEAD_SHARE = 0.02
# f16 KV cache bytes per token of context when a model's architecture is unknown: what a
# grouped-query-attention model of that size needs (Llama 3 8B: 128 KiB; 70B: 320 KiB),
# rounded up. (largest parameter count in billions, bytes per token)
KV_RULE_OF_THUMB = ((4.0, 128 * 1024), (9.0, 160 * 1024), (16.0, 200 * 1024), (40.0, 256 * 1024))
KV_LARGEST = 320 * 1024


def kv_bytes_rule_of_thumb(parameters_b: float) -> int:
    """KV cache bytes per token for a model of this size whose architecture is unknown."""
    for largest, per_token in KV_RULE_OF_THUMB:
        if parameters_b <= largest:
            return per_token
    return KV_LARGEST


def runtime_memory_bytes(weights_bytes: int, kv_bytes_per_token: int, context_tokens: int) -> int:
    """Memory to run a model: weights + KV cache for ``context_tokens`` + runtime overhead."""
    overhead = OVERHEAD_BYTES + weights_bytes * OVERHEAD_SHARE
    return int(weights_bytes + kv_bytes_per_token * context_tokens + overhead)


@dataclass(frozen=True)
class ModelSpec:
    """One catalogue model. Sizes are bytes; ``quality`` runs 0-100 (higher is better for
    persona generation) and ``quality_reason`` says why in a line."""

    name: str
    family: str
    parameters_b: float
    context_length: int
    download_bytes: int
    memory_bytes: int
    quality: int
    quality_reason: str = ""
    active_parameters_b: float | None = None
    typical_context: int = TYPICAL_CONTEXT
    kv_bytes_per_token: int | None = None
    quantization: str = "Q4_K_M"
    thinking: bool = False
    embedding: bool = False
    moe: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def kv_per_token(self) -> int:
        """KV-cache bytes per token of context: the catalogue's figure, else a rule of thumb."""
        if self.kv_bytes_per_token is not None:
            return self.kv_bytes_per_token
        return kv_bytes_rule_of_thumb(self.parameters_b)

    @property
    def compute_parameters_b(self) -> float:
        """Parameters read per generated token: the active ones for a mixture of experts."""
        return self.active_parameters_b or self.parameters_b

    def memory_at(self, context_tokens: int, weights_bytes: int | None = None) -> int:
        """Memory to run at ``context_tokens`` (capped at the trained length), from
        ``memory_bytes`` at the typical context; ``weights_bytes`` replaces the download size
        when the installed file is known."""
        extra_weights = 0 if weights_bytes is None else weights_bytes - self.download_bytes
        extra_tokens = min(context_tokens, self.context_length) - min(
            self.typical_context, self.context_length
        )
        return self.memory_bytes + int(
            extra_weights * (1 + OVERHEAD_SHARE) + extra_tokens * self.kv_per_token
        )


class Catalogue:
    """Model specs by name, looked up the way Ollama compares names."""

    def __init__(self, models: Iterable[ModelSpec], sources: Iterable[str] = ()) -> None:
        self.models = tuple(sorted(models, key=lambda spec: names.canonical(spec.name)))
        self.sources = tuple(sources)
        self._index: dict[str, ModelSpec] = {}
        for spec in self.models:
            for alias in spec.aliases:
                self._index.setdefault(names.canonical(alias), spec)
        for spec in self.models:  # a real name beats another model's alias
            self._index[names.canonical(spec.name)] = spec

    def get(self, name: str) -> ModelSpec | None:
        """The spec for ``name`` ("llama3", "LLAMA3:latest", "library/llama3:8b"...), or None."""
        return self._index.get(names.canonical(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        return f"Catalogue({len(self.models)} models from {', '.join(self.sources)})"


# -- loading ------------------------------------------------------------------------------

_REQUIRED = ("name", "parameters_b", "context_length", "download_bytes", "quality")
_MEMORY_INPUTS = {"download_bytes", "kv_bytes_per_token", "typical_context", "parameters_b"}


def _text(key: str, value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"field {key!r} must be a non-empty string, got {value!r}")


def _sentence(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    raise ValueError(f"field {key!r} must be a string, got {value!r}")


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValueError(f"field {key!r} must be a positive integer, got {value!r}")


def _positive_number(key: str, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ValueError(f"field {key!r} must be a positive number, got {value!r}")


def _quality(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100:
        return value
    raise ValueError(f"field {key!r} must be an integer from 0 to 100, got {value!r}")


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"field {key!r} must be true or false, got {value!r}")


def _aliases(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(item, str) and item.strip() for item in value):
        return tuple(item.strip() for item in value)
    raise ValueError(f"field {key!r} must be a list of model names, got {value!r}")


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "name": _text,
    "family": _text,
    "parameters_b": _positive_number,
    "context_length": _positive_int,
    "download_bytes": _positive_int,
    "memory_bytes": _positive_int,
    "quality": _quality,
    "quality_reason": _sentence,
    "active_parameters_b": _positive_number,
    "typical_context": _positive_int,
    "kv_bytes_per_token": _positive_int,
    "quantization": _text,
    "thinking": _flag,
    "embedding": _flag,
    "moe": _flag,
    "aliases": _aliases,
}
_OPTIONAL = {"active_parameters_b", "kv_bytes_per_token"}  # may be null


def _check_field(key: str, value: Any) -> Any:
    """The value in ModelSpec's form, or a ValueError saying what was expected."""
    check = _CHECKS.get(key)
    if check is None:
        raise ValueError(f"unknown field {key!r}; expected some of {', '.join(_CHECKS)}")
    return None if value is None and key in _OPTIONAL else check(key, value)


def _spec_from_entry(entry: Any, base: ModelSpec | None) -> ModelSpec:
    """A spec from one entry, on top of ``base`` when the name is already known."""
    if isinstance(entry, ModelSpec):
        return entry
    if not isinstance(entry, Mapping):
        raise ValueError(f"an entry must be an object, got {type(entry).__name__}")
    fields = {
        key: _check_field(key, value) for key, value in entry.items() if not key.startswith("_")
    }
    if "name" in fields:
        try:
            fields["name"] = names.check_name(fields["name"])
        except ConfigurationError as error:
            raise ValueError(error.message) from None
    if base is not None:
        fields.pop("name", None)
        merged = dataclasses.replace(base, **fields)
        if "memory_bytes" in fields or not _MEMORY_INPUTS & fields.keys():
            return merged
        return dataclasses.replace(merged, memory_bytes=_computed_memory(merged))
    missing = [key for key in _REQUIRED if key not in fields]
    if missing:
        raise ValueError(f"a new model needs {', '.join(missing)}")
    fields.setdefault("family", names.split(fields["name"])[2])
    spec = ModelSpec(**{"memory_bytes": 0, **fields})
    if "memory_bytes" in fields:
        return spec
    return dataclasses.replace(spec, memory_bytes=_computed_memory(spec))


def _computed_memory(spec: ModelSpec) -> int:
    context = min(spec.typical_context, spec.context_length)
    return runtime_memory_bytes(spec.download_bytes, spec.kv_per_token, context)


def _merge(
    models: dict[str, ModelSpec], aliases: dict[str, str], entries: Iterable[Any], where: str
) -> None:
    """Apply ``entries`` to ``models`` (by canonical name); ``aliases`` maps alias -> name."""
    for position, entry in enumerate(entries):
        label = entry.get("name") if isinstance(entry, Mapping) else getattr(entry, "name", None)
        key = names.canonical(label) if isinstance(label, str) and label.strip() else ""
        try:
            spec = _spec_from_entry(entry, models.get(key) or models.get(aliases.get(key, "")))
        except (TypeError, ValueError) as error:
            named = f" ({label})" if isinstance(label, str) else ""
            raise ConfigurationError(
                f"{where}: models[{position}]{named}: {error}",
                hint="Each entry needs name, parameters_b, context_length, download_bytes and "
                "quality (or just the fields to change, for a model already in the catalogue); "
                "see data/models.json in the package for examples.",
            ) from None
        name = names.canonical(spec.name)
        models[name] = spec
        aliases.update((names.canonical(alias), name) for alias in spec.aliases)


def read_user_catalogue(path: str) -> list[Any]:
    """The entries of the user's catalogue file; ConfigurationError names the file and line."""
    where = f"{CATALOGUE_VAR}={path}"
    try:
        text = Path(path).expanduser().read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(
            f"{where}: cannot read the file ({error}).",
            hint=f"Point {CATALOGUE_VAR} at a JSON file, or unset it.",
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(
            f"{where}: line {error.lineno} column {error.colno}: {error.msg}.",
            hint='The file must be JSON, e.g. {"models": [{"name": "llama3.1:8b", "quality": 70}]}',
        ) from None
    return entries_of(document, where)


def load_catalogue(environ: Mapping[str, str] | None = None) -> Catalogue:
    """The merged catalogue: packaged file < plugins < the user's PERSONA_OLLAMA_CATALOGUE.

    Raises ConfigurationError naming the source (the file and line, or the plugin) when an
    entry is malformed or a plugin fails.
    """
    env = os.environ if environ is None else environ
    models: dict[str, ModelSpec] = {}
    aliases: dict[str, str] = {}
    sources: list[str] = []
    for impl in implementations("persona_ollama_catalogue_entries"):
        where = f"catalogue plugin {impl.plugin_name!r}"
        try:
            result = impl(environ=env)
            entries = None if result is None else list(result)
        except ConfigurationError:
            raise
        except Exception as error:  # third-party code: named in the message
            raise ConfigurationError(
                f"{where} failed: {type(error).__name__}: {error}",
                hint="Update or uninstall the package that provides it "
                "(`persona-ollama doctor` lists plugins).",
            ) from error
        if entries is not None:
            _merge(models, aliases, entries, where)
            sources.append(impl.plugin_name)
    user_file = (env.get(CATALOGUE_VAR) or "").strip()
    if user_file:
        where = f"{CATALOGUE_VAR}={user_file}"
        _merge(models, aliases, read_user_catalogue(user_file), where)
        sources.append(user_file)
    return Catalogue(models.values(), sources)
