"""A generation whose connection broke mid-answer is asked again (restart.py), in both APIs,
against the loopback double that drops the socket in the middle of a chunked answer."""

from __future__ import annotations

import json
import logging

import pytest

from persona_ollama import OllamaProvider, restart
from persona_ollama.errors import (
    ConfigurationError,
    ConnectionBrokenError,
    ModelRunnerError,
    OllamaResponseError,
    OllamaTimeoutError,
)
from persona_ollama.testing import FakeModel, FakeOllama

MODEL = "llama3.2:3b"
ANSWER = "one two three four five six seven eight"
CHAT_PATH = {"native": "/api/chat", "openai": "/v1/chat/completions"}


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    """Restarts without restart.py's pause (0.5 s, doubling), so these tests stay fast."""
    monkeypatch.setattr(restart, "RESTART_PAUSE", 0.0)


@pytest.fixture
def fake():
    with FakeOllama([FakeModel(MODEL, context_length=131072)]) as server:
        server.reply_with(ANSWER)
        yield server


@pytest.fixture(params=["native", "openai"])
def api(request) -> str:
    return str(request.param)


@pytest.fixture
def make(fake, api):
    made: list[OllamaProvider] = []

    def build(**arguments) -> OllamaProvider:
        url = fake.url + "/v1" if api == "openai" else fake.url
        arguments.setdefault("environ", {})
        provider = OllamaProvider(base_url=url, model=MODEL, api=api, **arguments)
        provider.backend.transport.backoff = 0
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def test_a_cut_answer_is_asked_again_and_returned_whole(make, fake, api, caplog):
    fake.drop_connection_mid_stream_next(after_chunks=3)

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        response = make().generate("Hello", max_tokens=64)

    assert response.content == ANSWER
    assert response.raw_response["restarts"] == 1
    assert fake.request_count(CHAT_PATH[api]) == 2
    assert "broke in the middle" in caplog.text and "restart 1 of 1" in caplog.text


def test_an_answer_that_is_not_cut_says_it_was_not_restarted(make, fake, api):
    response = make().generate("Hello", max_tokens=64)

    assert response.raw_response["restarts"] == 0
    assert fake.request_count(CHAT_PATH[api]) == 1


def test_restarts_bound_the_attempts_and_the_last_cut_is_raised(make, fake, api):
    for _ in range(3):
        fake.drop_connection_mid_stream_next(after_chunks=2)

    with pytest.raises(ConnectionBrokenError, match="partial result was discarded"):
        make(restarts=1).generate("Hello", max_tokens=64)
    assert fake.request_count(CHAT_PATH[api]) == 2

    # The third fault is still queued: two restarts get past it.
    response = make(restarts=2).generate("Hello", max_tokens=64)
    assert (response.content, response.raw_response["restarts"]) == (ANSWER, 1)


def test_restarts_zero_keeps_the_error(make, fake, api):
    fake.drop_connection_mid_stream_next(after_chunks=2)

    with pytest.raises(ConnectionBrokenError):
        make(restarts=0).generate("Hello", max_tokens=64)
    assert fake.request_count(CHAT_PATH[api]) == 1


def test_the_variable_sets_restarts_and_the_argument_beats_it(make, fake, api):
    for _ in range(2):
        fake.drop_connection_mid_stream_next(after_chunks=2)

    response = make(environ={"PERSONA_OLLAMA_RESTARTS": "2"}).generate("Hello", max_tokens=64)
    assert (response.content, response.raw_response["restarts"]) == (ANSWER, 2)

    assert make(environ={"PERSONA_OLLAMA_RESTARTS": "2"}, restarts=0).restarts == 0
    assert make(environ={"PERSONA_OLLAMA_RESTARTS": "0"}).restarts == 0
    assert make().restarts == 1


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_a_bad_restarts_argument_is_refused(bad):
    with pytest.raises(ConfigurationError, match="restarts must be a whole number"):
        OllamaProvider(base_url="http://127.0.0.1:9", restarts=bad, environ={})


@pytest.mark.parametrize("bad", ["-1", "two", "1.5", "²"])
def test_a_bad_restarts_variable_is_refused_naming_it(bad):
    with pytest.raises(ConfigurationError) as caught:
        OllamaProvider(base_url="http://127.0.0.1:9", environ={"PERSONA_OLLAMA_RESTARTS": bad})
    assert "PERSONA_OLLAMA_RESTARTS" in caught.value.message
    assert caught.value.hint == "e.g. PERSONA_OLLAMA_RESTARTS=2"


def test_an_error_line_mid_answer_is_an_answer_and_not_asked_again(make, fake, api):
    fake.error_mid_stream_next(after_chunks=2)

    with pytest.raises(OllamaResponseError) as caught:
        make().generate("Hello", max_tokens=64)
    assert not isinstance(caught.value, ConnectionBrokenError)
    if api == "native":
        assert isinstance(caught.value, ModelRunnerError)
    assert fake.request_count(CHAT_PATH[api]) == 1


def test_a_stream_without_its_end_is_not_asked_again(make, fake, api):
    fake.end_stream_without_done_next()

    with pytest.raises(OllamaResponseError, match="ended before the server said"):
        make().generate("Hello", max_tokens=64)
    assert fake.request_count(CHAT_PATH[api]) == 1


def test_the_deadline_is_not_restarted(make, fake, api):
    fake.latency(between_chunks=0.1)

    with pytest.raises(OllamaTimeoutError):
        make(deadline=0.3).generate("Hello", max_tokens=64)
    assert fake.request_count(CHAT_PATH[api]) == 1


def test_pieces_shown_to_on_token_are_not_replayed_silently(make, fake, api):
    fake.drop_connection_mid_stream_next(after_chunks=3)
    seen: list[str] = []

    with pytest.raises(ConnectionBrokenError) as caught:
        make().generate("Hello", max_tokens=64, on_token=seen.append)

    assert seen and ANSWER.startswith("".join(seen))
    assert f"{len(seen)} piece(s) of it had reached on_token" in caught.value.message
    assert "on_restart=" in (caught.value.hint or "")
    assert fake.request_count(CHAT_PATH[api]) == 1


def test_on_restart_is_told_and_the_whole_answer_streams_again(make, fake, api):
    fake.drop_connection_mid_stream_next(after_chunks=3)
    events: list[object] = []

    response = make().generate(
        "Hello", max_tokens=64, on_token=events.append, on_restart=events.append
    )

    restart = next(i for i, event in enumerate(events) if isinstance(event, ConnectionBrokenError))
    before, after = events[:restart], events[restart + 1 :]
    assert before and ANSWER.startswith("".join(before))  # type: ignore[arg-type]
    assert "".join(after) == ANSWER == response.content  # type: ignore[arg-type]
    assert response.raw_response["restarts"] == 1
    assert fake.request_count(CHAT_PATH[api]) == 2


def test_a_cut_before_any_piece_reached_on_token_is_asked_again(make, fake, api):
    fake.drop_connection_mid_stream_next(after_chunks=0)
    seen: list[str] = []

    response = make().generate("Hello", max_tokens=64, on_token=seen.append)

    assert "".join(seen) == ANSWER == response.content
    assert fake.request_count(CHAT_PATH[api]) == 2


def test_a_proxy_saying_its_machine_broke_mid_answer_is_asked_again():
    # LiteLLM's event when the Ollama behind it dies mid-answer (tests/scaleout/test_litellm_a2.py).
    from persona_ollama.testing.hostile import HostileServer, json_route, respond

    broke = (
        "litellm.APIConnectionError: Ollama_chatException - Response payload is not completed: "
        "<TransferEncodingError: 400, message='Not enough data to satisfy transfer length "
        "header.'>"
    )
    calls: list[int] = []

    def event(value) -> bytes:
        return b"data: " + json.dumps(value).encode() + b"\n\n"

    def piece(text: str, reason=None) -> bytes:
        delta = {"content": text} if text else {}
        choice = {"index": 0, "delta": delta, "finish_reason": reason}
        return event({"object": "chat.completion.chunk", "model": MODEL, "choices": [choice]})

    def chat(request, conn) -> bool:
        calls.append(1)
        if len(calls) == 1:
            body = [piece("one "), event({"error": {"message": broke, "code": 500}})]
        else:
            usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
            body = [piece("one "), piece("two"), piece("", "stop")]
            body.append(event({"choices": [], "usage": usage}))
        body.append(b"data: [DONE]\n\n")
        return respond(conn, body, headers={"Content-Type": "text/event-stream"})

    models = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "openai"}]}
    routes = {
        "/v1/models": json_route(models),
        "/api/tags": json_route({"error": "not found"}, status=404),
        "/v1/chat/completions": chat,
    }
    with HostileServer(routes) as proxy:
        provider = OllamaProvider(base_url=proxy.url + "/v1", api="openai", model=MODEL, environ={})
        response = provider.generate("Hello", max_tokens=64)
        provider.close()

    assert response.content == "one two"
    assert response.raw_response["restarts"] == 1
    assert len(calls) == 2


def test_a_proxy_that_could_not_reach_its_machine_is_asked_again():
    # LiteLLM's answer when the machine it chose is down (before any output).
    from persona_ollama.testing.hostile import HostileServer, json_route, respond

    text = (
        "litellm.APIConnectionError: Ollama_chatException - Cannot connect to host "
        "127.0.0.1:18101 ssl:default [Connect call failed ('127.0.0.1', 18101)]"
    )
    refusal = {"error": {"message": text, "type": None, "param": None, "code": "500"}}
    calls: list[int] = []

    def chat(request, conn) -> bool:
        calls.append(1)
        if len(calls) == 1:
            body = json.dumps(refusal).encode()
            headers = {"Content-Type": "application/json"}
            return respond(conn, body, status=500, headers=headers, framing="length")
        choice = {"index": 0, "delta": {"content": "whole"}, "finish_reason": "stop"}
        done = {"object": "chat.completion.chunk", "model": MODEL, "choices": [choice]}
        body = [b"data: " + json.dumps(done).encode() + b"\n\n", b"data: [DONE]\n\n"]
        return respond(conn, body, headers={"Content-Type": "text/event-stream"})

    models = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "openai"}]}
    routes = {
        "/v1/models": json_route(models),
        "/api/tags": json_route({"error": "not found"}, status=404),
        "/v1/chat/completions": chat,
    }
    with HostileServer(routes) as proxy:
        url = proxy.url + "/v1"
        provider = OllamaProvider(base_url=url, api="openai", model=MODEL, environ={})
        response = provider.generate("Hello", max_tokens=64)
        provider.close()
        calls.clear()
        once = OllamaProvider(base_url=url, api="openai", model=MODEL, restarts=0, environ={})
        with pytest.raises(ConnectionBrokenError, match="could not reach the machine behind it"):
            once.generate("Hello", max_tokens=64)
        once.close()

    assert response.content == "whole"
    assert response.raw_response["restarts"] == 1
    assert len(calls) == 1  # restarts=0: the refusal is raised, not sent again


def test_a_restart_waits_a_moment_first(make, fake, monkeypatch):
    import time

    monkeypatch.setattr(restart, "RESTART_PAUSE", 0.3)
    fake.drop_connection_mid_stream_next(after_chunks=2)

    started = time.monotonic()
    response = make().generate("Hello", max_tokens=64)

    assert response.raw_response["restarts"] == 1
    assert time.monotonic() - started >= 0.3
