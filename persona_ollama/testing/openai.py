"""The OpenAI-compatible face: /v1/chat/completions, /v1/models, /v1/models/{model}.

Like the real middleware (middleware/openai.go, openai/openai.go), a completion request is
translated into a native chat request and runs through the same checks (native.py); errors
come back as ``{"error": {"message", "type", ...}}``. :class:`OpenAIFace` declares the routes.
"""

from __future__ import annotations

import random
import time
from typing import Any
from urllib.parse import unquote

from .checks import decode_request
from .face import Call, Face, Route
from .generation import Generation, run
from .go import go_json, go_quote
from .native import chat_request, forward
from .ollama_names import OLLAMA_NAMES, parse_name
from .ollama_profiles import V1_OWN_FINISH_CHUNK, OllamaProfile
from .responses import ApiError, Reply, Response, Stream, json_reply
from .script import NO_USAGE, UNSTREAMED_STATUS

__all__ = ["CHAT_PATH", "OpenAIFace", "chat_completions", "error_reply", "models", "retrieve_model"]

CHAT_PATH = "/v1/chat/completions"
_JSON = "application/json"  # the middleware sets it without a charset
_FIELDS = {
    "model": "string",
    "messages": "[]openai.Message",
    "stream": "bool",
    "max_tokens": "int",
    "seed": "int",
    "temperature": "float64",
    "top_p": "float64",
    "frequency_penalty": "float64",
    "presence_penalty": "float64",
    "tools": "[]api.Tool",
}
_EFFORTS = {"none": False, "minimal": "low", "xhigh": "max", "ultra": "max"}
_EFFORT_CHOICES = '"minimal", "low", "medium", "high", "xhigh", "ultra", "max", or "none"'


def error_reply(status: int, message: str) -> Reply:
    """The OpenAI error shape; the type follows the status as in ``openai.NewError``."""
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    error = {"message": message, "type": kind, "param": None, "code": None}
    return json_reply({"error": error}, status, content_type=_JSON, newline=True)


def models(call: Call) -> Response:
    data = [_model_object(m.name, m.modified_at) for m in call.state.installed()]
    # Go encodes the nil slice of an empty list as null.
    return json_reply({"object": "list", "data": data or None}, content_type=_JSON, newline=True)


def retrieve_model(call: Call) -> Response:
    requested = unquote(call.record.path[len("/v1/models/") :])
    found = call.state.find(requested) if parse_name(requested).is_valid else None
    if found is None:
        raise ApiError(404, f"model '{parse_name(requested).display}' not found")
    return json_reply(_model_object(requested, found.modified_at), content_type=_JSON, newline=True)


def _model_object(model_id: str, modified_at: float) -> dict[str, Any]:
    owner = parse_name(model_id).namespace
    return {"id": model_id, "object": "model", "created": int(modified_at), "owned_by": owner}


def chat_completions(call: Call) -> Response:
    body = decode_request(call.record.body, "ChatCompletionRequest", _FIELDS, message_fields={})
    if not body.get("messages"):
        raise ApiError(400, "[] is too short - 'messages'")
    req = chat_request(call.state, _to_native(body))
    if forward(call, req) is not None:  # signed out of ollama.com
        raise ApiError(401, "unauthorized")
    generation = run(call.state, req, call.record, waited_s=call.waited_s)
    completion_id = f"chatcmpl-{random.randrange(999)}"
    if body.get("stream") is True:
        return _stream(call, body, req.model_arg, completion_id, generation)
    fault = call.state.script.take_fault(call.record.path, (UNSTREAMED_STATUS,))
    if fault is not None:
        raise ApiError(fault.status, fault.error)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(generation.content)}
    if generation.thinking:
        message["reasoning"] = "".join(generation.thinking)
    completion = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model_arg,
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": message, "finish_reason": generation.done_reason}],
        "usage": _usage(generation),
    }
    return json_reply(completion, content_type=_JSON, newline=True)


def _to_native(body: dict[str, Any]) -> dict[str, Any]:
    """``openai.FromChatRequest``: the fields the server reads, mapped onto /api/chat."""
    options: dict[str, Any] = {
        # An absent temperature or top_p is sent as 1.0, overriding the Modelfile.
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
    }
    for source, target in (("max_tokens", "num_predict"), ("seed", "seed")):
        if body.get(source) is not None:
            options[target] = body[source]
    for penalty in ("frequency_penalty", "presence_penalty"):
        if body.get(penalty) is not None:
            options[penalty] = body[penalty]
    stop = body.get("stop")
    if stop is not None:
        options["stop"] = [stop] if isinstance(stop, str) else stop
    native: dict[str, Any] = {
        "model": body.get("model") or "",
        "messages": [_message(m) for m in body["messages"]],
        "options": options,
        "tools": body.get("tools"),
        "format": _format(body.get("response_format")),
    }
    effort = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort")
    if effort:
        if effort not in (*_EFFORTS, "low", "medium", "high", "max"):
            message = f"invalid reasoning value: {go_quote(effort)} (must be {_EFFORT_CHOICES})"
            raise ApiError(400, message)
        native["think"] = _EFFORTS.get(effort, effort)
    return native


def _message(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, list):  # content parts: the text parts count, images are ignored
        texts = [
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        ]
        content = "".join(t for t in texts if isinstance(t, str))
    return {"role": message.get("role", ""), "content": content if isinstance(content, str) else ""}


def _format(response_format: Any) -> Any:
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return "json"
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema")
    return None


def _usage(generation: Generation) -> dict[str, int]:
    prompt = generation.metrics.get("prompt_eval_count", 0)
    completion = generation.metrics.get("eval_count", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _stream(
    call: Call, body: dict[str, Any], model_arg: str, completion_id: str, generation: Generation
) -> Stream:
    created = int(time.time())

    def chunk(
        delta: dict[str, Any],
        finish_reason: str | None = None,
        *,
        model: str = model_arg,
        usage: dict[str, int] | None = None,
    ) -> bytes:
        document: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if usage is not None:
            document.update(choices=[], usage=usage)
        return go_json(document)

    deltas: list[dict[str, Any]] = [{"content": "", "reasoning": p} for p in generation.thinking]
    deltas += [{"content": piece} for piece in generation.content]
    # Since v0.32.6 the finish reason has a chunk of its own with an empty delta; before, it
    # came with the (empty) content of the native done line.
    own_finish_chunk = call.state.settings.profile.has(V1_OWN_FINISH_CHUNK)
    if not deltas or not own_finish_chunk:
        deltas.append({"content": ""})
    deltas[0] = {"role": "assistant", **deltas[0]}  # the role comes with the first chunk only
    payloads = [chunk(delta) for delta in deltas]
    if own_finish_chunk:
        payloads.append(chunk({}, generation.done_reason))
    else:
        payloads[-1] = chunk(deltas[-1], generation.done_reason)
    terminal = 2
    omit_usage = call.state.script.take_fault(call.record.path, (NO_USAGE,)) is not None
    if (body.get("stream_options") or {}).get("include_usage") and not omit_usage:
        payloads.append(chunk({}, usage=_usage(generation)))
        terminal += 1
    payloads.append(b"[DONE]")
    return Stream(
        "text/event-stream",
        payloads,
        frame=lambda payload: b"data: " + payload + b"\n\n",
        # A mid-stream error line decodes as an empty chat response: an empty delta, no model.
        error_payload=lambda _message: chunk({"content": ""}, model=""),
        terminal=terminal,
    )


# The face --------------------------------------------------------------------------------------
class OpenAIFace(Face):
    """The /v1 layer: every error, a runner's included, in the OpenAI shape."""

    naming = OLLAMA_NAMES
    profile_type = OllamaProfile

    routes = (
        Route("POST", CHAT_PATH, chat_completions, generation=True),
        Route("GET", "/v1/models", models),
        Route("GET", "/v1/models/{model}", retrieve_model),
    )

    def error(self, status: int, message: str) -> Reply:
        return error_reply(status, message)
