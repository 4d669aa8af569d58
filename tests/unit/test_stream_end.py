"""The end of a streamed answer: read to the end for reuse, never at the answer's expense."""

from __future__ import annotations

import json

import pytest
import responses

from persona_ollama.transport.http import OllamaClient
from persona_ollama.endpoint import resolve_endpoint

BASE = "http://127.0.0.1:11434"
PIECE = {"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": False}
DONE = {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True}


@pytest.fixture
def client():
    with OllamaClient(resolve_endpoint(BASE, {}), backoff=0) as c:
        yield c


def test_lines_after_done_are_ignored(client):
    body = "".join(json.dumps(o) + "\n" for o in (PIECE, DONE, PIECE))
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}/api/chat", body=body)
        chunks = list(client.chat({"model": "m", "messages": []}))
    assert chunks == [PIECE, DONE]
