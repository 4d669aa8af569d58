"""The persona-ollama exception hierarchy: neutral names, messages rendered from fields.

Every error derives from Persona's ``ProviderError`` (or the shape-identical fallback) and
carries a ``hint`` that names the command or setting that fixes it, the server's own text
(``server_text``) and HTTP ``status_code`` where there is one. ``str(error)`` includes the
hint, so a host that only prints the exception still shows the user what to do.

A message is rendered once, here, from the error's fields: ``what`` (the sentence its raiser
wrote), the sizes of a context overflow, and ``context`` (facts added by the layers it passed
through, with :meth:`ServerError.with_context`). Code that learns more about an error sets a
field on a copy (:meth:`ServerError.with_fields`); it never edits the text, so a message can
be neither cut nor doubled.

The names say what went wrong, not which server said it; the names of earlier releases, which
named the first backend's server, are aliases of the same classes in one marked block below.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from ._persona import AuthenticationError as _PersonaAuthenticationError
from ._persona import ModelNotFoundError as _PersonaModelNotFoundError
from ._persona import ProviderError, adopt_errors_when_loaded

_E = TypeVar("_E", bound="ServerError")


class ServerError(ProviderError):
    """Base class of every error this plugin raises."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        server_text: str | None = None,
        status_code: int | None = None,
        url: str | None = None,
        context: Iterable[str] = (),
    ) -> None:
        """``message``: what went wrong, in a sentence or more (kept as ``what``);
        ``context``: facts that follow it, each a sentence."""
        self.what = message
        self.context: tuple[str, ...] = tuple(context)
        self.hint = hint
        self.server_text = server_text
        self.status_code = status_code
        self.url = url
        super().__init__(message)

    @property
    def message(self) -> str:
        """The message without the hint, rendered from the fields."""
        return " ".join([self._sentence(), *self.context])

    @message.setter
    def message(self, text: str) -> None:
        """Replace the whole text (redaction scrubbing a secret out of it) with exactly ``text``."""
        self._replace_text(text)

    def _replace_text(self, text: str) -> None:
        self.what = text
        self.context = ()

    # The fields that hold text the message or the hint shows (``context`` and ``args`` apart).
    _TEXT_FIELDS: tuple[str, ...] = ("what", "hint", "server_text")

    def scrub(self, clean: Callable[[str], str]) -> None:
        """Pass every text this error shows through ``clean`` (a redaction), in place: each
        field on its own, so that facts added later still render in their places."""
        for name in self._TEXT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, clean(value))
        self.context = tuple(clean(fact) for fact in self.context)
        self.args = tuple(clean(a) if isinstance(a, str) else a for a in self.args)

    def _sentence(self) -> str:
        """The message before the added facts; subclasses with more fields extend it."""
        return self.what

    def with_context(self: _E, fact: str) -> _E:
        """A copy of this error with ``fact`` (a sentence) added after its message."""
        return self.with_fields(context=(*self.context, fact))

    def with_fields(self: _E, **fields: Any) -> _E:
        """A copy of this error with ``fields`` (attribute names) set; the message is rendered
        from them, never rewritten."""
        unknown = sorted(set(fields) - set(vars(self)))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(unknown)}")
        changed = copy.copy(self)
        vars(changed).update(fields)
        # The same failure, told more fully: raised, it keeps where it happened and what
        # caused it (a traceback and its cause are not fields, and copying drops them).
        changed.__cause__ = self.__cause__
        changed.__suppress_context__ = self.__suppress_context__
        changed.__traceback__ = self.__traceback__
        return changed

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHint: {self.hint}"
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword-only state across pickling (multiprocessing, pytest-xdist) and copying.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[ServerError], state: dict[str, object]) -> ServerError:
    error = cls.__new__(cls)
    if "what" not in state and "message" in state:
        # Pickled by a release before the fields: its message was the whole text (an
        # overflow's sizes included), with nothing added after it.
        state = {"context": (), **state, "what": state["message"]}
        del state["message"]
        if issubclass(cls, ContextOverflowError):
            state = {"refusal": None, "estimated": False, "window_name": None, **state}
    Exception.__init__(error, state.get("what", ""))
    error.__dict__.update(state)
    return error


class ServerNotRunningError(ServerError):
    """Nothing answers at the server URL (refused, unresolvable, unreachable)."""


class ModelNotAvailableError(ServerError, _PersonaModelNotFoundError):
    """The server does not have the model; the hint names the closest it has, or how to get
    it."""

    def __init__(
        self,
        message: str,
        *,
        model: str,
        suggestions: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        self.model = model
        self.suggestions = list(suggestions)
        super().__init__(message, **kwargs)


class ContextOverflowError(ServerError):
    """The prompt (plus room for an answer) does not fit the model's context window.

    A server's refusal is told as ``what`` + the sizes + ``refusal`` ("...; it refused the
    request ..."): the sizes come from the server's text, or, where it gave none, from the
    request (``estimated``: our estimate of the prompt and the window that was sent, called
    ``window_name`` where the backend names it)."""

    def __init__(
        self,
        message: str,
        *,
        prompt_tokens: int | None = None,
        context_length: int | None = None,
        alternatives: Sequence[str] = (),
        refusal: str | None = None,
        estimated: bool = False,
        window_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length
        self.alternatives = list(alternatives)
        self.refusal = refusal
        self.estimated = estimated
        self.window_name = window_name
        super().__init__(message, **kwargs)

    _TEXT_FIELDS = (*ServerError._TEXT_FIELDS, "refusal")

    def _replace_text(self, text: str) -> None:
        super()._replace_text(text)
        self.refusal = None

    def _sentence(self) -> str:
        if self.refusal is None:
            return self.what
        return f"{self.what}{self._sizes()}; {self.refusal}"

    def _sizes(self) -> str:
        if self.prompt_tokens is None or self.context_length is None:
            return ""
        if not self.estimated:
            return f" ({self.prompt_tokens} prompt tokens, context of {self.context_length})"
        window = f"{self.window_name}=" if self.window_name else "a window of "
        return (
            f" (about {self.prompt_tokens} prompt tokens by our estimate, "
            f"{window}{self.context_length})"
        )


def overflow_before_sending(
    model: str,
    *,
    prompt_tokens: int,
    window: int,
    limit_reason: str,
    consequence: str,
    alternatives: Sequence[str] = (),
    set_by: str | None = None,
    a_model: str = "an installed model",
) -> ContextOverflowError:
    """The error for a prompt found too long before anything was sent: both sizes, why the
    window is what it is (``limit_reason``), what sending it would have done
    (``consequence``), and the ways out: a larger window where the caller's setting
    ``set_by`` chose it, one of the longer-context ``alternatives`` (each ``a_model``: "an
    installed model", "a served model"), a shorter input."""
    ways_out = []
    if set_by:
        ways_out.append(f"Raise {set_by} or leave it unset.")
    if alternatives:
        ways_out.append(f"Use {a_model} with a longer context: " + ", ".join(alternatives) + ".")
    # A sentence that stands alone: "Otherwise ..." only after another way out.
    shorten = "shorten the input (fewer or shorter documents per run)."
    ways_out.append(f"Otherwise, {shorten}" if ways_out else shorten.capitalize())
    return ContextOverflowError(
        f"The prompt needs about {prompt_tokens} tokens plus room for an answer, but "
        f"{model} can take {window} ({limit_reason}). {consequence}",
        prompt_tokens=prompt_tokens,
        context_length=window,
        alternatives=alternatives,
        hint=" ".join(ways_out),
    )


class InsufficientMemoryError(ServerError):
    """The server could not load the model into the memory it has."""


class ServerBusyError(ServerError):
    """The server's queue stayed full (HTTP 503) through every retry."""


class ServerTimeoutError(ServerError):
    """No byte arrived within the read timeout, or no complete answer within the deadline."""


class ServerResponseError(ServerError):
    """Any other server failure: an unexpected status, malformed JSON, a cut-off stream."""


class ConnectionBrokenError(ServerResponseError):
    """The connection broke in the middle of an answer (the server or a balancer's upstream
    died, a network cut): no error line, no deadline. ``generate()`` asks again on a fresh
    connection (``restarts=``, docs/scaling.md); the partial answer is never returned."""


class ModelRunnerError(ServerResponseError):
    """The server's model runner crashed before answering or failed in the middle of it."""


class ServerAuthenticationError(ServerError, _PersonaAuthenticationError):
    """The server, or a reverse proxy in front of it, refused the credentials (HTTP 401/403)."""


class SignInRequiredError(ServerAuthenticationError):
    """A model that runs on the server's remote service was asked for while the server is
    signed out of it (HTTP 401); ``signin_url`` is the link the server gave, if any."""

    def __init__(self, message: str, *, signin_url: str | None = None, **kwargs: Any) -> None:
        self.signin_url = signin_url
        super().__init__(message, **kwargs)


class ConfigurationError(ServerError, ValueError):
    """A bad URL, option or setting, reported when it is given, before anything is sent."""


class LocalOnlyViolationError(ConfigurationError):
    """Local-only mode refused a destination that would take data off this machine."""


__all__ = [  # noqa: RUF022 - the aliases apart, in their marked block
    "ConfigurationError",
    "ConnectionBrokenError",
    "ContextOverflowError",
    "InsufficientMemoryError",
    "LocalOnlyViolationError",
    "ModelNotAvailableError",
    "ModelRunnerError",
    "ServerAuthenticationError",
    "ServerBusyError",
    "ServerError",
    "ServerNotRunningError",
    "ServerResponseError",
    "ServerTimeoutError",
    "SignInRequiredError",
    # compatibility aliases: begin (the names of earlier releases, listed below)
    "CloudSignInRequiredError",
    "ModelNotPulledError",
    "OllamaAuthenticationError",
    "OllamaError",
    "OllamaNotRunningError",
    "OllamaResponseError",
    "OllamaTimeoutError",
    # compatibility aliases: end
]

# compatibility aliases: begin
# The names users import from earlier releases (README, Persona's hosts), which named the first
# backend's server, Ollama: the same classes, so `except OllamaError` catches everything the
# plugin raises, whichever name raised it, and a pickle names the neutral class. The only
# place above the backends that may name a server (this block, and its copies in __all__ above
# and in __init__.py).
OllamaError = ServerError
OllamaNotRunningError = ServerNotRunningError
OllamaTimeoutError = ServerTimeoutError
OllamaResponseError = ServerResponseError
OllamaAuthenticationError = ServerAuthenticationError
CloudSignInRequiredError = SignInRequiredError
ModelNotPulledError = ModelNotAvailableError
# compatibility aliases: end


# Defined before Persona's provider package was imported (the CLI, or a script that imports
# the plugin first): move onto Persona's error classes if it is imported later (_persona.py).
adopt_errors_when_loaded()


# Generic builders: what every backend says the same way.

REASON_REFUSED = "connection refused"
REASON_UNREACHABLE = "the network or host is unreachable"


# How servers say a model is missing: "model 'llama3' not found", 'model "llama3" not found, try
# pulling it first', "The model `llama3` does not exist." (vLLM). Which server and version says
# which: the backends' error modules and docs/reference/.
MODEL_NOT_FOUND = re.compile(r"""model\s+['"`]([^'"`]*)['"`]\s+(?:not found|does not exist)""")
# Texts by which servers say a model did not fit in memory: schedulers that measure first
# ("requires more system memory"), a runner that passes llama-server's word on
# ("llama-server reported out-of-memory"), llama.cpp ("failed to allocate"), CUDA and PyTorch
# under vLLM ("CUDA out of memory"). Versions: the backends' error modules and docs/reference/.
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


MAX_SERVER_TEXT = 500  # characters of a server's error body kept in messages, "..." included
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
    return shortened(text, MAX_SERVER_TEXT)


def shortened(text: str, limit: int) -> str:
    """``text``, or where it is longer than ``limit`` characters its start and "...", ``limit``
    in all: a cut that says so."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


WRONG_SHAPE_HINT = (
    "Check that the URL points at the kind of server the provider's `api` setting names, and "
    "that the server is up to date."
)


def wrong_shape(
    field: str, expected: str, value: Any, url: str = "", *, hint: str = WRONG_SHAPE_HINT
) -> ServerResponseError:
    """The error for a server answer whose ``field`` is not ``expected``; ``hint``: a
    backend's own advice (which servers it speaks to)."""
    shown = shortened(repr(value), 60)
    return ServerResponseError(
        f"The server's answer has {field} = {shown} ({type(value).__name__}) where "
        f"{expected} was expected; the answer was discarded.",
        hint=hint,
        url=url or None,
    )
