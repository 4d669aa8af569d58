"""persona-ollama: Persona's provider for local models served by Ollama.

Persona imports every provider entry point when it starts, so this module stays cheap:
``OllamaProvider`` and the errors load on first access, and nothing here imports
requests, psutil, click or pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .errors import (
        ConfigurationError,
        ConnectionBrokenError,
        ContextOverflowError,
        InsufficientMemoryError,
        LocalOnlyViolationError,
        ModelNotPulledError,
        ModelRunnerError,
        OllamaError,
        OllamaNotRunningError,
        OllamaResponseError,
        OllamaTimeoutError,
        ServerBusyError,
    )
    from .provider import OllamaProvider

_LAZY = {
    "OllamaProvider": "provider",
    "ConfigurationError": "errors",
    "ConnectionBrokenError": "errors",
    "ContextOverflowError": "errors",
    "InsufficientMemoryError": "errors",
    "LocalOnlyViolationError": "errors",
    "ModelNotPulledError": "errors",
    "ModelRunnerError": "errors",
    "OllamaError": "errors",
    "OllamaNotRunningError": "errors",
    "OllamaResponseError": "errors",
    "OllamaTimeoutError": "errors",
    "ServerBusyError": "errors",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "ConfigurationError",
    "ConnectionBrokenError",
    "ContextOverflowError",
    "InsufficientMemoryError",
    "LocalOnlyViolationError",
    "ModelNotPulledError",
    "ModelRunnerError",
    "OllamaError",
    "OllamaNotRunningError",
    "OllamaProvider",
    "OllamaResponseError",
    "OllamaTimeoutError",
    "ServerBusyError",
    "__version__",
]
