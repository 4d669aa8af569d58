"""Responses: what a face answers with (a whole body, a stream of JSON documents, or an ApiError).

These are the core's response types; a double of another server keeps them and writes its own
rules next to its face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Union

from .go import go_json

__all__ = [
    "JSON_UTF8",
    "NDJSON",
    "ApiError",
    "Reply",
    "Response",
    "RunnerError",
    "Stream",
    "json_reply",
    "ndjson_stream",
    "runner_error_reply",
    "text_reply",
]


# Responses -------------------------------------------------------------------------------------
JSON_UTF8 = "application/json; charset=utf-8"  # gin's c.JSON
NDJSON = "application/x-ndjson"


class ApiError(Exception):
    """An error answered before any output: the HTTP status and the server's text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RunnerError(ApiError):
    """An error from the model runner, after the request was scheduled but before any output.

    The server sends it through its stream writer, so how it looks depends on the release
    (STREAM_ERROR_STATUS): see :func:`runner_error_reply`.
    """


@dataclass
class Reply:
    """A complete response body (sent with Content-Length)."""

    status: int
    body: bytes
    content_type: str
    is_json: bool = True


@dataclass
class Stream:
    """A 200 streamed with chunked transfer encoding, one framed JSON document per chunk.

    The last ``terminal`` payloads end the stream normally (the ``done`` line; for SSE the
    finish chunk, usage chunk and ``[DONE]``); scripted faults cut the stream before them.
    ``on_complete`` runs just before the terminal payloads are written, so that its effect (a
    pulled model being installed) is visible as soon as the client sees the stream end.
    """

    content_type: str
    payloads: Sequence[bytes]
    frame: Callable[[bytes], bytes]
    error_payload: Callable[[str], bytes]
    terminal: int = 1
    on_complete: Callable[[], None] | None = None


Response = Union[Reply, Stream]


def json_reply(
    value: Any, status: int = 200, *, content_type: str = JSON_UTF8, newline: bool = False
) -> Reply:
    """``newline`` mimics Go's ``json.Encoder`` (used by the OpenAI layer), which ends with \\n."""
    return Reply(status, go_json(value) + (b"\n" if newline else b""), content_type)


def text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode("utf-8"), "text/plain; charset=utf-8", is_json=False)


def ndjson_stream(
    documents: Sequence[Any], *, terminal: int = 1, on_complete: Callable[[], None] | None = None
) -> Stream:
    """Newline-delimited JSON; a mid-stream error is one more line ``{"error": "..."}``."""
    return Stream(
        NDJSON,
        [go_json(document) for document in documents],
        frame=lambda payload: payload + b"\n",
        error_payload=lambda message: go_json({"error": message}),
        terminal=terminal,
        on_complete=on_complete,
    )


def runner_error_reply(status: int, message: str, *, keeps_status: bool) -> Response:
    """A runner's error before any output, as server/routes.go streamResponse sends it.

    From v0.12.6 (``keeps_status``): the status and ``{"error": ...}`` with the Content-Type
    streamResponse set, ``application/json`` without a charset. Before: a 200 NDJSON stream
    whose only line is the error.
    """
    if keeps_status:
        return json_reply({"error": message}, status, content_type="application/json")
    return Stream(
        NDJSON,
        [go_json({"error": message})],
        frame=lambda payload: payload + b"\n",
        error_payload=lambda text: go_json({"error": text}),
        terminal=1,
    )
