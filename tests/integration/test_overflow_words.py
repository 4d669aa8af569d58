"""A prompt too long for the model is refused before sending, in the words of the server's
kind: a server that takes a window per request (Ollama's API) or one with a fixed window (/v1),
the same sizes either way, and the models that could take the prompt named as the server calls
them. Real sockets, the loopback double."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from persona_ollama import OllamaProvider, ServerError
from persona_ollama.errors import ContextOverflowError
from persona_ollama.testing import FakeModel, FakeOllama

SHORT = "short:1b"
LONG = "long:1b"
PROMPT = "word " * 24000  # about 30000 tokens by the estimate: more than 4096, less than 65536


@pytest.fixture
def fake():
    models = [FakeModel(SHORT, context_length=4096), FakeModel(LONG, context_length=65536)]
    with FakeOllama(models) as server:
        yield server


def _refusal(provider: OllamaProvider) -> ContextOverflowError:
    with pytest.raises(ContextOverflowError) as caught:
        provider.generate(PROMPT, model=SHORT, max_tokens=64)
    return caught.value


def _chats(fake: FakeOllama) -> list[str]:
    return [r.path for r in fake.requests if r.path in ("/api/chat", "/v1/chat/completions")]


def test_a_window_per_request_server_is_told_of_the_trained_context(fake):
    provider = OllamaProvider(base_url=fake.url, environ={})
    error = _refusal(provider)
    provider.close()

    assert error.message.endswith(
        f"but {SHORT} can take 4096 (its trained context of 4096 tokens). Nothing was sent: "
        "Ollama would have silently dropped part of the input."
    )
    assert error.hint == (
        f"Use an installed model with a longer context: {LONG}. Otherwise, shorten the input "
        "(fewer or shorter documents per run)."
    )
    assert error.context_length == 4096 and error.prompt_tokens > 4096
    assert _chats(fake) == []


class _VllmLike(BaseHTTPRequestHandler):
    """GET /v1/models as vLLM answers it (its max_model_len states the window); anything else
    is 404, and every request is recorded."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        if self.path != "/v1/models":
            self.send_error(404)
            return
        card = {"id": SHORT, "object": "model", "owned_by": "vllm", "max_model_len": 4096}
        body = json.dumps({"object": "list", "data": [card]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.seen.append(f"POST {self.path}")
        self.send_error(500)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def vllm_like():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _VllmLike)
    _VllmLike.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_fixed_window_server_is_told_of_the_context_it_states(vllm_like):
    provider = OllamaProvider(base_url=vllm_like + "/v1", api="openai", environ={})
    error = _refusal(provider)
    label = provider.backend.label
    provider.close()

    assert label == "vLLM server"
    assert error.message.endswith(
        f"but {SHORT} can take 4096 (the context the {label} states: 4096 tokens). "
        f"Nothing was sent to the {label}."
    )
    assert "Ollama" not in str(error)
    assert error.hint == "Shorten the input (fewer or shorter documents per run)."
    assert isinstance(error, ServerError)
    assert not [line for line in _VllmLike.seen if line.startswith("POST")]
