"""A call's ``deadline=`` also bounds what the /v1 backend asks on its own way: the listing
that finds which kind of server it is, the listing that names the served models after a 404,
and the count of the answer's tokens by llama-cpp-python's tokenizer. Each would otherwise
wait the short read timeout (30 s), past the deadline.

Over real sockets to the double, whose /v1/models is made slow with ``latency``, and to a
llama-cpp-python-shaped server (testing.hostile); the waits are real and short (the deadline
0.3 s, a slow answer 0.9 s).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from shared_helpers import llama_cpp_python

from persona_ollama import OllamaProvider
from persona_ollama.backends.base import ChatRequest
from persona_ollama.backends.openai import OpenAIBackend
from persona_ollama.endpoint import resolve_endpoint
from persona_ollama.errors import ModelNotAvailableError, ServerTimeoutError
from persona_ollama.testing import FakeModel, FakeOllama
from persona_ollama.testing.hostile import Conn, HostileServer, Request, chunk, http_head, respond

MODEL = "llama3.2:3b"
DEADLINE = 0.3  # seconds: the call's
SLOW = 0.9  # seconds a slowed listing takes: well past the deadline, far below 30 s
# What a call may take beyond its deadline on a loaded machine: giving up, and the error.
MARGIN = 0.3


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama([FakeModel(MODEL, context_length=8192)]) as server:
        yield server


def slow_listings(fake: FakeOllama, *, after: int = 0) -> None:
    """/v1/models answers at once ``after`` times, then only after SLOW seconds."""
    if after:
        fake.latency(0.0, path="/v1/models", times=after)
    fake.latency(SLOW, path="/v1/models")


def provider_for(fake: FakeOllama, **settings: object) -> OllamaProvider:
    return OllamaProvider(
        base_url=fake.url + "/v1", api="openai", deadline=DEADLINE, environ={}, **settings
    )


def test_finding_the_kind_of_an_empty_server_stops_at_the_deadline() -> None:
    # An empty Ollama lists no model (data: null), so the listing does not say what server
    # this is, and the backend asks again to find out (for where models run).
    with FakeOllama([]) as empty:
        slow_listings(empty, after=1)
        provider = provider_for(empty)
        started = time.monotonic()

        with pytest.raises(ServerTimeoutError, match="within the deadline"):
            provider.generate("Hello", max_tokens=8)  # the default model: a listing first

        took = time.monotonic() - started
        provider.close()
        assert empty.request_count("/v1/models") == 2  # the second is the one cut short
    assert took < DEADLINE + MARGIN, took


def test_a_chat_that_must_find_the_kind_first_stops_at_the_deadline(fake: FakeOllama) -> None:
    slow_listings(fake)
    backend = OpenAIBackend(resolve_endpoint(fake.url + "/v1", {}))
    started = time.monotonic()

    with pytest.raises(ServerTimeoutError, match="within the deadline"):
        backend.chat(ChatRequest(MODEL, (), max_tokens=8), deadline=started + DEADLINE)

    took = time.monotonic() - started
    backend.close()
    assert took < DEADLINE + MARGIN, took
    assert fake.request_count("/v1/chat/completions") == 0  # nothing sent past the deadline


def test_naming_the_served_models_after_a_404_stops_at_the_deadline(fake: FakeOllama) -> None:
    provider = provider_for(fake, model=MODEL)
    provider.model_info(MODEL)  # described: the call itself asks nothing before the chat
    slow_listings(fake)
    fake.fail_next(status=404, error=f"model '{MODEL}' not found", path="/v1/chat/completions")
    started = time.monotonic()

    with pytest.raises(ModelNotAvailableError):
        provider.generate("Hello", max_tokens=8)

    took = time.monotonic() - started
    provider.close()
    assert took < DEADLINE + MARGIN, took
    assert fake.request_count("/v1/chat/completions") == 1


def test_counting_the_answers_tokens_stops_at_the_deadline_and_leaves_the_count_unknown() -> None:
    with llama_cpp_python(count_after=SLOW) as server:
        provider = OllamaProvider(
            base_url=server.url + "/v1", model="m", api="openai", deadline=DEADLINE, environ={}
        )
        started = time.monotonic()

        answer = provider.generate("hi", max_tokens=64)

        took = time.monotonic() - started
        provider.close()
    assert answer.content == "Hello there"  # the answer came whole, within the deadline
    assert answer.raw_response["output_tokens"] is None  # unknown: never a guess, never 0
    assert took < DEADLINE + MARGIN, took


def vllm_whose_closing_events_come_late() -> HostileServer:
    """A vLLM-shaped server that sends the whole answer, finish reason included, at once,
    and its usage event and [DONE] only after SLOW seconds (a proxy holding the last bytes)."""
    events = (
        {"choices": [{"index": 0, "delta": {"content": "Hello there"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    )

    def models(request: Request, conn: Conn) -> bool:
        entry = {"id": "m", "object": "model", "owned_by": "vllm"}
        return respond(conn, json.dumps({"object": "list", "data": [entry]}).encode())

    def chat(request: Request, conn: Conn) -> bool:
        head = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
        conn.send(http_head(200, head))
        for event in events:
            conn.send(chunk(f"data: {json.dumps(event)}\n\n".encode()))
        conn.hold(SLOW)
        usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
        conn.send(chunk(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()))
        conn.send(chunk(b""))
        return False

    routes = {"/v1/models": models, "/v1/chat/completions": chat}
    return HostileServer(routes)


@pytest.mark.parametrize("limit", ["deadline", "timeout"])
def test_an_answer_whose_finish_reason_came_in_time_is_kept_when_only_done_is_late(
    limit: str,
) -> None:
    # The finish reason says the answer is whole, as when the connection breaks before
    # [DONE] (AnswerSoFar.final_if_whole): only the usage event and [DONE] missed the call's
    # deadline (or the read timeout), so the answer is returned, its counts unknown.
    with vllm_whose_closing_events_come_late() as server:
        provider = OllamaProvider(
            base_url=server.url + "/v1", model="m", api="openai", environ={}, **{limit: DEADLINE}
        )
        started = time.monotonic()

        answer = provider.generate("hi", max_tokens=64)

        took = time.monotonic() - started
        provider.close()
    assert answer.content == "Hello there"
    assert answer.finish_reason == "stop"
    assert answer.raw_response["output_tokens"] is None  # the usage event never came
    assert took < DEADLINE + MARGIN, took
