"""The Acme backend: the API of the Acme inference server, one model per server.

Acme is invented (docs/writing-a-provider.md), in the shape of servers that serve one model
and take a prompt string, such as Hugging Face's text-generation-inference. Replace its
requests and answers with your server's; the shape of the class stays.

- ``GET /info`` -> ``{"model_id": "acme-7b", "max_input_tokens": 8192, "max_total_tokens":
  16384, "prompt_format": "chatml", "version": "2.1.0"}``: the one model served, its budget
  for the prompt alone and for the prompt and the answer together, how it wants a chat
  written as one prompt (absent when the server does not know), and the server's version.
- ``POST /generate_stream`` ``{"inputs": "<the prompt>", "parameters": {"max_new_tokens": n,
  "temperature": t, "top_p": p, "seed": s, "stop": [...]}}`` streams server-sent events:
  ``{"token": {"text": "Hel"}}`` for each piece, then one more with ``"details":
  {"finish_reason": "eos_token" | "stop_sequence" | "length", "input_tokens": n,
  "generated_tokens": n}``. The body names no model: the server has one.
- Errors come inside the 200 stream, as an event ``{"error": "...", "error_type":
  "validation" | "overloaded" | "generation"}``: a request the server refuses (a prompt over
  its input limit), a server too busy to take it, a failure half-way.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Mapping
from typing import Any

from ..errors import (
    ConfigurationError,
    ContextOverflowError,
    ModelNotAvailableError,
    ServerBusyError,
    ServerError,
    ServerNotRunningError,
    ServerResponseError,
    ServerTimeoutError,
    server_text_of,
)
from ..model_info import ModelInfo
from ..server_state import ServerState
from ..settings import HOST_VAR, TIMEOUT_VAR
from ..transport.http import Transport, answer_budget
from ..transport.sse import iter_sse_data
from .base import ChatRequest, Chunk, PromptTemplate, PullProgress

INFO = "/info"
GENERATE = "/generate_stream"
# The sampling options /generate_stream takes, by the names the provider uses.
SAMPLING = ("temperature", "top_p", "seed")
REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}
# How each prompt format Acme names writes a chat as one prompt.
TEMPLATES = {
    "chatml": PromptTemplate(
        turn="<|im_start|>{role}\n{content}<|im_end|>\n",
        reply="<|im_start|>assistant\n",
        stop=("<|im_end|>",),
    ),
}


class AcmeBackend:
    """The Acme server's API over one pooled :class:`Transport`."""

    label = "Acme server"
    sets_window = False  # the window is the server's max_total_tokens, fixed at its start
    reports_forwarding = False  # answers never say where they ran: local-only checks again

    def __init__(
        self, endpoint: Any, *, state: ServerState | None = None, **transport: Any
    ) -> None:
        """``state``: what this process knows of the server, shared by every provider for it
        (server_state.py); ``transport``: the :class:`Transport` settings (timeouts, pool,
        headers, verify)."""
        self.url = str(endpoint)
        self.state = state if state is not None else ServerState(self.url)
        self.transport = Transport(endpoint, self, **transport)

    # -- the transport's words: every failure in Acme's terms, with what to do ------------

    def status_error(
        self, status: int, body: str, *, model: str | None, deadline: float | None = None
    ) -> ServerError:
        """An HTTP error status (after the transport's retries of 429 and 503); asks nothing
        more, so ``deadline`` (the failed request's) is not needed."""
        text = server_text_of(body)
        where = f"The {self.label} at {self.url}"
        if status in (429, 503):
            return self.busy(text)
        return ServerResponseError(
            f"{where} answered HTTP {status}: {text or '(empty body)'}",
            server_text=text,
            status_code=status,
            url=self.url,
        )

    def not_running(self, reason: str) -> ServerError:
        """No connection: start the server, or point the plugin at it."""
        return ServerNotRunningError(
            f"Cannot reach the {self.label} at {self.url}: {reason}.",
            hint=f"Start it with `acme serve MODEL`, or set {HOST_VAR} (or base_url=) to "
            "its address.",
            url=self.url,
        )

    def silent(self, seconds: float) -> ServerTimeoutError:
        """Nothing for ``seconds``: a model still loading, or a long queue."""
        return ServerTimeoutError(
            f"The {self.label} at {self.url} sent nothing for {seconds:g} s.",
            hint=f"Raise the timeout (timeout=600 or {TIMEOUT_VAR}=600).",
            url=self.url,
        )

    def busy(self, text: str) -> ServerBusyError:
        """The server is too busy to take the request."""
        return ServerBusyError(
            f"The {self.label} at {self.url} is overloaded: {text}",
            hint="Retry later, or send fewer requests at once (a smaller pool_size).",
            url=self.url,
        )

    # -- the backend -------------------------------------------------------------------

    def info(
        self, *, timeout: float | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        """GET /info: the one model and the server's limits."""
        limits = (timeout, timeout) if timeout else None
        response = self.transport.send(
            "GET",
            INFO,
            stream=True,
            timeout=limits,
            retries=0 if limits else None,
            deadline=deadline,
        )
        return self.transport.expect_dict(self.transport.json(response, deadline=deadline), INFO)

    def version(self, *, timeout: float | None = None, deadline: float | None = None) -> str:
        """The server's version, from /info; no retries when probing."""
        return f"Acme {self.info(timeout=timeout, deadline=deadline).get('version', 'unknown')}"

    def refuses_overflow(self, *, deadline: float | None = None) -> bool | None:
        """Acme refuses a prompt over its input limit (a validation event): it never cuts."""
        return True

    def models(self, *, deadline: float | None = None) -> list[ModelInfo]:
        """The one model the server serves."""
        info = self.info(deadline=deadline)
        model_id = info.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise ServerResponseError(
                f"The {self.label} at {self.url} sent /info without a model_id: {info!r}",
                url=self.url,
            )
        return [
            ModelInfo(
                name=model_id,
                context_length=_count(info.get("max_total_tokens")),
                input_limit=_count(info.get("max_input_tokens")),
                capabilities=("completion",),
            )
        ]

    def describe(
        self, model: str, listed: ModelInfo | None = None, *, deadline: float | None = None
    ) -> ModelInfo:
        """The one model, if that is the one asked for; ModelNotAvailableError otherwise."""
        served = [listed] if listed is not None else self.models(deadline=deadline)
        for info in served:
            if info.name == model:
                return info
        raise self.not_found(model, [info.name for info in served])

    def loaded_windows(self, *, deadline: float | None = None) -> dict[str, int]:
        """Always empty: the window is fixed, nothing to reuse."""
        return {}

    def template(self, *, deadline: float | None = None) -> PromptTemplate:
        """How the served model wants a chat written; ConfigurationError when Acme does not
        say, or names a format this backend does not know, before anything is sent."""
        name = self.info(deadline=deadline).get("prompt_format")
        template = TEMPLATES.get(name) if isinstance(name, str) else None
        if template is None:
            said = f"names the prompt format {name!r}" if name else "names no prompt format"
            raise ConfigurationError(
                f"The {self.label} at {self.url} {said}, so its model's prompt cannot be "
                "written; nothing was sent.",
                hint=f"Start it with --prompt-format set to one of: {', '.join(TEMPLATES)}.",
            )
        return template

    def chat(
        self, request: ChatRequest, *, deadline: float | None = None
    ) -> Generator[Chunk, None, None]:
        """Stream POST /generate_stream; an error event, a cut or no final event raise."""
        template = self.template(deadline=deadline)
        parameters: dict[str, Any] = {
            "max_new_tokens": request.max_tokens,
            "stop": list(template.stop),
            **{key: request.options[key] for key in SAMPLING if key in request.options},
        }
        stop = request.options.get("stop")
        if isinstance(stop, str):
            parameters["stop"].append(stop)
        elif isinstance(stop, (list, tuple)):
            parameters["stop"].extend(str(text) for text in stop)
        body = {"inputs": template.render(request.messages), "parameters": parameters}
        response = self.transport.send(
            "POST", GENERATE, body, stream=True, model=request.model, deadline=deadline
        )

        def decode(pieces: Iterator[bytes]) -> Iterator[Chunk]:
            for data in iter_sse_data(pieces):
                yield self._chunk(_event(data, self.url), request.model)

        return self.transport.stream(
            response,
            what="answer",
            decode=decode,
            is_final=lambda chunk: chunk.done,
            limit=answer_budget(request.max_tokens),
            deadline=deadline,
        )

    def _chunk(self, event: Mapping[str, Any], model: str) -> Chunk:
        if "error" in event:
            raise self.stream_error(str(event["error"]), str(event.get("error_type") or ""))
        token = event.get("token")
        text = token.get("text") if isinstance(token, Mapping) else None
        if not isinstance(text, str):
            raise ServerResponseError(
                f"The {self.label} sent an event without a token's text: {event!r}",
                url=self.url,
            )
        details = event.get("details")
        if not isinstance(details, Mapping):
            return Chunk(text)
        return Chunk(
            text,
            done=True,
            reason=REASONS.get(str(details.get("finish_reason")), "stop"),
            model=model,
            input_tokens=_count(details.get("input_tokens")),
            output_tokens=_count(details.get("generated_tokens")),
            raw=dict(event),
        )

    def stream_error(self, text: str, kind: str) -> ServerError:
        """An error event inside the 200 stream, as the error class it means."""
        if kind == "overloaded":
            return self.busy(text)
        if kind == "validation" and "input" in text and "tokens" in text:
            return ContextOverflowError(
                f"The {self.label} at {self.url} refused the prompt: {text}",
                hint="Shorten the input (fewer or shorter documents per run).",
                server_text=text,
                url=self.url,
            )
        if kind == "validation":
            return ConfigurationError(
                f"The {self.label} at {self.url} refused the request: {text}",
                hint="Check the options passed to generate().",
            )
        return ServerResponseError(
            f"The {self.label} at {self.url} stopped in the middle of the answer: {text}",
            hint="Retry; if it happens again, read the server's log.",
            server_text=text,
            url=self.url,
        )

    def pull(
        self, model: str, *, deadline: float | None = None
    ) -> Generator[PullProgress, None, None]:
        """Refused: an Acme server is started with its one model."""
        raise ConfigurationError(
            f"Cannot pull '{model}': the {self.label} serves the one model it was started with.",
            hint=f"Start a server with `acme serve {model}`.",
        )

    def not_found(self, model: str, served: list[str] | None) -> ModelNotAvailableError:
        """Not the model served: name the one that is."""
        if served is None:
            try:
                served = [info.name for info in self.models()]
            except ServerError:
                served = []
        listing = ", ".join(served) if served else "none"
        return ModelNotAvailableError(
            f"The {self.label} at {self.url} does not serve '{model}': it serves {listing}.",
            model=model,
            suggestions=served,
            hint=f"Ask for {listing}, or start a server with `acme serve {model}`.",
            status_code=404,
            url=self.url,
        )

    def connections_in_use(self) -> int:
        """Pooled connections checked out right now."""
        return self.transport.connections_in_use()

    def close(self) -> None:
        """Close pooled connections."""
        self.transport.close()


def _event(data: bytes, url: str) -> Mapping[str, Any]:
    """One event's JSON object; a malformed one raises (never skipped)."""
    try:
        event = json.loads(data)
    except ValueError:
        event = None
    if not isinstance(event, Mapping):
        raise ServerResponseError(
            f"The Acme server at {url} sent an event that is not a JSON object: {data[:200]!r}",
            url=url,
        )
    return event


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
