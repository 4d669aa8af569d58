"""Generation: running a fake model (:func:`run`).

The checks, context sizing, truncation, the answer and its metrics, shared by /api/chat,
/api/generate and /v1/chat/completions, which differ only in how they read the request and frame
the result. Nothing here knows a URL path: the faces (native.py, openai.py) do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .checks import PROMPT_TOO_LONG, check_format, resolve_options
from .models import FakeModel
from .profiles import (
    LLAMA_SERVER,
    PROMPT_EVAL_SKIPS_CACHE,
    REFUSES_OVERFLOW,
    SHIFT_OFF_REFUSES,
    Profile,
)
from .responses import ApiError, RunnerError
from .state import RecordedRequest, ServerState
from .tokens import count_prompt_tokens, count_tokens, split_chunks, truncate_to_tokens

__all__ = [
    "COLD_LOAD_NS",
    "EVAL_NS_PER_TOKEN",
    "OPEN_ENDED_FACTOR",
    "PROMPT_EVAL_NS_PER_TOKEN",
    "WARM_LOAD_NS",
    "Generation",
    "GenerationRequest",
    "context_size",
    "run",
]


# Generation ------------------------------------------------------------------------------------
# Nominal timings reported in the metrics (nanoseconds); simulated latency is added on top.
COLD_LOAD_NS = 750_000_000
WARM_LOAD_NS = 15_000_000
PROMPT_EVAL_NS_PER_TOKEN = 250_000  # 4,000 tokens/s
EVAL_NS_PER_TOKEN = 25_000_000  # 40 tokens/s
OPEN_ENDED_FACTOR = 10  # num_predict < 0 is capped at 10 x num_ctx (the server's HEAD)


@dataclass
class GenerationRequest:
    """A checked request, whatever endpoint it came from."""

    verb: str  # "chat" or "generate": the word in `"m" does not support chat`
    model_arg: str  # the request's model string, echoed in every response
    model: FakeModel
    messages: list[dict[str, Any]]
    raw: Any  # the request JSON, handed to reply functions
    options: Any = None
    think: bool | str | None = None
    format: Any = None
    keep_alive_s: float | None = None
    tools: list[Any] = field(default_factory=list)
    truncate: bool = True
    shift: bool = True
    capabilities: tuple[str, ...] = ()  # needed beyond completion, e.g. ("insert",)


@dataclass
class Generation:
    """What the model produced; ``done_reason`` "load"/"unload" mark the empty-prompt trick."""

    done_reason: str
    thinking: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=dict)
    last_in_done: bool = False  # the reply asked for the last piece on the done line

    @property
    def is_trick(self) -> bool:
        return self.done_reason in ("load", "unload")


def context_size(model: FakeModel, options: dict[str, Any], default_num_ctx: int) -> int:
    """num_ctx: request option > Modelfile PARAMETER (both in ``options``) > server default,
    capped at the trained length and floored at 4 (2048 for vision models)."""
    num_ctx = int(options.get("num_ctx", default_num_ctx))
    if model.context_length:
        num_ctx = min(num_ctx, model.context_length)
    return max(num_ctx, 2048 if model.has("vision") else 4)


def run(
    state: ServerState, req: GenerationRequest, record: RecordedRequest, *, waited_s: float = 0.0
) -> Generation:
    """Check, load and generate in the order the server does; raise ApiError on the way."""
    model = req.model
    if not req.messages and req.keep_alive_s == 0:
        state.unload(model)
        return Generation("unload")
    think = req.think
    if model.has("thinking"):
        think = True if think is None else think
    elif think:
        raise ApiError(400, f'"{req.model_arg}" does not support thinking')
    if not model.has("completion"):
        raise ApiError(400, f'"{req.model_arg}" does not support {req.verb}')
    needed = (*req.capabilities, *(("tools",) if req.tools else ()))
    for capability in needed:
        if not model.has(capability):
            raise ApiError(400, f"{state.naming.full(model.name)} does not support {capability}")
    options = resolve_options(model, req.options)
    num_ctx = context_size(model, options, state.settings.default_num_ctx)
    record.num_ctx = num_ctx
    # usesAutomaticNumCtx (server/routes.go): no num_ctx in the request or the Modelfile.
    explicit = isinstance(req.options, dict) and req.options.get("num_ctx") is not None
    cold = state.load(
        model,
        num_ctx,
        req.keep_alive_s,
        options=options,
        requested_ctx=int(options.get("num_ctx", state.settings.default_num_ctx)),
        auto_ctx=not explicit and "num_ctx" not in model.parameters,
        shift=_context_shift(req),
    )
    if not req.messages:
        return Generation("load")
    check_format(req.format)
    prompt_tokens = _prompt_tokens(req, num_ctx, state.settings.profile)
    if state.settings.profile.has(PROMPT_EVAL_SKIPS_CACHE):
        prompt_tokens = _uncached(state, req, prompt_tokens)
    return _answer(state, req, options, think, num_ctx, prompt_tokens, cold, waited_s)


def _context_shift(req: GenerationRequest) -> bool:
    """resolveContextShift (server/sched.go): the request's shift, else whether the model
    supports shifting (not deepseek2 models)."""
    asked = req.raw.get("shift") if isinstance(req.raw, dict) else None
    return asked if isinstance(asked, bool) else req.model.family != "deepseek2"


def _prompt_tokens(req: GenerationRequest, num_ctx: int, profile: Profile) -> int:
    """Tokens evaluated, after the server's two silent truncation stages (its protocol
    reference in docs/reference, "Context and truncation")."""
    messages = list(req.messages)
    tokens = count_prompt_tokens(messages, req.tools)
    # llama-server needs one free position: it refuses a prompt that fills the slot
    # (n_tokens >= n_ctx), and the server truncates to num_ctx - 1 for it (llm/llama_server.go
    # completionPromptForRequest, v0.30+). The runners before keep up to num_ctx.
    limit = num_ctx - 1 if profile.has(LLAMA_SERVER) else num_ctx
    if tokens <= limit:
        return tokens
    refuses = profile.has(REFUSES_OVERFLOW)
    if refuses and not req.truncate:
        # The runner refuses (v0.12.6+), or llama-server does (v0.30+): wire.py.
        raise RunnerError(400, profile.overflow_text(tokens, num_ctx))
    # Stage 1: drop the oldest messages, keeping system messages and the last message.
    droppable = [i for i, m in enumerate(messages[:-1]) if m.get("role") != "system"]
    for index in droppable:
        messages[index] = {}
        tokens = count_prompt_tokens([m for m in messages if m], req.tools)
        if tokens <= num_ctx:  # server/prompt.go chatPrompt compares with num_ctx itself
            break
    if tokens <= limit:
        return tokens
    if not refuses:
        # Before v0.12.6 the runner keeps exactly num_ctx tokens, whatever truncate says
        # (NewSequence in the server's Go runner, runner.go, at v0.11.11).
        return num_ctx
    # Stage 2, truncate=true: the runner keeps the first num_keep tokens and the end, num_ctx
    # in all (NewSequence, v0.12.6-v0.24); llama-server needs one token of room, so num_ctx - 1
    # (llm/llama_server.go completionPromptForRequest, v0.30+). Refused when shifting is off,
    # from v0.30.9 (SHIFT_OFF_REFUSES); before, shift only mattered while generating.
    if not req.shift and profile.has(SHIFT_OFF_REFUSES):
        raise ApiError(400, PROMPT_TOO_LONG)
    return limit


def _uncached(state: ServerState, req: GenerationRequest, prompt_tokens: int) -> int:
    """llama-server's timings.prompt_n: the tokens it evaluated, after the prefix it reused
    from the previous prompt (whole messages here); at least one is always evaluated."""
    prompt = tuple(json.dumps(message, sort_keys=True) for message in req.messages)
    same = state.reuse_prompt(req.model, prompt)
    if same == 0:
        return prompt_tokens
    reused = count_prompt_tokens(list(req.messages)[:same])
    return max(1, prompt_tokens - reused)


def _answer(
    state: ServerState,
    req: GenerationRequest,
    options: dict[str, Any],
    think: bool | str | None,
    num_ctx: int,
    prompt_tokens: int,
    cold: bool,
    waited_s: float,
) -> Generation:
    model = req.model
    rule = state.script.take_reply(state.key(model.name))
    answer = rule.answer if rule else model.reply
    text = _call(answer, req.raw, state.label) if callable(answer) else answer
    if text is None:
        text = (
            f"Fake answer from {model.name}: the prompt had {prompt_tokens} tokens "
            f"in {_plural(len(req.messages), 'message')}."
        )
    if req.format not in (None, "") and not _is_json(text):
        text = json.dumps({"response": text})
    thinking = ""
    if model.has("thinking") and think:
        scripted = rule.thinking if rule else None
        default = f"The user sent {_plural(len(req.messages), 'message')}. I will answer."
        thinking = scripted or model.thinking or default
    num_predict = int(options.get("num_predict", -1))
    limit = num_predict if num_predict >= 0 else OPEN_ENDED_FACTOR * num_ctx
    kept_thinking = truncate_to_tokens(thinking, limit)
    content = truncate_to_tokens(text, limit - count_tokens(kept_thinking))
    done_reason = "stop" if (kept_thinking, content) == (thinking, text) else "length"
    stopped = _cut_at_stop(content, options.get("stop", []))
    if stopped != content:
        content, done_reason = stopped, "stop"
    eval_count = count_tokens(kept_thinking) + count_tokens(content)
    metrics = {
        "load_duration": (COLD_LOAD_NS if cold else WARM_LOAD_NS) + int(waited_s * 1e9),
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": prompt_tokens * PROMPT_EVAL_NS_PER_TOKEN,
        "eval_count": eval_count,
        "eval_duration": eval_count * EVAL_NS_PER_TOKEN,
    }
    total = metrics["load_duration"] + metrics["prompt_eval_duration"] + metrics["eval_duration"]
    size = state.settings.chunk_size
    return Generation(
        done_reason=rule.done_reason if rule and rule.done_reason else done_reason,
        last_in_done=bool(rule and rule.last_in_done),
        thinking=split_chunks(kept_thinking, size),
        content=split_chunks(content, size),
        # The server leaves out every metric that is zero.
        metrics={
            key: value for key, value in {"total_duration": total, **metrics}.items() if value
        },
    )


def _call(answer: Callable[[Any], str], request: Any, label: str) -> str:
    try:
        return answer(request)
    except Exception as exc:
        # A bug in a test's reply function should reach the test as a readable server error,
        # not as a connection the double closed without answering.
        raise ApiError(500, f"{label}: the reply function raised {exc!r}") from exc


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _cut_at_stop(text: str, stops: list[str]) -> str:
    cuts = [text.find(stop) for stop in stops if stop and stop in text]
    return text[: min(cuts)] if cuts else text
