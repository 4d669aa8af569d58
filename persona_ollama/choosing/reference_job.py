"""The reference job: the one workload every time estimate and measurement is quoted for.

Persona renders one prompt that embeds the whole research input and asks for an array of
personas (docs/host-integration.md). The reference job is that call at a typical size: a
20,000-token transcript in, three personas out. It is a definition, not a measurement: the
speed model (estimated tokens/s) and ``persona-ollama bench`` (measured tokens/s) both turn
their speeds into "how long would the reference job take" with :func:`reference_job_seconds`,
so their figures can be compared. Defined in docs/models-and-hardware.md.
"""

from __future__ import annotations

#: Prompt tokens: the transcript (20,000 tokens, about 15,000 English words) and instructions.
TRANSCRIPT_TOKENS = 20_000
#: Personas written in the one answer.
PERSONAS = 3
#: Answer tokens per persona: one JSON object with id, name, demographics, goals, pain_points,
#: behaviours and quotes (Persona's persona fields) is about 600 tokens.
ANSWER_TOKENS_PER_PERSONA = 600
ANSWER_TOKENS = PERSONAS * ANSWER_TOKENS_PER_PERSONA


def reference_job_seconds(
    prompt_tokens_per_second: float,
    answer_tokens_per_second: float,
    load_seconds: float = 0.0,
) -> float:
    """Seconds the reference job takes at these speeds: the load (if the model is not in
    memory), reading the transcript, then writing the personas. Speeds must be positive."""
    if not prompt_tokens_per_second > 0 or not answer_tokens_per_second > 0:
        raise ValueError(
            "speeds must be positive tokens per second, got "
            f"{prompt_tokens_per_second!r} and {answer_tokens_per_second!r}"
        )
    return (
        max(load_seconds, 0.0)
        + TRANSCRIPT_TOKENS / prompt_tokens_per_second
        + ANSWER_TOKENS / answer_tokens_per_second
    )
