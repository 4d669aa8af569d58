"""The server APIs the provider can speak, each a :class:`~.base.Backend`.

``ollama`` is Ollama's native /api, ``openai`` any OpenAI-compatible /v1 server. A provider
for another kind of server adds a module here and opens it in :func:`open_backend`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..endpoint import Endpoint
    from .base import Backend


def open_backend(api: str, endpoint: Endpoint, **transport: Any) -> Backend:
    """The backend for ``api`` talking to ``endpoint``; ``transport``: timeouts, pool size,
    headers and TLS settings for its :class:`~persona_ollama.transport.http.Transport`.

    Imported here, on first use: requests loads with the backend, not with the package.
    """
    if api == "openai":
        from .openai import OpenAIBackend

        return OpenAIBackend(endpoint, **transport)
    from .ollama import OllamaBackend

    return OllamaBackend(endpoint, **transport)
