"""How long to wait for the first byte of an answer: long enough for this prompt on this machine.

Before its first byte the server loads the model (when it is not in memory) and reads the whole
prompt. On a GPU that is seconds; on a CPU a 20,000-token transcript can take half an hour, and
a flat read timeout would then cut the call, the server would cancel it, and the work would be
lost. So the wait for the first byte is the client's read timeout (300 s by default) or
:data:`SAFETY` times the expected load + prompt time, whichever is longer, up to
:data:`MAX_WAIT`. An explicit ``timeout=`` (or PERSONA_OLLAMA_TIMEOUT) is the user's own
choice and always wins. Documented in docs/configuration.md, "Waiting for the first byte".

The seam is :func:`expected_first_byte_seconds`: measured speeds (timings.py) when this model
was measured on this server, else :func:`estimated_prompt_speed`, a conservative rule of thumb
that the speed model (choosing/) can replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .timings import Speeds

# Times the expected time: another job on the machine, a longer prompt than the measured ones
# (attention grows with the context) or a cold disk cache can each double it.
SAFETY = 2.0
# A server silent for three hours is stuck, whatever the prompt: the wait never grows past this.
MAX_WAIT = 3 * 3600.0
# Prompts shorter than this keep the plain read timeout: at the slowest rate the rule below
# gives for a model that fits a laptop (about 10 tokens/s, an 8B model on 2 cores), 1,024
# tokens take about 100 s, twice that is still under the default 300 s.
ESTIMATE_FROM_TOKENS = 1024
# Prompt tokens/s per CPU thread for a model of one billion parameters, from the slowest of
# llama.cpp's published CPU prompt measurements we use: a 7B model, pp512, 4 threads of an
# i9-13900K, 22.44 tokens/s (https://github.com/ggml-org/llama.cpp/issues/34, 2023-08-12):
# 22.44 x 7 / 4 = 39. Prompt processing is compute-bound, so it scales with threads and
# inversely with the parameters read per token. Newer builds are faster: a floor, as a wait
# needs.
CPU_PROMPT_RATE_PER_THREAD_B = 39.0


@dataclass(frozen=True)
class Expectation:
    """Expected seconds before the first byte, and where the figure comes from."""

    seconds: float
    source: str  # "measured" or "estimated"


def expected_first_byte_seconds(
    prompt_tokens: int,
    *,
    measured: Speeds | None = None,
    estimated_prompt_tokens_per_second: float | None = None,
    loaded: bool = False,
) -> Expectation | None:
    """THE SEAM: expected load + prompt-processing seconds for ``prompt_tokens`` prompt tokens.

    ``measured`` (this model on this server, from timings.py) wins; else
    ``estimated_prompt_tokens_per_second`` (from :func:`estimated_prompt_speed`, or the speed
    model when wired in). ``loaded``: the model is in memory already (no load to wait for).
    None when neither says anything.
    """
    if measured is not None and measured.prompt_tokens_per_second:
        load = 0.0 if loaded else measured.load_seconds or 0.0
        return Expectation(load + prompt_tokens / measured.prompt_tokens_per_second, "measured")
    if estimated_prompt_tokens_per_second:
        return Expectation(prompt_tokens / estimated_prompt_tokens_per_second, "estimated")
    return None


def estimated_prompt_speed(
    parameters_b: float | None, *, cpu_threads: int, cpu_only: bool
) -> float | None:
    """ESTIMATE HOOK: prompt tokens/s of a model of ``parameters_b`` billion (active)
    parameters on this machine's CPU; None on a machine with a GPU (seconds there, the read
    timeout is plenty) or when the size is unknown. Replace with the speed model's figure."""
    if not cpu_only or not parameters_b or parameters_b <= 0 or cpu_threads < 1:
        return None
    return CPU_PROMPT_RATE_PER_THREAD_B * cpu_threads / parameters_b


def first_byte_wait(read_timeout: float, expected: Expectation | None) -> float:
    """The wait for the first byte: ``read_timeout``, or SAFETY x the expected time when that
    is longer, never more than MAX_WAIT (nor less than ``read_timeout``)."""
    if expected is None:
        return read_timeout
    return max(read_timeout, min(SAFETY * expected.seconds, MAX_WAIT))
