"""What every backend gives the provider: one protocol and the neutral types it speaks.

A backend is one kind of server's API: its URLs, request bodies, answer formats, error texts
and advice. Everything above it (the provider, request preparation, context sizing, the
stream, the CLI) speaks only the types below, so a second backend is a sibling, never a
translation through the first. Each shipped backend is a module of ``backends/``, which
``open_backend`` (``backends/__init__.py``) picks from; a new one follows
docs/writing-a-provider.md.

What a backend cannot do is a fact it states (:attr:`Backend.sets_window`), and the layer
above tells the user; nothing is dropped without a word.

The protocol also fits servers unlike those two:

- a server that serves exactly one model: ``models()`` lists it, ``chat`` may leave the name
  out of the body, and ``describe``/``not_found`` name the one served when asked for another;
- a server that takes one prompt string instead of messages: the backend writes the messages
  with the model's :class:`PromptTemplate`, or, where it knows none, raises a
  ConfigurationError that says which template it needs before sending anything;
- a server that sends errors as events inside a 200 stream: ``chat`` raises the error class
  the event means (a bad request, an overloaded server ...), never a partial answer as done;
- a server that states a budget for the prompt alone beside the window: ``ModelInfo``'s
  ``input_limit``, which context sizing refuses a longer prompt by.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from ..errors import ModelNotAvailableError
    from ..model_info import ModelInfo
    from ..transport.http import Transport


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class ChatRequest:
    """One chat turn, checked and sized, in no server's words.

    ``options`` are sampling options by their common names (``temperature``, ``top_p``,
    ``seed``, ``stop`` ...) and any server-specific ones the caller named; a backend sends
    what its server takes and warns once about the rest. ``window`` is the context size to
    ask for (sent only where :attr:`Backend.sets_window`); ``max_tokens`` the answer's limit.
    """

    model: str
    messages: tuple[Mapping[str, str], ...]
    max_tokens: int
    window: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    format: str | Mapping[str, Any] | None = None
    think: bool | str | None = None
    keep_alive: float | int | str | None = None
    #: Seconds to wait for the first byte of the answer (the model's load and the prompt's
    #: processing happen before it); None: the client's read timeout.
    first_byte_wait: float | None = None


class Chunk(NamedTuple):
    """One piece of a streamed answer; the last one has ``done`` and the server's totals.

    Counts and durations are None when the server did not state them (unknown, not 0).
    ``remote_host`` is set when the server says it forwarded the request elsewhere.
    ``raw`` is what the server sent in its final message, for ``raw_response`` (read-only).
    A tuple, not a dataclass: one is built per token, and a tuple is built several times
    faster (the per-chunk cost is in docs/benchmarks.md).
    """

    content: str = ""
    thinking: str = ""
    done: bool = False
    reason: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    prompt_seconds: float | None = None
    answer_seconds: float | None = None
    load_seconds: float | None = None
    remote_host: str | None = None
    remote_model: str | None = None
    raw: Mapping[str, Any] = _NO_FIELDS


@dataclass(frozen=True)
class PromptTemplate:
    """How a model that reads one prompt string wants a chat written out.

    ``turn`` is one message, with ``{role}`` and ``{content}`` where they go; ``reply`` opens
    the assistant's turn that the model then writes; ``stop`` are the texts that end a turn
    (a backend sends them as stop sequences, so the answer ends where the model's turn does).
    A message's own braces are never read as placeholders.
    """

    turn: str
    reply: str
    stop: tuple[str, ...] = ()

    def render(self, messages: Iterable[Mapping[str, str]]) -> str:
        """The prompt string: every message written with ``turn``, then ``reply``."""
        written = [
            self.turn.replace("{role}", str(message.get("role", "user"))).replace(
                "{content}", str(message.get("content", ""))
            )
            for message in messages
        ]
        return "".join(written) + self.reply


class LoadedModel(NamedTuple):
    """A model in the server's memory, and how much of it sits in GPU memory.

    ``size_bytes`` is all the memory the loaded model takes (weights, context cache and
    compute buffers) and ``gpu_bytes`` the part of it in GPU memory; None where the server
    does not say. A backend whose server reports this defines ``loaded_models(*,
    deadline=None)`` returning a list of these; the method is optional (the provider asks
    with ``getattr``), so a backend for a server that does not say needs nothing.
    """

    name: str
    size_bytes: int | None
    gpu_bytes: int | None
    window: int | None = None

    @property
    def gpu_share(self) -> float | None:
        """The share of the model in GPU memory, 0.0 to 1.0; None when unknown."""
        if not self.size_bytes or self.gpu_bytes is None:
            return None
        return min(1.0, max(0.0, self.gpu_bytes / self.size_bytes))


@dataclass(frozen=True)
class PullProgress:
    """One status of a model download: ``completed`` of ``total`` bytes of one layer."""

    status: str
    total: int | None = None
    completed: int | None = None
    done: bool = False


class Backend(Protocol):
    """One server API. Every method raises one of the errors of :mod:`persona_ollama.errors`
    that says what to do; none returns a partial result.

    A method that asks the server takes ``deadline``: the ``time.monotonic()`` instant the
    provider's call must be over by (None: none), made by the provider for each call
    (:mod:`persona_ollama.deadline`). The backend passes it to each request of its transport
    (``send``, ``get_json``, ``post_json``, ``json``, ``stream``), which bounds every wait
    with it; a request made without it has no deadline."""

    @property
    def label(self) -> str:
        """How messages name the server, e.g. "llama.cpp server"."""

    @property
    def sets_window(self) -> bool:
        """True when a request can set the context window (a per-request option of the
        server's API); False when the server has one fixed window: then only its stated
        length is planned, and an explicit window is reported as not sent."""

    @property
    def transport(self) -> Transport:
        """The server's connection pool (its ``redactor`` scrubs the configured secrets)."""

    @property
    def reports_forwarding(self) -> bool:
        """True when an answer says so if the server forwarded it elsewhere (a field in
        every streamed line); False makes local-only mode check again, once the
        answer starts, that the model still runs on the server."""

    def version(self, *, timeout: float | None = None, deadline: float | None = None) -> str:
        """The server's version (or kind), asking at most ``timeout`` seconds."""

    def refuses_overflow(self, *, deadline: float | None = None) -> bool | None:
        """True when the server is known to refuse a prompt longer than the window rather
        than cut it; False or None (unknown) makes the stream check the counts for a cut."""

    def models(self, *, deadline: float | None = None) -> list[ModelInfo]:
        """Every model the server has, embedders and remote ones included."""

    def describe(
        self, model: str, listed: ModelInfo | None = None, *, deadline: float | None = None
    ) -> ModelInfo:
        """The full facts of one model (``listed``: its listing entry, when at hand);
        ModelNotAvailableError when the server lacks it."""

    def loaded_windows(self, *, deadline: float | None = None) -> dict[str, int]:
        """Canonical model name -> the window it is loaded with now; {} when unknown."""

    def chat(
        self, request: ChatRequest, *, deadline: float | None = None
    ) -> Generator[Chunk, None, None]:
        """Send ``request`` and stream the answer; the last chunk has ``done``.

        Nothing is read before the first ``next()``, and closing the iterator (or dropping
        it) gives the connection back."""

    def pull(
        self, model: str, *, deadline: float | None = None
    ) -> Generator[PullProgress, None, None]:
        """Download ``model``, streaming progress; ConfigurationError where impossible."""

    def not_found(self, model: str, served: list[str] | None) -> ModelNotAvailableError:
        """The error for a model the server lacks, with advice that works on this server."""

    def connections_in_use(self) -> int:
        """Pooled connections checked out right now (for tests and benchmarks)."""

    def close(self) -> None:
        """Close pooled connections; the backend may be used again afterwards."""
