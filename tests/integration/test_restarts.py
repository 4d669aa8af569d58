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

MODEL = "llama3.2:3b"
ANSWER = "one two three four five six seven eight"
CHAT_PATH = {"native": "/api/chat", "openai": "/v1/chat/completions"}


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    """Restarts without restart.py's pause (0.5 s, doubling), so these tests stay fast."""
    monkeypatch.setattr(restart, "RESTART_PAUSE", 0.0)


@pytest.fixture
def fake(fake):
    """tests/integration/conftest.py's double, answering ANSWER."""
    fake.reply_with(ANSWER)
    return fake


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
    pauses: list[float] = []
    monkeypatch.setattr(restart, "RESTART_PAUSE", 0.3)
    monkeypatch.setattr(restart.time, "sleep", pauses.append)
    fake.drop_connection_mid_stream_next(after_chunks=2)

    response = make().generate("Hello", max_tokens=64)

    assert response.raw_response["restarts"] == 1
    assert pauses == [0.3]


# -- found by the review of issue 25 (wave3-review25) ------------------------------------------


def test_a_broken_connection_raised_by_on_token_itself_is_not_taken_for_the_servers(
    make, fake, api
):
    # on_token is the caller's code: it may itself use another provider whose connection
    # broke. That error is the caller's, raised at once; this request is not sent again.
    class Forwarder:
        calls = 0

        def __call__(self, piece: str) -> None:
            self.calls += 1
            if self.calls == 2:
                raise ConnectionBrokenError("the caller's own connection broke")

    forward = Forwarder()
    with pytest.raises(ConnectionBrokenError, match="the caller's own connection broke"):
        make().generate("Hello", max_tokens=64, on_token=forward, on_restart=lambda error: None)
    assert fake.request_count(CHAT_PATH[api]) == 1


def test_the_pause_between_restarts_is_bounded(make, fake, api, monkeypatch):
    # Many restarts must not double the pause without end (0.5 s * 2**20 is six days).
    pauses: list[float] = []
    monkeypatch.setattr(restart, "RESTART_PAUSE", 0.5)
    monkeypatch.setattr(restart.time, "sleep", pauses.append)
    for _ in range(12):
        fake.drop_connection_mid_stream_next(after_chunks=1)

    response = make(restarts=12).generate("Hello", max_tokens=64)

    assert response.raw_response["restarts"] == 12
    assert pauses[:3] == [0.5, 1.0, 2.0]
    assert max(pauses) == restart.RESTART_PAUSE_MAX


def test_a_restart_that_could_not_start_before_the_deadline_raises_the_break(
    make, fake, api, monkeypatch
):
    # The pause would end at the deadline: the break is raised now, not a timeout later that
    # hides it (and no request is sent that has no time to be answered).
    pauses: list[float] = []
    monkeypatch.setattr(restart, "RESTART_PAUSE", 60.0)
    monkeypatch.setattr(restart, "RESTART_PAUSE_MAX", 60.0)
    monkeypatch.setattr(restart.time, "sleep", pauses.append)
    fake.drop_connection_mid_stream_next(after_chunks=1)

    with pytest.raises(ConnectionBrokenError, match="broke in the middle"):
        make(deadline=30).generate("Hello", max_tokens=64)
    assert pauses == []
    assert fake.request_count(CHAT_PATH[api]) == 1


@pytest.mark.parametrize("mid_answer", [False, True])
def test_a_proxy_error_named_connection_error_that_is_not_one_is_not_asked_again(mid_answer):
    # LiteLLM names most errors of an Ollama behind it APIConnectionError, also an answer
    # such as "model not found" (BerriAI/litellm#1735, #32898): only the words of a broken
    # or refused connection make a restart, the rest is the machine's answer.
    from persona_ollama.testing.hostile import HostileServer, json_route, respond

    text = (
        "litellm.APIConnectionError: Ollama_chatException - "
        '{"error":"model \'llama3.2:3b\' not found, try pulling it first"}'
    )
    calls: list[int] = []

    def chat(request, conn) -> bool:
        calls.append(1)
        if mid_answer:
            choice = {"index": 0, "delta": {"content": "one "}, "finish_reason": None}
            first = {"object": "chat.completion.chunk", "model": MODEL, "choices": [choice]}
            body = [
                b"data: " + json.dumps(first).encode() + b"\n\n",
                b"data: " + json.dumps({"error": {"message": text, "code": 500}}).encode(),
                b"\n\ndata: [DONE]\n\n",
            ]
            return respond(conn, body, headers={"Content-Type": "text/event-stream"})
        refusal = json.dumps({"error": {"message": text, "type": None, "code": "500"}})
        headers = {"Content-Type": "application/json"}
        return respond(conn, refusal.encode(), status=500, headers=headers, framing="length")

    models = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "openai"}]}
    routes = {
        "/v1/models": json_route(models),
        "/api/tags": json_route({"error": "not found"}, status=404),
        "/v1/chat/completions": chat,
    }
    with HostileServer(routes) as proxy:
        url = proxy.url + "/v1"
        provider = OllamaProvider(base_url=url, api="openai", model=MODEL, environ={})
        provider.backend.transport.backoff = 0
        with pytest.raises(OllamaResponseError) as caught:
            provider.generate("Hello", max_tokens=64)
        provider.close()

    assert not isinstance(caught.value, ConnectionBrokenError)
    assert "not found" in caught.value.message
    assert len(calls) == 1


def test_local_only_checks_where_the_model_runs_again_before_a_restart(
    make, fake, api, monkeypatch
):
    # Behind a balancer the restart reaches another machine, whose model of that name may
    # forward to ollama.com: local-only mode asks again where it runs (a fresh listing and
    # fresh facts) before the prompt is sent again, and refuses it there.
    from persona_ollama.errors import LocalOnlyViolationError

    def another_machine_answers(pause: float) -> None:
        fake.remove_model(MODEL)
        fake.add_remote_alias(MODEL, "gpt-oss:120b-cloud")

    monkeypatch.setattr(restart.time, "sleep", another_machine_answers)
    fake.drop_connection_mid_stream_next(after_chunks=2)
    provider = make(local_only=True)

    with pytest.raises(LocalOnlyViolationError):
        provider.generate("Interview 7: her diagnosis", max_tokens=64)
    assert fake.request_count(CHAT_PATH[api]) == 1  # the prompt was not sent to it again
    assert fake.forwarded_requests == []


def test_an_answer_whose_done_line_came_before_the_break_is_returned_not_restarted():
    # A 200 with the whole answer and its done line, then the connection closes before the
    # chunked body's end: the answer is complete; nothing is sent again, on_token sees it once.
    from persona_ollama.testing.hostile import HostileServer, chat_line, chunk, done_line, http_head

    calls: list[int] = []

    def chat(request, conn) -> bool:
        calls.append(1)
        head = {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"}
        conn.send(http_head(200, head))
        for line in (chat_line("one "), chat_line("two"), done_line(eval_count=2)):
            conn.send(chunk(line))
        return False  # closed here, without "0\r\n\r\n"

    with HostileServer({"/api/chat": chat}) as server:
        provider = OllamaProvider(base_url=server.url, model="m", environ={}, retries=0)
        seen: list[str] = []
        response = provider.generate("hi", on_token=seen.append)
        provider.close()

    assert response.content == "".join(seen) == "one two"
    assert response.raw_response["restarts"] == 0
    assert len(calls) == 1


def _v1_server_that_breaks_after(*events: dict, calls: list[int]):
    """A /v1 server whose answer sends ``events``, then closes before [DONE] and the
    chunked body's end."""
    from persona_ollama.testing.hostile import HostileServer, chunk, http_head, json_route

    def chat(request, conn) -> bool:
        calls.append(1)
        head = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
        conn.send(http_head(200, head))
        for event in events:
            conn.send(chunk(b"data: " + json.dumps(event).encode() + b"\n\n"))
        return False

    models = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "openai"}]}
    routes = {"/v1/models": json_route(models), "/v1/chat/completions": chat}
    return HostileServer(routes)


def _piece(text: str, reason: str | None = None) -> dict:
    delta = {"content": text} if text else {}
    choice = {"index": 0, "delta": delta, "finish_reason": reason}
    return {"object": "chat.completion.chunk", "model": "m", "choices": [choice]}


def test_a_v1_answer_whose_finish_reason_came_before_the_break_is_returned_not_restarted():
    # The generation ended (finish reason, then usage); only [DONE] was lost: the answer is
    # whole, nothing is sent again, and on_token callers without on_restart get it.
    calls: list[int] = []
    usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    events = (_piece("one "), _piece("two"), _piece("", "stop"), usage)
    with _v1_server_that_breaks_after(*events, calls=calls) as server:
        provider = OllamaProvider(
            base_url=server.url + "/v1", api="openai", model="m", environ={}, retries=0
        )
        seen: list[str] = []
        try:
            response = provider.generate("hi", on_token=seen.append)
        finally:
            provider.close()

    assert response.content == "".join(seen) == "one two"
    assert (response.input_tokens, response.output_tokens) == (5, 2)
    assert response.finish_reason == "stop"
    assert response.raw_response["restarts"] == 0
    assert len(calls) == 1


def test_a_v1_answer_cut_before_its_finish_reason_is_still_a_broken_connection():
    calls: list[int] = []
    with _v1_server_that_breaks_after(_piece("one "), _piece("two"), calls=calls) as server:
        provider = OllamaProvider(
            base_url=server.url + "/v1",
            api="openai",
            model="m",
            environ={},
            retries=0,
            restarts=0,
        )
        try:
            with pytest.raises(ConnectionBrokenError):
                provider.generate("hi")
        finally:
            provider.close()

    assert len(calls) == 1


def test_the_counts_returned_after_a_restart_are_those_of_the_answer_that_completed(make, fake):
    # The first attempt's cut answer has no counts; the returned ones are the second's, and
    # equal those of an answer that was never cut (asked after it: the double, like Ollama,
    # counts only the prompt tokens its cache did not hold).
    fake.drop_connection_mid_stream_next(after_chunks=3)
    restarted = make().generate("Hello", max_tokens=64)
    whole = make().generate("Hello", max_tokens=64)

    assert restarted.raw_response["restarts"] == 1
    assert (restarted.input_tokens, restarted.output_tokens) == (
        whole.input_tokens,
        whole.output_tokens,
    )
    assert restarted.output_tokens


@pytest.mark.parametrize("argument", ["on_token", "on_restart"])
def test_a_callback_that_cannot_be_called_is_refused_before_anything_is_sent(
    make, fake, api, argument
):
    # Found only when the answer had begun (on_token) or was cut (on_restart), a TypeError
    # then lost the answer, or the restart.
    with pytest.raises(ConfigurationError, match=f"{argument} must be callable"):
        make().generate("Hello", max_tokens=64, **{argument: "print"})
    assert fake.request_count(CHAT_PATH[api]) == 0


def test_answers_that_are_errors_are_not_asked_again(make, fake, api):
    # An out-of-memory refusal and a server error status are the machine's answers, not
    # breaks: sent once (the transport's own retries of 429/503 aside).
    from persona_ollama.errors import InsufficientMemoryError

    fake.out_of_memory_next(path=CHAT_PATH[api])
    with pytest.raises(InsufficientMemoryError):
        make().generate("Hello", max_tokens=64)
    assert fake.request_count(CHAT_PATH[api]) == 1

    fake.fail_next(1, 500, "something went wrong", path=CHAT_PATH[api])
    with pytest.raises(OllamaResponseError) as caught:
        make().generate("Hello", max_tokens=64)
    assert not isinstance(caught.value, ConnectionBrokenError)
    assert fake.request_count(CHAT_PATH[api]) == 2


def test_a_local_only_refusal_is_not_asked_again(make, fake, api):
    from persona_ollama.errors import LocalOnlyViolationError

    fake.add_remote_alias("notes-model", "gpt-oss:120b-cloud")
    with pytest.raises(LocalOnlyViolationError):
        make(local_only=True).generate("Hello", model="notes-model", max_tokens=64)
    assert fake.request_count(CHAT_PATH[api]) == 0
