"""Model ids are the server's: a /v1 server's ``org/model`` ids and local paths reach it as
written, while Ollama's grammar still refuses what Ollama would refuse, before anything is sent.

The /v1 server here is a loopback stand-in shaped like vLLM's OpenAI-compatible server (one
model, served under the id it was started with: a Hugging Face id or a path), over real sockets.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.errors import ConfigurationError, ModelNotPulledError
from persona_ollama.testing import FakeModel, FakeOllama


class OneModelServer(ThreadingHTTPServer):
    """Serves one model id on /v1/models and /v1/chat/completions; records what it got."""

    daemon_threads = True

    def __init__(self, model_id: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.model_id = model_id
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: OneModelServer
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
            model = {"id": self.server.model_id, "object": "model", "owned_by": "vllm"}
            model["max_model_len"] = 8192
            self._send(200, json.dumps({"object": "list", "data": [model]}).encode())
        else:
            self._send(404, b'{"detail":"Not Found"}')

    def do_POST(self) -> None:
        self.server.paths.append(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        if body["model"] != self.server.model_id:
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


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[OneModelServer] = []

    def start(model_id: str) -> OneModelServer:
        server = OneModelServer(model_id)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "model_id",
    ["/models/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf", "Qwen/Qwen2.5-0.5B-Instruct", "Org/Model:v1.2"],
)
def test_a_v1_servers_own_model_id_reaches_it_as_written(serve, model_id):
    server = serve(model_id)
    provider = OllamaProvider(base_url=server.url, model=model_id, api="openai", environ={})

    response = provider.generate("Hello", max_tokens=8)

    provider.close()
    assert response.content == "Hi"
    assert [body["model"] for body in server.bodies] == [model_id]
    assert "/v1/chat/completions" in server.paths


@pytest.mark.parametrize("model_id", ["/models/x.gguf", "org/model:v1 q", "a" * 81])
def test_ollamas_grammar_still_refuses_before_anything_is_sent(model_id):
    with FakeOllama([FakeModel("llama3.2:3b")]) as fake:
        with pytest.raises(ConfigurationError, match="is not a valid Ollama model name"):
            OllamaProvider(base_url=fake.url, model=model_id, environ={})
        provider = OllamaProvider(base_url=fake.url, environ={})
        with pytest.raises(ConfigurationError, match="is not a valid Ollama model name"):
            provider.generate("Hello", model=model_id, max_tokens=8)
        provider.close()
        assert fake.requests == []


@pytest.mark.parametrize(
    ("model_id", "problem"),
    [("org/model\n", None), ("org/\x1bmodel", "control character"), ("m" * 1025, "characters")],
)
def test_any_server_refuses_control_characters_and_pasted_documents(model_id, problem):
    if problem is None:  # a trailing newline is stripped, as every name is
        assert OllamaProvider(model=model_id, api="openai", environ={}).default_model == "org/model"
        return
    with pytest.raises(ConfigurationError, match=problem) as caught:
        OllamaProvider(model=model_id, api="openai", environ={})
    assert "\x1b" not in str(caught.value)


def test_the_advice_for_a_missing_id_is_a_command_that_runs_as_shown(serve):
    # Any id passes now, spaces and quotes too: the vLLM command that would serve it must
    # take it as one argument when pasted into a shell.
    server = serve("Qwen/Qwen2.5-0.5B-Instruct")
    provider = OllamaProvider(base_url=server.url, api="openai", environ={})

    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("Hello", model="my model's v2", max_tokens=8)

    provider.close()
    command = (caught.value.hint or "").split("`")[1]
    assert command.startswith("vllm serve <repo> --served-model-name ")
    assert shlex.split(command)[-1] == "my model's v2"
