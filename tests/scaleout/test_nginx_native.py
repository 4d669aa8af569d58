"""docs/scaling.md's a1 set-up for real: nginx with the docs' block in front of doubles in
their own processes, one provider running a batch while a machine is killed and started
again. Each scenario ends with every prompt answered exactly once: as many complete answers
as prompts on the provider's side, and as many generations answered to the end on the
machines' side (a second complete answer would be counted there)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from persona_ollama import OllamaProvider

from .conftest import Machine, Nginx, Request, completed

pytestmark = pytest.mark.scaleout

MODEL = "llama3.2:3b"
REPLY = " ".join(f"word{n}" for n in range(24))  # one streamed chunk per word
PROMPTS = 16


def start_pool(tmp_path: Path, machines, gateway, count: int, *options: str) -> Nginx:
    reply = tmp_path / "reply.txt"
    reply.write_text(REPLY, encoding="utf-8")
    common = ["--models", MODEL, "--parallel", str(PROMPTS), "--reply", str(reply)]
    for n in range(count):
        machines.append(Machine(tmp_path, f"gpu-{n + 1}", [*common, *options]))
    nginx = Nginx(tmp_path, [machine.address for machine in machines])
    gateway.append(nginx)
    return nginx


def run_batch(url: str, *, during=None):
    """PROMPTS concurrent generations through one provider; ``during`` runs in a thread
    meanwhile. Returns the responses in prompt order (an exception fails the test)."""
    provider = OllamaProvider(base_url=url, model=MODEL, pool_size=PROMPTS, environ={})
    # The model's facts first (no generation, no load): the batch then starts at once, and
    # the kill's timing counts from its start.
    provider.model_info(MODEL)

    async def batch():
        calls = [
            provider.generate_async(f"Create personas from study {n}", max_tokens=64)
            for n in range(PROMPTS)
        ]
        return await asyncio.gather(*calls)

    side = threading.Thread(target=during) if during is not None else None
    if side is not None:
        side.start()
    try:
        return asyncio.run(batch())
    finally:
        if side is not None:
            side.join()
        provider.close()


def kill_and_restart(machine: Machine, after: float, down: float = 0.3):
    def act() -> None:
        time.sleep(after)
        machine.kill()
        time.sleep(down)
        machine.start()

    return act


def assert_each_prompt_answered_once(responses, machines, nginx: Nginx) -> list[Request]:
    """Every prompt got one complete answer: on the provider's side, and on the machines'
    (a second complete answer would be counted there). Returns nginx's log of the chats."""
    assert len(responses) == PROMPTS
    assert [r.content for r in responses] == [REPLY] * PROMPTS
    assert {r.finish_reason for r in responses} == {"stop"}
    assert completed(machines, PROMPTS) == PROMPTS
    return [entry for entry in nginx.access_log() if entry.uri == "/api/chat"]


def test_a_machine_killed_mid_answer_loses_no_persona(tmp_path, machines, gateway):
    # 24 chunks, 0.05 s apart: every answer streams for about 1.2 s.
    nginx = start_pool(tmp_path, machines, gateway, 2, "--between-chunks", "0.05")
    first = machines[0]

    responses = run_batch(nginx.url, during=kill_and_restart(first, after=0.5))

    chats = assert_each_prompt_answered_once(responses, machines, nginx)
    restarted = sum(r.raw_response["restarts"] for r in responses)
    # The killed machine held some of the answers mid-stream: those were asked again.
    assert restarted >= 1
    # Each answer the kill cut (nginx: "upstream prematurely closed") was asked again once.
    assert nginx.error_log().count("prematurely closed") == restarted
    assert len(chats) == PROMPTS + restarted  # each restart is one more request, no other


def test_a_machine_killed_before_its_headers_is_skipped_by_nginx(tmp_path, machines, gateway):
    # Each generation waits 1 s before its first byte: the kill comes before any header.
    nginx = start_pool(tmp_path, machines, gateway, 2, "--first-byte", "1.0")

    responses = run_batch(nginx.url, during=kill_and_restart(machines[0], after=0.4))

    chats = assert_each_prompt_answered_once(responses, machines, nginx)
    assert sum(r.raw_response["restarts"] for r in responses) == 0  # nginx moved them
    moved = [entry for entry in chats if "," in entry.upstreams]  # more than one tried
    assert moved, chats
    assert len(chats) == PROMPTS


def test_a_machine_killed_while_the_model_loads(tmp_path, machines, gateway):
    # The first generation on each machine loads the model for 1.5 s (before any header).
    nginx = start_pool(tmp_path, machines, gateway, 3, "--load-time", "1.5")

    responses = run_batch(nginx.url, during=kill_and_restart(machines[1], after=0.5))

    assert_each_prompt_answered_once(responses, machines, nginx)
    assert {r.raw_response["load_seconds"] for r in responses} != {None}
    # The machine started again is a fresh process: it loads the model again when used.
    assert machines[1].answers()


def test_the_pieces_pass_nginx_as_they_come(tmp_path, machines, gateway):
    # The docs' `proxy_buffering off`: without it nginx holds the pieces back and an on_token
    # display sees the whole answer at once (the answer itself would be the same).
    nginx = start_pool(tmp_path, machines, gateway, 1, "--between-chunks", "0.05")
    provider = OllamaProvider(base_url=nginx.url, model=MODEL, environ={})
    provider.model_info(MODEL)
    arrivals: list[float] = []

    response = provider.generate(
        "Create a persona", max_tokens=64, on_token=lambda piece: arrivals.append(time.monotonic())
    )
    provider.close()

    assert response.content == REPLY
    # 24 pieces 0.05 s apart at the machine: about 1.2 s from the first to the last here.
    assert arrivals[-1] - arrivals[0] >= 0.6, arrivals
