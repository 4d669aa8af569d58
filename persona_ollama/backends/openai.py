"""The OpenAI-compatible backend: /v1/chat/completions and /v1/models, in their own words.

With it one provider drives Ollama's /v1, vLLM, llama.cpp's server, LM Studio or a LiteLLM
proxy. It is a sibling of the Ollama backend, not a translation through it: it builds its own
requests from the neutral :class:`~persona_ollama.backends.base.ChatRequest`, reads the
server-sent events into neutral chunks, describes models from /v1/models (and what each kind
of server adds: llama.cpp's /props, LM Studio's /api/v0/models), and says failures in the
terms of the kind of server it found. A /v1 server has one fixed context window, so
``sets_window`` is False and an explicit ``num_ctx`` is reported as not sent.
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import re
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .. import names
from ..endpoint import v1_endpoint
from ..errors import (
    MAX_LISTED,
    MODEL_NOT_FOUND,
    CloudSignInRequiredError,
    ConfigurationError,
    ConnectionBrokenError,
    ContextOverflowError,
    InsufficientMemoryError,
    ModelNotPulledError,
    ModelRunnerError,
    OllamaAuthenticationError,
    OllamaError,
    OllamaNotRunningError,
    OllamaResponseError,
    OllamaTimeoutError,
    ServerBusyError,
    closest_models,
    is_out_of_memory,
    misspells,
    server_text_of,
    wrong_shape,
)
from ..model_info import ModelInfo, placement
from ..privacy import warn_once
from ..settings import API_KEY_VAR, API_VAR, TIMEOUT_VAR
from ..transport.http import Transport, answer_budget
from ..transport.ndjson import _parse as parse_object
from ..transport.sse import DONE, iter_sse_data
from .base import ChatRequest, Chunk, PullProgress

if TYPE_CHECKING:
    from ..endpoint import Endpoint

log = logging.getLogger(__name__)

# Native options whose OpenAI-compatible field has the same name and meaning.
SAME_NAME = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty")
# Not in OpenAI's API, but read by vLLM, llama.cpp and LM Studio (Ollama's /v1 ignores them).
EXTENSIONS = ("top_k", "min_p")
FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop", "function_call": "stop"}
# Keys of a /v1/models entry that give the served context length: vLLM's max_model_len, a
# generic context_length; llama.cpp's entry has meta.n_ctx_train instead.
CONTEXT_KEYS = ("max_model_len", "context_length")
OLLAMA_FINGERPRINT = "fp_ollama"

# What each server says in /v1/models' owned_by: vLLM (ModelCard's default), llama.cpp's
# llama-server, LM Studio, Ollama (the namespace of a library model); llama-cpp-python's
# server says "me" (with an empty "permissions" list), LiteLLM passes through "openai".
GENERIC = "OpenAI-compatible server"
# The statuses of a server without the native route asked for: nothing to learn there.
_NO_ROUTE = (404, 405, 501)
KINDS = {
    "vllm": "vLLM",
    "llamacpp": "llama.cpp",
    "organization_owner": "LM Studio",
    "library": "Ollama",
    "litellm": "LiteLLM",
}
# llama.cpp's JSON-schema output takes the schema inside json_object (llama-cpp-python refuses
# "json_schema" with a 500; llama-server reads both); every other kind takes OpenAI's form.
SCHEMA_IN_JSON_OBJECT = ("llama.cpp",)
# The sizes in the context_length_exceeded error of vLLM, llama-cpp-python and OpenAI.
# The sizes in a context_length_exceeded error: llama-cpp-python, older vLLM and OpenAI say
# "you requested N tokens (P in the messages, ...)", vLLM since about 0.10 "your request has
# P input tokens" (its serving layer's input validation).
_SIZES = re.compile(
    r"maximum context length is (\d+) tokens.*?"
    r"(?:requested (\d+) tokens(?: \((\d+) in the messages)?|request has (\d+) input tokens)",
    re.DOTALL,
)
# A Python traceback frame in a server's error text (llama-cpp-python puts one in its 500s).
_FRAME = re.compile(r'^\s*File "[^"]*", line \d+.*$|^\s*(GET|POST) /\S*\s*$', re.MULTILINE)


# What to do about an interrupted answer, where the server kind is known to do it.
INTERRUPT_HINTS = {
    "llama.cpp": "llama-cpp-python's server interrupts a running answer when another request "
    "arrives: start it with --interrupt_requests False, or send one request at a time "
    "(pool_size=1).",
}


# Where a server of each kind writes its log, for the hints that say to read it.
LOG_PLACES = {"Ollama": "`ollama serve` output or ~/.ollama/logs/server.log"}
# Texts by which a server says the process running the model died or failed (Ollama's /v1
# passes its scheduler's: llm/server.go, llm/llama_server.go).
_RUNNER_DIED = (
    "model runner has unexpectedly stopped",
    "error was encountered while running the model",
    "process has terminated",
    "process no longer running",
)
# The hint for an event stream that is not one (not JSON, not an object, not UTF-8).
NOT_AN_EVENT_STREAM = (
    "Check that the URL points at an OpenAI-compatible server (`persona-ollama doctor "
    "--api openai`), not at a proxy's error page."
)


def read_the_log(kind: str) -> str:
    """The advice to read the log of a server of ``kind``, saying where it is when known."""
    place = LOG_PLACES.get(kind)
    return f"check the {server_label(kind)}'s log" + (f" ({place})" if place else "")


def out_of_memory(
    text: str, *, label: str, url: str, status: int, model: str | None
) -> InsufficientMemoryError:
    """The server could not load ``model`` for lack of memory (``text`` is its own words)."""
    name = f"'{model}'" if model else "the model"
    return InsufficientMemoryError(
        f"The {label} at {url} could not load {name}: not enough memory ({text}).",
        hint="Pick a smaller model (`persona-ollama recommend` lists those that fit), close "
        "other programs that use memory, or start the server with a shorter context "
        "(llama.cpp: -c; vLLM: --max-model-len; Ollama: OLLAMA_CONTEXT_LENGTH).",
        server_text=text,
        status_code=status,
        url=url,
    )


def _event(data: bytes) -> dict[str, Any]:
    """One event's JSON object; anything else is an error that says what to check (the
    shared parser's hint speaks of Ollama's NDJSON)."""
    try:
        return parse_object(data)
    except OllamaResponseError as error:
        error.hint = NOT_AN_EVENT_STREAM
        raise


class _Interrupted(Exception):
    """The stream said [DONE] before any choice had a finish reason."""


class _Empty(Exception):
    """A 200 stream that ended without a single event."""


class _StreamError(Exception):
    """An error event in the stream (its text is the argument)."""


# (server root, canonical name asked for) -> the /v1/models entry serving it: vLLM needs its
# exact id, and owned_by says which server it is. Process-wide, like the provider's model
# facts, because Persona builds a new provider (and client) for every call.
_SERVED: dict[tuple[str, str], Mapping[str, Any]] = {}
# server root -> server_kind() of its /v1/models entries, for the same reason.
_KINDS: dict[str, str] = {}


def server_label(kind: str) -> str:
    """How messages name a server of ``kind``: "the llama.cpp server", "the vLLM server"."""
    return kind if kind == GENERIC else f"{kind} server"


def start_advice(kind: str, model: str) -> str:
    """How to make a server of ``kind`` serve ``model``, in the commands that work there."""
    return {
        "vLLM": f"start it with that model: `vllm serve <repo> --served-model-name {model}`",
        "llama.cpp": f"start it with that model: `llama-server -m <file.gguf> --alias {model}` "
        f"(llama-cpp-python: `python -m llama_cpp.server --model <file.gguf> "
        f"--model_alias {model}`)",
        "LM Studio": "load that model in LM Studio (or `lms load <model>`)",
        "LiteLLM": f"add '{model}' to the proxy's model_list",
        "Ollama": f"run `ollama pull {model}` on that machine",
    }.get(kind, "start the server with that model")


def without_paths(text: str) -> str:
    """``text`` without the traceback frames (file paths on the server) some servers add."""
    return re.sub(r"\n{3,}", "\n\n", _FRAME.sub("", text)).strip()


def server_kind(entry: Mapping[str, Any]) -> str:
    """Which server a /v1/models entry comes from: "vLLM", "llama.cpp", "LM Studio",
    "LiteLLM", "Ollama", or "OpenAI-compatible server" when it does not say."""
    owner = entry.get("owned_by")
    if isinstance(owner, str) and owner.lower() in KINDS:
        return KINDS[owner.lower()]
    if isinstance(entry.get("meta"), Mapping):  # llama-server's GGUF metadata
        return "llama.cpp"
    if owner == "me" and entry.get("permissions") == []:  # llama-cpp-python's server
        return "llama.cpp"
    return GENERIC


def completion_request(
    request: ChatRequest, *, served: str, owner: str | None = None, kind: str = GENERIC
) -> tuple[dict[str, Any], list[str]]:
    """The streaming /v1/chat/completions body for ``request`` (model id ``served``).

    Returns the body and the names of options a /v1 server cannot take (not sent).
    ``owner`` is the model's ``owned_by`` from /v1/models: vLLM refuses reasoning_effort
    "none", so thinking is switched off there through the chat template instead. ``kind``
    (:func:`server_kind`) chooses the form of a JSON-schema ``format``.
    """
    options = dict(request.options)
    body: dict[str, Any] = {
        "model": served,
        "messages": [
            {"role": message.get("role"), "content": message.get("content") or ""}
            for message in request.messages
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": request.max_tokens,  # Ollama's /v1 ignores max_completion_tokens
    }
    for name in (*SAME_NAME, *EXTENSIONS):
        if name in options:
            body[name] = options.pop(name)
    dropped = list(options)
    if request.keep_alive is not None:
        dropped.append("keep_alive")
    form = request.format
    if form == "json":
        body["response_format"] = {"type": "json_object"}
    elif isinstance(form, Mapping) and kind in SCHEMA_IN_JSON_OBJECT:
        body["response_format"] = {"type": "json_object", "schema": dict(form)}
    elif isinstance(form, Mapping):
        schema = {"name": "response", "schema": dict(form)}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    think = request.think
    if think is False and owner == "vllm":
        body["chat_template_kwargs"] = {"enable_thinking": False}
    elif think is False:
        body["reasoning_effort"] = "none"
    elif isinstance(think, str):
        body["reasoning_effort"] = "high" if think == "max" and owner == "vllm" else think
    return body, sorted(dropped)


class AnswerSoFar:
    """What a /v1 stream has said so far that its final chunk carries: the model, the
    finish reason, the usage and timings. Whole once a finish reason came (the generation
    ended); ``[DONE]`` only closes the stream."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.finish: str | None = None
        self.usage: Mapping[str, Any] = {}
        self.timings: Mapping[str, Any] = {}

    def final_if_whole(self) -> Chunk | None:
        """The final chunk when the answer was whole before the connection broke (its
        finish reason came, only ``[DONE]`` or the usage event was lost), else None."""
        if self.finish is None:
            return None
        return final_chunk(self.model, self.finish, self.usage, self.timings)


def sse_chunks(
    events: Iterable[bytes], *, model: str, answer: AnswerSoFar | None = None
) -> Iterator[Chunk]:
    """The chunks of a /v1 event stream, ending with a ``done`` one; ``answer`` (when
    given) keeps what the stream has said so far, for a connection that breaks after it.

    One chunk per event that has a choice (reasoning goes to ``thinking``); after ``[DONE]``
    (or the end of a stream that gave a finish reason) the final chunk carries the reason and
    the token counts of the usage event. An error event raises. A stream that ends with
    neither simply stops: the transport raises, as for any stream without its final item.
    ``[DONE]`` before any finish reason raises ``_Interrupted`` (llama-cpp-python's server
    ends an earlier stream that way when another request arrives), and a stream without a
    single event raises ``_Empty`` (its answer to a prompt longer than its context).
    """
    so_far = answer if answer is not None else AnswerSoFar(model)
    fingerprint = None
    finished = False
    count = 0
    for data in iter_sse_data(events):
        count += 1
        if data.strip() == DONE:
            if so_far.finish is None:
                raise _Interrupted
            finished = True
            break
        event = _event(data)
        if event.get("error") is not None or event.get("object") == "error":
            raise _StreamError(server_text_of(data.decode("utf-8", "replace")))
        so_far.model = str(event.get("model") or so_far.model)
        fingerprint = event.get("system_fingerprint") or fingerprint
        so_far.usage = _mapping(event.get("usage")) or so_far.usage
        # llama.cpp's server adds timings.
        so_far.timings = _mapping(event.get("timings")) or so_far.timings
        choices = event.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = _mapping(choice.get("delta"))
            # vLLM < 0.10 says reasoning_content.
            thinking = _text(delta.get("reasoning") or delta.get("reasoning_content"), "reasoning")
            yield Chunk(_text(delta.get("content"), "content"), thinking)
            reason = _text(choice.get("finish_reason"), "choices[0].finish_reason")
            so_far.finish = reason or so_far.finish
    if not count:
        raise _Empty
    if not finished and so_far.finish is None:
        return
    if fingerprint == OLLAMA_FINGERPRINT:
        warn_once(
            OLLAMA_FINGERPRINT,
            "This OpenAI-compatible server is Ollama, whose /v1 ignores num_ctx: prompts "
            "longer than its default context (OLLAMA_CONTEXT_LENGTH) are cut without an "
            "error. Use api='native' with Ollama.",
        )
    final = so_far.final_if_whole()
    if final is not None:
        yield final


def final_chunk(
    model: str, finish: str | None, usage: Mapping[str, Any], timings: Mapping[str, Any]
) -> Chunk:
    """The ``done`` chunk: the finish reason, and the counts and durations the server gave
    (absent or nonsensical ones are left unknown, never 0)."""
    counts = {}
    for source in ("prompt_tokens", "completion_tokens"):
        count = usage.get(source)
        # A bool is an int to Python, and a negative count is no count: both are left out
        # (reported as unknown), like a count sent as a string.
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            counts[source] = count
    seconds = {}
    for source in ("prompt_ms", "predicted_ms"):
        value = timings.get(source)
        # NaN and infinity are valid JSON to Python's parser, not durations.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value) and 0 <= value < 1e12:  # not absurd either
            seconds[source] = value / 1000
    reason = FINISH_REASONS.get(finish, finish) if finish else "stop"
    raw: dict[str, Any] = {"model": model, "finish_reason": finish, "done_reason": reason}
    if usage:
        raw["usage"] = dict(usage)
    if timings:
        raw["timings"] = dict(timings)
    return Chunk(
        done=True,
        reason=reason,
        model=model,
        input_tokens=counts.get("prompt_tokens"),
        output_tokens=counts.get("completion_tokens"),
        prompt_seconds=seconds.get("prompt_ms"),
        answer_seconds=seconds.get("predicted_ms"),
        raw=raw,
    )


def _text(value: Any, field: str) -> str:
    """A string field of an event: "" when absent; any other type is a malformed event."""
    if value is None or isinstance(value, str):
        return value or ""
    error = wrong_shape(field, "text", value)
    error.hint = NOT_AN_EVENT_STREAM  # the shared hint speaks of Ollama servers
    raise error


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def context_length_of(entry: Mapping[str, Any]) -> int | None:
    """The context length a /v1/models entry states (vLLM, llama.cpp), or None."""
    for key in CONTEXT_KEYS:
        length = _positive_int(entry.get(key))
        if length:
            return length
    return _positive_int(_mapping(entry.get("meta")).get("n_ctx_train"))


# Texts by which /v1 servers refuse a prompt longer than their context.
# An error event by which a proxy says that ITS connection to the machine behind it broke
# mid-answer: the same as a broken connection to the client, so generate() asks again and the
# proxy picks a machine that is up. LiteLLM (1.108) sends "litellm.APIConnectionError: ...
# Response payload is not completed: <TransferEncodingError ...>" when an Ollama behind it dies
# (found by tests/scaleout/test_litellm_a2.py).
# Not the name "APIConnectionError" alone: LiteLLM gives it to most errors of an Ollama behind
# it, answers included ("... - {"error":"model 'x' not found, try pulling it first"}",
# BerriAI/litellm#1735, #32898), which asking again would only repeat; only the words of the
# aiohttp/OS error of a connection that broke or could not be made.
_UPSTREAM_BROKE_MARKERS = (
    "payload is not completed",  # aiohttp: the body was cut (the machine died mid-answer)
    "cannot connect to host",  # aiohttp: the machine is down
    "server disconnected",  # aiohttp: closed before the headers
    "connection reset by peer",
    "connection refused",
    "no connection could be made",  # Windows' "connection refused" (WinError 10061)
)
_OVERFLOW_MARKERS = (
    "maximum context length",  # vLLM, OpenAI, llama-cpp-python
    "longer than the maximum model length",  # vLLM
    "exceeds the available context",  # llama-server
    "exceed_context_size_error",
    "context_length_exceeded",
    # Ollama's /v1 (0.30.9+), context shift off: llm/llama_server.go completionPromptForRequest
    "prompt is longer than the context length",
)


class OpenAIBackend:
    """An OpenAI-compatible server (vLLM, llama.cpp, LM Studio, LiteLLM, Ollama's /v1).

    ``endpoint`` may end in ``/v1`` or not. It has no model management (``pull`` raises) and
    says nothing of loaded windows.
    """

    sets_window = False
    reports_forwarding = False  # /v1 chunks carry no remote_host

    def __init__(self, endpoint: Endpoint, **transport: Any) -> None:
        """``transport``: the :class:`Transport` settings (timeouts, pool, headers, verify)."""
        self.endpoint = v1_endpoint(endpoint, v1=False)
        self.url = str(self.endpoint)
        self.transport = Transport(self.endpoint, self, **transport)

    @property
    def kind(self) -> str:
        """The kind of server (:func:`server_kind`), asked of /v1/models once per process."""
        if self.url not in _KINDS:
            try:
                self._models()
            except OllamaError:
                return GENERIC
        return _KINDS.get(self.url, GENERIC)

    @property
    def label(self) -> str:
        """How messages name the server: "llama.cpp server", "vLLM server" ..."""
        return server_label(_KINDS.get(self.url, GENERIC))

    # -- the transport's words ---------------------------------------------------------

    def status_error(self, status: int, body: str, *, model: str | None) -> OllamaError:
        """An HTTP error status in this server's terms; traceback frames (file paths on the
        server) are left out."""
        text = without_paths(server_text_of(body))
        lowered = text.lower()
        common: dict[str, Any] = {"server_text": text, "status_code": status, "url": self.url}
        found = MODEL_NOT_FOUND.search(text)
        if status == 404 and found and model is not None:
            _SERVED.pop((self.url, names.canonical(model)), None)
            return self._not_served(model, server_text=text, status_code=404)
        if any(marker in lowered for marker in _OVERFLOW_MARKERS):
            return self._overflow(text, status)
        if is_out_of_memory(text):
            return out_of_memory(text, label=self.label, url=self.url, status=status, model=model)
        if any(marker in lowered for marker in _RUNNER_DIED):
            return ModelRunnerError(
                f"The {self.label} at {self.url} could not run "
                f"{f'{model!r}' if model else 'the model'}: {text}",
                hint="The process running the model crashed or was killed; nothing was "
                f"answered. Retry; if it repeats, {read_the_log(_KINDS.get(self.url, GENERIC))}, "
                "or try another model.",
                **common,
            )
        if status >= 500 and any(marker in lowered for marker in _UPSTREAM_BROKE_MARKERS):
            # A proxy (LiteLLM) that could not reach the machine it chose: nothing was
            # generated, so generate() may send it again (restart.py).
            return ConnectionBrokenError(
                f"The {self.label} at {self.url} could not reach the machine behind it "
                f"(HTTP {status}): {text}",
                hint="A machine behind the proxy may be down; check the proxy's and the "
                "machines' logs.",
                **common,
            )
        if status in (401, 403):
            refusal = self._cloud_refusal(status, text, model)
            if refusal is not None:
                return refusal
        if status in (429, 503):
            return ServerBusyError(
                f"The {self.label} at {self.url} is busy and kept refusing the request "
                f"(HTTP {status}).",
                hint="Retry later, or send fewer requests at once (a smaller pool_size).",
                **common,
            )
        if status in (401, 403):
            return OllamaAuthenticationError(
                f"The {self.label} at {self.url} refused the request (HTTP {status})"
                + (f": {text}" if text else "."),
                hint=f"Pass the server's API key (api_key=... or {API_KEY_VAR}).",
                **common,
            )
        hint = None
        if "does not support thinking" in lowered:  # Ollama's /v1, for a model that cannot
            hint = "This model cannot think: pass think=False (CLI: --no-think)."
        elif "does not support chat" in lowered:  # Ollama's /v1 (routes.go ChatHandler):
            # an embedder, which /v1/models cannot tell apart from a chat model
            hint = "This is an embedding model; pick a chat model (`persona-ollama models`)."
        elif status in (404, 405):
            hint = (
                "Check the address: it should be the server's root or its /v1 "
                "(`persona-ollama doctor --api openai`), not a proxy's error page."
            )
        return OllamaResponseError(
            f"The {self.label} at {self.url} answered HTTP {status}: {text or '(empty body)'}",
            hint=hint,
            **common,
        )

    def _cloud_refusal(
        self, status: int, text: str, model: str | None
    ) -> OllamaAuthenticationError | None:
        """Ollama's refusal to forward to ollama.com, as its /v1 says it (the native body's
        signin_url is lost there: middleware/openai.go writeError keeps the message only):
        401 "unauthorized" when signed out, 403 "ollama cloud is disabled" with OLLAMA_NO_CLOUD
        (internal/cloud DisabledError). None for any other 401/403 (an API key, a proxy)."""
        common: dict[str, Any] = {"server_text": text, "status_code": status, "url": self.url}
        name = f"'{model}'" if model else "the model"
        if status == 403 and text.lower().startswith("ollama cloud is disabled"):
            return OllamaAuthenticationError(
                f"The {self.label} at {self.url} refused {name}: {text}. It is a cloud "
                "model, and cloud models are turned off on that server.",
                hint="Pick a local model (`persona-ollama models`).",
                **common,
            )
        # Ollama by its /v1/models, or a server of unknown kind asked for a cloud name.
        kind = _KINDS.get(self.url, GENERIC)
        ollama = kind == "Ollama" or (kind == GENERIC and bool(model and names.is_cloud(model)))
        if status != 401 or text.strip().lower() != "unauthorized" or not ollama:
            return None
        return CloudSignInRequiredError(
            f"Model {name} runs on ollama.com, and the Ollama server at {self.url} is not "
            "signed in to it (HTTP 401).",
            hint="Run `ollama signin` on the machine where Ollama runs, or pick a local model "
            f"(`persona-ollama models`). If a proxy guards the server, pass its API key "
            f"(api_key=... or {API_KEY_VAR}).",
            **common,
        )

    def _overflow(self, text: str, status: int) -> ContextOverflowError:
        """The server's refusal of a long prompt, with the sizes its text gives."""
        match = _SIZES.search(text)
        if match is None:
            return ContextOverflowError(
                f"The prompt is longer than the context the {self.label} at {self.url} gives "
                "the model; it refused the request, nothing was cut.",
                hint="Shorten the input, or restart the server with a longer context "
                "(llama.cpp: --n_ctx / -c; vLLM: --max-model-len; Ollama: "
                "OLLAMA_CONTEXT_LENGTH).",
                server_text=text,
                status_code=status,
                url=self.url,
            )
        window = int(match.group(1))
        prompt = int(match.group(3) or match.group(2) or match.group(4))
        return ContextOverflowError(
            f"The prompt needs {prompt} tokens, but the {self.label} at {self.url} gives "
            f"the model a context of {window}; it refused the request, nothing was cut.",
            prompt_tokens=prompt,
            context_length=window,
            hint="Shorten the input (fewer or shorter documents per run), or restart the "
            "server with a longer context (llama.cpp: --n_ctx / -c; vLLM: --max-model-len).",
            server_text=text,
            status_code=status,
            url=self.url,
        )

    def not_running(self, reason: str) -> OllamaError:
        """No connection: start the server, or fix the address."""
        return OllamaNotRunningError(
            f"Cannot reach the {self.label} at {self.url}: {reason}.",
            hint="Start the server (e.g. `vllm serve <model>`, `llama-server -m <file.gguf>`, "
            "LM Studio's server or `ollama serve`), or correct base_url / OLLAMA_HOST: "
            "vLLM listens on http://host:8000/v1 by default.",
            url=self.url,
        )

    def silent(self, seconds: float) -> OllamaTimeoutError:
        """Nothing for ``seconds``: loading, or a long queue."""
        return OllamaTimeoutError(
            f"The {self.label} at {self.url} sent nothing for {seconds:g} s.",
            hint="The server may be loading the model or working through a queue: raise the "
            f"timeout (timeout=600 or {TIMEOUT_VAR}=600), or send fewer requests at "
            "once (a smaller pool_size).",
            url=self.url,
        )

    # -- the backend -------------------------------------------------------------------

    def version(self, *, timeout: float | None = None) -> str:
        """What answers GET /v1/models: the kind of server (:func:`server_kind`), e.g.
        "llama.cpp server (OpenAI-compatible API)"; a llama.cpp Server header also says it."""
        transport = self.transport
        limits = (timeout, timeout) if timeout else transport.quick
        retries = 0 if timeout else None
        response = transport.send("GET", "/v1/models", stream=True, timeout=limits, retries=retries)
        server = response.headers.get("Server") or ""
        entries = self._entries_of(transport.json(response))
        kind = _KINDS.get(self.url, GENERIC) if entries else GENERIC
        if kind == GENERIC and server.lower().startswith("llama.cpp"):
            kind = "llama.cpp"
        _KINDS[self.url] = kind
        if kind == GENERIC:
            return GENERIC
        return f"{server_label(kind)} (OpenAI-compatible API)"

    def refuses_overflow(self) -> bool | None:
        """Unknown: a /v1 server may cut (Ollama's /v1 does), so the counts are checked."""
        return None

    def models(self) -> list[ModelInfo]:
        """The served models (GET /v1/models), with where each runs as the same server's
        native /api/tags says (Ollama's /v1 forwards cloud models: see _remote_fields)."""
        entries = self._models()
        remote, unknown = self._remote_fields()
        found = []
        for entry in entries:
            name = entry["id"]
            fields = remote.get(names.canonical(name), {})
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

    def describe(self, model: str, listed: ModelInfo | None = None) -> ModelInfo:
        """The context the server gives ``model`` where it says (llama.cpp's /props, LM
        Studio's REST API, /v1/models), else the catalogue's; ModelNotPulledError when the
        server does not serve it."""
        entry = self._entry(model)
        length = context_length_of(entry)
        if isinstance(entry.get("meta"), Mapping):  # llama.cpp's server
            length = self._slot_context() or length
        elif server_kind(entry) == "LM Studio":
            length = self._lm_studio_context(entry["id"]) or length
        from ..choosing.catalogue import load_catalogue  # pluggy loads with it, on first use

        spec = load_catalogue().get(entry["id"])  # known by its Ollama name, if at all
        if spec is not None:
            length = length or spec.context_length
        remote, unknown = self._remote_fields()
        fields = remote.get(names.canonical(entry["id"]), {})
        if unknown is None and self.kind == "Ollama" and not names.is_cloud(model):
            # Ollama may put the remote fields in /api/show only; a cloud name is never
            # shown (from 0.18 its /api/show is itself forwarded to ollama.com).
            shown, unknown = self._shown_remote_fields(entry["id"])
            fields = {**shown, **fields}
        return ModelInfo(
            name=model,
            context_length=length,
            capabilities=("completion", "thinking") if spec and spec.thinking else ("completion",),
            placement=placement(model, unknown=unknown, **fields),
        )

    def loaded_windows(self) -> dict[str, int]:
        """Always empty: the OpenAI-compatible API does not say what is loaded."""
        return {}

    def chat(self, request: ChatRequest) -> Generator[Chunk, None, None]:
        """Stream POST /v1/chat/completions; errors are raised as typed errors, in this
        server's terms, and the ends only a /v1 server has are checked (see _checked)."""
        model = request.model
        entry = _SERVED.get((self.url, names.canonical(model)), {})
        served = str(entry.get("id") or model)
        owner = entry.get("owned_by")
        kind = server_kind(entry) if entry else self.kind
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
            "POST", "/v1/chat/completions", body, stream=True, model=model, timeout=timeout
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
        )
        checked = self._checked(stream, body, model=model, kind=kind)
        next(checked)  # primed, so that closing it closes the transport's stream
        return checked

    def _checked(
        self,
        stream: Generator[Chunk, None, None],
        body: dict[str, Any],
        *,
        model: str,
        kind: str,
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
                    chunk = self._with_counts(chunk, "".join(content), body, kind)
                else:
                    content.append(chunk.content)
                yield chunk
        except _StreamError as error:
            text = without_paths(str(error))
            if is_out_of_memory(text):
                raise out_of_memory(
                    text, label=label, url=self.url, status=200, model=model
                ) from None
            if any(marker in text.lower() for marker in _OVERFLOW_MARKERS):
                raise self._overflow(text, 200) from None
            if any(marker in text.lower() for marker in _UPSTREAM_BROKE_MARKERS):
                raise ConnectionBrokenError(
                    f"The {label} says its connection to the machine behind it broke in the "
                    f"middle of the answer: {text}; the partial answer was discarded.",
                    hint="A machine behind the proxy may have crashed or restarted; check "
                    "the proxy's and the machines' logs.",
                    server_text=text,
                    status_code=200,
                    url=self.url,
                ) from None
            raise OllamaResponseError(
                f"The {label} stopped with an error in the middle of the answer: {text}",
                hint="The partial answer (if any) was discarded. Retry; if it repeats, "
                f"{read_the_log(kind)}.",
                server_text=text,
                status_code=200,
                url=self.url,
            ) from None
        except _Interrupted:
            raise OllamaResponseError(
                f"The {label} at {self.url} ended the answer with [DONE] before it was "
                "finished (no finish reason): it was interrupted, and the partial answer was "
                "discarded.",
                hint=INTERRUPT_HINTS.get(kind, "Check the server's log, and retry."),
                url=self.url,
            ) from None
        except _Empty:
            yield from self._unstreamed(body, model=model, label=label)
        finally:
            stream.close()

    def _unstreamed(self, body: dict[str, Any], *, model: str, label: str) -> Iterator[Chunk]:
        """Ask again without streaming: llama-cpp-python answers an over-long prompt with an
        empty 200 stream, and only an unstreamed request gets its 400 (raised from here)."""
        transport = self.transport
        retry = {key: value for key, value in body.items() if key != "stream_options"}
        retry["stream"] = False
        answer = transport.expect_dict(
            transport.post_json("/v1/chat/completions", retry, model=model),
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
        message = _mapping(choices[0].get("message"))
        served = str(answer.get("model") or body.get("model") or "")
        text = _text(message.get("content"), "content")
        finish = _text(choices[0].get("finish_reason"), "finish_reason")
        if not finish:  # an answer that does not say it ended is not passed off as complete
            raise OllamaResponseError(
                f"The {label} at {self.url} sent an answer without a finish reason; the "
                "partial answer was discarded.",
                hint="Retry; if it repeats, check the server's log.",
                url=self.url,
            )
        yield Chunk(text)
        final = final_chunk(served, finish, _mapping(answer.get("usage")), {})
        yield self._with_counts(final, text, body, GENERIC)

    def _with_counts(self, final: Chunk, content: str, body: Mapping[str, Any], kind: str) -> Chunk:
        """The final chunk, with the answer's token count when the server sent no usage but
        has a tokenizer endpoint (llama-cpp-python: /extras/tokenize/count); else unchanged:
        an absent count is reported as unknown, never as 0."""
        if final.output_tokens is not None or not content or kind != "llama.cpp":
            return final
        limit = _positive_int(body.get("max_tokens"))
        if limit and final.reason == "length":
            # Stopped at the limit: exactly that many tokens were sampled, whereas the text
            # re-tokenised can count more (9 "out" of a max_tokens of 8, with random bytes).
            raw = {**final.raw, "output_tokens_source": "max_tokens"}
            return final._replace(output_tokens=limit, raw=raw)
        counted = self._count_tokens(content, str(body.get("model") or ""))
        if counted is not None:
            counted = min(counted, limit) if limit else counted
            raw = {**final.raw, "output_tokens_source": "server tokenizer"}
            final = final._replace(output_tokens=counted, raw=raw)
        return final

    def _count_tokens(self, text: str, model: str) -> int | None:
        """Tokens in ``text`` by the server's own tokenizer, where it has one we know."""
        transport = self.transport
        ask = functools.partial(transport.post_json, "/extras/tokenize/count")
        try:  # the model is loaded (it has just answered): the short read timeout is enough
            whole = ask({"input": text, "model": model}, timeout=transport.quick)
            empty = ask({"input": "", "model": model}, timeout=transport.quick)
        except OllamaError as error:
            log.debug("no token count from %s: %s", self.url, error.message)
            return None
        if not (isinstance(whole, Mapping) and isinstance(empty, Mapping)):
            return None
        count, overhead = whole.get("count"), empty.get("count")
        if not isinstance(count, int) or not isinstance(overhead, int):
            return None
        return max(count - overhead, 0)  # the tokenizer adds its BOS token to both

    def pull(self, model: str) -> Generator[PullProgress, None, None]:
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
    ) -> ModelNotPulledError:
        """The error for a model the server does not serve (``served``: its ids, None when
        unknown, False to ask /v1/models)."""
        if served is False:
            try:
                served = [entry["id"] for entry in self._models()]
            except OllamaError:
                served = None
        listed = served if isinstance(served, list) else None
        suggestions = closest_models(model, listed or [])
        if listed is None:
            listing = "GET /v1/models lists the ones it serves"
        elif listed:
            ordered = [*suggestions, *(name for name in listed if name not in suggestions)]
            more = ", ..." if len(ordered) > MAX_LISTED else ""
            listing = "it serves " + ", ".join(ordered[:MAX_LISTED]) + more
        else:
            listing = "it lists no models"
        kind = _KINDS.get(self.url, GENERIC)
        label = server_label(kind)
        # A close served name is the likely meaning. Serving the name as typed is advised too
        # unless it is a misspelling (one edit away) or the untagged name of a served model:
        # qwen3:0.6b beside qwen3:8b is a model of its own.
        remedy = f"Pass a name it serves, or {start_advice(kind, model)}"
        if suggestions:
            untagged = ":" not in model and any(
                model.lower() == name.lower().split(":", 1)[0] for name in listed or []
            )
            remedy = f"Did you mean {suggestions[0]}? It is served and has a similar name"
            if not untagged and not misspells(model, listed or []):
                remedy += f"; to use '{model}' itself, {start_advice(kind, model)}"
        return ModelNotPulledError(
            f"Model '{model}' is not served by the {label} at {self.url}.",
            model=model,
            suggestions=suggestions,
            hint=f"The {label} does not serve '{model}' ({listing}). {remedy}.",
            server_text=server_text,
            status_code=status_code,
            url=self.url,
        )

    def _models(self) -> list[dict[str, Any]]:
        """The entries of GET /v1/models that have an id (``data`` is null on an empty Ollama)."""
        return self._entries_of(self.transport.get_json("/v1/models"))

    def _entries_of(self, document: Any) -> list[dict[str, Any]]:
        """The one reading of a /v1/models document: its entries that have an id (``data`` is
        null on an empty Ollama); the first says which kind of server this is."""
        transport = self.transport
        listing = transport.expect_dict(document, "/v1/models")
        data = transport.expect_list(listing, "data", "/v1/models")
        entries = [e for e in data if isinstance(e, dict) and isinstance(e.get("id"), str)]
        if entries:
            _KINDS[self.url] = server_kind(entries[0])
        return entries

    def _entry(self, model: str) -> Mapping[str, Any]:
        """The /v1/models entry serving ``model``: the exact id, else the same Ollama name."""
        entries = self._models()
        key = names.canonical(model)
        found = next((e for e in entries if e["id"] == model), None) or next(
            (e for e in entries if names.canonical(e["id"]) == key), None
        )
        if found is None:
            raise self._not_served(
                model, served=[entry["id"] for entry in entries], status_code=404
            )
        _SERVED[(self.url, key)] = found
        return found

    def _remote_fields(self) -> tuple[dict[str, dict[str, Any]], str | None]:
        """canonical name -> remote fields, from the same server's native GET /api/tags, and
        why they could not be read (None when they could, or when there is no such API).

        Ollama's /v1/models does not say which models it forwards elsewhere (openai/openai.go
        ``Model`` has id, object, created and owned_by only), but its /api/tags does (v0.12+):
        without it a model created FROM a cloud model could be chosen as the default, and
        local-only mode would let it through. Other servers answer 404: nothing to add. On
        Ollama (or a server that does not say what it is) a listing that fails or is malformed
        leaves every model's placement unknown, which local-only mode refuses.
        """
        transport = self.transport
        might_forward = self.kind in ("Ollama", GENERIC)
        try:
            response = transport.send(
                "GET", "/api/tags", stream=True, retries=0, timeout=transport.quick
            )
            body = transport.json(response)
        except OllamaError as error:
            log.debug("no native /api/tags at %s: %s", self.url, error.message)
            # Ollama always has /api/tags: a 404 there is a proxy hiding where models run.
            if not might_forward or (error.status_code in _NO_ROUTE and self.kind != "Ollama"):
                return {}, None
            return {}, f"its native model list failed: {error.message}"
        models = body.get("models") if isinstance(body, dict) else None
        if not isinstance(models, list):
            return {}, ("its native model list is malformed" if might_forward else None)
        found: dict[str, dict[str, Any]] = {}
        for model in models:
            if not isinstance(model, dict) or not isinstance(model.get("name"), str):
                continue
            # The size only on Ollama itself: other /v1 servers may answer an Ollama-style
            # /api/tags too (a tiny test GGUF would look like a stub).
            keys = ("remote_host", "remote_model", "size") if self.kind == "Ollama" else ()
            fields = {k: model[k] for k in keys or ("remote_host", "remote_model") if model.get(k)}
            if fields:
                found[names.canonical(model["name"])] = fields
        return found, None

    def _shown_remote_fields(self, model: str) -> tuple[dict[str, Any], str | None]:
        """The remote fields Ollama's POST /api/show gives ``model``, and why they could not
        be read (None when they could)."""
        transport = self.transport
        try:
            show = transport.expect_dict(
                transport.post_json("/api/show", {"model": model}, timeout=transport.quick),
                "/api/show",
            )
        except OllamaError as error:
            log.debug("no /api/show for %s at %s: %s", model, self.url, error.message)
            return {}, f"its description of the model failed: {error.message}"
        return {k: show[k] for k in ("remote_host", "remote_model") if show.get(k)}, None

    def _slot_context(self) -> int | None:
        """llama.cpp's context per slot (GET /props), which may be less than it was trained for."""
        transport = self.transport
        try:
            props = transport.expect_dict(transport.get_json("/props"), "/props")
        except OllamaError as error:
            log.debug("no /props from %s: %s", self.url, error.message)
            return None
        settings = _mapping(props.get("default_generation_settings"))
        return _positive_int(settings.get("n_ctx")) or _positive_int(props.get("n_ctx"))

    def _lm_studio_context(self, model: str) -> int | None:
        """LM Studio's context for ``model`` from its own REST API (GET /api/v0/models/<id>):
        the length it is loaded with, else the longest it can be loaded with."""
        from urllib.parse import quote

        transport = self.transport
        try:
            path = "/api/v0/models/" + quote(model, safe="")
            entry = transport.expect_dict(transport.get_json(path), path)
        except OllamaError as error:
            log.debug("no LM Studio model entry from %s: %s", self.url, error.message)
            return None
        return _positive_int(entry.get("loaded_context_length")) or _positive_int(
            entry.get("max_context_length")
        )

    def connections_in_use(self) -> int:
        """Pooled connections checked out right now."""
        return self.transport.connections_in_use()

    def close(self) -> None:
        """Close pooled connections."""
        self.transport.close()


_is_done = operator.attrgetter("done")  # the final item of a stream (C speed, once per token)
