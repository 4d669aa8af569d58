"""The catalogue shipped in ``data/models.json``, as a built-in plugin.

It sits below the plugin manager (``plugins`` registers it), so it imports only the hook
markers and the errors; validation of each entry happens in
:mod:`persona_ollama.choosing.catalogue`, where the sources are merged.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from ..errors import ConfigurationError
from .hookspecs import hookimpl

# The packaged file is schema 2; schema-1 files (users' catalogues) are still read.
SCHEMA_VERSIONS = (1, 2)


def entries_of(document: Any, where: str) -> list[Any]:
    """The list of entries in a catalogue document (``{"models": [...]}`` or a bare list)."""
    if isinstance(document, Mapping):
        version = document.get("schema_version", 1)
        if version not in SCHEMA_VERSIONS:
            raise ConfigurationError(
                f"{where}: schema_version {version!r} is not supported.",
                hint="This version of persona-ollama reads schema_version 1 and 2.",
            )
        document = document.get("models")
    if not isinstance(document, list):
        raise ConfigurationError(
            f'{where}: expected a list of models, or an object with a "models" list.',
            hint='e.g. {"models": [{"name": "llama3.1:8b", "quality": 70}]}',
        )
    return document


@functools.lru_cache(maxsize=1)
def packaged_document() -> dict[str, Any]:
    """The parsed ``data/models.json`` that ships with the package."""
    text = (
        files("persona_ollama.choosing").joinpath("data").joinpath("models.json").read_text("utf-8")
    )
    document: dict[str, Any] = json.loads(text)
    return document


class PackagedCatalogue:
    """Built-in plugin: the catalogue shipped in ``data/models.json`` (applied first)."""

    @hookimpl(trylast=True)
    def persona_ollama_catalogue_entries(self) -> list[Any]:
        """The packaged entries; ``trylast`` so that every other source can override them."""
        return entries_of(packaged_document(), "data/models.json")
