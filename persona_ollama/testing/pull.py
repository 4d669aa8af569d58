"""POST /api/pull: progress lines as the server sends them (docs/reference/ollama-protocol.md,
"Pulling models"), then the model is installed.

Only models the double knows can be pulled: the built-in LIBRARY and whatever
``FakeOllama.pullable()`` registered. To see a progress bar move, script a delay between lines
with ``fake.latency(between_chunks=0.1, path="/api/pull")``; to fail a pull half-way, use
``fake.error_mid_stream_next(..., path="/api/pull")``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from typing import Any

from .models import FakeModel
from .native import Call
from .responses import ApiError, Response, json_reply, ndjson_stream
from .validation import PULL_FIELDS, decode_request, parse_model_name

__all__ = ["PULL_NOT_FOUND", "pull"]

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
