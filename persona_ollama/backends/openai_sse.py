"""The /v1 answer as it comes: server-sent events read into neutral chunks.

One chunk per event that has a choice, then a final one with the finish reason, the token
counts and the timings the server gave; the ends only a /v1 stream has (an error event,
``[DONE]`` without a finish reason, a stream without a single event) raise the private
exceptions below, which the backend turns into typed errors (openai_errors.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import OllamaResponseError, server_text_of, wrong_shape
from ..privacy import warn_once
from ..transport.ndjson import _parse as parse_object
from ..transport.sse import DONE, iter_sse_data
from .base import Chunk

FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop", "function_call": "stop"}
# The system_fingerprint of Ollama's /v1 chunks.
OLLAMA_FINGERPRINT = "fp_ollama"
# The hint for an event stream that is not one (not JSON, not an object, not UTF-8).
NOT_AN_EVENT_STREAM = (
    "Check that the URL points at an OpenAI-compatible server (`persona-ollama doctor "
    "--api openai`), not at a proxy's error page."
)


def _event(data: bytes) -> dict[str, Any]:
    """One event's JSON object; anything else is an error that says what to check (the
    shared parser's hint speaks of Ollama's NDJSON)."""
    try:
        return parse_object(data)
    except OllamaResponseError as error:
        error.hint = NOT_AN_EVENT_STREAM
        raise


class _Interrupted(Exception):
    """The stream said [DONE] before any choice had a finish reason."""


class _Empty(Exception):
    """A 200 stream that ended without a single event."""


class _StreamError(Exception):
    """An error event in the stream (its text is the argument)."""


class AnswerSoFar:
    """What a /v1 stream has said so far that its final chunk carries: the model, the
    finish reason, the usage and timings. Whole once a finish reason came (the generation
    ended); ``[DONE]`` only closes the stream."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.finish: str | None = None
        self.usage: Mapping[str, Any] = {}
        self.timings: Mapping[str, Any] = {}

    def final_if_whole(self) -> Chunk | None:
        """The final chunk when the answer was whole before the connection broke (its
        finish reason came, only ``[DONE]`` or the usage event was lost), else None."""
        if self.finish is None:
            return None
        return final_chunk(self.model, self.finish, self.usage, self.timings)


def sse_chunks(
    events: Iterable[bytes], *, model: str, answer: AnswerSoFar | None = None
) -> Iterator[Chunk]:
    """The chunks of a /v1 event stream, ending with a ``done`` one; ``answer`` (when
    given) keeps what the stream has said so far, for a connection that breaks after it.

    One chunk per event that has a choice (reasoning goes to ``thinking``); after ``[DONE]``
    (or the end of a stream that gave a finish reason) the final chunk carries the reason and
    the token counts of the usage event. An error event raises. A stream that ends with
    neither simply stops: the transport raises, as for any stream without its final item.
    ``[DONE]`` before any finish reason raises ``_Interrupted`` (llama-cpp-python's server
    ends an earlier stream that way when another request arrives), and a stream without a
    single event raises ``_Empty`` (its answer to a prompt longer than its context).
    """
    so_far = answer if answer is not None else AnswerSoFar(model)
    fingerprint = None
    finished = False
    count = 0
    for data in iter_sse_data(events):
        count += 1
        if data.strip() == DONE:
            if so_far.finish is None:
                raise _Interrupted
            finished = True
            break
        event = _event(data)
        if event.get("error") is not None or event.get("object") == "error":
            raise _StreamError(server_text_of(data.decode("utf-8", "replace")))
        so_far.model = str(event.get("model") or so_far.model)
        fingerprint = event.get("system_fingerprint") or fingerprint
        so_far.usage = as_mapping(event.get("usage")) or so_far.usage
        # llama.cpp's server adds timings.
        so_far.timings = as_mapping(event.get("timings")) or so_far.timings
        choices = event.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = as_mapping(choice.get("delta"))
            # vLLM < 0.10 says reasoning_content.
            thinking = text_field(
                delta.get("reasoning") or delta.get("reasoning_content"), "reasoning"
            )
            yield Chunk(text_field(delta.get("content"), "content"), thinking)
            reason = text_field(choice.get("finish_reason"), "choices[0].finish_reason")
            so_far.finish = reason or so_far.finish
    if not count:
        raise _Empty
    if not finished and so_far.finish is None:
        return
    if fingerprint == OLLAMA_FINGERPRINT:
        warn_once(
            OLLAMA_FINGERPRINT,
            "This OpenAI-compatible server is Ollama, whose /v1 ignores num_ctx: prompts "
            "longer than its default context (OLLAMA_CONTEXT_LENGTH) are cut without an "
            "error. Use api='native' with Ollama.",
        )
    final = so_far.final_if_whole()
    if final is not None:
        yield final


def final_chunk(
    model: str, finish: str | None, usage: Mapping[str, Any], timings: Mapping[str, Any]
) -> Chunk:
    """The ``done`` chunk: the finish reason, and the counts and durations the server gave
    (absent or nonsensical ones are left unknown, never 0)."""
    counts = {}
    for source in ("prompt_tokens", "completion_tokens"):
        count = usage.get(source)
        # A bool is an int to Python, and a negative count is no count: both are left out
        # (reported as unknown), like a count sent as a string.
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            counts[source] = count
    seconds = {}
    for source in ("prompt_ms", "predicted_ms"):
        value = timings.get(source)
        # NaN and infinity are valid JSON to Python's parser, not durations.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value) and 0 <= value < 1e12:  # not absurd either
            seconds[source] = value / 1000
    reason = FINISH_REASONS.get(finish, finish) if finish else "stop"
    raw: dict[str, Any] = {"model": model, "finish_reason": finish, "done_reason": reason}
    if usage:
        raw["usage"] = dict(usage)
    if timings:
        raw["timings"] = dict(timings)
    return Chunk(
        done=True,
        reason=reason,
        model=model,
        input_tokens=counts.get("prompt_tokens"),
        output_tokens=counts.get("completion_tokens"),
        prompt_seconds=seconds.get("prompt_ms"),
        answer_seconds=seconds.get("predicted_ms"),
        raw=raw,
    )


def text_field(value: Any, field: str) -> str:
    """A string field of an event: "" when absent; any other type is a malformed event."""
    if value is None or isinstance(value, str):
        return value or ""
    raise wrong_shape(field, "text", value, hint=NOT_AN_EVENT_STREAM)


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one (a field absent or of the wrong type)."""
    return value if isinstance(value, Mapping) else {}


def positive_int(value: Any) -> int | None:
    """``value`` if it is a positive int (a bool is not one), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
