"""The persona-ollama exception hierarchy.

Every error derives from Persona's ``ProviderError`` (or the shape-identical fallback) and
carries a ``hint`` that names the command or setting that fixes it, the server's own text
(``server_text``) and HTTP ``status_code`` where there is one. ``str(error)`` includes the
hint, so a host that only prints the exception still shows the user what to do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ._persona import AuthenticationError as _PersonaAuthenticationError
from ._persona import ModelNotFoundError as _PersonaModelNotFoundError
from ._persona import ProviderError, adopt_errors_when_loaded

INSTALL_URL = "https://ollama.com/download"


class OllamaError(ProviderError):
    """Base class of every error this plugin raises."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        server_text: str | None = None,
        status_code: int | None = None,
        url: str | None = None,
    ) -> None:
        self.message = message
        self.hint = hint
        self.server_text = server_text
        self.status_code = status_code
        self.url = url
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHint: {self.hint}"
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword-only state across pickling (multiprocessing, pytest-xdist).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[OllamaError], state: dict[str, object]) -> OllamaError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class OllamaNotRunningError(OllamaError):
    """Nothing answers at the server URL (refused, unresolvable, unreachable)."""


class ModelNotPulledError(OllamaError, _PersonaModelNotFoundError):
    """The model is not installed on the server; ``persona-ollama pull`` fixes it."""

    def __init__(
        self,
        message: str,
        *,
        model: str,
        suggestions: Sequence[str] = (),
        **kwargs: object,
    ) -> None:
        self.model = model
        self.suggestions = list(suggestions)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ContextOverflowError(OllamaError):
    """The prompt (plus room for an answer) does not fit the model's context window."""

    def __init__(
        self,
        message: str,
        *,
        prompt_tokens: int | None = None,
        context_length: int | None = None,
        alternatives: Sequence[str] = (),
        **kwargs: object,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length
        self.alternatives = list(alternatives)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class InsufficientMemoryError(OllamaError):
    """The server could not load the model into the memory it has."""


class ServerBusyError(OllamaError):
    """The server's queue stayed full (HTTP 503) through every retry."""


class OllamaTimeoutError(OllamaError):
    """No byte arrived within the read timeout."""


class OllamaResponseError(OllamaError):
    """Any other server failure: an unexpected status, malformed JSON, a cut-off stream."""


class ConnectionBrokenError(OllamaResponseError):
    """The connection broke in the middle of an answer (the server or a balancer's upstream
    died, a network cut): no error line, no deadline. ``generate()`` asks again on a fresh
    connection (``restarts=``, docs/scaling.md); the partial answer is never returned."""


class ModelRunnerError(OllamaResponseError):
    """The server's model runner crashed before answering or failed in the middle of it."""


class OllamaAuthenticationError(OllamaError, _PersonaAuthenticationError):
    """A reverse proxy in front of Ollama refused the credentials (HTTP 401/403)."""


class CloudSignInRequiredError(OllamaAuthenticationError):
    """A cloud (remote) model was asked for while the Ollama server is signed out of ollama.com
    (HTTP 401 ``unauthorized``); ``signin_url`` is the link the server gave, if any."""

    def __init__(self, message: str, *, signin_url: str | None = None, **kwargs: object) -> None:
        self.signin_url = signin_url
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ConfigurationError(OllamaError, ValueError):
    """A bad URL, option or setting, reported when it is given, before anything is sent."""


class LocalOnlyViolationError(ConfigurationError):
    """Local-only mode refused a destination that would take data off this machine."""


__all__ = [
    "INSTALL_URL",
    "CloudSignInRequiredError",
    "ConfigurationError",
    "ContextOverflowError",
    "InsufficientMemoryError",
    "LocalOnlyViolationError",
    "ModelNotPulledError",
    "ModelRunnerError",
    "OllamaAuthenticationError",
    "OllamaError",
    "OllamaNotRunningError",
    "OllamaResponseError",
    "OllamaTimeoutError",
    "ServerBusyError",
]


# Defined before Persona's provider package was imported (the CLI, or a script that imports
# the plugin first): move onto Persona's error classes if it is imported later (_persona.py).
adopt_errors_when_loaded()


# Generic builders: what every backend says the same way.

REASON_REFUSED = "connection refused"
REASON_UNREACHABLE = "the network or host is unreachable"


# "model 'llama3' not found" (Ollama 0.12+ and its /v1), 'model "llama3" not found, try pulling
# it first' (Ollama <= 0.11), "The model `llama3` does not exist." (vLLM).
MODEL_NOT_FOUND = re.compile(r"""model\s+['"`]([^'"`]*)['"`]\s+(?:not found|does not exist)""")
# Texts by which servers say a model did not fit in memory: Ollama's scheduler and runner
# ("requires more system memory" v0.11-v0.24; v0.30+ "llama-server reported out-of-memory"),
# llama.cpp ("failed to allocate"), CUDA and PyTorch under vLLM ("CUDA out of memory").
OUT_OF_MEMORY_MARKERS = (
    "out-of-memory",
    "out of memory",
    "requires more system memory",
    "unable to allocate",
    "insufficient memory",
    "cudamalloc failed",
    "failed to allocate",
)


def is_out_of_memory(text: str) -> bool:
    """True when a server's error ``text`` says the model did not fit in memory."""
    lowered = text.lower()
    return any(marker in lowered for marker in OUT_OF_MEMORY_MARKERS)


MAX_SERVER_TEXT = 500  # characters of a server's error body kept in messages
MAX_LISTED = 10  # served model names listed in a hint


def server_text_of(body: str) -> str:
    """The server's own error text: ``{"error": "..."}`` unwrapped, else the body, shortened."""
    text = body.strip()
    if text.startswith("{"):
        import json  # only on an error path: `import persona_ollama` stays light

        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            error = parsed.get("error")
            if isinstance(error, dict):  # the OpenAI-compatible endpoints nest it
                error = error.get("message")
            elif error is None and parsed.get("object") == "error":  # older vLLM: not nested
                error = parsed.get("message")
            if isinstance(error, str):
                text = error
                if text.lstrip().startswith("{"):  # v0.30+: llama-server's body inside
                    text = server_text_of(text)
    if len(text) > MAX_SERVER_TEXT:
        text = text[:MAX_SERVER_TEXT] + "..."
    return text


def closest_models(model: str, installed: list[str], limit: int = 3) -> list[str]:
    """Installed names most like ``model``: same base name first, then by similarity (the
    tags of one base name too, most similar first: `qwen2.5:7` means qwen2.5:7b, wherever the
    server lists it among the other qwen2.5 tags)."""
    import difflib

    base = model.split(":", 1)[0].lower()
    same_base = [name for name in installed if name.split(":", 1)[0].lower() == base]
    same_base.sort(
        key=lambda name: -difflib.SequenceMatcher(None, model.lower(), name.lower()).ratio()
    )
    similar = difflib.get_close_matches(model.lower(), [n.lower() for n in installed], limit, 0.6)
    by_lower = {name.lower(): name for name in installed}
    ordered: list[str] = []
    for name in [*same_base, *(by_lower[s] for s in similar)]:
        if name not in ordered:
            ordered.append(name)
    return ordered[:limit]


def misspells(model: str, names: list[str]) -> bool:
    """Whether ``model`` is one edit from one of ``names`` (``qwen2.5:7bb``, ``gema3:4b``), or,
    given without a tag, from one's base name (``lama3.2``)."""
    asked = model.lower()
    for name in names:
        name = name.lower()
        if asked != name and _edits(asked, name) <= 1:
            return True
        base = name.split(":", 1)[0]
        if ":" not in asked and asked != base and _edits(asked, base) <= 1:
            return True
    return False


def _edits(a: str, b: str) -> int:
    """The Levenshtein distance, stopping early: only 0, 1 or "more" (2) matters here."""
    if abs(len(a) - len(b)) > 1:
        return 2
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            )
        previous = current
    return min(previous[-1], 2)


def wrong_shape(field: str, expected: str, value: Any, url: str = "") -> OllamaResponseError:
    """The error for a server answer whose ``field`` is not ``expected``."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return OllamaResponseError(
        f"The server's answer has {field} = {shown} ({type(value).__name__}) where "
        f"{expected} was expected; the answer was discarded.",
        hint="Check that the URL points at an Ollama server (or an OpenAI-compatible one with "
        "api='openai'), and that it is up to date.",
        url=url or None,
    )
