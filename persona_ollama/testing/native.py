"""The native face: /, /api/version, /api/tags, /api/ps, /api/show, /api/chat, /api/generate and
/api/pull, as the emulated release answers them (docs/reference/ollama-protocol.md).

Requests are read and checked with the wire rules (wire.py), run by the engine (engine.py) and
framed here; :class:`NativeFace` declares the routes for the core (server.py).

/api/pull sends progress lines as the server does ("Pulling models"), then installs the model.
Only models the double knows can be pulled: the built-in LIBRARY and whatever
``FakeOllama.pullable()`` registered. To see a progress bar move, script a delay between lines
with ``fake.latency(between_chunks=0.1, path="/api/pull")``; to fail a pull half-way, use
``fake.error_mid_stream_next(..., path="/api/pull")``.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import replace
from typing import Any

from .checks import (
    CHAT_FIELDS,
    GENERATE_FIELDS,
    PULL_FIELDS,
    SHOW_FIELDS,
    decode_request,
    parse_keep_alive,
    parse_think,
)
from .face import Call, Face, Route
from .generation import Generation, GenerationRequest, run
from .go import go_quote, local_rfc3339, rfc3339
from .models import FakeModel
from .ollama_names import OLLAMA_NAMES, cloud_stub, is_cloud_name, parse_model_name
from .ollama_profiles import (
    CHAT_NOT_FOUND_PLAIN,
    DONE_CARRIES_CONTENT,
    STREAM_ERROR_STATUS,
    TAGS_CONTEXT_LENGTH,
    OllamaProfile,
)
from .ollama_show import show_response
from .responses import ApiError, Response, json_reply, ndjson_stream, runner_error_reply, text_reply
from .state import ServerState

__all__ = [
    "GENERATION_PATHS",
    "PULL_NOT_FOUND",
    "NativeFace",
    "chat",
    "chat_request",
    "forward",
    "generate",
    "ps",
    "pull",
    "root",
    "show",
    "tags",
    "version",
]

# FakeOllama's generation endpoints, both faces (the /v1 layer is middleware on the same server):
# what a scripted rule without a path applies to.
GENERATION_PATHS = ("/api/chat", "/api/generate", "/v1/chat/completions")
_FOREVER_NS = 2**63 - 1  # Go's maximum time.Duration, what a negative keep_alive becomes


def root(call: Call) -> Response:
    return text_reply(200, "Ollama is running")


def version(call: Call) -> Response:
    return json_reply({"version": call.state.settings.version})


def tags(call: Call) -> Response:
    v030 = call.state.settings.profile.has(TAGS_CONTEXT_LENGTH)
    remote = call.state.settings.at_least(0, 12)  # remote_host/remote_model since v0.12.0
    models = [m.tags_entry(v030=v030, remote_fields=remote) for m in call.state.installed()]
    return json_reply({"models": models})


def ps(call: Call) -> Response:
    now_ns = time.time_ns()
    models = []
    for loaded in call.state.loaded():
        model = loaded.model
        size = loaded_size(model, loaded.num_ctx)
        remaining_s = loaded.expires_at - time.time()
        remaining_ns = _FOREVER_NS if math.isinf(remaining_s) else int(remaining_s * 1e9)
        expires_ns = now_ns + remaining_ns
        entry: dict[str, Any] = {
            "name": model.name,
            "model": model.name,
            "size": size,
            "digest": model.digest,
            "details": model.details(with_lengths=False),
            "expires_at": local_rfc3339(expires_ns),
            "size_vram": on_gpu(size, call.state.settings.vram_bytes),
        }
        if call.state.settings.at_least(0, 10):
            entry["context_length"] = loaded.num_ctx
        models.append(entry)
    return json_reply({"models": models})


def loaded_size(model: FakeModel, num_ctx: int) -> int:
    """/api/ps ``size``: what the runner allocated. Ollama adds up the buffer sizes
    llama-server logs after the load (model weights, KV cache, compute); the double counts the
    weights (the model's file size) and the KV cache at the loaded window."""
    return model.size + model.kv_bytes_per_token * num_ctx


def on_gpu(size: int, vram_bytes: int) -> int:
    """/api/ps ``size_vram``: the part of ``size`` on GPUs. All of it when it fits the GPU,
    none without a GPU, else as much as the GPU holds (the rest runs on the CPU); Ollama's
    own figure is the sum of the GPU buffers llama-server reports, which comes out the same
    up to layer granularity (docs/reference/ollama-protocol.md, "Loaded models")."""
    return max(0, min(size, vram_bytes))


def show(call: Call) -> Response:
    body = decode_request(call.record.body, "ShowRequest", SHOW_FIELDS)
    raw = body.get("model") or body.get("name")
    name = parse_model_name(raw, empty_status=400, empty_message="model is required")
    model = _find(call.state, name.display, str(raw))
    if model is None:
        raise ApiError(404, f"model '{name.display}' not found")
    if _proxied_by_name(call.state, str(raw)):
        # v0.18+ hands the whole request to ollama.com (server/routes.go ShowHandler): what it
        # answers is not in Ollama's source; the double describes the model, no remote fields.
        call.state.forward(call.record)
        return json_reply(show_response(model, remote_fields=False))
    return json_reply(show_response(model, remote_fields=call.state.settings.at_least(0, 12)))


def _proxied_by_name(state: ServerState, model_arg: str) -> bool:
    """From v0.18 a ":cloud"/"-cloud" name goes to ollama.com before any local lookup."""
    return state.settings.at_least(0, 18) and is_cloud_name(model_arg)


def _find(state: ServerState, display: str, model_arg: str) -> FakeModel | None:
    model = state.find(display)
    if model is None and _proxied_by_name(state, model_arg):
        # No stub needed: the name alone is forwarded.
        model = state.as_model(cloud_stub(display))
    return model


def signin_url() -> str:
    """The link a signed-out server sends (server/routes.go signinURL: host name, public key)."""
    return "https://ollama.com/connect?name=fake-ollama&key=c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUZha2U"


def forward(call: Call, req: GenerationRequest) -> Response | None:
    """Answer for a remote model as the real server does: record what it would have sent on,
    then 401 when signed out of ollama.com, else None (generate, adding the remote fields)."""
    if not req.model.is_remote:
        return None
    state = call.state
    state.forward(call.record)
    if state.settings.signed_in:
        return None
    if state.settings.at_least(0, 12, 1):
        return json_reply({"error": "unauthorized", "signin_url": signin_url()}, 401)
    # v0.12.0 sent the server's public key instead of a link.
    return json_reply({"error": "unauthorized", "public_key": "ssh-ed25519 AAAAC3Nz fake"}, 401)


def chat_request(state: ServerState, body: dict[str, Any]) -> GenerationRequest:
    """Check a decoded /api/chat body up to the model lookup (also used by /v1)."""
    think = parse_think(body.get("think"))
    keep_alive_s = parse_keep_alive(body.get("keep_alive"))
    _check_top_logprobs(body)
    model_arg = body.get("model") or ""
    name = parse_model_name(model_arg, empty_status=400, empty_message="model is required")
    model = _find(state, name.display, str(model_arg))
    if model is None:
        if state.settings.profile.has(CHAT_NOT_FOUND_PLAIN):
            raise ApiError(404, f"model '{model_arg}' not found")
        raise ApiError(404, f"model {go_quote(model_arg)} not found, try pulling it first")
    return GenerationRequest(
        verb="chat",
        model_arg=model_arg,
        model=model,
        messages=list(body.get("messages") or []),
        raw=body,
        options=body.get("options"),
        think=think,
        format=body.get("format"),
        keep_alive_s=keep_alive_s,
        tools=list(body.get("tools") or []),
        truncate=body.get("truncate") is not False,
        shift=body.get("shift") is not False,
    )


def chat(call: Call) -> Response:
    body = decode_request(call.record.body, "ChatRequest", CHAT_FIELDS)
    req = chat_request(call.state, body)
    refused = forward(call, req)
    if refused is not None:
        return refused
    generation = run(call.state, req, call.record, waited_s=call.waited_s)
    last_in_done = generation.last_in_done and call.state.settings.profile.has(DONE_CARRIES_CONTENT)
    return _respond(
        req, generation, body, key="message", state=call.state, last_in_done=last_in_done
    )


def generate(call: Call) -> Response:
    body = decode_request(call.record.body, "GenerateRequest", GENERATE_FIELDS)
    think = parse_think(body.get("think"))
    keep_alive_s = parse_keep_alive(body.get("keep_alive"))
    _check_top_logprobs(body)
    model_arg = body.get("model") or ""
    not_found = f"model '{model_arg}' not found"
    name = parse_model_name(model_arg, empty_status=404, empty_message=not_found)
    model = _find(call.state, name.display, str(model_arg))
    if model is None:
        raise ApiError(404, not_found)
    if body.get("raw") and (body.get("template") or body.get("system") or body.get("context")):
        raise ApiError(400, "raw mode does not support template, system, or context")
    messages = []
    if body.get("prompt"):
        if body.get("system"):
            messages.append({"role": "system", "content": body["system"]})
        messages.append({"role": "user", "content": body["prompt"]})
    req = GenerationRequest(
        verb="generate",
        model_arg=model_arg,
        model=model,
        messages=messages,
        raw=body,
        options=body.get("options"),
        think=think,
        format=body.get("format"),
        keep_alive_s=keep_alive_s,
        truncate=body.get("truncate") is not False,
        shift=body.get("shift") is not False,
        capabilities=("insert",) if body.get("suffix") else (),
    )
    refused = forward(call, req)
    if refused is not None:
        return refused
    generation = run(call.state, req, call.record, waited_s=call.waited_s)
    return _respond(req, generation, body, key="response", state=call.state)


def _check_top_logprobs(body: dict[str, Any]) -> None:
    if not 0 <= (body.get("top_logprobs") or 0) <= 20:
        raise ApiError(400, "top_logprobs must be between 0 and 20")


def _respond(
    req: GenerationRequest,
    gen: Generation,
    body: dict[str, Any],
    *,
    key: str,
    state: ServerState | None = None,
    last_in_done: bool = False,
) -> Response:
    """Frame a generation as /api/chat (``key="message"``) or /api/generate (``"response"``).
    A forwarded answer names the remote model and host in every line (v0.12+).
    ``last_in_done``: the last piece of the answer rides on the done line (DONE_CARRIES_CONTENT).
    """
    remote = req.model.remote_fields() if req.model.is_remote else {}
    if state is None or not state.settings.at_least(0, 12):
        remote = {}

    def document(content: str, thinking: str = "", **extra: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {"model": req.model_arg, **remote}
        doc["created_at"] = rfc3339(time.time_ns())
        if key == "message":
            doc["message"] = {"role": "assistant", "content": content}
            if thinking:
                doc["message"]["thinking"] = thinking
        else:
            doc["response"] = content
            if thinking:
                doc["thinking"] = thinking
        doc.update(extra)
        return doc

    def final(content: str = "", thinking: str = "") -> dict[str, Any]:
        extra: dict[str, Any] = {"done": True, "done_reason": gen.done_reason}
        if key == "response" and not body.get("raw"):
            extra["context"] = list(range(1, _token_total(gen.metrics) + 1))
        return document(content, thinking, **extra, **gen.metrics)

    if gen.is_trick:  # one object even when streaming was asked for
        return json_reply(document("", done=True, done_reason=gen.done_reason))
    if body.get("stream") is False:
        return json_reply(final("".join(gen.content), "".join(gen.thinking)))
    chunks = [document("", piece, done=False) for piece in gen.thinking]
    pieces = list(gen.content)
    last = pieces.pop() if last_in_done and pieces else ""
    chunks += [document(piece, done=False) for piece in pieces]
    return ndjson_stream([*chunks, final(last)])


def _token_total(metrics: dict[str, int]) -> int:
    return metrics.get("prompt_eval_count", 0) + metrics.get("eval_count", 0)


# /api/pull -------------------------------------------------------------------------------------
PULL_NOT_FOUND = "pull model manifest: file does not exist"
PROGRESS_STEPS = 10  # progress lines for the weights layer
_SMALL_LAYERS = (("template", 1_429), ("license", 7_711), ("params", 96))


def pull(call: Call) -> Response:
    body = decode_request(call.record.body, "PullRequest", PULL_FIELDS)
    raw = body.get("model") or body.get("name")
    # The pull handler reports an empty name as invalid too, not as "model is required".
    name = parse_model_name(raw, empty_status=400, empty_message="invalid model name")
    streaming = body.get("stream") is not False
    source = call.state.find_pullable(name.display)
    if source is None:
        if not streaming:
            raise ApiError(500, PULL_NOT_FOUND)
        # The manifest line is written before the registry answers, so the status stays 200.
        return ndjson_stream(
            [{"status": "pulling manifest"}, {"error": PULL_NOT_FOUND}], terminal=0
        )
    model = replace(source, name=name.display, modified_at=time.time())

    def install() -> None:
        call.state.install(model)

    if not streaming:
        install()
        # waitForStream sets a bare application/json before gin's c.JSON.
        return json_reply({"status": "success"}, content_type="application/json")
    return ndjson_stream(progress(model), terminal=1, on_complete=install)


def progress(model: FakeModel) -> list[dict[str, Any]]:
    """The lines of a successful pull; ``completed`` rises to ``total`` for every layer."""
    lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
    for digest, size, steps in _layers(model):
        line = {"status": f"pulling {digest[:12]}", "digest": f"sha256:{digest}", "total": size}
        lines.append(line)  # completed 0 is left out, like every zero field
        lines.extend({**line, "completed": size * step // steps} for step in range(1, steps + 1))
    lines += [
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    return lines


def _layers(model: FakeModel) -> list[tuple[str, int, int]]:
    """(digest, size, progress steps) per blob; the sizes add up to ``model.size``."""
    small = [(label, min(size, max(model.size // 4, 1))) for label, size in _SMALL_LAYERS]
    weights = max(model.size - sum(size for _, size in small), 1)
    layers = [("weights", weights, PROGRESS_STEPS)] + [(lbl, size, 1) for lbl, size in small]
    return [
        (hashlib.sha256(f"{model.digest}:{label}".encode()).hexdigest(), size, steps)
        for label, size, steps in layers
    ]


# The face --------------------------------------------------------------------------------------
class NativeFace(Face):
    """Ollama's native API: ``{"error": ...}`` bodies; a runner's error as the release sends it."""

    naming = OLLAMA_NAMES
    profile_type = OllamaProfile

    routes = (
        Route("GET", "/", root),
        Route("HEAD", "/", root),
        Route("GET", "/api/version", version),
        Route("HEAD", "/api/version", version),
        Route("GET", "/api/tags", tags),
        Route("HEAD", "/api/tags", tags),
        Route("GET", "/api/ps", ps),
        Route("POST", "/api/show", show),
        Route("POST", "/api/chat", chat, generation=True),
        Route("POST", "/api/generate", generate, generation=True),
        Route("POST", "/api/pull", pull),
    )
    # Routes the real server has and the double does not (the /v1 ones answered in this shape
    # too): a clear 501 beats a misleading 404.
    not_implemented = frozenset(
        {
            "/api/embed",
            "/api/embeddings",
            "/api/create",
            "/api/copy",
            "/api/delete",
            "/api/push",
            "/v1/completions",
            "/v1/embeddings",
            "/v1/responses",
            "/v1/messages",
        }
    )

    def runner_error(self, state: ServerState, status: int, message: str) -> Response:
        """server/routes.go streamResponse: see wire.runner_error_reply (STREAM_ERROR_STATUS)."""
        keeps_status = state.settings.profile.has(STREAM_ERROR_STATUS)
        return runner_error_reply(status, message, keeps_status=keeps_status)
