"""How long to wait for the first byte of an answer: long enough for this prompt on this machine.

Before its first byte the server loads the model (when it is not in memory) and reads the whole
prompt. On a GPU that is seconds; on a CPU a 20,000-token transcript can take half an hour, and
a flat read timeout would then cut the call, the server would cancel it, and the work would be
lost. So the wait for the first byte is the client's read timeout (300 s by default) or
:data:`SAFETY` times the expected load + prompt time, whichever is longer, up to
:data:`MAX_WAIT`. An explicit ``timeout=`` (or PERSONA_OLLAMA_TIMEOUT) is the user's own
choice and always wins. Documented in docs/configuration.md, "Waiting for the first byte".

The seam is :func:`expected_first_byte_seconds`: measured speeds (timings.py) when this model
was measured on this server, else the speed model's estimate (choosing/speed.py
``first_token_seconds``, which the provider computes for a long prompt to a server on this
machine).
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
# Prompts shorter than this keep the plain read timeout without a measurement (no hardware
# probe for them): even the slowest machine the speed model knows, a CPU of one core, reads
# 1,024 tokens of a model that fits a laptop within a few minutes, and twice that stays near
# the default 300 s.
ESTIMATE_FROM_TOKENS = 1024


@dataclass(frozen=True)
class Expectation:
    """Expected seconds before the first byte, and where the figure comes from."""

    seconds: float
    source: str  # "measured" or "estimated"


def expected_first_byte_seconds(
    prompt_tokens: int,
    *,
    measured: Speeds | None = None,
    estimated_seconds: float | None = None,
    loaded: bool = False,
) -> Expectation | None:
    """THE SEAM: expected load + prompt-processing seconds for ``prompt_tokens`` prompt tokens.

    ``measured`` (this model on this server, from timings.py) wins; else
    ``estimated_seconds`` (the speed model's ``first_token_seconds``). ``loaded``: the model
    is in memory already (no load to wait for). None when neither says anything.
    """
    if measured is not None and measured.prompt_tokens_per_second:
        load = 0.0 if loaded else measured.load_seconds or 0.0
        return Expectation(load + prompt_tokens / measured.prompt_tokens_per_second, "measured")
    if estimated_seconds:
        return Expectation(estimated_seconds, "estimated")
    return None


def first_byte_wait(read_timeout: float, expected: Expectation | None) -> float:
    """The wait for the first byte: ``read_timeout``, or SAFETY x the expected time when that
    is longer, never more than MAX_WAIT (nor less than ``read_timeout``)."""
    if expected is None:
        return read_timeout
    return max(read_timeout, min(SAFETY * expected.seconds, MAX_WAIT))
