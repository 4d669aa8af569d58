"""docs/scaling.md's a2 recipe: a LiteLLM proxy, started with the page's litellm.yaml (its
``api_base`` lines pointed at doubles in their own processes), one provider through /v1.

Opt-in: ``litellm[proxy]`` is about 120 packages (760 MB), too much for every CI run, so the
test runs only where the ``litellm`` command is found (on PATH, or named by SCALEOUT_LITELLM)
and is skipped otherwise, with that reason. LiteLLM is started with its bundled price list
(LITELLM_LOCAL_MODEL_COST_MAP), so that it does not fetch one; run it in a network namespace
with only loopback to be sure nothing leaves the machine:
``unshare -n sh -c 'ip link set lo up; pytest tests/scaleout -m scaleout -k litellm'``.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import threading
import time

import pytest
import requests

from persona_ollama import OllamaProvider

from .conftest import SCALING, Machine, completed, free_port, stop, wait_for_port

LITELLM = os.environ.get("SCALEOUT_LITELLM") or shutil.which("litellm")

pytestmark = [
    pytest.mark.scaleout,
    pytest.mark.skipif(
        LITELLM is None,
        reason="litellm is not installed (opt-in: pip install 'litellm[proxy]' in any "
        "environment and put its `litellm` on PATH or in SCALEOUT_LITELLM)",
    ),
]

MODEL = "qwen3:8b"
REPLY = " ".join(f"word{n}" for n in range(24))
PROMPTS = 8


def docs_litellm_yaml(addresses: list[str]) -> str:
    text = SCALING.read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    found = [block for block in blocks if "litellm_params" in block]
    assert len(found) == 1
    bases = re.findall(r'api_base: "http://[\w.-]+:\d+"', found[0])
    assert len(bases) == len(addresses) == 2
    rendered = found[0]
    for base, address in zip(bases, addresses):
        rendered = rendered.replace(base, f'api_base: "http://{address}"', 1)
    return rendered


@pytest.fixture
def proxy(tmp_path, machines):
    reply = tmp_path / "reply.txt"
    reply.write_text(REPLY, encoding="utf-8")
    common = ["--models", MODEL, "--parallel", "8", "--reply", str(reply)]
    for n in range(2):
        machines.append(Machine(tmp_path, f"gpu-{n + 1}", [*common, "--between-chunks", "0.05"]))
    config = tmp_path / "litellm.yaml"
    config.write_text(docs_litellm_yaml([m.address for m in machines]), encoding="utf-8")
    port = free_port()
    key = "sk-" + secrets.token_hex(32)  # LiteLLM refuses to start without a master key
    env = {**os.environ, "LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    log = tmp_path / "litellm.log"
    command = [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    try:
        wait_for_port(port, process, "litellm", log)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the port opens before the router is ready
            answer = requests.get(f"{url}/health/readiness", timeout=5)
            if answer.ok:
                break
            time.sleep(0.2)
        yield url, key
    finally:
        stop(process)


def test_the_a2_recipe_with_a_machine_killed_mid_answer(proxy, machines, caplog):
    url, key = proxy
    provider = OllamaProvider(
        base_url=url + "/v1", api="openai", model=MODEL, api_key=key, pool_size=PROMPTS,
        environ={},
    )  # fmt: skip

    def kill_and_restart() -> None:
        time.sleep(0.6)
        machines[0].kill()
        time.sleep(0.3)
        machines[0].start()

    async def batch():
        calls = [
            provider.generate_async(f"Create personas from study {n}", max_tokens=64)
            for n in range(PROMPTS)
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    provider.generate("warm up", max_tokens=64)
    side = threading.Thread(target=kill_and_restart)
    side.start()
    try:
        results = asyncio.run(batch())
    finally:
        side.join()
        provider.close()

    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures
    assert [r.content for r in results] == [REPLY] * PROMPTS
    # None doubled: the machines finished one answer per prompt, plus the warm-up.
    assert completed(machines, PROMPTS + 1) == PROMPTS + 1
    # The answers the kill cut arrive as LiteLLM's APIConnectionError event: asked again.
    assert "says its connection to the machine behind it broke" in caplog.text
