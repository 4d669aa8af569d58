"""One chat turn: the request the provider built, and the answer read from the stream.

The streamed chunks are turned into answer pieces (thinking kept apart, a runaway stream or
an overrun deadline cut off) and, at the end, into Persona's ``LLMResponse`` with the
server's counts, durations and any warnings. Blocking and streaming calls share this path.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from ._persona import LLMResponse
from .context import ContextPlan, truncation_warning
from .errors import ContextOverflowError, OllamaResponseError, OllamaTimeoutError
from .thinking import ThinkSplitter

log = logging.getLogger("persona_ollama")

# A server that keeps streaming past num_predict is cut off after this many extra chunks
# (plus 10 %): a broken or hostile server must not stream forever into memory.
RUNAWAY_MARGIN = 64


@dataclass(frozen=True)
class ChatRequest:
    """The /api/chat body the provider sends, with the context plan behind it."""

    body: dict[str, Any]
    plan: ContextPlan
    model: str
    # False when the server is known to refuse an over-long prompt: no truncation check then.
    server_may_cut: bool = True


class ChatStream:
    """Iterator of answer pieces; ``response`` holds the full LLMResponse once it is done.

    Reading it drives the stream: each piece of the answer is yielded as it arrives, with
    thinking kept apart; a stream that runs past ``num_predict`` or past ``deadline`` seconds
    is cut off with an error, and a partial answer is never passed off as complete.
    """

    def __init__(
        self,
        chunks: Generator[dict[str, Any], None, None],
        request: ChatRequest,
        *,
        deadline: float | None = None,
        url: str = "",
        ends_at: float | None = None,
        fill_sizes: bool = True,
    ) -> None:
        self.response: LLMResponse | None = None
        self._chunks = chunks
        self._fill_sizes = fill_sizes
        if ends_at is None and deadline is not None:
            ends_at = time.monotonic() + deadline
        self._pieces = self._read(request, deadline, ends_at, url)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop early: the connection is closed and nothing more is read."""
        self._pieces.close()
        self._chunks.close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(
        self, request: ChatRequest, deadline: float | None, ends_at: float | None, url: str
    ) -> Generator[str, None, None]:
        """``_read_chunks`` with a context overflow given the request's sizes; the chunks
        are closed however reading stops."""
        try:
            yield from self._read_chunks(request, deadline, ends_at, url)
        except ContextOverflowError as error:
            if not self._fill_sizes:
                raise
            raise with_request_sizes(error, request) from None
        finally:
            # Whatever stopped the answer (a wrong-shape chunk, the deadline, the caller
            # closing), the connection is closed and its pool slot given back.
            self._chunks.close()

    def _read_chunks(
        self, request: ChatRequest, deadline: float | None, ends_at: float | None, url: str
    ) -> Generator[str, None, None]:
        """The answer's text pieces (thinking split off), then ``self.response`` set from the
        final chunk; raises OllamaError for a chunk of the wrong shape, a server streaming past
        its limit, or the deadline passing."""
        chunks = self._chunks
        splitter = ThinkSplitter()
        content: list[str] = []
        thinking: list[str] = []
        final: dict[str, Any] = {}
        started = time.perf_counter()
        limit = request.plan.num_predict + request.plan.num_predict // 10 + RUNAWAY_MARGIN
        for count, chunk in enumerate(chunks, 1):
            if count > limit:
                chunks.close()
                raise OllamaResponseError(
                    f"The server kept streaming past num_predict={request.plan.num_predict} "
                    f"({count} chunks); the answer was discarded.",
                    hint="The server ignores num_predict: check it is Ollama and up to date.",
                    url=url,
                )
            if ends_at is not None and time.monotonic() > ends_at:
                chunks.close()
                raise OllamaTimeoutError(
                    f"No complete answer within the deadline of {deadline:g} s; the partial "
                    "answer was discarded.",
                    hint="Raise deadline=, lower max_tokens, or use a faster model.",
                    url=url,
                )
            message = chunk.get("message")
            if type(message) is not dict:
                raise wrong_shape("message", "an object", message, url)
            thought = message.get("thinking")
            if thought is not None and type(thought) is not str:
                raise wrong_shape("message.thinking", "text", thought, url)
            if thought:
                thinking.append(thought)
            piece = message.get("content")
            if piece is not None and type(piece) is not str:
                raise wrong_shape("message.content", "text", piece, url)
            if piece:
                answer, inline_thought = splitter.feed(piece)
                if inline_thought:
                    thinking.append(inline_thought)
                if answer:
                    content.append(answer)
                    yield answer
            if chunk.get("done"):
                final = chunk
        answer, inline_thought = splitter.finish()
        if inline_thought:
            thinking.append(inline_thought)
        if answer:
            content.append(answer)
            yield answer
        self.response = build_response(
            request,
            final,
            "".join(content),
            "".join(thinking),
            time.perf_counter() - started,
            url=url,
            native=self._fill_sizes,  # only the native API sends the plan's num_ctx
        )


def wrong_shape(field: str, expected: str, value: Any, url: str = "") -> OllamaResponseError:
    """The error for a server answer whose ``field`` is not ``expected``."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return OllamaResponseError(
        f"The server's answer has {field} = {shown} ({type(value).__name__}) where "
        f"{expected} was expected; the answer was discarded.",
        hint="Check that the URL points at an Ollama server (or an OpenAI-compatible one with "
        "api='openai'), and that it is up to date.",
        url=url or None,
    )


def _count(final: dict[str, Any], field: str, url: str) -> int:
    """A count or a duration (ns) of the final chunk: a finite number >= 0, else an error."""
    value = final.get(field)
    if value is None:
        return 0
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or value > 2**63
    ):
        raise wrong_shape(field, "a whole number >= 0", value, url)
    return int(value)


def _text(final: dict[str, Any], field: str, url: str) -> str | None:
    value = final.get(field)
    if value is not None and not isinstance(value, str):
        raise wrong_shape(field, "text", value, url)
    return value or None


def with_request_sizes(error: ContextOverflowError, request: ChatRequest) -> ContextOverflowError:
    """Fill in the sizes a server's overflow refusal left out (v0.12.6 to v0.24 give none):
    our estimate of the prompt and the num_ctx we sent."""
    if error.prompt_tokens is None and error.context_length is None:
        error.prompt_tokens = request.plan.prompt_tokens
        error.context_length = request.plan.num_ctx
        error.message = error.message.replace(
            "; it refused",
            f" (about {request.plan.prompt_tokens} prompt tokens by our estimate, "
            f"num_ctx={request.plan.num_ctx}); it refused",
            1,
        )
    return error


def build_response(
    request: ChatRequest,
    final: dict[str, Any],
    content: str,
    thinking: str,
    wall: float,
    *,
    url: str = "",
    native: bool = True,
) -> LLMResponse:
    """Persona's LLMResponse from the final chunk: counts, reason, timings and warnings.

    Every field used is checked first: a wrong shape raises OllamaResponseError naming it.
    ``native`` False: the /v1 mode, where the plan's num_ctx was not sent.
    """
    prompt_tokens = _count(final, "prompt_eval_count", url)
    output_tokens = _count(final, "eval_count", url)
    eval_ns = _count(final, "eval_duration", url)
    prompt_ns = _count(final, "prompt_eval_duration", url)
    load_ns = _count(final, "load_duration", url)
    done_reason = _text(final, "done_reason", url)
    model = _text(final, "model", url)
    warnings = list(request.plan.warnings)
    truncated = None
    if request.server_may_cut:
        truncated = truncation_warning(
            request.plan.prompt_tokens,
            prompt_tokens,
            request.plan.num_ctx,
            num_ctx_sent=native,
        )
    if truncated:
        log.warning(truncated)
        warnings.append(truncated)
    if not content:
        empty = "The server's answer is empty" + (
            ": everything it sent was reasoning (thinking, or an unclosed <think> block)."
            if thinking
            else "."
        )
        empty += " Check the model and the prompt; raise max_tokens if it stopped early."
        log.warning(empty)
        warnings.append(empty)
    if done_reason == "length":
        stopped = (
            f"The answer stopped at the token limit (num_predict={request.plan.num_predict}) "
            "and may be cut off: raise max_tokens."
        )
        log.warning(stopped)
        warnings.append(stopped)
    raw = {key: value for key, value in final.items() if key != "message"}
    raw.update(
        {
            "thinking": thinking or None,
            "num_ctx": request.plan.num_ctx,
            "num_predict": request.plan.num_predict,
            "estimated_prompt_tokens": request.plan.prompt_tokens,
            "tokens_per_second": round(output_tokens / (eval_ns / 1e9), 2) if eval_ns else None,
            "prompt_tokens_per_second": (
                round(prompt_tokens / (prompt_ns / 1e9), 2) if prompt_ns else None
            ),
            # None where the server states no load time (/v1 servers): unknown, not 0.
            "load_seconds": load_ns / 1e9 if final.get("load_duration") is not None else None,
            "wall_seconds": round(wall, 4),
            "warnings": warnings,
            # None when the server sent no count (some /v1 servers send no usage): the
            # LLMResponse fields are ints in Persona's contract and then hold 0.
            "input_tokens": prompt_tokens if "prompt_eval_count" in final else None,
            "output_tokens": output_tokens if "eval_count" in final else None,
        }
    )
    return LLMResponse(
        content=content,
        model=model or request.model,
        input_tokens=prompt_tokens,
        output_tokens=output_tokens,
        finish_reason=done_reason or "stop",
        raw_response=raw,
    )
