"""Scripted failures and latency, request records, concurrency and shutdown of FakeOllama."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from real_waits import wait_until
from shared_helpers import json_lines

from persona_ollama.testing import (
    BUSY,
    OUT_OF_MEMORY,
    RUNNER_FAILED,
    RUNNER_STOPPED,
    FakeOllama,
)

RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on with 0 s: close() sends a TCP RST


def chat(fake: FakeOllama, session: Any = requests, **body: Any) -> requests.Response:
    body.setdefault("model", "llama3.2:3b")
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    return session.post(fake.url + "/api/chat", json=body, timeout=5, stream=True)


# --- status failures ---------------------------------------------------------------------------


def test_fail_next_answers_503_busy_then_recovers(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next(2)

    statuses = [chat(fake_ollama, stream=False).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert BUSY == "server busy, please try again.  maximum pending requests exceeded"
    assert fake_ollama.request_count("/api/chat") == 3


def test_failures_default_to_generation_paths_only(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next(1)

    show = requests.post(fake_ollama.url + "/api/show", json={"model": "llama3.2:3b"}, timeout=5)
    chat_response = chat(fake_ollama)

    assert (show.status_code, chat_response.status_code) == (200, 503)


def test_a_path_filter_targets_one_endpoint_and_star_any(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next(1, 500, "boom", path="/api/tags")
    fake_ollama.fail_next(1, 502, "bad gateway", path="*")

    chat_response = chat(fake_ollama)
    tags = requests.get(fake_ollama.url + "/api/tags", timeout=5)

    assert (chat_response.status_code, chat_response.json()) == (502, {"error": "bad gateway"})
    assert (tags.status_code, tags.json()) == (500, {"error": "boom"})


# --- stream failures ---------------------------------------------------------------------------


def test_error_mid_stream_keeps_200_and_ends_without_done(fake_ollama: FakeOllama) -> None:
    fake_ollama.error_mid_stream_next(after_chunks=2)

    response = chat(fake_ollama)

    assert response.status_code == 200
    chunks = json_lines(response)
    assert len(chunks) == 3
    assert all(chunk["done"] is False for chunk in chunks[:2])
    # llm/server.go and llm/llama_server.go: the text of a runner failing mid-answer
    assert chunks[2] == {"error": RUNNER_FAILED}
    assert RUNNER_FAILED == "an error was encountered while running the model: unexpected EOF"


@pytest.mark.parametrize(
    ("version", "status", "content_type", "body"),
    [
        # server/routes.go streamResponse: from v0.12.6 an error before output keeps its status
        ("0.12.6", 500, "application/json", {"error": RUNNER_STOPPED}),
        ("0.33.0-rc2", 500, "application/json", {"error": RUNNER_STOPPED}),
        # before, it is the only line of a 200 NDJSON stream
        ("0.11.11", 200, "application/x-ndjson", {"error": RUNNER_STOPPED}),
    ],
)
def test_runner_stopped_before_output_is_sent_as_the_release_does(
    fake_ollama_factory, version, status, content_type, body
) -> None:
    fake = fake_ollama_factory(version=version)
    fake.runner_stopped_next()

    response = chat(fake)

    assert response.status_code == status
    assert response.headers["Content-Type"] == content_type
    assert json.loads(response.text) == body
    assert chat(fake).status_code == 200  # one request only


@pytest.mark.parametrize(
    ("version", "text"),
    [
        ("0.24.0", "model requires more system memory (5.6 GiB) than is available (3.1 GiB)"),
        ("0.30.0", OUT_OF_MEMORY),
    ],
)
def test_out_of_memory_text_follows_the_release(fake_ollama_factory, version, text) -> None:
    fake = fake_ollama_factory(version=version)
    fake.out_of_memory_next()

    response = chat(fake)

    assert (response.status_code, response.json()["error"]) == (500, text)


def test_repetition_abort_ends_the_stream_with_neither_done_nor_error(fake_ollama) -> None:
    fake_ollama.reply_with("again again again")
    fake_ollama.repetition_abort_next()

    chunks = json_lines(chat(fake_ollama))

    assert chunks and not any(c.get("done") or "error" in c for c in chunks)


def test_drop_connection_mid_stream_breaks_the_chunked_body(fake_ollama: FakeOllama) -> None:
    fake_ollama.drop_connection_mid_stream_next(after_chunks=2)
    response = chat(fake_ollama)
    stream = response.iter_lines()
    received = [json.loads(next(stream)), json.loads(next(stream))]

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        next(stream)

    assert all(chunk["done"] is False for chunk in received)
    assert chat(fake_ollama, stream=False).status_code == 200  # the server itself is fine


def test_malformed_json_cuts_a_body_in_half(fake_ollama: FakeOllama) -> None:
    fake_ollama.malformed_json_next(path="/api/tags")

    response = requests.get(fake_ollama.url + "/api/tags", timeout=5)

    assert response.status_code == 200
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|delimiter"):
        response.json()


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("fail_next", (0,)),
        ("end_stream_without_done_next", (0,)),
        ("malformed_json_next", (-1,)),
        ("error_mid_stream_next", ("x", -1)),
        ("drop_connection_mid_stream_next", (-2,)),
        ("latency", (-1.0,)),
    ],
)
def test_scripting_rejects_nonsense_counts(method: str, args: tuple[Any, ...]) -> None:
    fake = FakeOllama()

    with pytest.raises(ValueError, match="must be"):
        getattr(fake, method)(*args)


# --- latency -----------------------------------------------------------------------------------


@pytest.mark.real_wait("the scripted first-byte latency must delay the answer in real time")
def test_first_byte_latency_delays_the_answer_and_shows_in_load_duration(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.latency(first_byte=0.2, times=1)

    started = time.monotonic()
    body = chat(fake_ollama, stream=False).json()
    slow = time.monotonic() - started
    started = time.monotonic()
    chat(fake_ollama, stream=False)
    fast = time.monotonic() - started

    assert slow >= 0.2 > fast
    assert body["load_duration"] >= 200_000_000


@pytest.mark.real_wait("it checks that the scripted latency paces the chunks in real time")
def test_between_chunks_latency_paces_the_stream(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(chunk_size=1)
    fake.reply_with("abcd")
    fake.latency(between_chunks=0.05)

    arrivals = []
    for _ in chat(fake).iter_lines():
        arrivals.append(time.monotonic())

    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] >= 4 * 0.05 * 0.9


# --- records -----------------------------------------------------------------------------------


def test_requests_are_recorded_with_headers_body_json_and_status(fake_ollama: FakeOllama) -> None:
    chat(fake_ollama, stream=False, options={"num_ctx": 8192}).json()
    requests.get(fake_ollama.url + "/api/tags", headers={"X-Test": "yes"}, timeout=5)

    first, second = fake_ollama.requests

    assert (first.method, first.path, first.status, first.num_ctx) == (
        "POST",
        "/api/chat",
        200,
        8192,
    )
    assert first.json["options"] == {"num_ctx": 8192}
    assert json.loads(first.body) == first.json
    assert first.headers["content-type"] == "application/json"
    assert (second.method, second.path, second.json, second.num_ctx) == (
        "GET",
        "/api/tags",
        None,
        None,
    )
    assert second.headers["X-TEST"] == "yes"
    assert fake_ollama.last_request("/api/chat") is first
    assert fake_ollama.request_count() == 2


def test_last_request_without_a_match_raises_lookup_error(fake_ollama: FakeOllama) -> None:
    with pytest.raises(LookupError, match="/api/chat"):
        fake_ollama.last_request("/api/chat")


# --- models ------------------------------------------------------------------------------------


def test_models_can_be_added_and_removed_while_running(fake_ollama: FakeOllama) -> None:
    added = fake_ollama.add_model("gemma3:4b")
    chat(fake_ollama, model="gemma3:4b", stream=False)

    removed = fake_ollama.remove_model("GEMMA3:4B")

    assert added is removed
    assert added.has("vision")
    assert "gemma3:4b" not in [m.name for m in fake_ollama.models]
    assert fake_ollama.loaded_models == {}
    with pytest.raises(KeyError, match="no installed model"):
        fake_ollama.remove_model("gemma3:4b")


# --- concurrency and lifecycle -----------------------------------------------------------------


@pytest.mark.real_wait("generations held by latency show how many run at once")
def test_parallel_limits_how_many_generations_run_at_once(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(parallel=2)
    fake.latency(first_byte=0.15)

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: chat(fake, stream=False).status_code, range(4)))
    elapsed = time.monotonic() - started

    assert statuses == [200] * 4  # waiting requests queue up; they never get a 503
    assert elapsed >= 2 * 0.15


def test_stop_closes_idle_keep_alive_connections_and_their_threads() -> None:
    before = set(threading.enumerate())
    fake = FakeOllama().start()
    url = fake.url
    with requests.Session() as session:
        chat(fake, session, stream=False).json()  # leaves an idle pooled connection
        started = set(threading.enumerate()) - before
        assert len(started) == 2  # the serve loop and the connection's handler

        fake.stop()

        assert not any(thread.is_alive() for thread in started)
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(url, timeout=1)


def test_stop_interrupts_simulated_latency() -> None:
    fake = FakeOllama().start()
    fake.latency(first_byte=30.0, between_chunks=30.0)
    url = fake.url
    errors: list[BaseException] = []

    def slow_request() -> None:
        try:
            requests.post(url + "/api/chat", json={"model": "llama3.2:3b"}, timeout=10)
        except requests.exceptions.RequestException as exc:
            errors.append(exc)

    client = threading.Thread(target=slow_request)
    client.start()
    wait_until(lambda: fake.request_count("/api/chat") == 1)  # it is in its first-byte wait
    started = time.monotonic()
    fake.stop()
    client.join(5)

    assert time.monotonic() - started < 2
    assert len(errors) == 1
    assert isinstance(errors[0], requests.exceptions.ConnectionError)


def test_context_manager_starts_and_stops_and_the_port_is_freed() -> None:
    with FakeOllama() as fake:
        port = fake.port
        assert requests.get(fake.url, timeout=5).status_code == 200

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url
    assert "stopped" in repr(fake)


def test_start_twice_is_an_error_and_stop_is_idempotent() -> None:
    fake = FakeOllama().start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            fake.start()
    finally:
        fake.stop()
    fake.stop()


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"chunk_size": 0}, "chunk_size"), ({"parallel": 0}, "parallel")]
)
def test_constructor_rejects_bad_settings(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FakeOllama(**kwargs)
