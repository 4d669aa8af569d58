"""The same nginx block of docs/scaling.md in front of two llama-cpp-python servers (a real
llama.cpp engine), through /v1: one provider's batch while one server is killed mid-batch
and started again. Each prompt gets exactly one complete answer."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from persona_ollama import OllamaProvider

from .conftest import LLAMA_ALIAS, LlamaMachine, Nginx, llama_missing

pytestmark = [
    pytest.mark.scaleout,
    pytest.mark.skipif(llama_missing() is not None, reason=str(llama_missing())),
]

PROMPTS = 6
CHAT = "/v1/chat/completions"
PROMPT = "Write a persona of a user of a research tool."


@pytest.fixture
def llama_pool(tmp_path, machines, gateway):
    from realserver.tiny_model import write_model

    model = write_model(tmp_path / "tiny.gguf")
    for n in range(2):
        machines.append(LlamaMachine(tmp_path, f"llama-{n + 1}", model))
    nginx = Nginx(tmp_path, [machine.address for machine in machines])
    gateway.append(nginx)
    return nginx


def test_a_llama_server_killed_mid_batch_loses_no_answer(llama_pool, machines):
    nginx = llama_pool
    provider = OllamaProvider(
        base_url=nginx.url + "/v1", api="openai", model=LLAMA_ALIAS, pool_size=PROMPTS, environ={}
    )
    provider.generate("warm up", max_tokens=4)  # the served models, the server's kind
    # nginx logs a request just after its last byte, which the provider may have read first.
    logged = time.monotonic() + 10
    while not any(entry.uri == CHAT for entry in nginx.access_log()) and time.monotonic() < logged:
        time.sleep(0.002)

    def kill_and_restart() -> None:
        # Not after a fixed time: on a fast machine the batch was over before it (all six
        # answers in 0.85 s, no answer cut, the restart never tested). nginx gives each
        # server three of the six (least_conn), which it answers one after another, sending
        # the headers of each when it starts it: half an answer's time after the first one
        # of this server is logged, it is in the middle of the next one, however fast.
        def answered() -> int:
            chats = [entry for entry in nginx.access_log() if entry.uri == CHAT]
            return sum(entry.upstreams == machines[0].address for entry in chats)

        before = answered()
        started = time.monotonic()
        while answered() == before and time.monotonic() < started + 60:
            time.sleep(0.002)
        time.sleep((time.monotonic() - started) / 2)
        machines[0].kill()
        time.sleep(0.3)
        machines[0].start()

    async def batch():
        # This model rarely ends an answer itself: 300 tokens take most of a second.
        calls = [provider.generate_async(PROMPT, max_tokens=300) for _ in range(PROMPTS)]
        return await asyncio.gather(*calls)

    side = threading.Thread(target=kill_and_restart)
    side.start()
    try:
        responses = asyncio.run(batch())
    finally:
        side.join()
        provider.close()

    assert len(responses) == PROMPTS
    assert all(r.finish_reason in ("stop", "length") for r in responses)
    assert all(r.content for r in responses)
    restarted = sum(r.raw_response["restarts"] for r in responses)
    assert restarted >= 1, nginx.error_log()[-3000:]  # the kill cut an answer: asked again
    chats = [entry for entry in nginx.access_log() if entry.uri == CHAT]
    # The warm-up, one request per prompt, one more per restart: no answer asked twice.
    assert len(chats) == 1 + PROMPTS + restarted, chats
    # Each answer the kill cut (nginx: "upstream prematurely closed") was asked again once.
    assert nginx.error_log().count("prematurely closed") == restarted
    assert machines[0].answers()
