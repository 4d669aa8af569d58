"""Size the context window so that a prompt is never silently cut.

Some servers cut an over-long prompt to the window and still answer 200 (the backend declares
what its server does: backends/rules.py ``ContextWords``), so the client estimates the
prompt's size, picks a window from a fixed ladder (a changed window makes the server reload
the model, so it should not drift between calls), and refuses before sending when the prompt
cannot fit the model's trained context.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .backends.registry import declared
from .backends.rules import ContextWords
from .errors import ConfigurationError, ContextOverflowError, overflow_before_sending
from .settings import DEFAULT_API

# The default API's backend's words, for callers that name none.
DEFAULT_WORDS = declared(DEFAULT_API).context
LADDER = (4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576)
# Rough, deliberately pessimistic: Llama 3 / Qwen tokenizers average ~4 characters per token
# on English prose but nearer 3 on CSV, JSON, numbers and names, which is what research data
# looks like. Characters outside ASCII (accents, CJK, emoji) are counted a token each.
ASCII_CHARS_PER_TOKEN = 3.0
# Chat template tokens per message (role markers, separators) and for the whole prompt.
TOKENS_PER_MESSAGE = 8
TOKENS_PER_PROMPT = 32
# An answer shorter than this is not worth generating: refuse instead of sending.
MIN_USEFUL_ANSWER = 256
# Below this share of the estimate, prompt_eval_count means the server dropped input.
TRUNCATION_RATIO = 0.5
# A prompt_eval_count this close to the window means the prompt filled the whole window: the
# plan always leaves room for an answer, so a prompt that really fitted cannot do that.
FULL_WINDOW_SLACK = 1


def estimate_tokens(text: str) -> int:
    """A conservative token count for ``text`` (no tokenizer needed)."""
    if not text:
        return 0
    ascii_chars = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / ASCII_CHARS_PER_TOKEN) + (len(text) - ascii_chars)


def estimate_messages(messages: Iterable[Mapping[str, Any]]) -> int:
    """Estimated prompt tokens for a chat request's messages (text only)."""
    total = TOKENS_PER_PROMPT
    for message in messages:
        content = message.get("content")
        total += TOKENS_PER_MESSAGE + (estimate_tokens(content) if isinstance(content, str) else 0)
        thinking = message.get("thinking")
        if isinstance(thinking, str):
            total += estimate_tokens(thinking)
        # An image costs a few hundred to a couple of thousand tokens depending on the model.
        total += 768 * len(message.get("images") or ())
    return total


def ladder_size(tokens: int, ladder: Sequence[int] = LADDER) -> int:
    """The smallest rung of the ladder that holds ``tokens`` (the top rung when none does)."""
    for rung in ladder:
        if rung >= tokens:
            return rung
    return ladder[-1]


@dataclass(frozen=True)
class ContextPlan:
    """What to send: the window, the answer's token budget, and why."""

    window: int
    max_tokens: int
    prompt_tokens: int
    context_length: int | None
    warnings: tuple[str, ...] = field(default=())


def plan(
    prompt_tokens: int,
    max_tokens: int,
    *,
    context_length: int | None,
    window: int | None = None,
    preferred: int | None = None,
    model: str = "the model",
    alternatives: Sequence[str] = (),
    input_limit: int | None = None,
    words: ContextWords = DEFAULT_WORDS,
) -> ContextPlan:
    """Choose the window and the answer's budget for a prompt of ``prompt_tokens`` tokens.

    ``context_length`` is the model's trained window (None when unknown: then the ladder is
    not clamped). ``window`` is the caller's explicit window, which wins over the ladder;
    ``preferred`` (the model's own configured window) is used when it is larger than the rung.
    Raises :class:`ContextOverflowError` when the prompt cannot fit with room for a useful
    answer; ``alternatives`` names longer-context models for its hint. When the prompt fits
    but ``max_tokens`` does not, the answer budget is cut and a warning says so (the answer's
    finish_reason is then "length" if it runs out). ``words`` name the window in messages.
    ``input_limit`` is a budget for the prompt alone that some servers state beside the window:
    a prompt over it is refused before sending too, and the answer still gets only what the
    window leaves (window - prompt).
    """
    if max_tokens < 1:
        raise ConfigurationError(
            f"max_tokens must be a positive number of tokens, got {max_tokens!r}.",
            hint="Pass e.g. max_tokens=4096.",
        )
    name = words.window_name
    explicit = window
    if explicit is not None and explicit < 1:
        raise ConfigurationError(
            f"{name} must be a positive number of tokens, got {explicit!r}.",
            hint=f"Leave {name} unset to let persona-ollama size it, or pass e.g. 16384.",
        )
    needed = prompt_tokens + max_tokens
    if explicit is not None:
        window = explicit
        limit_reason = f"{name}={explicit} (set by the caller)"
    else:
        window = max(ladder_size(needed), preferred or 0)
        limit_reason = f"its trained context of {context_length} tokens"
        if context_length is not None:
            window = min(window, context_length)
    if context_length is not None and explicit is not None and explicit > context_length:
        limit_reason = f"{name}={explicit} (above its trained context of {context_length})"

    if input_limit is not None and prompt_tokens > input_limit:
        raise overflow(
            model,
            prompt_tokens=prompt_tokens,
            window=input_limit,
            limit_reason=f"its input limit, the most the prompt alone may take; the window "
            f"is {context_length or window}",
            alternatives=alternatives,
        )
    useful = min(max_tokens, MIN_USEFUL_ANSWER)
    if prompt_tokens + useful > window:
        raise overflow(
            model,
            prompt_tokens=prompt_tokens,
            window=window,
            limit_reason=limit_reason,
            alternatives=alternatives,
            explicit=explicit is not None,
            words=words,
        )
    warnings: list[str] = []
    budget = max_tokens
    if needed > window:
        budget = window - prompt_tokens
        warnings.append(
            f"The prompt (~{prompt_tokens} tokens) leaves room for {budget} answer tokens "
            f"in {model}'s window of {window}, fewer than max_tokens={max_tokens}; the answer "
            "is capped there and finish_reason will be 'length' if it runs out."
        )
    return ContextPlan(
        window=window,
        max_tokens=budget,
        prompt_tokens=prompt_tokens,
        context_length=context_length,
        warnings=tuple(warnings),
    )


def overflow(
    model: str,
    *,
    prompt_tokens: int,
    window: int,
    limit_reason: str,
    alternatives: Sequence[str] = (),
    explicit: bool = False,
    words: ContextWords = DEFAULT_WORDS,
) -> ContextOverflowError:
    """The error for a prompt that cannot fit, naming both sizes and longer-context models."""
    return overflow_before_sending(
        model,
        prompt_tokens=prompt_tokens,
        window=window,
        limit_reason=limit_reason,
        consequence=f"Nothing was sent: {words.would_cut}.",
        alternatives=alternatives,
        set_by=words.window_name if explicit else None,
    )


def truncation_warning(
    estimated: int,
    prompt_eval_count: int,
    window: int,
    *,
    window_sent: bool = True,
    words: ContextWords = DEFAULT_WORDS,
) -> str | None:
    """A warning when the server evidently evaluated less of the prompt than was sent.

    Two signs, one per way a server cuts a prompt. A server that cuts to the window it was
    sent keeps exactly that many tokens, so a prompt that filled the whole window was cut
    (``words.fills_window`` says so in the server's terms). A server that ignores the window
    sent keeps its own, smaller one: then the count drops far below the estimate. The count
    excludes cached prefix tokens on some servers, so a drop counts only down to about half
    the window. ``window_sent`` False (the /v1 mode): the server never got the window, so a
    count that fills or passes it says nothing about a cut (vLLM and llama.cpp refuse instead).
    """
    if prompt_eval_count <= 0:
        return None
    name = words.window_name
    if window_sent and prompt_eval_count >= window - FULL_WINDOW_SLACK:
        return (
            f"The server evaluated {prompt_eval_count} prompt tokens, the whole window "
            f"({name}={window}; our estimate was {estimated}): {words.fills_window}"
        )
    if estimated <= window // 2:
        return None
    if prompt_eval_count < estimated * TRUNCATION_RATIO and prompt_eval_count <= window // 2 + 64:
        return (
            f"The server evaluated only {prompt_eval_count} prompt tokens of an estimated "
            f"{estimated} ({name}={window}): it probably dropped part of the input. "
            f"Use a model with a longer context or pass a larger {name}."
        )
    return None
