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
from .modelfacts import BASIS_CATALOGUE, BYTES_PER_PARAMETER, Architecture, ModelFacts
from .modelfacts import kv_bytes_rule_of_thumb as kv_bytes_rule_of_thumb  # re-exported
from .packaged_catalogue import entries_of
from .packaged_catalogue import packaged_document as packaged_document  # re-exported
from .plugins import BUILTIN_PREFIX, implementations
from .quality import Score, quality
from .speed import REFERENCE_JOB
from .units import GiB as GiB  # re-exported: tests and plugins import it from here
from .units import MiB
from .units import format_gib as format_gib  # re-exported

# The context at which schema-1 files state ``memory_bytes``.
TYPICAL_CONTEXT = 8192
# A model whose trained context the catalogue does not know (null) is assumed to hold the
# reference job's window: neither ranked down for a short context nor credited a long one.
ASSUMED_CONTEXT = REFERENCE_JOB.window()
# Bytes per parameter of a download whose size the catalogue does not know, by quantisation,
# from the block formats: Q8_0 stores 32 weights in 34 bytes (8.5 bits), MXFP4 32 weights
# in 17 bytes (4.25 bits), NVFP4 16 weights in 9 bytes (4.5 bits), F16/BF16 2 bytes; anything
# else as a Q4_K_M file (modelfacts.BYTES_PER_PARAMETER). Embeddings and layers kept at
# higher precision make real files somewhat larger.
BYTES_PER_PARAMETER_BY_QUANTIZATION = (
    ("Q8_0", 34 / 32), ("MXFP4", 17 / 32), ("NVFP4", 9 / 16), ("BF16", 2.0), ("F16", 2.0),
)  # fmt: skip


def estimated_download_bytes(parameters_b: float, quantization: str | None) -> int:
    """A download size from the parameter count and quantisation (see above)."""
    level = (quantization or "").upper()
    per_parameter = next(
        (size for prefix, size in BYTES_PER_PARAMETER_BY_QUANTIZATION if level.startswith(prefix)),
        BYTES_PER_PARAMETER,
    )
    return int(parameters_b * 1e9 * per_parameter)


# Runtime overhead beside weights and KV cache: the CUDA/Metal context and llama.cpp's compute
# buffers (which grow with the model's width), at Ollama's default batch of 512.
OVERHEAD_BYTES = 512 * MiB
OVERHEAD_SHARE = 0.02


def runtime_memory_bytes(weights_bytes: int, kv_bytes_per_token: int, context_tokens: int) -> int:
    """Memory to run a model: weights + KV cache for ``context_tokens`` + runtime overhead."""
    overhead = OVERHEAD_BYTES + weights_bytes * OVERHEAD_SHARE
    return int(weights_bytes + kv_bytes_per_token * context_tokens + overhead)


@dataclass(frozen=True)
class ModelSpec:
    """One catalogue model. Sizes are bytes; ``quality`` runs 0-100 (higher is better for
    persona generation; None: no benchmark figures) and ``quality_reason`` says what it rests
    on: the figures the formula of :mod:`.quality` used, or the file that gave it."""

    name: str
    family: str
    parameters_b: float
    context_length: int
    download_bytes: int
    memory_bytes: int
    quality: int | None = None
    quality_reason: str = ""
    active_parameters_b: float | None = None
    typical_context: int = TYPICAL_CONTEXT
    kv_bytes_per_token: int | None = None
    quantization: str | None = "Q4_K_M"  # None: the catalogue does not know it
    thinking: bool = False
    embedding: bool = False
    moe: bool = False
    aliases: tuple[str, ...] = ()
    architecture: Architecture | None = None
    scores: tuple[tuple[str, Score], ...] = ()
    sources: tuple[str, ...] = ()
    note: str = ""
    cloud_only: bool = False
    size_estimated: bool = False  # no download size known: worked out from the parameters
    context_known: bool = True  # False: the trained context is unknown, ASSUMED_CONTEXT used

    @property
    def facts(self) -> ModelFacts:
        """What memory and speed are estimated from."""
        return ModelFacts(
            name=self.name,
            parameters_b=self.parameters_b,
            active_parameters_b=self.compute_parameters_b,
            weights_bytes=self.download_bytes,
            context_length=self.context_length,
            architecture=self.architecture,
            kv_bytes_per_token=self.kv_bytes_per_token,
            thinking=self.thinking,
            basis=BASIS_CATALOGUE,
        )

    @property
    def compute_parameters_b(self) -> float:
        """Parameters read per generated token: the active ones for a mixture of experts."""
        return self.active_parameters_b or self.parameters_b

    def memory_at(self, context_tokens: int, weights_bytes: int | None = None) -> int:
        """Memory to run at ``context_tokens`` (capped at the trained length), from
        ``memory_bytes`` at the typical context; ``weights_bytes`` replaces the download size
        when the installed file is known."""
        extra_weights = 0 if weights_bytes is None else weights_bytes - self.download_bytes
        facts = self.facts
        extra_kv = facts.kv_bytes(context_tokens) - facts.kv_bytes(self.typical_context)
        return self.memory_bytes + int(extra_weights * (1 + OVERHEAD_SHARE) + extra_kv)


class Catalogue:
    """Model specs by name, looked up the way Ollama compares names."""

    def __init__(
        self, models: Iterable[ModelSpec], sources: Iterable[str] = (), as_of: str | None = None
    ) -> None:
        self.models = tuple(sorted(models, key=lambda spec: names.canonical(spec.name)))
        self.sources = tuple(sources)
        self.as_of = as_of  # the packaged file's date, shown by `recommend`
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

_REQUIRED = ("name", "parameters_b")
# Schema 2 writes an unknown fact as null: the field is then left out (a known model keeps
# what it had; a new one gets the estimate below and says so).
_UNKNOWN_WHEN_NULL = {"download_bytes", "context_length", "quantization", "family"}
_MEMORY_INPUTS = {
    "download_bytes", "kv_bytes_per_token", "typical_context", "parameters_b", "architecture"
}  # fmt: skip


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


def _architecture(key: str, value: Any) -> Architecture | None:
    """Schema 2's ``architecture``: layers, KV heads and head size are needed for the KV
    cache; if any is null, the rule of thumb applies (None)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"field {key!r} must be an object, got {value!r}")
    known = {"layers", "kv_heads", "head_dim", "sliding_window", "global_layers"}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"field {key!r}: unknown key {unknown[0]!r}; expected {sorted(known)}")
    numbers = {
        name: None if value.get(name) is None else _positive_int(f"{key}.{name}", value[name])
        for name in known - {"sliding_window"}
    }
    # 0: the other layers keep no per-token cache (a recurrent state, e.g. Qwen3.5's DeltaNet).
    window = value.get("sliding_window")
    if window is not None and (
        not isinstance(window, int) or isinstance(window, bool) or window < 0
    ):
        raise ValueError(f"field '{key}.sliding_window' must be 0 or more tokens, got {window!r}")
    numbers["sliding_window"] = window
    if numbers["layers"] is None or numbers["kv_heads"] is None or numbers["head_dim"] is None:
        return None
    return Architecture(**numbers)  # type: ignore[arg-type]


def _scores(key: str, value: Any) -> tuple[tuple[str, Score], ...]:
    """Schema 2's ``scores``: benchmark -> {value 0-100, source URL, date}."""
    if not isinstance(value, Mapping):
        raise ValueError(f"field {key!r} must be an object, got {value!r}")
    scores = []
    for name, figure in sorted(value.items()):
        where = f"{key}.{name}"
        if not isinstance(figure, Mapping):
            raise ValueError(f"field {where!r} must be an object with value and source")
        number = figure.get("value")
        if (
            not isinstance(number, (int, float))
            or isinstance(number, bool)
            or not 0 <= number <= 100
        ):
            raise ValueError(f"field {where}.value must be a number from 0 to 100, got {number!r}")
        source = figure.get("source")
        if not isinstance(source, str) or not source.startswith(("https://", "http://")):
            raise ValueError(f"field {where}.source must be the URL of the figure, got {source!r}")
        date = figure.get("date", "")
        scores.append((str(name), Score(float(number), source, str(date or ""))))
    return tuple(scores)


def _urls(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and all(
        isinstance(item, str) and item.startswith(("https://", "http://")) for item in value
    ):
        return tuple(value)
    raise ValueError(f"field {key!r} must be a list of URLs, got {value!r}")


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
    "architecture": _architecture,
    "scores": _scores,
    "sources": _urls,
    "note": _sentence,
    "cloud_only": _flag,
}
# May be null (schema 2 writes a missing fact as null).
_OPTIONAL = {"active_parameters_b", "kv_bytes_per_token", "architecture", "note", "quality"}


def _check_field(key: str, value: Any) -> Any:
    """The value in ModelSpec's form, or a ValueError saying what was expected."""
    check = _CHECKS.get(key)
    if check is None:
        raise ValueError(f"unknown field {key!r}; expected some of {', '.join(_CHECKS)}")
    return None if value is None and key in _OPTIONAL else check(key, value)


def _spec_from_entry(entry: Any, base: ModelSpec | None, where: str = "") -> ModelSpec:
    """A spec from one entry, on top of ``base`` when the name is already known. ``where``
    names the source, for a ``quality`` the entry gives itself."""
    if isinstance(entry, ModelSpec):
        return entry
    if not isinstance(entry, Mapping):
        raise ValueError(f"an entry must be an object, got {type(entry).__name__}")
    fields = {
        key: _check_field(key, value)
        for key, value in entry.items()
        if not key.startswith("_") and not (value is None and key in _UNKNOWN_WHEN_NULL)
    }
    if entry.get("quantization", "") is None:
        fields["quantization"] = None
    _quality_fields(fields, where)
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
    from ..backends.ollama_rules import split  # the catalogue lists Ollama's names

    fields.setdefault("family", split(fields["name"])[2])
    if "download_bytes" not in fields:
        fields["download_bytes"] = estimated_download_bytes(
            fields["parameters_b"], fields.get("quantization", "Q4_K_M")
        )
        fields["size_estimated"] = True
    if "context_length" not in fields:
        fields["context_length"], fields["context_known"] = ASSUMED_CONTEXT, False
    if "active_parameters_b" in fields and fields["active_parameters_b"] is not None:
        fields.setdefault("moe", fields["active_parameters_b"] < fields["parameters_b"])
    spec = ModelSpec(**{"memory_bytes": 0, **fields})
    if "memory_bytes" in fields:
        return spec
    return dataclasses.replace(spec, memory_bytes=_computed_memory(spec))


def _quality_fields(fields: dict[str, Any], where: str) -> None:
    """Schema 2: ``quality`` from ``scores`` by the formula. A ``quality`` the entry gives
    (schema 1, a user's file) is kept and said to be given by the file."""
    if fields.get("quality") is not None:
        given = f"given by {where}" if where else "given by the catalogue file"
        reason = fields.get("quality_reason")
        fields["quality_reason"] = f"{reason}; {given}" if reason else given
    elif "scores" in fields:
        result = quality(dict(fields["scores"]))
        fields["quality"], fields["quality_reason"] = result.score, result.basis
    elif "quality" in fields:  # null: no figures
        fields["quality_reason"] = quality({}).basis


def _computed_memory(spec: ModelSpec) -> int:
    context = min(spec.typical_context, spec.context_length)
    kv = spec.facts.kv_bytes(context)
    overhead = OVERHEAD_BYTES + spec.download_bytes * OVERHEAD_SHARE
    return int(spec.download_bytes + kv + overhead)


def _merge(
    models: dict[str, ModelSpec], aliases: dict[str, str], entries: Iterable[Any], where: str
) -> None:
    """Apply ``entries`` to ``models`` (by canonical name); ``aliases`` maps alias -> name."""
    for position, entry in enumerate(entries):
        label = entry.get("name") if isinstance(entry, Mapping) else getattr(entry, "name", None)
        key = names.canonical(label) if isinstance(label, str) and label.strip() else ""
        try:
            base = models.get(key) or models.get(aliases.get(key, ""))
            spec = _spec_from_entry(entry, base, _source_words(where))
        except (TypeError, ValueError) as error:
            named = f" ({label})" if isinstance(label, str) else ""
            raise ConfigurationError(
                f"{where}: models[{position}]{named}: {error}",
                hint="Each entry needs name, parameters_b, context_length and download_bytes "
                "(or just the fields to change, for a model already in the catalogue); see "
                "data/models.json in the package for examples.",
            ) from None
        name = names.canonical(spec.name)
        models[name] = spec
        aliases.update((names.canonical(alias), name) for alias in spec.aliases)


def _source_words(where: str) -> str:
    """How a quality's origin reads: "the user file (PERSONA_OLLAMA_CATALOGUE=...)"."""
    if where.startswith(CATALOGUE_VAR):
        return f"the user file ({where})"
    if where.startswith(f"catalogue plugin '{BUILTIN_PREFIX}"):
        return "the packaged catalogue"
    return where


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
    as_of = packaged_document().get("as_of")
    return Catalogue(models.values(), sources, as_of if isinstance(as_of, str) else None)
