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
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import names
from ._http_errors import error_from_stream_line, model_not_pulled, server_text_of
from .client import OllamaClient, answer_budget
from .endpoint import v1_endpoint
from .errors import ConfigurationError, ModelNotPulledError, OllamaError
from .generation import wrong_shape
from .ndjson import _parse as parse_object
from .privacy import warn_once
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

# (server root, canonical name asked for) -> the /v1/models entry serving it: vLLM needs its
# exact id, and owned_by says which server it is. Process-wide, like the provider's model
# facts, because Persona builds a new provider (and client) for every call.
_SERVED: dict[tuple[str, str], Mapping[str, Any]] = {}


def completion_request(
    body: Mapping[str, Any], *, server: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Translate a native /api/chat body into a streaming /v1/chat/completions request.

    Returns the request and the names of options a /v1 server cannot take (dropped).
    ``server`` is the model's ``owned_by`` from /v1/models: vLLM refuses reasoning_effort
    "none", so thinking is switched off there through the chat template instead.
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
    raises, as it does for a native stream without ``done``.
    """
    finish: str | None = None
    usage: Mapping[str, Any] = {}
    timings: Mapping[str, Any] = {}
    fingerprint = None
    finished = False
    for data in iter_sse_data(chunks):
        if data.strip() == DONE:
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
        for choice in event.get("choices") or ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = _mapping(choice.get("delta"))
            message = {"role": "assistant", "content": delta.get("content") or ""}
            thinking = delta.get("reasoning") or delta.get("reasoning_content")  # vLLM < 0.10
            if thinking:
                message["thinking"] = thinking
            yield {"model": model, "message": message, "done": False}
            reason = choice.get("finish_reason")
            if reason is not None and not isinstance(reason, str):  # validated at the edge
                raise wrong_shape("choices[0].finish_reason", "text", reason)
            finish = reason or finish
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
        if isinstance(usage.get(source), int):
            final[target] = usage[source]
    for source, target in (
        ("prompt_ms", "prompt_eval_duration"),
        ("predicted_ms", "eval_duration"),
    ):
        value = timings.get(source)
        if isinstance(value, (int, float)) and 0 <= value < 1e12:  # finite, not absurd
            final[target] = int(value * 1_000_000)  # native durations are ns
    return final


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

    def _status_error(self, response: requests.Response, *, model: str | None) -> OllamaError:
        error = super()._status_error(response, model=model)
        if isinstance(error, ModelNotPulledError) and model is not None:
            _SERVED.pop((str(self.endpoint), names.canonical(model)), None)
            return self._not_served(model, server_text=error.server_text, status_code=404)
        return error

    def _not_running(self, reason: str) -> OllamaError:
        error = super()._not_running(reason)
        error.hint = (
            "Start the server (e.g. `vllm serve <model>`, `llama-server -m <file.gguf>`, "
            "LM Studio's server or `ollama serve`), or correct base_url / OLLAMA_HOST: "
            "vLLM listens on http://host:8000/v1 by default."
        )
        return error

    def _not_served(
        self, model: str, *, server_text: str | None = None, status_code: int | None = None
    ) -> ModelNotPulledError:
        try:
            served: list[str] | None = [entry["id"] for entry in self._models()]
        except OllamaError:
            served = None
        return model_not_pulled(
            model,
            url=str(self.endpoint),
            server_text=server_text,
            status_code=status_code,
            installed=served,
            api="openai",
        )

    def _models(self) -> list[dict[str, Any]]:
        """The entries of GET /v1/models that have an id (``data`` is null on an empty Ollama)."""
        data = self._expect_dict(self._get_json("/v1/models"), "/v1/models").get("data") or []
        return [e for e in data if isinstance(e, dict) and isinstance(e.get("id"), str)]

    def _entry(self, model: str) -> Mapping[str, Any]:
        """The /v1/models entry serving ``model``: the exact id, else the same Ollama name."""
        entries = self._models()
        key = names.canonical(model)
        found = next((e for e in entries if e["id"] == model), None) or next(
            (e for e in entries if names.canonical(e["id"]) == key), None
        )
        if found is None:
            raise model_not_pulled(
                model,
                url=str(self.endpoint),
                status_code=404,
                installed=[entry["id"] for entry in entries],
                api="openai",
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

    # -- API ---------------------------------------------------------------------------

    def version(self, *, timeout: float | None = None) -> str:
        """What answers GET /v1/models: "openai-compatible", with its Server header if any."""
        limits = (timeout, timeout) if timeout else None
        retries = 0 if limits else None
        response = self._send("GET", "/v1/models", stream=True, timeout=limits, retries=retries)
        server = response.headers.get("Server")
        self._expect_dict(self._json(response), "/v1/models")
        return f"openai-compatible ({server})" if server else "openai-compatible"

    def tags(self) -> list[dict[str, Any]]:
        """The served models (GET /v1/models), shaped like /api/tags entries."""
        return [tags_entry(entry) for entry in self._models()]

    def show(self, model: str) -> dict[str, Any]:
        """/api/show-shaped facts: the context length from the server where it says, else
        from the catalogue; ModelNotPulledError when the server does not serve ``model``."""
        entry = self._entry(model)
        length = context_length_of(entry)
        if isinstance(entry.get("meta"), Mapping):  # llama.cpp's server
            length = self._slot_context() or length
        from .catalogue import load_catalogue  # pluggy loads with it, on first use

        spec = load_catalogue().get(entry["id"])  # known by its Ollama name, if at all
        if spec is not None:
            length = length or spec.context_length
        capabilities = ["completion", "thinking"] if spec and spec.thinking else ["completion"]
        info: dict[str, Any] = {"general.architecture": "openai"}
        if length:
            info["openai.context_length"] = length
        return {
            "model": entry["id"],
            "details": {},
            "model_info": info,
            "capabilities": capabilities,
        }

    def ps(self) -> list[dict[str, Any]]:
        """Always empty: the OpenAI-compatible API does not say what is loaded."""
        return []

    def pull(self, model: str) -> Generator[dict[str, Any], None, None]:
        """Refused: OpenAI-compatible servers load their models themselves."""
        raise ConfigurationError(
            f"Cannot pull '{model}': pull is only available with the native Ollama API.",
            hint="Load the model on the server itself (e.g. `vllm serve <model>`), or use "
            "api='native' (PERSONA_OLLAMA_API=native) with an Ollama server.",
        )

    def chat(self, body: Mapping[str, Any]) -> Generator[dict[str, Any], None, None]:
        """Stream POST /v1/chat/completions, yielding /api/chat-shaped chunks (see
        :func:`native_chunks`); errors are raised as OllamaClient.chat raises them."""
        model = str(body.get("model") or "")
        entry = _SERVED.get((str(self.endpoint), names.canonical(model)), {})
        served = str(entry.get("id") or model)
        owner = entry.get("owned_by")
        request, dropped = completion_request(
            {**body, "model": served}, server=owner if isinstance(owner, str) else None
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
        return self._stream(
            response,
            model=model or None,
            what="answer",
            on_error=error_from_stream_line,
            decode=decode,
            limit=answer_budget(body),  # the byte budget of one answer (client.py)
        )
