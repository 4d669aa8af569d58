"""A loopback double of the Acme server for tests, benchmarks and demos.

:func:`stand_in` gives one (not started: use it in ``with``); the ``fake_server`` pytest
fixture (registered by installing persona-acme) gives a started one::

    def test_generates_a_persona(fake_server):
        fake_server.reply_with('{"name": "Ana"}')
        provider = AcmeProvider(base_url=fake_server.url)
        ...

The modules: server.py (the core: sockets, faults, records), engine.py (tokens, the script,
the model's answer), acme.py (the face: Acme's API), stand_in.py and pytest_plugin.py. The
names below load on first access, so that pytest loading the plugin costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .acme import AcmeFace
    from .models import FakeModel
    from .server import Call, Face, FakeServer, Route
    from .stand_in import stand_in
    from .state import RecordedRequest
    from .tokens import count_prompt_tokens, count_tokens

_LAZY = {
    "AcmeFace": "acme",
    "Call": "server",
    "Face": "server",
    "FakeModel": "models",
    "FakeServer": "server",
    "RecordedRequest": "state",
    "Route": "server",
    "count_prompt_tokens": "tokens",
    "count_tokens": "tokens",
    "stand_in": "stand_in",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


# Spelled out (not derived from _LAZY) so that linters see what the lazy imports export.
__all__ = [
    "AcmeFace",
    "Call",
    "Face",
    "FakeModel",
    "FakeServer",
    "RecordedRequest",
    "Route",
    "count_prompt_tokens",
    "count_tokens",
    "stand_in",
]
