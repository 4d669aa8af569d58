"""Model loads in a batch: what a persona researcher waits for.

Ollama reloads a model whenever a request's runner options differ from the loaded runner's,
num_ctx included (server/sched.go, ``runnerRef.needsReload``), and a load takes seconds (7B)
to a minute (70B). The batch: :data:`GENERATIONS` generations whose prompts are spread from
300 to 9,000 words (windows of 4096 to 32768 tokens by the ladder) to one 32K model, run one
after another and :data:`CONCURRENCY` at a time, against the double's scheduler with a load
time scaled down to :data:`LOAD_TIME` seconds so that the whole benchmark takes seconds.

Three clients:

- the per-prompt ladder (persona-ollama before issue 15): each prompt's own rung;
- persona-ollama now: the loaded window is reused when the prompt fits (windows.py);
- no num_ctx, as Persona's built-in Ollama provider sends (num_predict and temperature only):
  the server's default window, never a reload, but long prompts are cut.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

GENERATIONS = 100
CONCURRENCY = 8
LOAD_TIME = 0.05  # seconds; a 7B model takes 2-5 s on a laptop GPU, a 70B one about a minute
GENERATION_TIME = 0.005  # seconds before each answer (first byte), to make requests overlap
MODEL = "qwen2.5:7b"
CONTEXT_LENGTH = 32768
MAX_TOKENS = 1024
WORDS = (300, 9000)
SEED = 15
PARALLEL = 4  # OLLAMA_NUM_PARALLEL

LADDER = "per-prompt ladder (before)"
POLICY = "persona-ollama: reuse the loaded window"
NO_NUM_CTX = "no num_ctx (Persona's built-in provider)"


@dataclass
class BatchResult:
    client: str
    mode: str  # "sequential" or "8 concurrent"
    loads: int
    wall: float
    windows: list[int]  # distinct windows the model ran with, in order of first use
    truncated: int  # prompts the server cut to fit its window
    errors: int


def prompts(count: int = GENERATIONS, seed: int = SEED) -> list[str]:
    """Interview-like prompts of 300 to 9,000 words, evenly spread, in a shuffled order."""
    rng = random.Random(seed)
    low, high = WORDS
    sizes = [low + (high - low) * i // (count - 1) for i in range(count)]
    rng.shuffle(sizes)
    words = ["participant", "said", "the", "onboarding", "was", "slow", "and", "confusing"]
    return [
        "Create personas from this interview:\n" + " ".join(words[i % 8] for i in range(size))
        for size in sizes
    ]


def _ladder_window(prompt: str) -> int:
    """What persona-ollama sent before issue 15: the prompt's own rung, capped at the model."""
    from persona_ollama.context import estimate_messages, ladder_size

    needed = estimate_messages([{"role": "user", "content": prompt}]) + MAX_TOKENS
    return min(ladder_size(needed), CONTEXT_LENGTH)


def _clients(url: str) -> dict[str, Callable[[str], Any]]:
    import requests

    from persona_ollama import OllamaProvider

    provider = OllamaProvider(base_url=url, model=MODEL)
    session = requests.Session()

    def ladder(prompt: str) -> Any:
        return provider.generate(prompt, max_tokens=MAX_TOKENS, num_ctx=_ladder_window(prompt))

    def policy(prompt: str) -> Any:
        return provider.generate(prompt, max_tokens=MAX_TOKENS)

    def no_num_ctx(prompt: str) -> Any:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "stream": False,
            "options": {"temperature": 0.7, "num_predict": MAX_TOKENS},
        }
        response = session.post(url + "/api/chat", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    return {LADDER: ladder, POLICY: policy, NO_NUM_CTX: no_num_ctx}


def run_batches(generations: int = GENERATIONS) -> list[BatchResult]:
    """Every client, sequential then concurrent, each from a cold server."""
    from persona_ollama.endpoint import resolve_endpoint
    from persona_ollama.server_state import SERVERS
    from persona_ollama.testing import FakeModel, FakeOllama, count_prompt_tokens

    batch = prompts(generations)
    model = FakeModel(MODEL, family="qwen2", context_length=CONTEXT_LENGTH, parameter_size="7.6B")
    results = []
    with FakeOllama([model], load_time=LOAD_TIME, parallel=PARALLEL) as fake:
        fake.latency(first_byte=GENERATION_TIME, path="/api/chat")
        # What the process knows of the server: the provider below shares it.
        server = SERVERS.state(str(resolve_endpoint(fake.url, {})))
        for name, call in _clients(fake.url).items():
            for mode, workers in (("sequential", 1), (f"{CONCURRENCY} concurrent", CONCURRENCY)):
                fake.reset()
                fake.latency(first_byte=GENERATION_TIME, path="/api/chat")
                server.windows.forget()  # a new process: no window known about the server
                errors = 0
                started = time.perf_counter()
                with ThreadPoolExecutor(workers) as pool:
                    for future in [pool.submit(call, prompt) for prompt in batch]:
                        try:
                            future.result()
                        except Exception:  # noqa: BLE001 - counted and reported
                            errors += 1
                wall = time.perf_counter() - started
                chats = [r for r in fake.requests if r.path == "/api/chat"]
                seen: list[int] = []
                truncated = 0
                for record in chats:
                    window = record.num_ctx or 0
                    if window not in seen:
                        seen.append(window)
                    messages = (record.json or {}).get("messages") or []
                    if count_prompt_tokens(messages) > window:
                        truncated += 1
                results.append(BatchResult(name, mode, fake.loads, wall, seen, truncated, errors))
    return results


def needed_windows(generations: int = GENERATIONS) -> list[int]:
    """The distinct rungs the batch's prompts need (what 'a genuinely larger window' means)."""
    return sorted({_ladder_window(prompt) for prompt in prompts(generations)})
