"""Ollama model names: the grammar, the canonical form, and the cloud suffixes.

``llama3``, ``llama3:latest``, ``library/llama3`` and ``registry.ollama.ai/library/llama3:latest``
name one model, looked up case-insensitively (docs/reference/ollama-protocol.md, "Model names").
"""

from __future__ import annotations

import re

from .errors import ConfigurationError

DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"
_NAMESPACE = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"
_HOST = r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}"
_NAME = re.compile(rf"^(?:(?:{_HOST})/)?(?:(?:{_NAMESPACE})/)?{_PART}(?::{_PART})?$")


def split(name: str) -> tuple[str, str, str, str]:
    """(registry, namespace, model, tag) with Ollama's defaults filled in."""
    tag = DEFAULT_TAG
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    parts = name.split("/")
    if len(parts) >= 3:
        return parts[0], "/".join(parts[1:-1]), parts[-1], tag
    if len(parts) == 2:
        return DEFAULT_REGISTRY, parts[0], parts[1], tag
    return DEFAULT_REGISTRY, DEFAULT_NAMESPACE, parts[0], tag


def canonical(name: str) -> str:
    """The short display form, lower-cased, always tagged: the key to compare names by."""
    registry, namespace, model, tag = split(name.strip())
    prefix = ""
    if registry.lower() != DEFAULT_REGISTRY:
        prefix = f"{registry}/{namespace}/"
    elif namespace.lower() != DEFAULT_NAMESPACE:
        prefix = f"{namespace}/"
    return f"{prefix}{model}:{tag}".lower()


def same_model(a: str, b: str) -> bool:
    return canonical(a) == canonical(b)


def is_cloud(name: str) -> bool:
    """True when Ollama would forward requests for ``name`` to its hosted service."""
    tag = split(name.strip())[3].lower()
    return tag == "cloud" or tag.endswith("-cloud") or tag.endswith(":cloud")


def check_name(name: object) -> str:
    """Return ``name`` stripped, or raise ConfigurationError if Ollama would reject it."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(
            f"A model name must be a non-empty string, got {name!r}.",
            hint="e.g. model='llama3.2:3b'; `persona-ollama models` lists installed models.",
        )
    stripped = name.strip()
    if not _NAME.match(stripped):
        raise ConfigurationError(
            f"{stripped!r} is not a valid Ollama model name.",
            hint="Names look like llama3.2:3b, namespace/model:tag or hf.co/org/repo:Q4_K_M "
            "(letters, digits, '_', '-', '.'; no spaces).",
        )
    return stripped
