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
The modules: server.py (the core: ``FakeServer``, HTTP dispatch to faces, no face),
ollama_server.py (``FakeOllama``: the core with the native and /v1 faces),
engine.py (gathers face.py, tokens.py, script.py, scheduler.py, state.py and generation.py: the
face interface, tokens, script, scheduler, state, generation), models.py, model_names.py and
profiles.py (what the core asks its server: a model's facts, how names are checked and compared,
the release rules and error texts), native.py and openai.py (Ollama's two faces), wire.py
(gathers Ollama's wire rules, release by release: go.py, ollama_names.py, ollama_profiles.py,
responses.py, checks.py, host_check.py), ollama_models.py (the models Ollama's double knows by
name), ollama_show.py (the native face's /api/show body and Modelfile), hostile.py (raw-socket
misbehaviour), demo.py, pytest_plugin.py and stand_in.py (the double the contract tests start:
the one function a provider built from this template points at its own face). A double of
another server is one face on the same core: see :mod:`persona_ollama.testing.server`.
The names below load on first access, so that pytest loading the plugin costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .checks import PROMPT_TOO_LONG
    from .model_names import PLAIN, Naming
    from .models import FakeModel
    from .native import GENERATION_PATHS, PULL_NOT_FOUND
    from .ollama_models import DEFAULT_MODELS, LIBRARY
    from .ollama_names import OLLAMA_NAMES
    from .ollama_profiles import (
        BUSY,
        OUT_OF_MEMORY,
        PROFILES,
        RUNNER_FAILED,
        RUNNER_STOPPED,
        OllamaProfile,
        Profile,
    )
    from .ollama_server import FakeOllama
    from .script import ANY_PATH
    from .server import Call, Face, FakeServer, Route
    from .stand_in import stand_in
    from .state import RecordedRequest
    from .tokens import MESSAGE_OVERHEAD_TOKENS, count_prompt_tokens, count_tokens

_LAZY = {
    "ANY_PATH": "script",
    "BUSY": "ollama_profiles",
    "DEFAULT_MODELS": "ollama_models",
    "GENERATION_PATHS": "native",
    "LIBRARY": "ollama_models",
    "MESSAGE_OVERHEAD_TOKENS": "tokens",
    "OUT_OF_MEMORY": "ollama_profiles",
    "PROFILES": "ollama_profiles",
    "PROMPT_TOO_LONG": "checks",
    "PULL_NOT_FOUND": "native",
    "RUNNER_FAILED": "ollama_profiles",
    "RUNNER_STOPPED": "ollama_profiles",
    "Call": "server",
    "Face": "server",
    "FakeModel": "models",
    "FakeOllama": "ollama_server",
    "FakeServer": "server",
    "Naming": "model_names",
    "OLLAMA_NAMES": "ollama_names",
    "OllamaProfile": "ollama_profiles",
    "PLAIN": "model_names",
    "Profile": "ollama_profiles",
    "RecordedRequest": "state",
    "Route": "server",
    "count_prompt_tokens": "tokens",
    "count_tokens": "tokens",
    "stand_in": "stand_in",
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
    "OLLAMA_NAMES",
    "OUT_OF_MEMORY",
    "PLAIN",
    "PROFILES",
    "PROMPT_TOO_LONG",
    "PULL_NOT_FOUND",
    "RUNNER_FAILED",
    "RUNNER_STOPPED",
    "Call",
    "Face",
    "FakeModel",
    "FakeOllama",
    "FakeServer",
    "Naming",
    "OllamaProfile",
    "Profile",
    "RecordedRequest",
    "Route",
    "count_prompt_tokens",
    "count_tokens",
    "stand_in",
]
