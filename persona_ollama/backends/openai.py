"""The OpenAI-compatible backend: /v1/chat/completions and /v1/models, in their own words.

With it one provider drives Ollama's /v1, vLLM, llama.cpp's server, LM Studio or a LiteLLM
proxy. It is a sibling of the Ollama backend, not a translation through it: it builds its own
requests from the neutral :class:`~persona_ollama.backends.base.ChatRequest`, reads the
server-sent events into neutral chunks, describes models from /v1/models (and what each kind
of server adds: llama.cpp's /props, LM Studio's /api/v0/models), and says failures in the
terms of the kind of server it found. A /v1 server has one fixed context window, so
``sets_window`` is False and an explicit ``num_ctx`` is reported as not sent.

This module is the Backend itself; each other concern has a module of its own:
openai_body.py (the request body), openai_sse.py (the event stream read into chunks),
openai_models.py (the kind of server and what it says of its models) and openai_errors.py
(failures and advice in that server's terms).
"""

from __future__ import annotations

import functools
import logging
import operator
import time
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..endpoint import v1_endpoint
from ..errors import (
    MODEL_NOT_FOUND,
    ConfigurationError,
    ModelNotPulledError,
    OllamaError,
    OllamaResponseError,
    OllamaTimeoutError,
    server_text_of,
)
from ..model_info import ModelInfo, placement
from ..privacy import warn_once
from ..server_state import ServerState
from ..settings import API_VAR
from ..transport.http import Transport, answer_budget
from . import openai_errors, openai_models
from .base import ChatRequest, Chunk, PullProgress
from .openai_body import EXTENSIONS, SAME_NAME, SCHEMA_IN_JSON_OBJECT, completion_request
from .openai_errors import (
    INTERRUPT_HINTS,
    LOG_PLACES,
    out_of_memory,
    read_the_log,
    start_advice,
    without_paths,
)
from .openai_models import (
    CONTEXT_KEYS,
    GENERIC,
    KINDS,
    context_length_of,
    entries_of,
    entries_serving,
    names_of,
    native_key,
    server_kind,
    server_label,
)
from .openai_rules import folded
from .openai_sse import (
    FINISH_REASONS,
    NOT_AN_EVENT_STREAM,
    OLLAMA_FINGERPRINT,
    AnswerSoFar,
    _Empty,
    _Interrupted,
    _StreamError,
    as_mapping,
    final_chunk,
    positive_int,
    sse_chunks,
    text_field,
)

if TYPE_CHECKING:
    from ..endpoint import Endpoint
    from .rules import NameRules

# The names this module had before it was split, kept importable from here.
__all__ = [
    "CONTEXT_KEYS",
    "EXTENSIONS",
    "FINISH_REASONS",
    "GENERIC",
    "INTERRUPT_HINTS",
    "KINDS",
    "LOG_PLACES",
    "NOT_AN_EVENT_STREAM",
    "OLLAMA_FINGERPRINT",
    "SAME_NAME",
    "SCHEMA_IN_JSON_OBJECT",
    "AnswerSoFar",
    "OpenAIBackend",
    "completion_request",
    "context_length_of",
    "final_chunk",
    "out_of_memory",
    "read_the_log",
    "server_kind",
    "server_label",
    "sse_chunks",
    "start_advice",
    "without_paths",
]

log = logging.getLogger(__name__)

# Seconds of a call's deadline that counting an answer's tokens leaves to the answer itself, to
# reach the caller whole (stream.py discards an answer finished after the deadline).
COUNT_RESERVE = 0.1


class OpenAIBackend:
    """An OpenAI-compatible server (vLLM, llama.cpp, LM Studio, LiteLLM, Ollama's /v1).

    ``endpoint`` may end in ``/v1`` or not. It has no model management (``pull`` raises) and
    says nothing of loaded windows.
    """

    sets_window = False
    reports_forwarding = False  # /v1 chunks carry no remote_host

    def __init__(
        self, endpoint: Endpoint, *, state: ServerState | None = None, **transport: Any
    ) -> None:
        """``state``: what this process knows of the server (the provider's; a backend built
        on its own has its own). ``transport``: the :class:`Transport` settings (timeouts,
        pool, headers, verify)."""
        self.endpoint = v1_endpoint(endpoint, v1=False)
        self.url = str(self.endpoint)
        self.state = state if state is not None else ServerState(self.url)
        if self.state.kind is None:  # else the rules follow what the server last listed
            self._use_names(names_of(GENERIC))
        self.transport = Transport(self.endpoint, self, **transport)

    @property
    def kind(self) -> str:
        """The kind of server (:func:`server_kind`), asked of /v1/models once per server
        and process."""
        return self._kind()

    def _kind(self, deadline: float | None = None) -> str:
        """:attr:`kind`, its listing (if it must be asked) bounded by ``deadline`` too."""
        if self.state.kind is None:
            try:
                self._models(deadline)
            except OllamaError:
                return GENERIC
        return self.kind_seen

    @property
    def kind_seen(self) -> str:
        """The kind of server as /v1/models last said it, without asking (the errors' words)."""
        return self.state.kind or GENERIC

    @property
    def names(self) -> NameRules:
        """The model-name rules of the server as /v1/models last said what it is
        (openai_models.names_of), without asking."""
        return self.state.names

    @property
    def label(self) -> str:
        """How messages name the server: "llama.cpp server", "vLLM server" ..."""
        return server_label(self.kind_seen)

    # -- the transport's words ---------------------------------------------------------

    def status_error(
        self, status: int, body: str, *, model: str | None, deadline: float | None = None
    ) -> OllamaError:
        """An HTTP error status in this server's terms (openai_errors.status_error); traceback
        frames (file paths on the server) are left out. A model not found is told with the
        ids the server serves, asked by the request's ``deadline``."""
        text = without_paths(server_text_of(body))
        if status == 404 and MODEL_NOT_FOUND.search(text) and model is not None:
            self.state.served.pop(self.names.canonical(model), None)
            return self._not_served(model, server_text=text, status_code=404, deadline=deadline)
        return openai_errors.status_error(
            status, text, model=model, url=self.url, kind=self.kind_seen
        )

    def not_running(self, reason: str) -> OllamaError:
        """No connection: start the server, or fix the address."""
        return openai_errors.not_running(reason, url=self.url, kind=self.kind_seen)

    def silent(self, seconds: float) -> OllamaTimeoutError:
        """Nothing for ``seconds``: loading, or a long queue."""
        return openai_errors.silent(seconds, url=self.url, kind=self.kind_seen)

    # -- the backend -------------------------------------------------------------------

    def version(self, *, timeout: float | None = None, deadline: float | None = None) -> str:
        """What answers GET /v1/models: the kind of server (:func:`server_kind`), e.g.
        "llama.cpp server (OpenAI-compatible API)"; a llama.cpp Server header also says it."""
        transport = self.transport
        limits = (timeout, timeout) if timeout else transport.quick
        retries = 0 if timeout else None
        response = transport.send(
            "GET", "/v1/models", stream=True, timeout=limits, retries=retries, deadline=deadline
        )
        server = response.headers.get("Server") or ""
        entries = entries_of(transport, transport.json(response, deadline=deadline))
        kind = server_kind(entries[0]) if entries else GENERIC
        if kind == GENERIC and server.lower().startswith("llama.cpp"):
            kind = "llama.cpp"
        self._found(kind, entries)
        if kind == GENERIC:
            return GENERIC
        return f"{server_label(kind)} (OpenAI-compatible API)"

    def refuses_overflow(self, *, deadline: float | None = None) -> bool | None:
        """Unknown: a /v1 server may cut (Ollama's /v1 does), so the counts are checked."""
        return None

    def models(self, *, deadline: float | None = None) -> list[ModelInfo]:
        """The served models (GET /v1/models), with where each runs as the same server's
        native /api/tags says (Ollama's /v1 forwards cloud models: see _remote_fields)."""
        entries = self._models(deadline)
        remote, unknown = self._remote_fields(deadline)
        found = []
        for entry in entries:
            name = entry["id"]
            fields = remote.get(native_key(name), {})
            found.append(
                ModelInfo(
                    name=name,
                    context_length=context_length_of(entry),
                    capabilities=("completion",),
                    placement=placement(name, unknown=unknown, **fields),
                    complete=False,  # describe() asks what the server gives each request
                )
            )
        return found

    def describe(
        self, model: str, listed: ModelInfo | None = None, *, deadline: float | None = None
    ) -> ModelInfo:
        """The context the server gives ``model`` where it says (llama.cpp's /props, LM
        Studio's REST API, /v1/models), else the catalogue's; ModelNotPulledError when the
        server does not serve it."""
        entry = self._entry(model, deadline)
        length = context_length_of(entry)
        transport = self.transport
        if isinstance(entry.get("meta"), Mapping):  # llama.cpp's server
            length = openai_models.slot_context(transport, self.url, deadline=deadline) or length
        elif server_kind(entry) == "LM Studio":
            length = (
                openai_models.lm_studio_context(transport, self.url, entry["id"], deadline=deadline)
                or length
            )
        from ..choosing.catalogue import load_catalogue  # pluggy loads with it, on first use

        spec = load_catalogue().get(entry["id"])  # known by its Ollama name, if at all
        if spec is not None:
            length = length or spec.context_length
        remote, unknown = self._remote_fields(deadline)
        fields = remote.get(native_key(entry["id"]), {})
        if unknown is None and self._kind(deadline) == "Ollama" and not self.names.is_remote(model):
            # Ollama may put the remote fields in /api/show only; a cloud name is never
            # shown (from 0.18 its /api/show is itself forwarded to ollama.com).
            shown, unknown = openai_models.shown_remote_fields(
                transport, self.url, entry["id"], deadline=deadline
            )
            fields = {**shown, **fields}
        return ModelInfo(
            name=model,
            context_length=length,
            capabilities=("completion", "thinking") if spec and spec.thinking else ("completion",),
            placement=placement(model, unknown=unknown, **fields),
        )

    def loaded_windows(self, *, deadline: float | None = None) -> dict[str, int]:
        """Always empty: the OpenAI-compatible API does not say what is loaded."""
        return {}

    def chat(
        self, request: ChatRequest, *, deadline: float | None = None
    ) -> Generator[Chunk, None, None]:
        """Stream POST /v1/chat/completions; errors are raised as typed errors, in this
        server's terms, and the ends only a /v1 server has are checked (see _checked)."""
        model = request.model
        entry = self.state.served.get(self.names.canonical(model), {})
        served = str(entry.get("id") or model)
        owner = entry.get("owned_by")
        kind = server_kind(entry) if entry else self._kind(deadline)
        body, dropped = completion_request(
            request, served=served, owner=owner if isinstance(owner, str) else None, kind=kind
        )
        for name in dropped:
            warn_once(
                f"dropped:{name}",
                f"The OpenAI-compatible API has no {name!r}; it was not sent "
                "(api='native' with Ollama takes it).",
            )
        transport = self.transport
        timeout = None
        if request.first_byte_wait is not None:  # load + prompt time of this prompt (waits.py)
            timeout = (transport.timeout[0], request.first_byte_wait)
        response = transport.send(
            "POST",
            "/v1/chat/completions",
            body,
            stream=True,
            model=model,
            timeout=timeout,
            deadline=deadline,
        )

        answer = AnswerSoFar(served)

        def decode(pieces: Iterator[bytes]) -> Iterator[Chunk]:
            return sse_chunks(pieces, model=served, answer=answer)

        stream = transport.stream(
            response,
            what="answer",
            decode=decode,
            is_final=_is_done,
            salvage=answer.final_if_whole,
            ended_quietly=f"The {server_label(kind)} ended the stream with neither a finish "
            f"reason nor [DONE]: retry; if every request ends like this, {read_the_log(kind)}.",
            limit=answer_budget(request.max_tokens),
            deadline=deadline,
        )
        checked = self._checked(stream, body, model=model, kind=kind, deadline=deadline)
        next(checked)  # primed, so that closing it closes the transport's stream
        return checked

    def _checked(
        self,
        stream: Generator[Chunk, None, None],
        body: dict[str, Any],
        *,
        model: str,
        kind: str,
        deadline: float | None,
    ) -> Generator[Chunk, None, None]:
        """``stream``, with the ends that only a /v1 server has turned into typed errors:
        an error event, [DONE] without a finish reason, and an empty 200 stream (asked
        again, unstreamed, so that the server says why). Counts the server left out are
        counted if it can."""
        label = server_label(kind)
        content: list[str] = []
        try:
            yield Chunk()  # the priming step: nothing is read before the first next()
            for chunk in stream:
                if chunk.done:
                    chunk = self._with_counts(chunk, "".join(content), body, kind, deadline)
                else:
                    content.append(chunk.content)
                yield chunk
        except _StreamError as error:
            text = without_paths(str(error))
            raise openai_errors.error_event(
                text, url=self.url, kind=kind, kind_seen=self.kind_seen, model=model
            ) from None
        except _Interrupted:
            raise openai_errors.interrupted(url=self.url, kind=kind) from None
        except _Empty:
            yield from self._unstreamed(body, model=model, label=label, deadline=deadline)
        finally:
            stream.close()

    def _unstreamed(
        self, body: dict[str, Any], *, model: str, label: str, deadline: float | None
    ) -> Iterator[Chunk]:
        """Ask again without streaming: llama-cpp-python answers an over-long prompt with an
        empty 200 stream, and only an unstreamed request gets its 400 (raised from here)."""
        transport = self.transport
        retry = {key: value for key, value in body.items() if key != "stream_options"}
        retry["stream"] = False
        answer = transport.expect_dict(
            transport.post_json("/v1/chat/completions", retry, model=model, deadline=deadline),
            "/v1/chat/completions",
        )
        listed = transport.expect_list(answer, "choices", "/v1/chat/completions")
        choices = [c for c in listed if isinstance(c, Mapping)]
        if not choices:
            raise OllamaResponseError(
                f"The {label} at {self.url} sent an empty answer, twice.",
                hint="Check the server's log; a prompt longer than its context is one cause.",
                url=self.url,
            )
        message = as_mapping(choices[0].get("message"))
        served = str(answer.get("model") or body.get("model") or "")
        text = text_field(message.get("content"), "content")
        finish = text_field(choices[0].get("finish_reason"), "finish_reason")
        if not finish:  # an answer that does not say it ended is not passed off as complete
            raise OllamaResponseError(
                f"The {label} at {self.url} sent an answer without a finish reason; the "
                "partial answer was discarded.",
                hint="Retry; if it repeats, check the server's log.",
                url=self.url,
            )
        yield Chunk(text)
        final = final_chunk(served, finish, as_mapping(answer.get("usage")), {})
        yield self._with_counts(final, text, body, GENERIC, deadline)

    def _with_counts(
        self,
        final: Chunk,
        content: str,
        body: Mapping[str, Any],
        kind: str,
        deadline: float | None,
    ) -> Chunk:
        """The final chunk, with the answer's token count when the server sent no usage but
        has a tokenizer endpoint (llama-cpp-python: /extras/tokenize/count); else unchanged:
        an absent count is reported as unknown, never as 0. The count is asked before the
        call's ``deadline`` (see _count_tokens)."""
        if final.output_tokens is not None or not content or kind != "llama.cpp":
            return final
        limit = positive_int(body.get("max_tokens"))
        if limit and final.reason == "length":
            # Stopped at the limit: exactly that many tokens were sampled, whereas the text
            # re-tokenised can count more (9 "out" of a max_tokens of 8, with random bytes).
            raw = {**final.raw, "output_tokens_source": "max_tokens"}
            return final._replace(output_tokens=limit, raw=raw)
        counted = self._count_tokens(content, str(body.get("model") or ""), deadline)
        if counted is not None:
            counted = min(counted, limit) if limit else counted
            raw = {**final.raw, "output_tokens_source": "server tokenizer"}
            final = final._replace(output_tokens=counted, raw=raw)
        return final

    def _count_tokens(self, text: str, model: str, deadline: float | None) -> int | None:
        """Tokens in ``text`` by the server's own tokenizer, where it has one we know; None
        (unknown) when it does not answer COUNT_RESERVE s before ``deadline``: the answer is
        whole already, and a count that ran into the deadline would have it discarded."""
        until = None if deadline is None else deadline - COUNT_RESERVE
        if until is not None and time.monotonic() >= until:
            return None
        transport = self.transport
        ask = functools.partial(
            transport.post_json, "/extras/tokenize/count", timeout=transport.quick, deadline=until
        )
        try:  # the model is loaded (it has just answered): the short read timeout is enough
            whole = ask({"input": text, "model": model})
            empty = ask({"input": "", "model": model})
        except OllamaError as error:
            log.debug("no token count from %s: %s", self.url, error.message)
            return None
        if not (isinstance(whole, Mapping) and isinstance(empty, Mapping)):
            return None
        count, overhead = whole.get("count"), empty.get("count")
        if not isinstance(count, int) or not isinstance(overhead, int):
            return None
        return max(count - overhead, 0)  # the tokenizer adds its BOS token to both

    def pull(
        self, model: str, *, deadline: float | None = None
    ) -> Generator[PullProgress, None, None]:
        """Refused: OpenAI-compatible servers load their models themselves."""
        raise ConfigurationError(
            f"Cannot pull '{model}': pull is only available with the native Ollama API.",
            hint="Load the model on the server itself (e.g. `vllm serve <model>`), or use "
            f"api='native' ({API_VAR}=native) with an Ollama server.",
        )

    def not_found(self, model: str, served: list[str] | None) -> ModelNotPulledError:
        """Not served: the names it serves, and how to start this kind of server with it."""
        return self._not_served(model, served=served, status_code=404)

    def _not_served(
        self,
        model: str,
        *,
        served: list[str] | bool | None = False,
        server_text: str | None = None,
        status_code: int | None = None,
        deadline: float | None = None,
    ) -> ModelNotPulledError:
        """The error for a model the server does not serve (``served``: its ids, None when
        unknown, False to ask /v1/models by ``deadline``), or serves under several ids that
        differ only in case."""
        if served is False:
            try:
                served = [entry["id"] for entry in self._models(deadline)]
            except OllamaError:
                served = None
        listed = served if isinstance(served, list) else None
        alike = [name for name in listed or [] if folded(name) == folded(model)]
        if len(alike) > 1 and model not in alike:
            return openai_errors.same_but_case(
                model, alike, url=self.url, kind=self.kind_seen, status_code=status_code
            )
        return openai_errors.not_served(
            model,
            listed,
            url=self.url,
            kind=self.kind_seen,
            server_text=server_text,
            status_code=status_code,
        )

    def _models(self, deadline: float | None = None) -> list[dict[str, Any]]:
        """The entries of GET /v1/models that have an id (``data`` is null on an empty Ollama)."""
        listing = self.transport.get_json("/v1/models", deadline=deadline)
        entries = entries_of(self.transport, listing)
        if entries:
            self._found(server_kind(entries[0]), entries)
        return entries

    def _found(self, kind: str, entries: list[dict[str, Any]]) -> None:
        """Keep the ``kind`` of server /v1/models says this is, and its name rules for the
        ids it lists (``entries``)."""
        self.state.kind = kind
        self._use_names(names_of(kind, entries))

    def _use_names(self, rules: NameRules) -> None:
        """Compare the server's names by ``rules`` from now on, unless they are the rules in
        use: new rules make the server's state forget its facts (ServerState.names)."""
        if rules != self.state.names:
            self.state.names = rules

    def _entry(self, model: str, deadline: float | None = None) -> Mapping[str, Any]:
        """The /v1/models entry serving ``model``: the exact id, else the same name by the
        rules of the kind of server listing it (openai_models.entries_serving), if only one
        entry has it."""
        entries = self._models(deadline)
        found = entries_serving(entries, model)
        if len(found) > 1:  # ids that differ only in case: "Qwen" and "qwen" for "QWEN"
            ids = [entry["id"] for entry in found]
            raise openai_errors.same_but_case(
                model, ids, url=self.url, kind=self.kind_seen, status_code=404
            )
        if not found:
            raise self._not_served(
                model, served=[entry["id"] for entry in entries], status_code=404
            )
        self.state.served[self.names.canonical(model)] = found[0]
        return found[0]

    def _remote_fields(
        self, deadline: float | None = None
    ) -> tuple[dict[str, dict[str, Any]], str | None]:
        """canonical name -> remote fields from the same server's native listing, and why
        they could not be read (openai_models.remote_fields)."""
        kind = self._kind(deadline)
        return openai_models.remote_fields(self.transport, self.url, kind, deadline=deadline)

    def connections_in_use(self) -> int:
        """Pooled connections checked out right now."""
        return self.transport.connections_in_use()

    def close(self) -> None:
        """Close pooled connections."""
        self.transport.close()


_is_done = operator.attrgetter("done")  # the final item of a stream (C speed, once per token)
