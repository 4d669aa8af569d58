"""OpenAIClient: OllamaClient over the OpenAI-compatible API (/v1/chat/completions, /v1/models).

With it one provider drives Ollama's /v1, vLLM, llama.cpp's server, LM Studio or a LiteLLM
proxy. Transport, retries and error mapping are OllamaClient's; this module only translates:
the native chat body the provider builds into a completion request, the server-sent events
back into native-shaped chunks, and /v1/models into /api/tags- and /api/show-shaped facts, so
that the provider's context planning and checks run unchanged.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import names
from ._http_errors import error_from_stream_line, model_not_pulled, server_text_of
from .client import OllamaClient, answer_budget
from .endpoint import v1_endpoint
from .errors import (
    ConfigurationError,
    ContextOverflowError,
    ModelNotPulledError,
    OllamaError,
    OllamaResponseError,
    OllamaTimeoutError,
)
from .generation import wrong_shape
from .ndjson import _parse as parse_object
from .privacy import warn_once
from .settings import API_VAR, TIMEOUT_VAR
from .sse import DONE, iter_sse_data

if TYPE_CHECKING:
    import requests

    from .endpoint import Endpoint

log = logging.getLogger(__name__)

# Native options whose OpenAI-compatible field has the same name and meaning.
SAME_NAME = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty")
# Not in OpenAI's API, but read by vLLM, llama.cpp and LM Studio (Ollama's /v1 ignores them).
EXTENSIONS = ("top_k", "min_p")
# The provider sends these on every request; a /v1 server has no such field, so they are
# dropped without a warning (docs/scaling.md says what that means for the context size).
SILENTLY_DROPPED = ("num_ctx", "truncate")
FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop", "function_call": "stop"}
# Keys of a /v1/models entry that give the served context length: vLLM's max_model_len, a
# generic context_length; llama.cpp's entry has meta.n_ctx_train instead.
CONTEXT_KEYS = ("max_model_len", "context_length")
OLLAMA_FINGERPRINT = "fp_ollama"

# What each server says in /v1/models' owned_by: vLLM (ModelCard's default), llama.cpp's
# llama-server, LM Studio, Ollama (the namespace of a library model); llama-cpp-python's
# server says "me" (with an empty "permissions" list), LiteLLM passes through "openai".
GENERIC = "OpenAI-compatible server"
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


# Hints of the shared error mappers that only hold for Ollama (its log, its runner, its way
# of ending a stream), each with what to say instead: {label} is server_label(kind).
_OLLAMA_HINTS = (
    (
        "points at an Ollama server",
        "Check that the URL points at an OpenAI-compatible server (`persona-ollama doctor "
        "--api openai`), not at a proxy's error page.",
    ),
    (
        "Ollama ends a stream this way",
        "The {label} ended the stream with neither a finish reason nor [DONE]: retry; if "
        "every request ends like this, check its log.",
    ),
    (
        "ollama serve",
        "The partial answer (if any) was discarded. Retry; if it repeats, check the {label}'s log.",
    ),
)


def in_v1_words(error: OllamaError, kind: str) -> OllamaError:
    """``error`` with a hint that holds for a server of ``kind``, where the shared mappers
    gave one that only holds for Ollama (unchanged when ``kind`` is Ollama)."""
    if kind == "Ollama" or not error.hint:
        return error
    for marker, hint in _OLLAMA_HINTS:
        if marker in error.hint:
            error.hint = hint.format(label=server_label(kind))
            break
    return error


class _Interrupted(Exception):
    """The stream said [DONE] before any choice had a finish reason."""


class _Empty(Exception):
    """A 200 stream that ended without a single event."""


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
    body: Mapping[str, Any], *, server: str | None = None, kind: str = GENERIC
) -> tuple[dict[str, Any], list[str]]:
    """Translate a native /api/chat body into a streaming /v1/chat/completions request.

    Returns the request and the names of options a /v1 server cannot take (dropped).
    ``server`` is the model's ``owned_by`` from /v1/models: vLLM refuses reasoning_effort
    "none", so thinking is switched off there through the chat template instead. ``kind``
    (:func:`server_kind`) chooses the form of a JSON-schema ``format``.
    """
    options = dict(body.get("options") or {})
    request: dict[str, Any] = {
        "model": body.get("model"),
        "messages": [
            {"role": message.get("role"), "content": message.get("content") or ""}
            for message in body.get("messages") or ()
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    num_predict = options.pop("num_predict", None)
    if isinstance(num_predict, int) and num_predict > 0:
        request["max_tokens"] = num_predict  # Ollama's /v1 ignores max_completion_tokens
    for name in (*SAME_NAME, *EXTENSIONS):
        if name in options:
            request[name] = options.pop(name)
    dropped = [name for name in options if name not in SILENTLY_DROPPED]
    if body.get("keep_alive") is not None:
        dropped.append("keep_alive")
    form = body.get("format")
    if form == "json":
        request["response_format"] = {"type": "json_object"}
    elif isinstance(form, Mapping) and kind in SCHEMA_IN_JSON_OBJECT:
        request["response_format"] = {"type": "json_object", "schema": dict(form)}
    elif isinstance(form, Mapping):
        schema = {"name": "response", "schema": dict(form)}
        request["response_format"] = {"type": "json_schema", "json_schema": schema}
    think = body.get("think")
    if think is False and server == "vllm":
        request["chat_template_kwargs"] = {"enable_thinking": False}
    elif think is False:
        request["reasoning_effort"] = "none"
    elif isinstance(think, str):
        request["reasoning_effort"] = "high" if think == "max" and server == "vllm" else think
    return request, sorted(dropped)


def native_chunks(chunks: Iterable[bytes], *, model: str) -> Iterator[dict[str, Any]]:
    """Translate a /v1 event stream into /api/chat chunks, ending with a ``done`` one.

    One chunk per event that has a choice (reasoning goes to ``message.thinking``); after
    ``[DONE]`` (or the end of a stream that gave a finish reason) the final chunk carries
    ``done_reason`` and the token counts of the usage event. An error event becomes an
    ``{"error": text}`` chunk. A stream that ends with neither simply stops: the caller
    raises, as it does for a native stream without ``done``. ``[DONE]`` before any finish
    reason raises ``_Interrupted`` (llama-cpp-python's server ends an earlier stream that way
    when another request arrives), and a stream without a single event raises ``_Empty``
    (its answer to a prompt longer than its context).
    """
    finish: str | None = None
    usage: Mapping[str, Any] = {}
    timings: Mapping[str, Any] = {}
    fingerprint = None
    finished = False
    events = 0
    for data in iter_sse_data(chunks):
        events += 1
        if data.strip() == DONE:
            if finish is None:
                raise _Interrupted
            finished = True
            break
        event = parse_object(data)
        if event.get("error") is not None or event.get("object") == "error":
            yield {"error": server_text_of(data.decode("utf-8", "replace"))}
            return
        model = str(event.get("model") or model)
        fingerprint = event.get("system_fingerprint") or fingerprint
        usage = _mapping(event.get("usage")) or usage
        timings = _mapping(event.get("timings")) or timings  # llama.cpp's server adds these
        choices = event.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = _mapping(choice.get("delta"))
            message = {"role": "assistant", "content": _text(delta.get("content"), "content")}
            # vLLM < 0.10 says reasoning_content.
            thinking = _text(delta.get("reasoning") or delta.get("reasoning_content"), "reasoning")
            if thinking:
                message["thinking"] = thinking
            yield {"model": model, "message": message, "done": False}
            finish = _text(choice.get("finish_reason"), "choices[0].finish_reason") or finish
    if not events:
        raise _Empty
    if not finished and finish is None:
        return
    if fingerprint == OLLAMA_FINGERPRINT:
        warn_once(
            OLLAMA_FINGERPRINT,
            "This OpenAI-compatible server is Ollama, whose /v1 ignores num_ctx: prompts "
            "longer than its default context (OLLAMA_CONTEXT_LENGTH) are cut without an "
            "error. Use api='native' with Ollama.",
        )
    yield _final_chunk(model, finish, usage, timings)


def _final_chunk(
    model: str, finish: str | None, usage: Mapping[str, Any], timings: Mapping[str, Any]
) -> dict[str, Any]:
    final: dict[str, Any] = {
        "model": model,
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": FINISH_REASONS.get(finish, finish) if finish else "stop",
    }
    for source, target in (
        ("prompt_tokens", "prompt_eval_count"),
        ("completion_tokens", "eval_count"),
    ):
        count = usage.get(source)
        # A bool is an int to Python, and a negative count is no count: both are left out
        # (reported as unknown), like a count sent as a string.
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            final[target] = count
    for source, target in (
        ("prompt_ms", "prompt_eval_duration"),
        ("predicted_ms", "eval_duration"),
    ):
        value = timings.get(source)
        # NaN and infinity are valid JSON to Python's parser, not durations.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value) and 0 <= value < 1e12:  # not absurd either
            final[target] = int(value * 1_000_000)  # native durations are ns
    return final


def _text(value: Any, field: str) -> str:
    """A string field of an event: "" when absent; any other type is a malformed event."""
    if value is None or isinstance(value, str):
        return value or ""
    raise wrong_shape(field, "text", value)


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


def tags_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A /v1/models entry in the shape of an /api/tags one."""
    length = context_length_of(entry)
    return {
        "name": entry["id"],
        "model": entry["id"],
        "details": {"context_length": length} if length else {},
        "capabilities": ["completion"],
    }


class OpenAIClient(OllamaClient):
    """OllamaClient for an OpenAI-compatible server (vLLM, llama.cpp, LM Studio, LiteLLM ...).

    ``endpoint`` may end in ``/v1`` or not. It has no model management: ``pull`` raises and
    ``ps`` is empty.
    """

    def __init__(self, endpoint: Endpoint, **kwargs: Any) -> None:
        super().__init__(v1_endpoint(endpoint, v1=False), **kwargs)

    # -- plumbing ----------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The kind of server (:func:`server_kind`), asked of /v1/models once per process."""
        key = str(self.endpoint)
        if key not in _KINDS:
            try:
                self._models()
            except OllamaError:
                return GENERIC
        return _KINDS.get(key, GENERIC)

    def _status_error(self, response: requests.Response, *, model: str | None) -> OllamaError:
        error = in_v1_words(
            super()._status_error(response, model=model), _KINDS.get(str(self.endpoint), GENERIC)
        )
        if isinstance(error, ModelNotPulledError) and model is not None:
            _SERVED.pop((str(self.endpoint), names.canonical(model)), None)
            return self._not_served(model, server_text=error.server_text, status_code=404)
        # The base class speaks of Ollama; a server's traceback frames name files on it.
        label = server_label(_KINDS.get(str(self.endpoint), GENERIC))
        error.message = without_paths(error.message.replace("Ollama server", label))
        if error.server_text:
            error.server_text = without_paths(error.server_text)
        if isinstance(error, ContextOverflowError):
            return self._overflow(error)
        return error

    def _overflow(self, error: ContextOverflowError) -> ContextOverflowError:
        """The server's context_length_exceeded, with the sizes its text gives."""
        match = _SIZES.search(error.server_text or "")
        if match is None:
            return error
        window = int(match.group(1))
        prompt = int(match.group(3) or match.group(2) or match.group(4))
        label = server_label(_KINDS.get(str(self.endpoint), GENERIC))
        return ContextOverflowError(
            f"The prompt needs {prompt} tokens, but the {label} at {self.endpoint} gives "
            f"the model a context of {window}; it refused the request, nothing was cut.",
            prompt_tokens=prompt,
            context_length=window,
            hint="Shorten the input (fewer or shorter documents per run), or restart the "
            "server with a longer context (llama.cpp: --n_ctx / -c; vLLM: --max-model-len).",
            server_text=error.server_text,
            status_code=error.status_code,
            url=error.url,
        )

    def _not_running(self, reason: str) -> OllamaError:
        error = super()._not_running(reason)
        label = server_label(_KINDS.get(str(self.endpoint), GENERIC))
        error.message = error.message.replace("the Ollama server", f"the {label}")
        error.hint = (
            "Start the server (e.g. `vllm serve <model>`, `llama-server -m <file.gguf>`, "
            "LM Studio's server or `ollama serve`), or correct base_url / OLLAMA_HOST: "
            "vLLM listens on http://host:8000/v1 by default."
        )
        return error

    def _timeout(self, timeout: tuple[float, float]) -> OllamaTimeoutError:
        label = server_label(_KINDS.get(str(self.endpoint), GENERIC))
        return OllamaTimeoutError(
            f"The {label} at {self.endpoint} sent nothing for {timeout[1]:g} s.",
            hint="The server may be loading the model or working through a queue: raise the "
            f"timeout (timeout=600 or {TIMEOUT_VAR}=600), or send fewer requests at "
            "once (a smaller pool_size).",
            url=str(self.endpoint),
        )

    def _not_served(
        self, model: str, *, server_text: str | None = None, status_code: int | None = None
    ) -> ModelNotPulledError:
        try:
            served: list[str] | None = [entry["id"] for entry in self._models()]
        except OllamaError:
            served = None
        return self._in_its_words(
            model_not_pulled(
                model,
                url=str(self.endpoint),
                server_text=server_text,
                status_code=status_code,
                installed=served,
                api="openai",
            )
        )

    def _in_its_words(self, error: ModelNotPulledError) -> ModelNotPulledError:
        """The error with advice for this kind of server, not a list of every kind's."""
        kind = _KINDS.get(str(self.endpoint), GENERIC)
        label = server_label(kind)
        error.message = error.message.replace("by the server", f"by the {label}")
        head, found, _ = (error.hint or "").partition("start the server with that model")
        if found:
            error.hint = f"{head.replace('The server', f'The {label}')}" + (
                start_advice(kind, error.model) + "."
            )
        return error

    def _models(self) -> list[dict[str, Any]]:
        """The entries of GET /v1/models that have an id (``data`` is null on an empty Ollama)."""
        listing = self._expect_dict(self._get_json("/v1/models"), "/v1/models")
        data = self._expect_list(listing, "data", "/v1/models")
        entries = [e for e in data if isinstance(e, dict) and isinstance(e.get("id"), str)]
        if entries:
            _KINDS[str(self.endpoint)] = server_kind(entries[0])
        return entries

    def _entry(self, model: str) -> Mapping[str, Any]:
        """The /v1/models entry serving ``model``: the exact id, else the same Ollama name."""
        entries = self._models()
        key = names.canonical(model)
        found = next((e for e in entries if e["id"] == model), None) or next(
            (e for e in entries if names.canonical(e["id"]) == key), None
        )
        if found is None:
            raise self._in_its_words(
                model_not_pulled(
                    model,
                    url=str(self.endpoint),
                    status_code=404,
                    installed=[entry["id"] for entry in entries],
                    api="openai",
                )
            )
        _SERVED[(str(self.endpoint), key)] = found
        return found

    def _slot_context(self) -> int | None:
        """llama.cpp's context per slot (GET /props), which may be less than it was trained for."""
        try:
            props = self._expect_dict(self._get_json("/props"), "/props")
        except OllamaError as error:
            log.debug("no /props from %s: %s", self.endpoint, error.message)
            return None
        settings = _mapping(props.get("default_generation_settings"))
        return _positive_int(settings.get("n_ctx")) or _positive_int(props.get("n_ctx"))

    def _lm_studio_context(self, model: str) -> int | None:
        """LM Studio's context for ``model`` from its own REST API (GET /api/v0/models/<id>):
        the length it is loaded with, else the longest it can be loaded with."""
        from urllib.parse import quote

        try:
            path = "/api/v0/models/" + quote(model, safe="")
            entry = self._expect_dict(self._get_json(path), path)
        except OllamaError as error:
            log.debug("no LM Studio model entry from %s: %s", self.endpoint, error.message)
            return None
        return _positive_int(entry.get("loaded_context_length")) or _positive_int(
            entry.get("max_context_length")
        )

    # -- API ---------------------------------------------------------------------------

    def version(self, *, timeout: float | None = None) -> str:
        """What answers GET /v1/models: the kind of server (:func:`server_kind`), e.g.
        "llama.cpp server (OpenAI-compatible API)"; a llama.cpp Server header also says it."""
        limits = (timeout, timeout) if timeout else None
        retries = 0 if limits else None
        response = self._send("GET", "/v1/models", stream=True, timeout=limits, retries=retries)
        server = response.headers.get("Server") or ""
        data = self._expect_list(
            self._expect_dict(self._json(response), "/v1/models"), "data", "/v1/models"
        )
        entries = [e for e in data if isinstance(e, Mapping)]
        kind = server_kind(entries[0]) if entries else GENERIC
        if kind == GENERIC and server.lower().startswith("llama.cpp"):
            kind = "llama.cpp"
        _KINDS[str(self.endpoint)] = kind
        if kind == GENERIC:
            return GENERIC
        return f"{server_label(kind)} (OpenAI-compatible API)"

    def tags(self) -> list[dict[str, Any]]:
        """The served models (GET /v1/models), shaped like /api/tags entries, with the
        ``remote_host``/``remote_model`` that Ollama's own /api/tags gives (see _remote_fields)."""
        entries = [tags_entry(entry) for entry in self._models()]
        remote = self._remote_fields()
        for entry in entries:
            entry.update(remote.get(names.canonical(entry["name"]), {}))
        return entries

    def _remote_fields(self) -> dict[str, dict[str, Any]]:
        """canonical name -> remote fields, from the same server's native GET /api/tags.

        Ollama's /v1/models does not say which models it forwards elsewhere (openai/openai.go
        ``Model`` has id, object, created and owned_by only), but its /api/tags does (v0.12+):
        without it a model created FROM a cloud model could be chosen as the default, and
        local-only mode would let it through. Other servers answer 404: nothing to add.
        """
        try:
            body = self._json(self._send("GET", "/api/tags", stream=True, retries=0))
        except OllamaError as error:
            log.debug("no native /api/tags at %s: %s", self.endpoint, error.message)
            return {}
        models = body.get("models") if isinstance(body, dict) else None
        found: dict[str, dict[str, Any]] = {}
        for model in models if isinstance(models, list) else ():
            if not isinstance(model, dict) or not isinstance(model.get("name"), str):
                continue
            # Not the size: other /v1 servers may answer an Ollama-style /api/tags too (a
            # tiny test GGUF would look like a stub), and before v0.12 no stubs existed.
            fields = {k: model[k] for k in ("remote_host", "remote_model") if model.get(k)}
            if fields:
                found[names.canonical(model["name"])] = fields
        return found

    def show(self, model: str) -> dict[str, Any]:
        """/api/show-shaped facts: the context length from the server where it says, else
        from the catalogue; ModelNotPulledError when the server does not serve ``model``."""
        entry = self._entry(model)
        length = context_length_of(entry)
        if isinstance(entry.get("meta"), Mapping):  # llama.cpp's server
            length = self._slot_context() or length
        elif server_kind(entry) == "LM Studio":
            length = self._lm_studio_context(entry["id"]) or length
        from .choosing.catalogue import load_catalogue  # pluggy loads with it, on first use

        spec = load_catalogue().get(entry["id"])  # known by its Ollama name, if at all
        if spec is not None:
            length = length or spec.context_length
        capabilities = ["completion", "thinking"] if spec and spec.thinking else ["completion"]
        info: dict[str, Any] = {"general.architecture": "openai"}
        if length:
            info["openai.context_length"] = length
        remote = self._remote_fields().get(names.canonical(entry["id"]), {})
        return {
            "model": entry["id"],
            "details": {},
            "model_info": info,
            "capabilities": capabilities,
            # So that a named remote model is warned about before the prompt is sent.
            **{k: v for k, v in remote.items() if k in ("remote_host", "remote_model")},
        }

    def ps(self) -> list[dict[str, Any]]:
        """Always empty: the OpenAI-compatible API does not say what is loaded."""
        return []

    def pull(self, model: str) -> Generator[dict[str, Any], None, None]:
        """Refused: OpenAI-compatible servers load their models themselves."""
        raise ConfigurationError(
            f"Cannot pull '{model}': pull is only available with the native Ollama API.",
            hint="Load the model on the server itself (e.g. `vllm serve <model>`), or use "
            f"api='native' ({API_VAR}=native) with an Ollama server.",
        )

    def chat(self, body: Mapping[str, Any]) -> Generator[dict[str, Any], None, None]:
        """Stream POST /v1/chat/completions, yielding /api/chat-shaped chunks (see
        :func:`native_chunks`); errors are raised as OllamaClient.chat raises them."""
        model = str(body.get("model") or "")
        entry = _SERVED.get((str(self.endpoint), names.canonical(model)), {})
        served = str(entry.get("id") or model)
        owner = entry.get("owned_by")
        kind = server_kind(entry) if entry else self.kind
        request, dropped = completion_request(
            {**body, "model": served}, server=owner if isinstance(owner, str) else None, kind=kind
        )
        for name in dropped:
            warn_once(
                f"dropped:{name}",
                f"The OpenAI-compatible API has no {name!r}; it was not sent "
                "(api='native' with Ollama takes it).",
            )
        response = self._send(
            "POST", "/v1/chat/completions", request, stream=True, model=model or None
        )
        decode = functools.partial(native_chunks, model=served)
        stream = self._stream(
            response,
            model=model or None,
            what="answer",
            on_error=error_from_stream_line,
            decode=decode,
            limit=answer_budget(body),  # the byte budget of one answer (client.py)
        )
        return self._checked(stream, request, model=model or None, kind=kind)

    def _checked(
        self,
        stream: Iterator[dict[str, Any]],
        request: dict[str, Any],
        *,
        model: str | None,
        kind: str,
    ) -> Generator[dict[str, Any], None, None]:
        """``stream``, with the ends that only a /v1 server has turned into typed errors:
        [DONE] without a finish reason, and an empty 200 stream (asked again, unstreamed,
        so that the server says why). Counts the server left out are counted if it can."""
        label = server_label(kind)
        content: list[str] = []
        try:
            for chunk in stream:
                if chunk.get("done") is True:
                    chunk = self._with_counts(chunk, "".join(content), request, kind)
                else:
                    content.append(str(_mapping(chunk.get("message")).get("content") or ""))
                yield chunk
        except _Interrupted:
            raise OllamaResponseError(
                f"The {label} at {self.endpoint} ended the answer with [DONE] before it was "
                "finished (no finish reason): it was interrupted, and the partial answer was "
                "discarded.",
                hint=INTERRUPT_HINTS.get(kind, "Check the server's log, and retry."),
                url=str(self.endpoint),
            ) from None
        except _Empty:
            yield from self._unstreamed(request, model=model, label=label)
        except OllamaError as error:
            in_v1_words(error, kind)
            raise

    def _unstreamed(
        self, request: dict[str, Any], *, model: str | None, label: str
    ) -> Iterator[dict[str, Any]]:
        """Ask again without streaming: llama-cpp-python answers an over-long prompt with an
        empty 200 stream, and only an unstreamed request gets its 400 (raised from here)."""
        retry = {key: value for key, value in request.items() if key != "stream_options"}
        retry["stream"] = False
        answer = self._post_json("/v1/chat/completions", retry, model=model)
        body = self._expect_dict(answer, "/v1/chat/completions")
        listed = self._expect_list(body, "choices", "/v1/chat/completions")
        choices = [c for c in listed if isinstance(c, Mapping)]
        if not choices:
            raise OllamaResponseError(
                f"The {label} at {self.endpoint} sent an empty answer, twice.",
                hint="Check the server's log; a prompt longer than its context is one cause.",
                url=str(self.endpoint),
            )
        message = _mapping(choices[0].get("message"))
        served = str(body.get("model") or request.get("model") or "")
        text = _text(message.get("content"), "content")
        finish = _text(choices[0].get("finish_reason"), "finish_reason")
        if not finish:  # an answer that does not say it ended is not passed off as complete
            raise OllamaResponseError(
                f"The {label} at {self.endpoint} sent an answer without a finish reason; the "
                "partial answer was discarded.",
                hint="Retry; if it repeats, check the server's log.",
                url=str(self.endpoint),
            )
        yield {"model": served, "message": {"role": "assistant", "content": text}, "done": False}
        final = _final_chunk(served, finish, _mapping(body.get("usage")), {})
        yield self._with_counts(final, text, request, GENERIC)

    def _with_counts(
        self, final: dict[str, Any], content: str, request: Mapping[str, Any], kind: str
    ) -> dict[str, Any]:
        """The final chunk, with the answer's token count when the server sent no usage but
        has a tokenizer endpoint (llama-cpp-python: /extras/tokenize/count); else unchanged:
        an absent count is reported as unknown, never as 0."""
        if "eval_count" in final or not content or kind != "llama.cpp":
            return final
        limit = _positive_int(request.get("max_tokens"))
        if limit and final.get("done_reason") == "length":
            # Stopped at the limit: exactly that many tokens were sampled, whereas the text
            # re-tokenised can count more (9 "out" of a max_tokens of 8, with random bytes).
            return {**final, "eval_count": limit, "eval_count_source": "max_tokens"}
        counted = self._count_tokens(content, str(request.get("model") or ""))
        if counted is not None:
            counted = min(counted, limit) if limit else counted
            final = {**final, "eval_count": counted, "eval_count_source": "server tokenizer"}
        return final

    def _count_tokens(self, text: str, model: str) -> int | None:
        """Tokens in ``text`` by the server's own tokenizer, where it has one we know."""
        try:
            whole = self._post_json("/extras/tokenize/count", {"input": text, "model": model})
            empty = self._post_json("/extras/tokenize/count", {"input": "", "model": model})
        except OllamaError as error:
            log.debug("no token count from %s: %s", self.endpoint, error.message)
            return None
        if not (isinstance(whole, Mapping) and isinstance(empty, Mapping)):
            return None
        count, overhead = whole.get("count"), empty.get("count")
        if not isinstance(count, int) or not isinstance(overhead, int):
            return None
        return max(count - overhead, 0)  # the tokenizer adds its BOS token to both
