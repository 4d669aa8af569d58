"""The short read timeout of calls that load no model (docs/configuration.md), over real
sockets: each such route in turn says nothing, the others answer; the call gives up after the
short timeout, not the read timeout, and a generation (which may load a model) keeps the
patient one."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from shared_helpers import chat_done, chat_piece, llama_cpp_python, ndjson

from persona_ollama import OllamaProvider
from persona_ollama.errors import OllamaError
from persona_ollama.testing.hostile import HostileServer, Request, respond
from persona_ollama.transport import http

QUICK = 0.3
PATIENT = 8  # the read timeout the provider is given: far above QUICK


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(http, "QUICK_READ_TIMEOUT", QUICK)


def test_counting_the_answer_with_the_servers_tokenizer_waits_the_short_timeout():
    with llama_cpp_python("/extras/tokenize/count") as server:
        provider = OllamaProvider(
            base_url=server.url + "/v1", model="m", api="openai", timeout=PATIENT, environ={}
        )
        started = time.monotonic()
        answer = provider.generate("hi", max_tokens=64)
        took = time.monotonic() - started
        provider.close()

    assert answer.content == "Hello there"
    assert took < PATIENT  # not a read timeout for each of its two counts
    assert answer.raw_response["output_tokens"] is None  # unknown when the count did not come


def test_a_generation_keeps_the_patient_read_timeout():
    with llama_cpp_python(first_byte=3 * QUICK) as server:
        provider = OllamaProvider(
            base_url=server.url + "/v1", model="m", api="openai", timeout=PATIENT, environ={}
        )
        answer = provider.generate("hi", max_tokens=64)
        provider.close()

    assert answer.content == "Hello there"
    assert answer.raw_response["output_tokens"] == 2  # by the server's tokenizer (3 - its BOS)


def ollama(silent: str, asked: list[str]) -> HostileServer:
    """A native Ollama with one model, whose ``silent`` route accepts and never answers (each
    request it gets is added to ``asked``)."""

    def tags(request: Request, conn) -> bool:
        entry = {"name": "m:latest", "model": "m:latest", "size": 4 << 30, "digest": "d" * 64}
        return respond(conn, json.dumps({"models": [entry]}).encode())

    def show(request: Request, conn) -> bool:
        body = {"details": {}, "model_info": {"llama.context_length": 8192}, "capabilities": []}
        return respond(conn, json.dumps(body).encode())

    def chat(request: Request, conn) -> bool:
        body = ndjson(chat_piece("Hello"), chat_done(prompt_eval_count=3, eval_count=1)).encode()
        return respond(conn, body, headers={"Content-Type": "application/x-ndjson"})

    routes = {
        "/api/tags": tags,
        "/api/show": show,
        "/api/chat": chat,
        "/api/version": lambda request, conn: respond(conn, b'{"version": "0.30.0"}'),
        "/api/ps": lambda request, conn: respond(conn, b'{"models": []}'),
    }

    def hold(request: Request, conn) -> bool:
        asked.append(request.path)
        return conn.hold()

    routes[silent] = hold
    return HostileServer(routes)


@pytest.mark.parametrize("silent", ["/api/tags", "/api/show", "/api/version", "/api/ps"])
@pytest.mark.parametrize("local_only", [False, True])
def test_every_native_call_that_loads_no_model_waits_the_short_timeout(silent, local_only):
    asked: list[str] = []
    with ollama(silent, asked) as server:
        provider = OllamaProvider(
            base_url=server.url, timeout=PATIENT, retries=0, local_only=local_only, environ={}
        )
        started = time.monotonic()
        for call in (
            lambda: provider.generate("hi", max_tokens=64),  # no model: the list is asked
            lambda: provider.generate("hi", model="m", max_tokens=64),
            provider.installed_models,
        ):
            with contextlib.suppress(OllamaError):
                call()
        took = time.monotonic() - started
        provider.close()

    assert asked  # the silent route was asked
    assert took < PATIENT  # three calls, each waiting QUICK at most on the silent route
