"""The one list of the backends this provider speaks, by API name (settings.APIS).

This is the seam a provider built from the template edits: each entry names the module that
declares a backend's rules (a :class:`~.rules.Declaration` called ``DECLARATION``) and the
module and class of the backend itself. Nothing else above the backends names one.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rules import Declaration

# API name -> (declaration module, backend module, backend class), relative to this package.
BACKENDS = {
    "native": (".ollama_rules", ".ollama", "OllamaBackend"),
    "openai": (".openai_rules", ".openai", "OpenAIBackend"),
}


def declared(api: str) -> Declaration:
    """The declaration of the backend for ``api`` (one of settings.APIS).

    Its module imports nothing heavy, so the kernel may read it at import time.
    """
    declaration: Declaration = import_module(BACKENDS[api][0], __package__).DECLARATION
    return declaration


def backend_class(api: str) -> type:
    """The backend class for ``api``; importing it loads requests."""
    _, module, name = BACKENDS[api]
    cls: type = getattr(import_module(module, __package__), name)
    return cls
