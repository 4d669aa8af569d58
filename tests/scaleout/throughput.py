"""Throughput of one batch through nginx (docs/scaling.md's a1 block) in front of one, two and
three machines: the figures of docs/benchmarks.md, section 8.

Each machine is the double in its own process with ``--parallel 2`` (two slots, as
``OLLAMA_NUM_PARALLEL=2``) and one token every 40 ms, so a machine serves at most 50 tokens a
second; 12 prompts of 12-token answers go through one provider with 12 pooled connections.
``python -m tests.scaleout.throughput`` prints the table; test_throughput.py checks the
ratios (0.8 x N or better).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from persona_ollama import OllamaProvider

from .conftest import Machine, Nginx

MODEL = "llama3.2:3b"
SLOTS = 2
TOKEN_SECONDS = 0.04
TOKENS = 12
PROMPTS = 12
REPLY = " ".join(f"w{n}" for n in range(TOKENS))


@dataclass
class Figure:
    machines: int
    seconds: float
    tokens: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def measure(machines: int, directory: Path) -> Figure:
    """One timed batch through nginx in front of ``machines`` doubles (after one warm-up
    call, which reads the model's facts)."""
    reply = directory / "reply.txt"
    reply.write_text(REPLY, encoding="utf-8")
    arguments = ["--models", MODEL, "--parallel", str(SLOTS), "--reply", str(reply)]
    arguments += ["--between-chunks", str(TOKEN_SECONDS)]
    pool = [Machine(directory, f"gpu-{n + 1}", arguments) for n in range(machines)]
    nginx = None
    try:
        nginx = Nginx(directory, [machine.address for machine in pool])
        provider = OllamaProvider(base_url=nginx.url, model=MODEL, pool_size=PROMPTS, environ={})
        provider.generate("warm up", max_tokens=64)

        async def batch():
            calls = [
                provider.generate_async(f"Create personas from study {n}", max_tokens=64)
                for n in range(PROMPTS)
            ]
            return await asyncio.gather(*calls)

        started = time.perf_counter()
        responses = asyncio.run(batch())
        seconds = time.perf_counter() - started
        provider.close()
        assert [r.content for r in responses] == [REPLY] * PROMPTS
        return Figure(machines, seconds, sum(r.output_tokens for r in responses))
    finally:
        if nginx is not None:
            nginx.stop()
        for machine in pool:
            machine.stop()


def measure_all(counts: tuple[int, ...] = (1, 2, 3)) -> list[Figure]:
    figures = []
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="scaleout-") as directory:
            figures.append(measure(count, Path(directory)))
    return figures


def table(figures: list[Figure]) -> str:
    one = figures[0].tokens_per_second
    lines = [
        "| machines | batch wall time | tokens/s | vs one machine | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for figure in figures:
        ratio = figure.tokens_per_second / one
        target = "" if figure.machines == 1 else f">= {0.8 * figure.machines:.1f}"
        lines.append(
            f"| {figure.machines} | {figure.seconds:.2f} s | {figure.tokens_per_second:.1f} "
            f"| {ratio:.2f} | {target} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure_all()))
