"""A loopback server shaped like vLLM's OpenAI-compatible one, over real sockets.

It serves the model ids it was started with, exactly as written (a Hugging Face id, a local
path, two ids that differ only in case), on ``/v1/models`` and ``/v1/chat/completions``: like
vLLM, it answers a request only for an id it lists, character for character, and 404s any
other. The package's double (persona_ollama.testing) is Ollama's server, whose names ignore
case and gain a ``:latest`` tag, so it cannot list such ids. Every request is recorded.

Import it like transport_doubles (``from vllm_like import VllmLike``): tests/ is on the path.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from transport_doubles import _LoopbackServer


class VllmLike(_LoopbackServer):
    """Serves ``ids`` (vLLM's ``--served-model-name``s); use it in ``with``. ``owners`` maps an
    id to the ``owned_by`` its entry says (a proxy listing another server's models beside
    vLLM's; else "vllm"). ``ids`` may be replaced while it runs (a model added or removed).
    ``bodies`` holds each chat request's JSON and ``paths`` each request's path, oldest first."""

    def __init__(self, *ids: str, owners: dict[str, str] | None = None) -> None:
        super().__init__(_Handler)
        self.ids = ids
        self.owners = owners or {}
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []

    @property
    def v1(self) -> str:
        """The base URL a client of the OpenAI API is given (ending in /v1)."""
        return self.url + "/v1"


class _Handler(BaseHTTPRequestHandler):
    server: VllmLike
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.path == "/v1/models":
            owners = self.server.owners
            data = [
                {
                    "id": model_id,
                    "object": "model",
                    "owned_by": owners.get(model_id, "vllm"),
                    "max_model_len": 8192,
                }
                for model_id in self.server.ids
            ]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())
        else:
            self._send(404, b'{"detail":"Not Found"}')

    def do_POST(self) -> None:
        self.server.paths.append(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        if body["model"] not in self.server.ids:  # vLLM compares served names exactly
            message = f"The model `{body['model']}` does not exist."
            error = {"object": "error", "message": message, "type": "NotFoundError", "code": 404}
            self._send(404, json.dumps(error).encode())
            return
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": body["model"]}
        events = [
            {**chunk, "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]},
            {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**chunk, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 1}},
        ]
        text = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        self._send(200, text.encode(), "text/event-stream")
