"""A loopback double of the Ollama server for tests, benchmarks and demos.

``FakeOllama`` serves the Ollama REST API from memory over real sockets, following the server's
documented behaviour (status codes, error texts, field names, nanosecond durations), and lets a
test script replies, failures and latency. The ``fake_ollama`` pytest fixture (registered by
installing persona-ollama) gives a started one::

    def test_generates_a_persona(fake_ollama):
        fake_ollama.reply_with('{"name": "Ana"}')
        provider = OllamaProvider(base_url=fake_ollama.url)
        ...

Standard library only; ``python -m persona_ollama.testing`` runs one as a separate process.
The names below load on first access, so that pytest loading the plugin costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .fake_server import BUSY, OUT_OF_MEMORY, RUNNER_FAILED, RUNNER_STOPPED, FakeOllama
    from .models import DEFAULT_MODELS, LIBRARY, FakeModel
    from .profiles import PROFILES, Profile
    from .pull import PULL_NOT_FOUND
    from .script import ANY_PATH, GENERATION_PATHS
    from .state import RecordedRequest
    from .tokens import MESSAGE_OVERHEAD_TOKENS, count_prompt_tokens, count_tokens
    from .validation import PROMPT_TOO_LONG

_LAZY = {
    "ANY_PATH": "script",
    "BUSY": "fake_server",
    "DEFAULT_MODELS": "models",
    "GENERATION_PATHS": "script",
    "LIBRARY": "models",
    "MESSAGE_OVERHEAD_TOKENS": "tokens",
    "OUT_OF_MEMORY": "fake_server",
    "PROFILES": "profiles",
    "PROMPT_TOO_LONG": "validation",
    "PULL_NOT_FOUND": "pull",
    "RUNNER_FAILED": "fake_server",
    "RUNNER_STOPPED": "fake_server",
    "FakeModel": "models",
    "FakeOllama": "fake_server",
    "Profile": "profiles",
    "RecordedRequest": "state",
    "count_prompt_tokens": "tokens",
    "count_tokens": "tokens",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


# Spelled out (not derived from _LAZY) so that linters see what the lazy imports export.
__all__ = [
    "ANY_PATH",
    "BUSY",
    "DEFAULT_MODELS",
    "GENERATION_PATHS",
    "LIBRARY",
    "MESSAGE_OVERHEAD_TOKENS",
    "OUT_OF_MEMORY",
    "PROFILES",
    "PROMPT_TOO_LONG",
    "PULL_NOT_FOUND",
    "RUNNER_FAILED",
    "RUNNER_STOPPED",
    "FakeModel",
    "FakeOllama",
    "Profile",
    "RecordedRequest",
    "count_prompt_tokens",
    "count_tokens",
]
