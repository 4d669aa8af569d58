"""The answer as it streams: pieces of text, thinking kept apart, then Persona's LLMResponse.

The backend yields neutral :class:`~persona_ollama.backends.base.Chunk` objects; this module
turns them into answer pieces (a ``<think>`` block split off, a runaway stream or an overrun
deadline cut off, a forwarded answer refused in local-only mode) and, at the end, into an
``LLMResponse`` with the server's counts, durations and any warnings. Blocking and streaming
calls share this path, and a partial answer is never passed off as complete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

from ._persona import LLMResponse
from .context import DEFAULT_WORDS, ContextPlan, truncation_warning
from .errors import (
    ContextOverflowError,
    ServerResponseError,
    ServerTimeoutError,
)
from .model_info import Placement
from .privacy import check_destination, forwarded_after_check
from .thinking import ThinkSplitter

if TYPE_CHECKING:
    from .backends.base import Chunk
    from .backends.rules import ContextWords
    from .endpoint import Endpoint

log = logging.getLogger("persona_ollama")

# A server that keeps streaming past the answer's limit is cut off after this many extra
# chunks (plus 10 %): a broken or hostile server must not stream forever into memory.
RUNAWAY_MARGIN = 64


class ChatStream:
    """Iterator of answer pieces; ``response`` holds the full LLMResponse once it is done.

    Reading it drives the stream: each piece of the answer is yielded as it arrives, with
    thinking kept apart; a stream that runs past its token budget or past its deadline is cut
    off with an error, and a partial answer is never passed off as complete.
    """

    def __init__(
        self,
        chunks: Iterator[Chunk],
        plan: ContextPlan,
        *,
        model: str,
        endpoint: Endpoint,
        window_sent: bool,
        may_cut: bool,
        local_only: bool = False,
        deadline: float | None = None,
        ends_at: float | None = None,
        on_done: Callable[[Chunk, float | None], None] | None = None,
        confirm: Callable[[], None] | None = None,
        redact: Callable[[str], str] = str,
        label: str = "server",
        words: ContextWords = DEFAULT_WORDS,
    ) -> None:
        """``window_sent``: the server used ``plan.window`` (the backend sets windows);
        ``may_cut``: the server may cut a long prompt instead of refusing it, so the counts
        are checked for a cut; ``on_done`` is given the final chunk of a complete answer
        (its counts and timings: the measured speeds) and the seconds from the first chunk
        to the end by this process's clock; ``confirm``, called when the first chunk
        arrives, raises if the model turns out to have run elsewhere; ``redact`` scrubs the
        configured secrets from what the answer says about where it ran; ``label`` is what
        the backend calls its server (``backend.label``), for the hints; ``words`` how callers
        spell the window and the answer's budget (messages, ``raw_response`` keys)."""
        self._words = words
        self.response: LLMResponse | None = None
        self._chunks = chunks
        self._plan = plan
        self._model = model
        self._endpoint = endpoint
        self._window_sent = window_sent
        self._may_cut = may_cut
        self._local_only = local_only
        self._on_done = on_done
        self._confirm = confirm
        self._redact = redact
        self._label = label
        if ends_at is None and deadline is not None:
            ends_at = time.monotonic() + deadline
        self._pieces = self._read(deadline, ends_at)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop early: the connection is closed and nothing more is read."""
        self._pieces.close()
        _close(self._chunks)

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, deadline: float | None, ends_at: float | None) -> Generator[str, None, None]:
        """``_read_chunks`` with a context overflow given the request's sizes; the chunks
        are closed however reading stops."""
        try:
            yield from self._read_chunks(deadline, ends_at)
        except ContextOverflowError as error:
            if not self._window_sent:
                raise
            raise with_request_sizes(error, self._plan) from None
        finally:
            # Whatever stopped the answer (a wrong-shape chunk, the deadline, the caller
            # closing), the connection is closed and its pool slot given back.
            _close(self._chunks)

    def _read_chunks(
        self, deadline: float | None, ends_at: float | None
    ) -> Generator[str, None, None]:
        """The answer's text pieces (thinking split off), then ``self.response`` set from the
        final chunk; raises ServerError for a server streaming past its limit, the deadline
        passing, or an answer forwarded elsewhere in local-only mode."""
        url = str(self._endpoint)
        splitter = ThinkSplitter()
        content: list[str] = []
        thinking: list[str] = []
        final: Chunk | None = None
        started = time.perf_counter()
        first_at: float | None = None
        plan = self._plan
        limit = plan.max_tokens + plan.max_tokens // 10 + RUNAWAY_MARGIN
        forwarded = False
        for count, chunk in enumerate(self._chunks, 1):
            if chunk.remote_host and not forwarded:
                # A server that forwards names the host in every line of the answer; one that
                # says so only later is refused (or warned about) as soon as it does.
                forwarded = True
                self._forwarded(chunk)
            if count == 1:
                first_at = time.perf_counter()  # the first token, for a server without timings
                if self._confirm is not None:
                    # An answer that would not say it was forwarded (/v1): local-only mode
                    # asks the server again, before any of it is passed on.
                    self._confirm()
            if count > limit:
                answer = self._words.answer_name
                raise ServerResponseError(
                    f"The server kept streaming past {answer}={plan.max_tokens} "
                    f"({count} chunks); the answer was discarded.",
                    hint=f"The server ignores {answer}: check that the URL points at the "
                    f"{self._label} you meant and that it is up to date.",
                    url=url,
                )
            # The final chunk is never late: the transport read it within the deadline, or
            # kept a whole answer whose closing marker alone missed it (a /v1 finish reason).
            if ends_at is not None and not chunk.done and time.monotonic() > ends_at:
                raise ServerTimeoutError(
                    f"No complete answer within the deadline of {deadline:g} s; the partial "
                    "answer was discarded.",
                    hint="Raise deadline=, lower max_tokens, or use a faster model.",
                    url=url,
                )
            if chunk.thinking:
                thinking.append(chunk.thinking)
            if chunk.content:
                answer, inline_thought = splitter.feed(chunk.content)
                if inline_thought:
                    thinking.append(inline_thought)
                if answer:
                    content.append(answer)
                    yield answer
            if chunk.done:
                final = chunk
        answer, inline_thought = splitter.finish()
        if inline_thought:
            thinking.append(inline_thought)
        if answer:
            content.append(answer)
            yield answer
        if final is None:  # a backend ends its stream with a done chunk or raises
            raise ServerResponseError(
                f"The answer from {url} ended before the server said it was done; the "
                "partial answer was discarded.",
                url=url,
            )
        self.response = self._response(
            final, "".join(content), "".join(thinking), time.perf_counter() - started
        )
        if self._on_done is not None:
            self._on_done(final, None if first_at is None else time.perf_counter() - first_at)

    def _forwarded(self, chunk: Chunk) -> None:
        """The first chunk says the server forwarded the request (``remote_host``, which a
        backend reads from every line of a forwarded answer).

        The checks before sending cannot close every gap: a model replaced by one that runs
        elsewhere after they ran, or within the few seconds the model list is
        cached, is forwarded anyway. Then the prompt has left; local-only mode refuses the
        answer and says so, and otherwise the once-per-process warning names the host.
        """
        host = self._redact(chunk.remote_host) if chunk.remote_host else None
        if self._local_only:
            raise forwarded_after_check(
                self._model, host or "?", str(self._endpoint), label=self._label
            )
        upstream = self._redact(chunk.remote_model) if chunk.remote_model else None
        where = Placement(True, host, upstream, "the server's answer names remote_host")
        check_destination(self._model, where, self._endpoint, local_only=False, label=self._label)

    def _response(self, final: Chunk, content: str, thinking: str, wall: float) -> LLMResponse:
        """Persona's LLMResponse from the final chunk: counts, reason, timings and warnings."""
        plan = self._plan
        prompt_tokens = final.input_tokens or 0
        output_tokens = final.output_tokens or 0
        warnings = list(plan.warnings)
        truncated = None
        if self._may_cut:
            truncated = truncation_warning(
                plan.prompt_tokens,
                prompt_tokens,
                plan.window,
                window_sent=self._window_sent,
                words=self._words,
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
        if final.reason == "length":
            stopped = (
                f"The answer stopped at the token limit ({self._words.answer_name}="
                f"{plan.max_tokens}) "
                "and may be cut off: raise max_tokens."
            )
            log.warning(stopped)
            warnings.append(stopped)
        raw: dict[str, Any] = dict(final.raw)
        raw.update(
            {
                "thinking": thinking or None,
                self._words.window_name: plan.window,
                self._words.answer_name: plan.max_tokens,
                "estimated_prompt_tokens": plan.prompt_tokens,
                "tokens_per_second": _rate(output_tokens, final.answer_seconds),
                "prompt_tokens_per_second": _rate(prompt_tokens, final.prompt_seconds),
                # None where the server states no load time (/v1 servers): unknown, not 0.
                "load_seconds": final.load_seconds,
                "wall_seconds": round(wall, 4),
                "warnings": warnings,
                # None when the server sent no count (some /v1 servers send no usage): the
                # LLMResponse fields are ints in Persona's contract and then hold 0.
                "input_tokens": final.input_tokens,
                "output_tokens": final.output_tokens,
            }
        )
        return LLMResponse(
            content=content,
            model=final.model or self._model,
            input_tokens=prompt_tokens,
            output_tokens=output_tokens,
            finish_reason=final.reason or "stop",
            raw_response=raw,
        )


def _rate(tokens: int, seconds: float | None) -> float | None:
    return round(tokens / seconds, 2) if seconds else None


def _close(chunks: Iterator[Any]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def with_request_sizes(error: ContextOverflowError, plan: ContextPlan) -> ContextOverflowError:
    """The refusal with the sizes a server left out (some releases give none) filled in from
    the request: our estimate of the prompt and the window that was sent."""
    if error.prompt_tokens is not None or error.context_length is not None:
        return error
    return error.with_fields(
        prompt_tokens=plan.prompt_tokens, context_length=plan.window, estimated=True
    )
