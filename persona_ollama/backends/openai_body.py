"""The /v1 request: the streaming /v1/chat/completions body for a neutral ChatRequest.

What a /v1 server cannot take (num_ctx, keep_alive, Ollama's other options) is named so the
backend can say it was not sent; thinking and a JSON-schema ``format`` take the form the kind
of server found (openai_models.py) reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import ChatRequest
from .openai_models import GENERIC

# Native options whose OpenAI-compatible field has the same name and meaning.
SAME_NAME = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty")
# Not in OpenAI's API, but read by vLLM, llama.cpp and LM Studio (Ollama's /v1 ignores them).
EXTENSIONS = ("top_k", "min_p")
# llama.cpp's JSON-schema output takes the schema inside json_object (llama-cpp-python refuses
# "json_schema" with a 500; llama-server reads both); every other kind takes OpenAI's form.
SCHEMA_IN_JSON_OBJECT = ("llama.cpp",)


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
