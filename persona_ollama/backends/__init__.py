"""The server APIs the provider can speak, each a :class:`~.base.Backend`.

Each API (settings.APIS) is listed in :mod:`.registry` with the module that declares its rules
(addresses, model names: :mod:`.rules`) and the backend class. A provider for another kind of
server adds a backend module and lists it there.
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
    from .registry import backend_class

    backend: Backend = backend_class(api)(endpoint, **transport)
    return backend
