"""persona-ollama: Persona's provider for models on a local model server.

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
        ModelNotAvailableError,
        ModelRunnerError,
        ServerAuthenticationError,
        ServerBusyError,
        ServerError,
        ServerNotRunningError,
        ServerResponseError,
        ServerTimeoutError,
        SignInRequiredError,
    )
    from .provider import OllamaProvider

    # compatibility aliases: begin (errors.py's block, for type checkers)
    ModelNotPulledError = ModelNotAvailableError
    OllamaError = ServerError
    OllamaNotRunningError = ServerNotRunningError
    OllamaResponseError = ServerResponseError
    OllamaTimeoutError = ServerTimeoutError
    # compatibility aliases: end

__all__ = [  # noqa: RUF022 - the aliases apart, in their marked block
    "ConfigurationError",
    "ConnectionBrokenError",
    "ContextOverflowError",
    "InsufficientMemoryError",
    "LocalOnlyViolationError",
    "ModelNotAvailableError",
    "ModelRunnerError",
    "OllamaProvider",
    "ServerAuthenticationError",
    "ServerBusyError",
    "ServerError",
    "ServerNotRunningError",
    "ServerResponseError",
    "ServerTimeoutError",
    "SignInRequiredError",
    "__version__",
    # compatibility aliases: begin (errors.py's block: the names users import)
    "ModelNotPulledError",
    "OllamaError",
    "OllamaNotRunningError",
    "OllamaResponseError",
    "OllamaTimeoutError",
    # compatibility aliases: end
]

_LAZY = {
    "OllamaProvider": "provider",
    **{name: "errors" for name in __all__ if name.endswith("Error")},
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
