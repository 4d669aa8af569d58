"""The end of a streamed answer: read to the end for reuse, never at the answer's expense.

The backend stops at its final (``done``) chunk and gives the connection back; the ChatStream
over neutral Chunks builds the answer from that final chunk, and refuses a stream without one.
"""

from __future__ import annotations

import json

import pytest
import responses

from persona_ollama.backends.base import ChatRequest, Chunk
from persona_ollama.backends.ollama import OllamaBackend
from persona_ollama.context import plan
from persona_ollama.endpoint import resolve_endpoint
from persona_ollama.errors import OllamaResponseError
from persona_ollama.stream import RUNAWAY_MARGIN, ChatStream

BASE = "http://127.0.0.1:11434"
PIECE = {"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": False}
DONE = {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True}
REQUEST = ChatRequest(model="m", messages=(), max_tokens=32)


@pytest.fixture
def backend():
    ollama = OllamaBackend(resolve_endpoint(BASE, {}), backoff=0)
    yield ollama
    ollama.close()


def test_lines_after_done_are_ignored(backend):
    body = "".join(json.dumps(o) + "\n" for o in (PIECE, DONE, PIECE))
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}/api/chat", body=body)
        chunks = list(backend.chat(REQUEST))
    assert [(c.content, c.done) for c in chunks] == [("Hi", False), ("", True)]
    assert chunks[-1].model == "m"
    assert backend.connections_in_use() == 0


def stream_of(chunks, *, max_tokens: int = 32) -> ChatStream:
    return ChatStream(
        iter(chunks),
        plan(10, max_tokens, context_length=4096),
        model="m",
        endpoint=resolve_endpoint(BASE, {}),
        window_sent=True,
        may_cut=False,
    )


def test_the_answer_is_built_from_the_final_chunk():
    final = Chunk(done=True, reason="stop", model="m:latest", input_tokens=12, output_tokens=2)
    stream = stream_of([Chunk("Hel"), Chunk("lo"), final])
    assert list(stream) == ["Hel", "lo"]
    assert stream.response is not None
    assert stream.response.content == "Hello"
    assert (stream.response.input_tokens, stream.response.output_tokens) == (12, 2)
    assert stream.response.model == "m:latest"
    assert stream.response.finish_reason == "stop"


def test_unknown_counts_stay_unknown_in_raw_response():
    stream = stream_of([Chunk("Hi"), Chunk(done=True)])
    assert list(stream) == ["Hi"]
    assert stream.response is not None
    assert stream.response.input_tokens == 0  # Persona's int field
    assert stream.response.raw_response["input_tokens"] is None  # but not a fabricated 0
    assert stream.response.raw_response["output_tokens"] is None


def test_a_stream_without_its_final_chunk_is_not_passed_off_as_complete():
    stream = stream_of([Chunk("Hel"), Chunk("lo")])
    seen = []
    with pytest.raises(OllamaResponseError, match="ended before the server said it was done"):
        for piece in stream:
            seen.append(piece)
    assert seen == ["Hel", "lo"]
    assert stream.response is None


def test_a_server_streaming_past_the_limit_is_cut_off():
    limit = 32 + 32 // 10 + RUNAWAY_MARGIN
    stream = stream_of([Chunk("x")] * (limit + 5))
    with pytest.raises(OllamaResponseError, match="kept streaming past num_predict=32"):
        list(stream)
    assert stream.response is None


def test_closing_the_stream_closes_the_chunks():
    closed = []

    def chunks():
        try:
            yield Chunk("Hi")
            yield Chunk(done=True)
        finally:
            closed.append(True)

    stream = ChatStream(
        chunks(),
        plan(10, 32, context_length=4096),
        model="m",
        endpoint=resolve_endpoint(BASE, {}),
        window_sent=True,
        may_cut=False,
    )
    assert next(stream) == "Hi"
    stream.close()
    assert closed == [True]
    assert stream.response is None
