"""The server API the provider speaks: :class:`~.acme.AcmeBackend`, a :class:`~.base.Backend`.

A provider for a server with a second API adds a module here and opens it in
:func:`open_backend` for its name in ``settings.APIS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..endpoint import Endpoint
    from .base import Backend


def open_backend(api: str, endpoint: Endpoint, **transport: Any) -> Backend:
    """The backend for ``api`` talking to ``endpoint``; ``transport``: timeouts, pool size,
    headers and TLS settings for its :class:`~persona_acme.transport.http.Transport`.

    Imported here, on first use: requests loads with the backend, not with the package.
    """
    from .acme import AcmeBackend

    return AcmeBackend(endpoint, **transport)
