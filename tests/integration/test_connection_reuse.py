"""Pooled connections against the loopback double: reused between answers, enough for a batch."""

from __future__ import annotations

import asyncio
import threading

import pytest
from urllib3.connection import HTTPConnection

from persona_ollama import OllamaProvider

MODEL = "llama3.2:3b"


@pytest.fixture
def opened(monkeypatch):
    """The TCP connections urllib3 opens while the test runs."""
    connects = []
    original = HTTPConnection.connect

    def counting(self):
        connects.append(self)
        return original(self)

    monkeypatch.setattr(HTTPConnection, "connect", counting)
    return connects


def test_consecutive_generates_reuse_one_connection(fake_ollama, opened):
    provider = OllamaProvider(base_url=fake_ollama.url, model=MODEL)

    answers = [provider.generate("Describe a nurse.", max_tokens=32) for _ in range(3)]

    assert all(answer.content for answer in answers)
    assert len(opened) == 1


def test_a_stream_read_to_the_end_gives_its_connection_back(fake_ollama, opened):
    provider = OllamaProvider(base_url=fake_ollama.url, model=MODEL)

    for _ in range(2):
        assert "".join(provider.stream("Describe a nurse.", max_tokens=32))
    provider.generate("Describe a nurse.", max_tokens=32)

    assert len(opened) == 1


def test_a_batch_of_generate_async_runs_all_at_once(fake_ollama):
    # Each call waits in on_token until all 32 are streaming: asyncio's default executor
    # (min(32, CPUs + 4) threads) would leave some queued and break the barrier.
    size = 32
    everyone_streaming = threading.Barrier(size, timeout=30)
    provider = OllamaProvider(base_url=fake_ollama.url, model=MODEL)
    provider.generate("warm up", max_tokens=8)

    def waiting_for_everyone():
        waited = False

        def on_token(piece):
            nonlocal waited
            if not waited:
                waited = True
                everyone_streaming.wait()

        return on_token

    async def batch():
        return await asyncio.gather(
            *(
                provider.generate_async(
                    "Describe a nurse.", max_tokens=32, on_token=waiting_for_everyone()
                )
                for _ in range(size)
            )
        )

    answers = asyncio.run(batch())

    assert len(answers) == size
    assert all(answer.content for answer in answers)
    provider.close()


@pytest.mark.parametrize("api", ["native", "openai"])
@pytest.mark.parametrize("how", ["close", "with"])
def test_a_stream_closed_before_it_is_read_gives_its_connection_back(fake_ollama, how, api):
    # The caller still holds the stream: only close() itself can give the connection back
    # (Python 3.12+ keeps an unstarted generator's arguments alive after close()).
    provider = OllamaProvider(base_url=fake_ollama.url, model=MODEL, pool_size=1, api=api)
    provider.generate("warm up", max_tokens=8)
    stream = provider.stream("Describe a nurse.", max_tokens=32)
    assert provider.backend.connections_in_use() == 1
    if how == "close":
        stream.close()
    else:
        with stream:
            pass

    assert provider.backend.connections_in_use() == 0
    assert provider.generate("Describe a nurse.", max_tokens=32).content
    del stream
